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
from rootassets.neon.identifiers import parse_file_name, parse_sensor_file_name, validate_release

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
    """Every 30-minute soil water file and the newest sensor_positions file per site under `folder`."""
    if folder is None:
        return SoilWaterFiles(None, (), {}, ())
    data, positions, ignored = [], {}, []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        sensor = parse_sensor_file_name(path.name)
        if sensor is not None and sensor.product == SOIL_WATER_PRODUCT and sensor.table == SWC_TABLE:
            data.append(
                SensorFile(
                    path, sensor.site, sensor.hor, sensor.ver, sensor.month, sensor.publication, path.stat().st_size
                )
            )
            continue
        named = parse_file_name(path.name)
        if named is not None and named.product == SOIL_WATER_PRODUCT and named.table == "sensor_positions":
            newest = positions.get(named.site)
            if newest is None or parse_file_name(newest.name).publication < named.publication:
                positions[named.site] = path
            continue
        ignored.append(path.name)
    return SoilWaterFiles(folder, tuple(data), positions, tuple(ignored))


def read_sensor_positions(files: SoilWaterFiles) -> pl.DataFrame:
    """One row per site, HOR and VER: the sensor's depth in cm (from `zOffset`, m, negative down).

    A position file without the needed columns is refused naming the file and
    column; a row with an unusable depth is refused naming the file and row.
    """
    frames = []
    for site, path in sorted(files.positions.items()):
        raw = pl.read_csv(path, infer_schema=False)
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
        # A sensor moved during the record has several rows: keep its current (last started) position.
        rows = rows.sort("position_start").unique(["hor", "ver"], keep="last")
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


NEEDED = ("startDateTime", "VSWCMean", "VSWCFinalQF")


def read_csv_sql(paths: Iterable[Path]) -> str:
    """A DuckDB relation over the 30-minute files `paths`: startDateTime, VSWCMean, VSWCFinalQF, filename.

    Files are grouped by their header line and each group is read with its
    columns declared (no per-file sniffing, which costs far more than the
    read itself on thousands of small files). A file without a needed column
    is refused naming it. Paths come from `discover` (names validated against
    NEON's pattern) and are quoted as SQL strings. No paths: an empty relation.
    """
    groups: dict[tuple[str, ...], list[Path]] = {}
    for path in paths:
        with path.open(encoding="utf-8-sig", newline="") as f:
            header = tuple(next(csv.reader([f.readline()]), []))
        missing = [c for c in NEEDED if c not in header]
        if missing:
            raise NeonDataError(f"{path.name}: missing column(s) {', '.join(missing)}")
        groups.setdefault(header, []).append(path)
    parts = []
    for header, group in groups.items():
        quoted = ", ".join("'" + str(p).replace("'", "''") + "'" for p in group)
        columns = ", ".join(
            "'" + name.replace("'", "''") + "': '" + SWC_COLUMNS.get(name, "VARCHAR") + "'" for name in header
        )
        parts.append(
            f"SELECT {', '.join(NEEDED)}, filename FROM read_csv([{quoted}], header = true, "
            f"auto_detect = false, columns = {{{columns}}}, filename = true, nullstr = ['', 'NA'])"
        )
    if not parts:
        return (
            "(SELECT NULL::TIMESTAMPTZ AS startDateTime, NULL::DOUBLE AS VSWCMean, "
            "NULL::INTEGER AS VSWCFinalQF, NULL::VARCHAR AS filename WHERE false)"
        )
    return "(" + " UNION ALL ".join(parts) + ")"
