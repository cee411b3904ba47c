"""Stack NEON's per-site (and per-month) files into one table per NEON table.

Like neonUtilities' stackByTable: site-all tables keep only the newest
publication per site, every row gains `site_id`, `release`,
`publication_date` and `source_file`, and columns are typed from the
package's variables file when there is one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from rootassets.neon.csvfiles import MalformedRecord, read_neon_csv, read_variables
from rootassets.neon.errors import NeonDataError
from rootassets.neon.identifiers import PUBLICATION_PATTERN, SITE_PATTERN, NeonFileName, validate_release
from rootassets.neon.products import SITE_COLUMNS

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


class PackageFiles:
    """The data files and merged variables types gathered from NEON download packages."""

    def __init__(self) -> None:
        self.files: list[SourceFile] = []
        self.variables: dict[str, dict[str, str]] = {}
        self.variables_files: list[Path] = []

    def add_variables(self, path: Path) -> None:
        """Take a variables file's types (several files merge)."""
        for table, types in read_variables(path).items():
            self.variables.setdefault(table, {}).update(types)
        self.variables_files.append(path)

    def add(self, path: Path, name: NeonFileName) -> None:
        """Take a variables file's types, or a data file to stack."""
        if name.is_variables:
            self.add_variables(path)
            return
        self.files.append(
            SourceFile(
                path=path,
                table=name.table,
                site=name.site,
                month=name.month,
                publication=name.publication,
                site_all=name.is_site_all,
            )
        )


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


def newest_site_all(files: Iterable[SourceFile]) -> list[SourceFile]:
    """Keep every monthly file, and for site-all files only the newest per (table, site)."""
    kept: list[SourceFile] = []
    newest: dict[tuple[str, str | None], SourceFile] = {}
    for f in files:
        if not f.site_all:
            kept.append(f)
            continue
        key = (f.table, f.site)
        current = newest.get(key)
        if current is None or (f.publication or "") > (current.publication or ""):
            newest[key] = f
    return kept + sorted(newest.values(), key=lambda f: (f.table, f.site or ""))


def stack_table(
    table: str,
    files: Iterable[SourceFile],
    release: str,
    variables: dict[str, str] | None = None,
) -> StackedTable:
    """Read and stack every file of `table` into one frame with the added columns."""
    validate_release(release)
    chosen = sorted(
        (f for f in newest_site_all(files) if f.table == table),
        key=lambda f: (f.site or "", f.month or "", f.path.name),
    )
    frames: list[pl.DataFrame] = []
    sources: list[SourceRecord] = []
    malformed: list[MalformedRecord] = []
    for f in chosen:
        frame = read_neon_csv(f.path, variables, malformed)
        sources.append(SourceRecord(f.path.name, file_md5(f.path), frame.height, tuple(frame.columns)))
        frames.append(_with_added_columns(frame, f, release))
    if not frames:
        return StackedTable(name=table, frame=empty_table(), sources=[])
    stacked = pl.concat(frames, how="diagonal_relaxed")
    return StackedTable(name=table, frame=stacked, sources=sources, malformed=malformed)


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


def _with_added_columns(frame: pl.DataFrame, f: SourceFile, release: str) -> pl.DataFrame:
    for name in ("site_id", "publication_date", "source_file"):
        if name in frame.columns:
            raise NeonDataError(f"{f.path.name}: column {name!r} is reserved for the platform")
    if "release" in frame.columns:
        _check_release_column(frame["release"], release, f.path.name)
        frame = frame.drop("release")
    site = pl.lit(f.site) if f.site else _site_from_columns(frame, f.path.name)
    # A stacking client's `publicationDate` becomes `publication_date` (a timestamp): one name per column.
    return frame.with_columns(
        site.alias("site_id"),
        pl.lit(release).alias("release"),
        _publication_date(frame, f).alias("publication_date"),
        pl.lit(f.path.name).alias("source_file"),
    ).drop("publicationDate", strict=False)


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
