"""NEON field-site metadata and the four-way land cover, as raw tables.

These are site tables, not release-scoped NEON products; each load is tagged
with the release it accompanies so that every table keeps the `release`
contract.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from rootassets.neon.csvfiles import read_neon_csv
from rootassets.neon.errors import NeonDataError
from rootassets.neon.identifiers import validate_release
from rootassets.neon.stacking import SourceRecord, StackedTable, file_md5, files_fingerprint

SITE_ATTRIBUTE_TABLES = {
    "field_site_metadata": ("neon_field_site_metadata_*.csv", "field_site_id"),
    "site_land_cover": ("neon_site_land_cover.csv", "siteID"),
}


def find_site_attribute_files(folder: Path) -> dict[str, Path]:
    """The newest file of each site-attribute table in `folder`."""
    if not folder.is_dir():
        raise NeonDataError(
            f"site-attribute folder {folder} does not exist (set ROOTASSETS_SITE_ATTRIBUTES or ROOTASSETS_SNAPSHOT)"
        )
    found: dict[str, Path] = {}
    for table, (pattern, _) in SITE_ATTRIBUTE_TABLES.items():
        matches = sorted(folder.glob(pattern))
        if not matches:
            raise NeonDataError(f"{folder}: no file matching {pattern} for table {table}")
        found[table] = matches[-1]
    return found


def load_site_attributes(folder: Path, release: str) -> dict[str, StackedTable]:
    """Read the site-attribute tables, adding site_id, release and source_file."""
    validate_release(release)
    tables: dict[str, StackedTable] = {}
    for table, path in find_site_attribute_files(folder).items():
        site_column = SITE_ATTRIBUTE_TABLES[table][1]
        frame = read_neon_csv(path)
        columns = tuple(frame.columns)
        if site_column not in frame.columns:
            raise NeonDataError(f"{path.name}: required column {site_column!r} is missing")
        frame = frame.with_columns(
            pl.col(site_column).cast(pl.String).alias("site_id"),
            pl.lit(release).alias("release"),
            pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("publication_date"),
            pl.lit(path.name).alias("source_file"),
        ).drop(site_column)  # one name per column: the file's site column is `site_id`
        tables[table] = StackedTable(
            name=table, frame=frame, sources=[SourceRecord(path.name, file_md5(path), frame.height, columns)]
        )
    return tables


def site_attributes_fingerprint(folder: Path) -> str:
    """A cheap version of the site-attribute files (see `files_fingerprint`)."""
    return files_fingerprint(find_site_attribute_files(folder).values(), folder)
