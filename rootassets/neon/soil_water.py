"""Soil water content (DP1.00094.001): find NEON-format sensor files and read them inside DuckDB.

The 30-minute files (one per site, horizontal position HOR, vertical level
VER and month) hold tens of millions of rows for the continent, so they are
never loaded into Python: this module lists them, reads the small
`sensor_positions` tables, and builds the DuckDB `read_csv` relation over a
chosen set of files.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from rootassets.neon.errors import NeonDataError
from rootassets.neon.identifiers import validate_release
from rootassets.neon.stack_by_table import PackageFile, align_sensor_positions, package_files, select_files

SOIL_WATER_PRODUCT = "DP1.00094.001"
SWC_TABLE = "SWS_30_minute"
SWC_COLUMNS = {  # the 30-minute table's published columns used here, with DuckDB types
    "startDateTime": "TIMESTAMPTZ",
    "endDateTime": "TIMESTAMPTZ",
    "VSWCMean": "DOUBLE",
    "VSWCMinimum": "DOUBLE",
    "VSWCMaximum": "DOUBLE",
    "VSWCVariance": "DOUBLE",
    "VSWCNumPts": "DOUBLE",
    "VSWCExpUncert": "DOUBLE",
    "VSWCStdErMean": "DOUBLE",
    "VSWCFinalQF": "INTEGER",
}
POSITION_COLUMNS = ("HOR.VER", "sensorLocationID", "positionStartDateTime", "positionEndDateTime", "zOffset")
# NEON's corrected sensor installation depths, added to the download package because sensor_positions reported
# wrong depths (readme_swc_depths.txt); the V2 file supersedes the first.
CORRECTED_DEPTH_FILES = ("swc_depthsV2.csv", "swc_depths.csv")
CORRECTED_DEPTH_COLUMNS = (
    "siteID",
    "horizontalPosition.HOR",
    "verticalPosition.VER",
    "sensorDepth",
    "startDateTime",
    "endDateTime",
)
UTC_TIME = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class SensorFile:
    path: Path
    site: str
    hor: str
    ver: str
    month: str
    publication: str
    size_bytes: int


@dataclass(frozen=True)
class SoilWaterFiles:
    """The DP1.00094.001 files of one release: 30-minute data and sensor positions per site."""

    folder: Path | None
    data: tuple[SensorFile, ...]
    positions: dict[str, Path]  # site -> newest sensor_positions file
    ignored: tuple[str, ...]  # other files in the folder (readme, other intervals), by name
    corrected_depths: Path | None = None  # NEON's swc_depthsV2.csv (else swc_depths.csv), when the package has it

    @property
    def sites(self) -> list[str]:
        return sorted({f.site for f in self.data})

    def fingerprint(self) -> str:
        """A version of the files: names carry NEON's publication time, sizes catch rewrites."""
        digest = hashlib.sha256()
        for f in sorted(self.data, key=lambda f: f.path.name):
            digest.update(f"{f.path.name}:{f.size_bytes}".encode())
        for site, path in sorted(self.positions.items()):
            digest.update(f"{site}:{path.name}:{path.stat().st_size}".encode())
        if self.corrected_depths is not None:
            digest.update(f"{self.corrected_depths.name}:{self.corrected_depths.stat().st_size}".encode())
        return digest.hexdigest()[:24]

    def sensor_files(self) -> pl.DataFrame:
        """site_id, hor, ver, path of every 30-minute file."""
        return pl.DataFrame(
            [(f.site, f.hor, f.ver, str(f.path)) for f in self.data],
            schema={"site_id": pl.String, "hor": pl.String, "ver": pl.String, "path": pl.String},
            orient="row",
        )

    def inventory(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "site_id": [f.site for f in self.data],
                "hor": [f.hor for f in self.data],
                "ver": [f.ver for f in self.data],
                "month": [f.month for f in self.data],
                "publication_date": [f.publication for f in self.data],
                "file_name": [f.path.name for f in self.data],
                "size_bytes": [f.size_bytes for f in self.data],
            },
            schema={
                "site_id": pl.String,
                "hor": pl.String,
                "ver": pl.String,
                "month": pl.String,
                "publication_date": pl.String,
                "file_name": pl.String,
                "size_bytes": pl.Int64,
            },
        )


def soil_water_folder(root: Path | None, release: str) -> Path | None:
    """`<root>/<release>/DP1.00094.001` if it exists (the snapshot layout), else None."""
    if root is None:
        return None
    folder = Path(root) / validate_release(release) / SOIL_WATER_PRODUCT
    return folder if folder.is_dir() else None


def discover(folder: Path | None) -> SoilWaterFiles:
    """The 30-minute files and the newest `sensor_positions` file per site under `folder`, chosen by the generic
    stacker's rules (`stack_by_table`: every site-date file, the newest publication of a site-all table), and
    NEON's corrected depth files. Files inside zips are listed as ignored: DuckDB reads the 30-minute files in
    place, so packages must be unzipped."""
    if folder is None:
        return SoilWaterFiles(None, (), {}, ())
    found = package_files(folder)
    in_place = [f for f in found if ".zip/" not in f.origin]
    ignored = [f.name for f in found if ".zip/" in f.origin]

    def path_of(f: PackageFile) -> Path:
        return folder.parent / f.origin

    tables = [f for f in in_place if f.product == SOIL_WATER_PRODUCT and f.table in (SWC_TABLE, "sensor_positions")]
    chosen = select_files(tables).tables if tables else {}
    data = tuple(
        SensorFile(
            path_of(f),
            f.site or "",
            f.position[0],
            f.position[1],
            f.month or "",
            f.publication,
            path_of(f).stat().st_size,
        )
        for f in chosen.get(SWC_TABLE, [])
        if f.position is not None and f.site and f.month
    )
    positions = {f.site: path_of(f) for f in chosen.get("sensor_positions", []) if f.site}
    documents = {f.name: path_of(f) for f in in_place if f.kind == "document"}
    depths = next((documents[name] for name in CORRECTED_DEPTH_FILES if name in documents), None)
    used = {str(f.path) for f in data} | {str(p) for p in positions.values()}
    used |= {str(p) for name, p in documents.items() if name in CORRECTED_DEPTH_FILES}
    ignored += [f.name for f in in_place if str(path_of(f)) not in used]
    return SoilWaterFiles(folder, data, positions, tuple(sorted(ignored)), depths)


def read_sensor_positions(files: SoilWaterFiles) -> pl.DataFrame:
    """One row per site, HOR, VER and position period: the sensor's depth in cm (from `zOffset`, m, negative
    down) from `positionStartDateTime` to `positionEndDateTime` (empty: still there). A sensor that was moved
    has a row per period, each depth valid for its own period only. A file with NEON's former column names
    (`name`, `start`, `end`) is read under the current ones.

    A position file without the needed columns is refused naming the file and
    column; a row with an unusable depth is refused naming the file and row.
    """
    frames = []
    for site, path in sorted(files.positions.items()):
        raw = align_sensor_positions(pl.read_csv(path, infer_schema=False))
        missing = [c for c in POSITION_COLUMNS if c not in raw.columns]
        if missing:
            raise NeonDataError(f"{path.name}: missing column(s) {', '.join(missing)}")
        rows = raw.select(
            pl.lit(site).alias("site_id"),
            pl.col("HOR.VER").str.split(".").list.get(0, null_on_oob=True).alias("hor"),
            pl.col("HOR.VER").str.split(".").list.get(1, null_on_oob=True).alias("ver"),
            pl.col("sensorLocationID").alias("sensor_location_id"),
            pl.col("positionStartDateTime").alias("position_start"),
            pl.col("positionEndDateTime").alias("position_end"),
            pl.col("zOffset").cast(pl.Float64, strict=False).alias("z_offset_m"),
        ).with_row_index("source_row", offset=2)
        bad = rows.filter(pl.col("z_offset_m").is_null() | pl.col("hor").is_null() | pl.col("ver").is_null())
        if bad.height:
            row = bad.row(0, named=True)
            raise NeonDataError(f"{path.name}: row {row['source_row']}: field HOR.VER or zOffset is not usable")
        frames.append(
            rows.with_columns((-100.0 * pl.col("z_offset_m")).alias("depth_cm"), pl.lit(path.name).alias("file_name"))
        )
    if not frames:
        return pl.DataFrame(
            schema={
                "site_id": pl.String,
                "hor": pl.String,
                "ver": pl.String,
                "sensor_location_id": pl.String,
                "position_start": pl.String,
                "position_end": pl.String,
                "z_offset_m": pl.Float64,
                "depth_cm": pl.Float64,
                "file_name": pl.String,
            }
        )
    return pl.concat(frames).drop("source_row").sort("site_id", "hor", "ver")


def read_corrected_depths(path: Path) -> pl.DataFrame:
    """NEON's corrected installation depths (`swc_depthsV2.csv` or `swc_depths.csv`): one row per site, HOR,
    VER and period, with the depth in cm (`sensorDepth`, m, negative below the surface) valid from
    `startDateTime` to `endDateTime` (NA: still there). `sensorDepth` NA means NEON gives no depth for that
    sensor and period: the row is kept with no depth, and the sensor is not used then. A file without the
    needed columns, or a row whose site, position or times cannot be read, is refused naming file, row and
    field."""
    raw = pl.read_csv(path, infer_schema=False, null_values=["NA", ""])
    missing = [c for c in CORRECTED_DEPTH_COLUMNS if c not in raw.columns]
    if missing:
        raise NeonDataError(f"{path.name}: missing column(s) {', '.join(missing)}")
    rows = raw.with_row_index("source_row", offset=2).select(
        "source_row",
        pl.col("siteID").alias("site_id"),
        pl.col("horizontalPosition.HOR").alias("hor"),
        pl.col("verticalPosition.VER").alias("ver"),
        pl.col("sensorDepth").alias("sensor_depth_text"),
        (-100.0 * pl.col("sensorDepth").cast(pl.Float64, strict=False)).alias("depth_cm"),
        pl.col("startDateTime").alias("start_text"),
        pl.col("endDateTime").alias("end_text"),
        pl.col("startDateTime")
        .str.to_datetime("%Y-%m-%dT%H:%M:%SZ", strict=False, time_zone="UTC")
        .alias("valid_from"),
        pl.col("endDateTime").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", strict=False, time_zone="UTC").alias("valid_to"),
    )
    problems = (
        (pl.col("site_id").is_null() | ~pl.col("site_id").str.contains(r"^[A-Z]{4}$"), "siteID"),
        (pl.col("hor").is_null() | ~pl.col("hor").str.contains(r"^[0-9]{3}$"), "horizontalPosition.HOR"),
        (pl.col("ver").is_null() | ~pl.col("ver").str.contains(r"^[0-9]{3}$"), "verticalPosition.VER"),
        (pl.col("sensor_depth_text").is_not_null() & pl.col("depth_cm").is_null(), "sensorDepth"),
        (pl.col("valid_from").is_null(), "startDateTime"),
        (pl.col("end_text").is_not_null() & pl.col("valid_to").is_null(), "endDateTime"),
    )
    for bad, field_name in problems:
        wrong = rows.filter(bad)
        if wrong.height:
            row = wrong.row(0, named=True)
            raise NeonDataError(f"{path.name}: row {row['source_row']}, field {field_name}: value is not usable")
    return rows.select(
        "site_id", "hor", "ver", "depth_cm", pl.col("valid_from").cast(UTC_TIME), pl.col("valid_to").cast(UTC_TIME)
    ).with_columns(pl.lit(path.name).alias("depth_source"))


def corrected_depths(files: SoilWaterFiles) -> pl.DataFrame | None:
    """NEON's corrected depths when the download has them (`read_corrected_depths`), else None."""
    return read_corrected_depths(files.corrected_depths) if files.corrected_depths is not None else None


NEEDED = ("startDateTime", "VSWCMean", "VSWCFinalQF")


def read_csv_sql(
    paths: Iterable[Path], refused: list[tuple[Path, str, str]] | None = None, rejects_table: str | None = None
) -> str:
    """A DuckDB relation over the 30-minute files `paths`: startDateTime, VSWCMean, VSWCFinalQF, filename.

    Files are grouped by their header line and each group is read with its
    columns declared (no per-file sniffing, which costs far more than the
    read itself on thousands of small files). A file without a needed column
    (or whose header cannot be read) is refused naming it; with `refused`, it is
    left out and listed there instead, as (path, missing columns, reason). With
    `rejects_table`, a line DuckDB cannot read (a value that is not a number, a
    wrong number of fields, bytes that are not UTF-8) is left out and recorded in
    that table and `<rejects_table>_scans` (DuckDB's `store_rejects`), file and
    line, instead of failing the read. Paths come from `discover` (names validated
    against NEON's pattern) and are quoted as SQL strings. No paths: an empty relation.
    """
    groups: dict[tuple[str, ...], list[Path]] = {}
    for path in paths:
        try:
            with path.open(encoding="utf-8-sig", newline="") as f:
                header = tuple(next(csv.reader([f.readline()]), []))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            if refused is None:
                raise NeonDataError(f"{path.name}: its header cannot be read ({exc})") from exc
            refused.append((path, "", f"{path.name}: its header cannot be read ({exc})"))
            continue
        missing = [c for c in NEEDED if c not in header]
        if missing:
            message = f"{path.name}: missing column(s) {', '.join(missing)}"
            if refused is None:
                raise NeonDataError(message)
            refused.append((path, ",".join(missing), message))
            continue
        groups.setdefault(header, []).append(path)
    store = (
        f", store_rejects = true, rejects_table = '{rejects_table}', rejects_scan = '{rejects_table}_scans'"
        if rejects_table
        else ""
    )
    parts = []
    for header, group in groups.items():
        quoted = ", ".join("'" + str(p).replace("'", "''") + "'" for p in group)
        columns = ", ".join(
            "'" + name.replace("'", "''") + "': '" + SWC_COLUMNS.get(name, "VARCHAR") + "'" for name in header
        )
        parts.append(
            f"SELECT {', '.join(NEEDED)}, filename FROM read_csv([{quoted}], header = true, "
            f"auto_detect = false, columns = {{{columns}}}, filename = true, nullstr = ['', 'NA']{store})"
        )
    if not parts:
        return (
            "(SELECT NULL::TIMESTAMPTZ AS startDateTime, NULL::DOUBLE AS VSWCMean, "
            "NULL::INTEGER AS VSWCFinalQF, NULL::VARCHAR AS filename WHERE false)"
        )
    return "(" + " UNION ALL ".join(parts) + ")"
