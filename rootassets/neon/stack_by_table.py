"""Stack any NEON product's download packages into one table per NEON table, as neonUtilities' `stackByTable` does.

Input as users have it: a data-portal zip (`NEON_<name>.zip`, holding per-site-month folders or zips), a
folder of such folders or zips, or a single package. Stray files (`.DS_Store`, `__MACOSX/`, `._*`) are
ignored. The rules follow neonUtilities (R, `stackDataFilesArrow`, `findTablesByFormat`,
`getRecentPublication`, `formatReadme`, `removeSrfDups`):

- a table's kind comes from its file names: `NEON.<domain>.<site>...<YYYY-MM>...` is site-date (every file
  is stacked), without a month it is site-all (only the newest publication per site), and without a domain
  (`NEON.<lab>.<table>.<publication>.csv`) it is a lab table (only the newest publication per lab); a table
  published under two kinds is refused;
- columns follow the newest variables file's fields for the table (the basic package's only, for a basic
  download), then `publicationDate` (from the file name) and `release` (from the package name); a file's
  column missing from the variables file is kept after them, never dropped;
- instrumented files (`...<HOR>.<VER>.<TMI>.<table>...`) gain `domainID`, `siteID`, `horizontalPosition` and
  `verticalPosition` (strings, from the file name) when they have no `siteID`, and rows are ordered by them
  and `endDateTime`;
- `science_review_flags` keeps one row per `srfID`, the latest `lastUpdateDateTime`;
- `sensor_positions` (a site-all table) has its former column names (`name`, `start`, `referenceName`, ...,
  before NEON renamed them in 2024) aligned to the current ones: a current column's missing values are
  filled from its former column, which is then dropped (neonutilities' `align_sp_cols`); without the table in
  the variables file, its columns follow NEON's current field order;
- the newest variables, validation and categoricalCodes files, and the newest readme (its `Date-Time`
  lines removed, a disclaimer on top), are written beside the tables with the product number in the name;
  the variables file gains the rows of the fields the stacker adds;
- packages of two numbered releases are refused (stack each release on its own).

Values are kept as the files publish them (text; `NA` and empty fields are missing), so nothing is lost or
re-formatted; typing belongs to whoever reads the stacked tables. The issue log (`issueLog_<number>.csv`)
comes from the API's `changeLogs` for the product: offline there is none, and the readme's ISSUE LOG
section holds the same text. NEON's table descriptions (neonUtilities' `table_types`) are not available
offline, so the readme's table list is left as published.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import polars as pl

from rootassets.neon.errors import NeonDataError, UnsafeArchiveError

PUBLICATION = r"[0-9]{8}T[0-9]{6}Z"
RELEASE_IN_NAME = re.compile(r"\.(RELEASE-20[0-9]{2}|PROVISIONAL)(?:\.zip)?$")
# NEON.D01.BART.DP1.10033.001[.001.501.030].<table>[.2022-09][.expanded].20241118T124245Z.csv
SITE_FILE = re.compile(
    r"^NEON\.(?P<domain>D[0-9]{2})\.(?P<site>[A-Z]{2}[A-Z0-9]{2})\.(?P<product>DP[0-4]\.[0-9]{5}\.[0-9]{3})\."
    r"(?:(?P<hor>[0-9]{3})\.(?P<ver>[0-9]{3})\.(?P<tmi>[0-9]{2}[0-9A-Z])\.)?"
    r"(?P<table>[A-Za-z][A-Za-z0-9_]*?)(?:_pub)?\."
    r"(?:(?P<month>[0-9]{4}-[0-9]{2})\.)?(?:(?P<package>basic|expanded)\.)?"
    rf"(?P<publication>{PUBLICATION})\.(?P<ext>csv|txt)$"
)
# NEON.A_and_L_Great_Lakes.lig_externalSummary.20241118T021017Z.csv
LAB_FILE = re.compile(
    rf"^NEON\.(?P<lab>[A-Za-z0-9_\-]+)\.(?P<table>[A-Za-z][A-Za-z0-9_]*?)(?:_pub)?\.(?P<publication>{PUBLICATION})\.csv$"
)
METADATA = ("variables", "readme", "validation", "categoricalCodes")
DATA_KINDS = ("site-date", "site-all", "lab")  # the kinds of file that hold a table's rows
NAMED_BY_PRODUCT = ("sensor_positions", "science_review_flags")
STRAY = re.compile(r"(^|/)(__MACOSX/|\._|\.DS_Store$|Thumbs\.db$)")
POSITION_COLUMNS = ("domainID", "siteID", "horizontalPosition", "verticalPosition")
# The fields stackByTable appends, as it describes them in the variables file (neonUtilities' added_fields).
ADDED_FIELDS = {
    "domainID": ("Unique identifier of the NEON domain", "string"),
    "siteID": ("NEON site code", "string"),
    "horizontalPosition": ("Index of horizontal location at a NEON site", "string"),
    "verticalPosition": ("Index of vertical location at a NEON site", "string"),
    "publicationDate": ("Date of data publication on the NEON data portal", "dateTime"),
    "release": ("Identifier for data release", "string"),
}
README_DISCLAIMER = [
    "###################################",
    "########### Disclaimer ############",
    "This is the most recent readme publication based on all site-date combinations used during stackByTable.",
    "Information specific to the query, including sites and dates, has been removed. The remaining content "
    "reflects general metadata for the data product.",
    "##################################",
    "",
]
# sensor_positions' former column names -> the current ones, and the current fields in NEON's order (as
# neonutilities 1.x+ lists them in its sensor_positions_variables resources).
SENSOR_POSITION_RENAMES = {
    "name": "sensorLocationID",
    "description": "sensorLocationDescription",
    "start": "positionStartDateTime",
    "end": "positionEndDateTime",
    "referenceName": "referenceLocationID",
    "referenceDescription": "referenceLocationIDDescription",
    "referenceStart": "referenceLocationIDStartDateTime",
    "referenceEnd": "referenceLocationIDEndDateTime",
    "referenceLatitude": "locationReferenceLatitude",
    "referenceLongitude": "locationReferenceLongitude",
    "referenceElevation": "locationReferenceElevation",
}
SENSOR_POSITION_FIELDS = (
    "HOR.VER",
    "sensorLocationID",
    "sensorLocationDescription",
    "effectiveStartDateTime",
    "effectiveEndDateTime",
    "positionStartDateTime",
    "positionEndDateTime",
    "referenceLocationID",
    "referenceLocationIDDescription",
    "referenceLocationIDStartDateTime",
    "referenceLocationIDEndDateTime",
    "xOffset",
    "yOffset",
    "zOffset",
    "pitch",
    "roll",
    "azimuth",
    "locationReferenceLatitude",
    "locationReferenceLongitude",
    "locationReferenceElevation",
    "eastOffset",
    "northOffset",
    "xAzimuth",
    "yAzimuth",
)
MAX_NESTED_ZIP_BYTES = 2 << 30  # a per-site zip inside a portal zip is read in memory: refuse a larger one


@dataclass(frozen=True)
class PackageFile:
    """One file of a NEON download package, wherever it sits (folder, zip, zip in a zip)."""

    origin: str  # where it came from, for messages: `NEON_x.zip/NEON.D01...RELEASE-2025/NEON...csv`
    name: str
    release: str | None
    read: Callable[[], bytes] = field(compare=False, repr=False)
    table: str = ""
    kind: str = ""  # site-date | site-all | lab | variables | readme | validation | categoricalCodes | document
    site: str | None = None
    domain: str | None = None
    month: str | None = None
    package: str | None = None
    publication: str = ""
    lab: str | None = None
    position: tuple[str, str] | None = None  # (HOR, VER) of an instrumented file
    product: str | None = None
    path: Path | None = None  # where it is on disk, when it is a file of its own (not a member of a zip)


@dataclass
class Stacked:
    """What stacking gives: the tables by output name, the text files, and one summary line per table."""

    product: str | None
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        lines = []
        for name, frame in self.tables.items():
            sites = frame["siteID"].n_unique() if "siteID" in frame.columns else None
            months = _months(frame)
            detail = f"{frame.height} rows"
            if sites is not None:
                detail += f", {sites} site{'s' if sites != 1 else ''}"
            if months:
                detail += f", {len(months)} month{'s' if len(months) != 1 else ''} ({months[0]}..{months[-1]})"
            lines.append(f"{name}: {detail}")
        lines += [f"{name}: text" for name in self.texts]
        return lines + self.notes


def _months(frame: pl.DataFrame) -> list[str]:
    for column in ("collectDate", "startDateTime", "endDate", "setDate"):
        if column in frame.columns:
            values = frame[column].drop_nulls().str.slice(0, 7)
            return sorted(v for v in values.unique().to_list() if re.fullmatch(r"[0-9]{4}-[0-9]{2}", v))
    return []


# -- finding the files ------------------------------------------------------------------------------------


def package_files(path: Path) -> list[PackageFile]:
    """Every NEON file under `path` (a portal zip, a folder of packages, or one package), classified."""
    if not path.exists():
        raise NeonDataError(f"{path}: no such file or folder")
    found = [_classified(f) for f in _walk(path)]
    return sorted((f for f in found if f is not None), key=lambda f: f.origin)


def _walk(path: Path) -> Iterator[PackageFile]:
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            relative = child.relative_to(path.parent).as_posix()
            if child.is_symlink() or not child.is_file() or STRAY.search(relative):
                continue
            if child.suffix == ".zip":
                yield from _walk_zip(child.read_bytes, relative, _release(child.name))
            else:
                yield PackageFile(relative, child.name, _release(child.parent.name), child.read_bytes, path=child)
        return
    if path.suffix != ".zip":
        raise NeonDataError(f"{path}: not a NEON download (a .zip or a folder of packages)")
    yield from _walk_zip(path.read_bytes, path.name, _release(path.name))


def _walk_zip(data: Callable[[], bytes], origin: str, release: str | None) -> Iterator[PackageFile]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data()))
    except zipfile.BadZipFile as exc:
        raise NeonDataError(f"{origin}: not a readable zip archive ({exc})") from exc
    for info in sorted(archive.infolist(), key=lambda i: i.filename):
        member = PurePosixPath(info.filename)
        if info.is_dir() or STRAY.search(info.filename):
            continue
        if member.is_absolute() or ".." in member.parts:
            raise UnsafeArchiveError(f"{origin}: entry {info.filename!r} points outside the archive")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise UnsafeArchiveError(f"{origin}: entry {info.filename!r} is a symbolic link")
        inner = f"{origin}/{info.filename}"
        folder_release = _release(member.parent.name) if member.parent.name else None

        def read(info: zipfile.ZipInfo = info) -> bytes:
            return archive.read(info)

        if member.suffix == ".zip":
            if info.file_size > MAX_NESTED_ZIP_BYTES:
                raise NeonDataError(f"{inner}: a nested zip of {info.file_size} bytes is too large to read")
            yield from _walk_zip(read, inner, _release(member.name) or folder_release or release)
        else:
            yield PackageFile(inner, member.name, folder_release or release, read)


def _release(name: str) -> str | None:
    match = RELEASE_IN_NAME.search(name)
    return match.group(1) if match else None


# Documents NEON adds to a download package under plain names (DP1.00094.001's corrected sensor depths): kept
# as documents, never stacked.
PACKAGE_DOCUMENTS = ("swc_depthsV2.csv", "swc_depths.csv", "readme_swc_depths.txt")


def classify_name(name: str, release: str | None = None) -> PackageFile | None:
    """A NEON file name classified as `package_files` classifies it (None: not a NEON table or document)."""
    return _classified(PackageFile(name, name, release, bytes))


def _classified(f: PackageFile) -> PackageFile | None:
    if f.name in PACKAGE_DOCUMENTS:
        return PackageFile(f.origin, f.name, f.release, f.read, kind="document", path=f.path)
    site = SITE_FILE.fullmatch(f.name)
    if site:
        parts = site.groupdict()
        table = parts["table"]
        if table in METADATA:
            kind = table
        elif parts["ext"] != "csv":
            return None
        elif table == "sensor_positions":
            kind = "site-all"
        elif table == "science_review_flags":
            kind = "site-date"
        elif "_" not in table and not parts["hor"]:
            return None  # not a data table (e.g. an EML or manifest companion)
        else:
            kind = "site-date" if parts["month"] else "site-all"
        position = (parts["hor"], parts["ver"]) if parts["hor"] else None
        return PackageFile(
            f.origin,
            f.name,
            f.release,
            f.read,
            table,
            kind,
            parts["site"],
            parts["domain"],
            parts["month"],
            parts["package"],
            parts["publication"],
            None,
            position,
            parts["product"],
            f.path,
        )
    lab = LAB_FILE.fullmatch(f.name)
    if lab and "_" in lab["table"]:
        return PackageFile(
            f.origin,
            f.name,
            f.release,
            f.read,
            lab["table"],
            "lab",
            publication=lab["publication"],
            lab=lab["lab"],
            path=f.path,
        )
    return None


# -- stacking ---------------------------------------------------------------------------------------------


def newest(files: list[PackageFile]) -> PackageFile:
    """The newest publication (neonUtilities' getRecentPublication: the largest date, the first in order)."""
    latest = max(f.publication for f in files)
    return next(f for f in files if f.publication == latest)


def newest_per(files: list[PackageFile], key: Callable[[PackageFile], str | None]) -> list[PackageFile]:
    groups: dict[str | None, list[PackageFile]] = {}
    for f in files:
        groups.setdefault(key(f), []).append(f)
    return sorted((newest(g) for g in groups.values()), key=lambda f: f.origin)


def read_strings(f: PackageFile) -> pl.DataFrame:
    """A NEON CSV as published: every column text, `NA` and empty fields missing. A malformed file is
    refused with its name."""
    try:
        frame = pl.read_csv(
            io.BytesIO(f.read()),
            infer_schema=False,
            null_values=["NA", ""],
            encoding="utf8-lossy",
        )
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise NeonDataError(f"{f.origin}: cannot be read as a NEON CSV ({str(exc).splitlines()[0]})") from exc
    if frame.columns and frame.columns[0].startswith("\ufeff"):
        frame = frame.rename({frame.columns[0]: frame.columns[0].lstrip("\ufeff")})
    return frame


def table_fields(variables: pl.DataFrame | None, table: str, package: str) -> list[str]:
    """The variables file's fields of `table` in order (basic fields only for the basic package)."""
    if variables is None or not {"table", "fieldName"} <= set(variables.columns):
        return []
    rows = variables.filter(pl.col("table") == table)
    if package == "basic" and "downloadPkg" in rows.columns:
        rows = rows.filter(pl.col("downloadPkg") != "expanded")
    return rows["fieldName"].to_list()


def remove_srf_duplicates(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per science review flag (`srfID`), the one updated last."""
    if not {"srfID", "lastUpdateDateTime"} <= set(frame.columns):
        return frame.unique(maintain_order=True)
    return (
        frame.with_row_index("_order")
        .sort("srfID", "lastUpdateDateTime", "_order", descending=[False, True, False], nulls_last=True)
        .unique("srfID", keep="first", maintain_order=True)
        .sort("_order")
        .drop("_order")
    )


def align_sensor_positions(frame: pl.DataFrame) -> pl.DataFrame:
    """`sensor_positions` with only the current column names: each former column fills the missing values of
    its current one and is dropped; alone, it is renamed. Nothing published is lost."""
    for former, current in SENSOR_POSITION_RENAMES.items():
        if former not in frame.columns:
            continue
        if current in frame.columns:
            frame = frame.with_columns(pl.coalesce(current, former).alias(current)).drop(former)
        else:
            frame = frame.rename({former: current})
    return frame


def stack_table(table: str, files: list[PackageFile], variables: pl.DataFrame | None, package: str) -> pl.DataFrame:
    """One NEON table from its files (already the ones to stack), with the fields stackByTable adds."""
    frames = []
    for f in files:
        frame = read_strings(f)
        frame = frame.with_columns(pl.lit(f.publication).alias("publicationDate"), pl.lit(f.release).alias("release"))
        if f.kind != "lab" and "siteID" not in frame.columns:
            added = [pl.lit(f.domain).alias("domainID"), pl.lit(f.site).alias("siteID")]
            if f.position:
                added += [
                    pl.lit(f.position[0]).alias("horizontalPosition"),
                    pl.lit(f.position[1]).alias("verticalPosition"),
                ]
            frame = frame.with_columns(added)
        frames.append(frame)
    stacked = pl.concat(frames, how="diagonal") if frames else pl.DataFrame()
    declared = table_fields(variables, table, package)
    if table == "sensor_positions":
        stacked = align_sensor_positions(stacked)
        declared = [SENSOR_POSITION_RENAMES.get(c, c) for c in declared]
        declared = list(dict.fromkeys(declared or SENSOR_POSITION_FIELDS))
    leading = [c for c in POSITION_COLUMNS if c in stacked.columns and c not in declared]
    extra = [c for c in stacked.columns if c not in (*declared, *leading, "publicationDate", "release")]
    order = [*leading, *declared, *extra, "publicationDate", "release"]
    stacked = stacked.with_columns(pl.lit(None, pl.String).alias(c) for c in order if c not in stacked.columns)
    stacked = stacked.select(order)
    if table == "science_review_flags":
        stacked = remove_srf_duplicates(stacked)
    if leading:
        keys = [c for c in (*leading, "endDateTime") if c in stacked.columns]
        stacked = stacked.sort(keys, maintain_order=True, nulls_last=True)
    return stacked


def stacked_variables(variables: pl.DataFrame | None, tables: dict[str, pl.DataFrame]) -> pl.DataFrame | None:
    """The newest variables file, by table, with rows for the fields the stacker added to each table."""
    if variables is None or "table" not in variables.columns:
        return variables
    blocks = []
    for (table,), rows in variables.group_by("table", maintain_order=True):
        stacked = tables.get(table)
        positioned = stacked is not None and "horizontalPosition" in stacked.columns
        added_before = list(POSITION_COLUMNS) if positioned else []
        added_after = ["publicationDate", "release"] if stacked is not None else []
        before = _added_rows(table, added_before, rows.columns)
        after = _added_rows(table, added_after, rows.columns)
        blocks += [b for b in (before, rows, after) if b is not None]
    return pl.concat(blocks, how="diagonal").sort("table", maintain_order=True)


def _added_rows(table: str, fields: list[str], columns: list[str]) -> pl.DataFrame | None:
    if not fields:
        return None
    values = {
        "table": [table] * len(fields),
        "fieldName": fields,
        "description": [ADDED_FIELDS[f][0] for f in fields],
        "dataType": [ADDED_FIELDS[f][1] for f in fields],
        "downloadPkg": ["appended by stackByTable"] * len(fields),
        "primaryKey": ["N"] * len(fields),
    }
    return pl.DataFrame(
        {c: values.get(c, [None] * len(fields)) for c in columns}, schema=dict.fromkeys(columns, pl.String)
    )


def formatted_readme(text: str) -> str:
    """The readme as stackByTable writes it: blank lines and the query's `Date-Time` lines removed (its
    reader skips empty lines), a disclaimer on top."""
    kept = [line for line in text.splitlines() if line.strip() and "Date-Time" not in line]
    return "\n".join([*README_DISCLAIMER, *kept]) + "\n"


@dataclass
class Selection:
    """The files stackByTable reads from one product's packages: per table the files to stack, and the
    newest variables, readme, validation and categoricalCodes file."""

    product: str | None
    package: str  # basic | expanded
    tables: dict[str, list[PackageFile]]
    documents: dict[str, PackageFile]

    @property
    def number(self) -> str:
        return self.product.split(".")[1] if self.product else "unknown"


def select_files(files: list[PackageFile]) -> Selection:
    """Which files to stack (see the module docstring for the rules); refuses mixed products or releases."""
    products = sorted({f.product for f in files if f.product})
    if len(products) > 1:
        raise NeonDataError(f"packages of several products ({', '.join(products)}): stack each product on its own")
    releases = sorted({f.release for f in files if f.release and f.release.startswith("RELEASE")})
    if len(releases) > 1:
        raise NeonDataError(f"packages of several releases ({', '.join(releases)}): stack each release on its own")
    data = [f for f in files if f.kind in DATA_KINDS]
    if not data:
        raise NeonDataError("no NEON data tables found, only metadata (or nothing NEON-named)")
    documents = {kind: newest(c) for kind in METADATA if (c := [f for f in files if f.kind == kind])}
    by_table: dict[str, list[PackageFile]] = {}
    for f in data:
        by_table.setdefault(f.table, []).append(f)
    chosen: dict[str, list[PackageFile]] = {}
    for table, table_files in sorted(by_table.items()):
        kinds = sorted({f.kind for f in table_files})
        if len(kinds) > 1:
            raise NeonDataError(
                f"table {table} is published as {' and '.join(kinds)} in these files: stack released and "
                "provisional data separately"
            )
        if kinds == ["site-all"]:
            chosen[table] = newest_per(table_files, lambda f: f"{f.site}.{f.position}")
        elif kinds == ["lab"]:
            chosen[table] = newest_per(table_files, lambda f: f.lab)
        else:
            chosen[table] = table_files
    package = "expanded" if any(f.package == "expanded" for f in data) else "basic"
    return Selection(products[0] if products else None, package, chosen, documents)


def stack_by_table(files: list[PackageFile]) -> Stacked:
    """Stack every table of one product's packages (see the module docstring for the rules)."""
    selection = select_files(files)
    number = selection.number
    out = Stacked(selection.product)
    variables = None
    for kind, chosen in selection.documents.items():
        if kind == "readme":
            out.texts[f"readme_{number}.txt"] = formatted_readme(chosen.read().decode("utf-8", "replace"))
            continue
        frame = read_strings(chosen)
        if kind == "variables":
            variables = frame
        else:
            out.tables[f"{kind}_{number}"] = frame
    tables = {
        table: stack_table(table, chosen, variables, selection.package) for table, chosen in selection.tables.items()
    }
    for table, frame in tables.items():
        out.tables[f"{table}_{number}" if table in NAMED_BY_PRODUCT else table] = frame
    stacked_vars = stacked_variables(variables, tables)
    if stacked_vars is not None:
        out.tables[f"variables_{number}"] = stacked_vars
    out.tables = dict(sorted(out.tables.items()))
    out.notes.append(
        f"issueLog_{number}: not written offline (NEON's clients take it from the API's changeLogs); "
        f"the readme's ISSUE LOG section holds the same issues"
    )
    return out


def write_stacked(stacked: Stacked, out: Path) -> list[Path]:
    """Write every table as `<name>.csv` and every text file into `out`, all or nothing: the files go to a
    sibling folder first, which is renamed into place; `out` must not exist or be empty."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise NeonDataError(f"{out}: exists and is not an empty folder; choose a new --out folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, frame in stacked.tables.items():
            frame.write_csv(staging / f"{name}.csv", null_value="")
        for name, text in stacked.texts.items():
            (staging / name).write_text(text)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(out.iterdir())
