"""The platform's raw tables from NEON files: one table per NEON table, as the raw assets write it.

Download packages (from the API, a snapshot folder or a declared download) go through one path,
`stack_packages`: the generic stacker (`stack_by_table.select_files`) chooses the files as neonUtilities'
stackByTable does (every site-date file, the newest publication of a site-all or lab table, the newest
variables file), and each file is read with the NEON reader, typed from the variables file, malformed
records kept aside for quarantine. Tables already stacked by a client (`<table>.csv`) go through
`stack_table`. Either way every row gains `site_id`, `release`, `publication_date` and `source_file`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import polars as pl

from rootassets.neon.csv_batch import CsvInput, read_typed_files
from rootassets.neon.csvfiles import MalformedRecord, read_file_bytes, read_neon_bytes
from rootassets.neon.errors import NeonDataError
from rootassets.neon.identifiers import PUBLICATION_PATTERN, SITE_PATTERN, validate_release
from rootassets.neon.products import SITE_COLUMNS, ProductSpec
from rootassets.neon.stack_by_table import DATA_KINDS, PackageFile, read_strings, select_files

ADDED_COLUMNS = ("site_id", "release", "publication_date", "source_file")
# What a stacking client (neonUtilities) adds to the columns of NEON's own per-site files.
STACKING_COLUMNS = ("release", "publicationDate")


@dataclass(frozen=True)
class SourceFile:
    """One NEON CSV file to stack; `site` is None for a file holding many sites."""

    path: Path
    table: str
    site: str | None = None
    month: str | None = None
    publication: str | None = None
    site_all: bool = False


@dataclass(frozen=True)
class SourceRecord:
    """Provenance of one stacked file: its name and MD5."""

    file: str
    md5: str
    rows: int
    columns: tuple[str, ...] = ()


@dataclass
class StackedTable:
    """One NEON table stacked across files, with the files it came from."""

    name: str
    frame: pl.DataFrame
    sources: list[SourceRecord] = field(default_factory=list)
    malformed: list[MalformedRecord] = field(default_factory=list)

    @property
    def n_sites(self) -> int:
        return self.frame["site_id"].n_unique() if self.frame.height else 0


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def stack_table(
    table: str,
    files: Iterable[SourceFile],
    release: str,
    variables: dict[str, str] | None = None,
) -> StackedTable:
    """Read and stack every file of `table` into one frame with the added columns."""
    validate_release(release)
    chosen = sorted(
        (f for f in files if f.table == table),
        key=lambda f: (f.site or "", f.month or "", f.path.name),
    )
    frames: list[pl.DataFrame] = []
    sources: list[SourceRecord] = []
    malformed: list[MalformedRecord] = []
    inputs = [CsvInput(f.path.name, partial(read_file_bytes, f.path), f.path) for f in chosen]
    reads = _read_files(inputs, variables, malformed)
    for f, (frame, md5) in zip(chosen, reads, strict=True):
        sources.append(SourceRecord(f.path.name, md5, frame.height, tuple(frame.columns)))
        frames.append(with_added_columns(frame, f, release))
    if not frames:
        return StackedTable(name=table, frame=empty_table(), sources=[])
    stacked = pl.concat(frames, how="diagonal_relaxed")
    return StackedTable(name=table, frame=stacked, sources=sources, malformed=malformed)


def _read_files(
    inputs: list[CsvInput], types: dict[str, str] | None, malformed: list[MalformedRecord]
) -> list[tuple[pl.DataFrame, str]]:
    """Each file's typed rows and MD5: with NEON's declared types, all of a table's files in one DuckDB read
    (`csv_batch`); without them, file by file, the types inferred from each whole file (`csvfiles`)."""
    if types is not None:
        return [(r.frame, r.md5) for r in read_typed_files(inputs, types, malformed)]
    out = []
    for item in inputs:
        raw = item.read()
        out.append((read_neon_bytes(raw, item.name, None, malformed), hashlib.md5(raw).hexdigest()))
    return out


def empty_table() -> pl.DataFrame:
    """A table with only the columns the platform adds, for a table the source lacks."""
    return pl.DataFrame(
        schema={
            "site_id": pl.String,
            "release": pl.String,
            "publication_date": pl.Datetime("us", "UTC"),
            "source_file": pl.String,
        }
    )


def with_added_columns(frame: pl.DataFrame, f: SourceFile, release: str, lab: bool = False) -> pl.DataFrame:
    """`frame` with the columns every raw table has; a lab table (one lab's analyses across sites) has no site."""
    for name in ("site_id", "publication_date", "source_file"):
        if name in frame.columns:
            raise NeonDataError(f"{f.path.name}: column {name!r} is reserved for the platform")
    if "release" in frame.columns:
        _check_release_column(frame["release"], release, f.path.name)
        frame = frame.drop("release")
    if NEON_SITE_COLUMN in frame.columns:
        site = _neon_site_column(frame, f, lab)
    elif lab:
        site = pl.lit(None, dtype=pl.String)
    else:
        site = pl.lit(f.site) if f.site else _site_from_columns(frame, f.path.name)
    # One name per column: NEON's `siteID` becomes `site_id`, and a stacking client's `publicationDate`
    # becomes `publication_date` (a timestamp).
    return frame.with_columns(
        site.alias("site_id"),
        pl.lit(release).alias("release"),
        _publication_date(frame, f).alias("publication_date"),
        pl.lit(f.path.name).alias("source_file"),
    ).drop("publicationDate", NEON_SITE_COLUMN, strict=False)


NEON_SITE_COLUMN = "siteID"


def _neon_site_column(frame: pl.DataFrame, f: SourceFile, lab: bool) -> pl.Expr:
    """NEON's `siteID`, checked, as the value of `site_id`: in a site's file it must name that site (an empty
    cell takes it); elsewhere each value must be a NEON site code (a lab's table may leave it empty)."""
    values = frame[NEON_SITE_COLUMN].cast(pl.String)
    if f.site and not lab:
        wrong = values.is_not_null() & (values != f.site)
        expected = f"does not match the site of the file ({f.site})"
        values = values.fill_null(f.site)
    else:
        malformed = values.is_not_null() & ~values.str.contains(SITE_PATTERN.pattern)
        wrong = malformed if lab else values.is_null() | malformed
        expected = "does not name a NEON site"
    if wrong.any():
        row = int(wrong.arg_true()[0])
        raise NeonDataError(
            f"{f.path.name}: data row {row + 1}, field {NEON_SITE_COLUMN!r}: value "
            f"{frame[NEON_SITE_COLUMN][row]!r} {expected}"
        )
    return pl.lit(values)


def _check_release_column(column: pl.Series, release: str, file: str) -> None:
    """NEON's own `release` column must agree with the release being loaded."""
    wrong = column.is_not_null() & (column.cast(pl.String) != release)
    if wrong.any():
        row = int(wrong.arg_true()[0])
        raise NeonDataError(
            f"{file}: data row {row + 1}, field 'release': value {column[row]!r} "
            f"does not match the release being loaded ({release})"
        )


def _site_from_columns(frame: pl.DataFrame, file: str) -> pl.Expr:
    for column in SITE_COLUMNS:
        if column not in frame.columns:
            continue
        site = frame[column].cast(pl.String).str.split(".").list.first()
        bad = site.is_null() | ~site.str.contains(SITE_PATTERN.pattern)
        if bad.any():
            row = int(bad.arg_true()[0])
            raise NeonDataError(
                f"{file}: data row {row + 1}, field {column!r}: value {frame[column][row]!r} does not name a NEON site"
            )
        return pl.lit(site)
    raise NeonDataError(
        f"{file}: no column names the site (looked for {', '.join(SITE_COLUMNS)}) and the file name does not either"
    )


def _publication_date(frame: pl.DataFrame, f: SourceFile) -> pl.Expr:
    target = pl.Datetime("us", "UTC")
    if f.publication and PUBLICATION_PATTERN.fullmatch(f.publication):
        return pl.lit(f.publication).str.to_datetime("%Y%m%dT%H%M%SZ", time_zone="UTC").cast(target)
    if "publicationDate" in frame.columns:
        column = frame["publicationDate"]
        if column.dtype == pl.String:
            return pl.lit(column.str.to_datetime("%Y%m%dT%H%M%SZ", strict=False, time_zone="UTC")).cast(target)
        if isinstance(column.dtype, pl.Datetime):
            return pl.lit(column).cast(target)
    return pl.lit(None, dtype=target)


def files_fingerprint(paths: Iterable[Path], base: Path) -> str:
    """A cheap version of a set of local files: relative names, sizes and modification times.

    It changes whenever a file is added, removed or rewritten, without reading
    the files; the md5 data versions stay the authority once files are read.
    """
    digest = hashlib.sha256()
    for path in sorted(paths):
        stat = path.stat()
        digest.update(f"{path.relative_to(base)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


# -- NEON download packages, through the generic stacker's selection ---------------------------------------


@dataclass
class PackageStack:
    """A product's tables stacked from download packages, with the variables file that typed them."""

    tables: dict[str, StackedTable]
    variables: pl.DataFrame | None = None  # NEON's variables file as published (all text)
    variables_file: str | None = None
    readme: PackageFile | None = None


def stack_packages(
    files: list[PackageFile],
    product: ProductSpec,
    release: str,
    fallback_types: dict[str, dict[str, str]] | None = None,
) -> PackageStack:
    """Stack `product`'s tables from the files of its download packages (one release).

    The files to read are chosen as stackByTable chooses them (`stack_by_table.select_files`: every site-date
    file, the newest publication of a site-all or lab table, the newest variables file and readme); files
    of other products, of tables not declared, or of sites and months outside the product's selection are
    left out. Each file is read with the platform's NEON reader (types from the variables file, else
    `fallback_types`; malformed records kept aside) and gains the platform's columns; an instrumented file
    also gains its position, as stackByTable adds it.
    """
    validate_release(release)
    relevant = [
        f
        for f in files
        if f.product in (None, product.code)
        and (f.kind not in DATA_KINDS or (f.table in product.all_tables and _in_selection(product, f)))
    ]
    if not any(f.kind in DATA_KINDS for f in relevant):
        return PackageStack({})
    selection = select_files(relevant)
    chosen_variables = selection.documents.get("variables")
    variables = read_strings(chosen_variables) if chosen_variables else None
    types = package_types(variables, product.package) if variables is not None else (fallback_types or {})
    tables = {t: _stack_members(t, chosen, release, types.get(t)) for t, chosen in selection.tables.items()}
    return PackageStack(
        tables,
        variables,
        chosen_variables.name if chosen_variables else None,
        selection.documents.get("readme"),
    )


def _in_selection(product: ProductSpec, f: PackageFile) -> bool:
    return f.kind == "lab" or product.wants(f.site, f.month)


def package_types(variables: pl.DataFrame, package: str = "basic") -> dict[str, dict[str, str]]:
    """{table: {field: NEON dataType}} from a variables file (the basic package's fields for basic)."""
    if package == "basic" and "downloadPkg" in variables.columns:
        variables = variables.filter(pl.col("downloadPkg") != "expanded")
    out: dict[str, dict[str, str]] = {}
    for table, name, dtype in variables.select("table", "fieldName", "dataType").iter_rows():
        if table and name and dtype:
            out.setdefault(table, {})[name] = dtype
    return out


def _stack_members(table: str, files: list[PackageFile], release: str, types: dict[str, str] | None) -> StackedTable:
    frames, sources = [], []
    malformed: list[MalformedRecord] = []
    ordered = sorted(files, key=lambda f: (f.site or "", f.month or "", f.name))
    reads = _read_files([CsvInput(f.name, f.read, f.path) for f in ordered], types, malformed)
    for f, (frame, md5) in zip(ordered, reads, strict=True):
        if f.position and "siteID" not in frame.columns:
            frame = frame.with_columns(
                pl.lit(f.domain).alias("domainID"),
                pl.lit(f.site).alias("siteID"),
                pl.lit(f.position[0]).alias("horizontalPosition"),
                pl.lit(f.position[1]).alias("verticalPosition"),
            )
        sources.append(SourceRecord(f.name, md5, frame.height, tuple(frame.columns)))
        source = SourceFile(Path(f.name), table, f.site, f.month, f.publication, f.kind == "site-all")
        frames.append(with_added_columns(frame, source, release, lab=f.kind == "lab"))
    return StackedTable(table, pl.concat(frames, how="diagonal_relaxed"), sources, malformed)


def merge_stacked(a: StackedTable, b: StackedTable) -> StackedTable:
    """One table from two stackings of it (stacked CSVs and packages in the same folder)."""
    return StackedTable(
        a.name, pl.concat([a.frame, b.frame], how="diagonal_relaxed"), a.sources + b.sources, a.malformed + b.malformed
    )
