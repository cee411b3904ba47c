"""Local snapshots: stacked CSVs per table, or NEON's own download packages.

Layout (as ../shared/neon-snapshot):

    DIR/RELEASE-2021/DP1.10066.001/mpr_perrootsample.csv            stacked table
    DIR/RELEASE-2021/DP1.10066.001/NEON.D01.BART.DP1.10066.001.2013-08.basic.<ts>.RELEASE-2021[.zip]
    DIR/site-attributes/neon_field_site_metadata_*.csv, neon_site_land_cover.csv
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from rootassets.neon.errors import NeonDataError
from rootassets.neon.identifiers import (
    RELEASE_PATTERN,
    parse_file_name,
    parse_package_name,
    release_sort_key,
    validate_release,
)
from rootassets.neon.products import PRODUCTS, ProductSpec
from rootassets.neon.safezip import safe_extract
from rootassets.neon.source import ProductLoad
from rootassets.neon.stacking import PackageFiles, SourceFile, files_fingerprint, stack_table


class SnapshotSource:
    """A NEON source read from a local folder; no network."""

    def __init__(self, root: Path | str, work_dir: Path | str | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise NeonDataError(f"snapshot folder {self.root} does not exist")
        self._work_dir = Path(work_dir) if work_dir else None

    def describe(self) -> str:
        return f"local snapshot {self.root.resolve()}"

    def releases(self) -> list[str]:
        tags = [p.name for p in self.root.iterdir() if p.is_dir() and RELEASE_PATTERN.fullmatch(p.name)]
        return sorted(tags, key=release_sort_key)

    def release_info(self) -> dict[str, str]:
        """Each release folder holding every product, with its newest file time as the generation date."""
        info: dict[str, str] = {}
        for tag in self.releases():
            folders = [self.root / tag / code for code in PRODUCTS]
            if not all(f.is_dir() for f in folders):
                continue
            newest = max((p.stat().st_mtime for f in folders for p in f.rglob("*") if p.is_file()), default=0.0)
            info[tag] = datetime.fromtimestamp(newest, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return info

    def fingerprint(self, product: ProductSpec, release: str) -> str | None:
        """A cheap version of the product's files for `release` (see `files_fingerprint`)."""
        folder = self.root / validate_release(release) / product.code
        if not folder.is_dir():
            return None
        return files_fingerprint((p for p in folder.rglob("*") if p.is_file()), self.root)

    def load_product(self, product: ProductSpec, release: str) -> ProductLoad:
        folder = self.root / validate_release(release) / product.code
        if not folder.is_dir():
            raise NeonDataError(f"snapshot has no folder {folder} for product {product.code}, release {release}")
        with tempfile.TemporaryDirectory(dir=self._work_dir) as tmp:
            files, variables = _collect(folder, product, Path(tmp))
            tables = {
                table: stack_table(table, files, release, variables.get(table))
                for table in product.all_tables
                if any(f.table == table for f in files)
            }
        notes = [
            f"{table}: not in this snapshot" for table in product.all_tables if table not in tables
        ]
        return ProductLoad(
            product=product, release=release, tables=tables, origin=self.describe(), notes=notes
        )


def _collect(
    folder: Path, product: ProductSpec, scratch: Path
) -> tuple[list[SourceFile], dict[str, dict[str, str]]]:
    """Find stacked table files and package contents (folders or zips) under `folder`."""
    gathered = PackageFiles()
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix == ".csv" and entry.stem in product.all_tables:
            gathered.files.append(SourceFile(path=entry, table=entry.stem))
            continue
        package = parse_package_name(entry.name)
        if package is None or package.product != product.code:
            continue
        contents = entry if entry.is_dir() else None
        if entry.is_file() and entry.suffix == ".zip":
            contents = scratch / entry.stem
            safe_extract(entry, contents)
        if contents is None:
            continue
        for path in sorted(contents.rglob("*.csv")):
            name = parse_file_name(path.name)
            if name is not None and (name.is_variables or name.table in product.all_tables):
                gathered.add(path, name)
    return gathered.files, gathered.variables
