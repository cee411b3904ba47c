"""Local snapshots: stacked CSVs per table, or NEON's own download packages.

Layout (as ../shared/neon-snapshot):

    DIR/RELEASE-2021/DP1.10066.001/mpr_perrootsample.csv            stacked table
    DIR/RELEASE-2021/DP1.10066.001/variables_10066.csv, readme_10066.txt   neonUtilities' stacked documents
    DIR/RELEASE-2021/DP1.10066.001/NEON.D01.BART.DP1.10066.001.2013-08.basic.<ts>.RELEASE-2021[.zip]
    DIR/site-attributes/neon_field_site_metadata_*.csv, neon_site_land_cover.csv

A release folder is named by its tag, optionally followed by a label
(`RELEASE-2022-seven-sites` holds RELEASE-2022). Several roots can be read as
one source (`ROOTASSETS_SNAPSHOT=DIR1:DIR2`); a release found in two roots is
refused rather than silently merged.
"""

from __future__ import annotations

import csv
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from rootassets.neon.csvfiles import read_variables
from rootassets.neon.documents import ProductDocuments, issue_log_from_readme, merge_variables, read_variables_table
from rootassets.neon.errors import NeonDataError
from rootassets.neon.identifiers import (
    parse_file_name,
    release_sort_key,
    validate_release,
)
from rootassets.neon.products import PRODUCTS, ProductSpec
from rootassets.neon.source import ProductLoad
from rootassets.neon.stack_by_table import PackageFile, package_files
from rootassets.neon.stacking import (
    SourceFile,
    StackedTable,
    files_fingerprint,
    merge_stacked,
    stack_packages,
    stack_table,
)

RELEASE_FOLDER = re.compile(r"^(?P<tag>RELEASE-20[0-9]{2}|PROVISIONAL)(?:-[A-Za-z0-9][A-Za-z0-9_-]*)?$")
_DOCUMENT = re.compile(r"^(?P<kind>variables|readme|validation|categoricalCodes)_(?P<number>[0-9]{5})\.(?:csv|txt)$")


def split_roots(value: str | Path) -> list[Path]:
    """`DIR1:DIR2` (os.pathsep) as a list of folders."""
    return [Path(p).expanduser() for p in str(value).split(os.pathsep) if p]


class SnapshotSource:
    """A NEON source read from local folders; no network."""

    def __init__(self, root: Path | str | list[Path], work_dir: Path | str | None = None) -> None:
        self.roots = list(root) if isinstance(root, list) else split_roots(root)
        for folder in self.roots:
            if not folder.is_dir():
                raise NeonDataError(f"snapshot folder {folder} does not exist")
        self.root = self.roots[0]
        self._work_dir = Path(work_dir) if work_dir else None
        self._folders = self._release_folders()

    def _release_folders(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for root in self.roots:
            for path in sorted(root.iterdir()):
                match = RELEASE_FOLDER.fullmatch(path.name) if path.is_dir() else None
                if match is None:
                    continue
                tag = match.group("tag")
                if tag in found:
                    raise NeonDataError(f"release {tag} is in two snapshot folders, {found[tag]} and {path}; keep one")
                found[tag] = path
        return found

    def release_folder(self, release: str) -> Path | None:
        return self._folders.get(validate_release(release))

    def describe(self) -> str:
        return "local snapshot " + os.pathsep.join(str(r.resolve()) for r in self.roots)

    def releases(self) -> list[str]:
        return sorted(self._folders, key=release_sort_key)

    def release_info(self) -> dict[str, str]:
        """Each release folder holding every product, with its newest file time as the generation date."""
        info: dict[str, str] = {}
        for tag, base in self._folders.items():
            folders = [base / code for code in PRODUCTS]
            if not all(f.is_dir() for f in folders):
                continue
            newest = max((p.stat().st_mtime for f in folders for p in f.rglob("*") if p.is_file()), default=0.0)
            info[tag] = datetime.fromtimestamp(newest, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return dict(sorted(info.items(), key=lambda kv: release_sort_key(kv[0])))

    def product_folder(self, product: ProductSpec | str, release: str) -> Path | None:
        base = self.release_folder(release)
        code = product if isinstance(product, str) else product.code
        folder = base / code if base is not None else None
        return folder if folder is not None and folder.is_dir() else None

    def fingerprint(self, product: ProductSpec, release: str) -> str | None:
        """A cheap version of the product's files for `release` (see `files_fingerprint`)."""
        folder = self.product_folder(product, release)
        if folder is None:
            return None
        return files_fingerprint((p for p in folder.rglob("*") if p.is_file()), folder.parent.parent)

    def product_doi(self, product: str, release: str) -> str | None:
        """A DOI from the release folder's `dois.csv` (columns productCode, release, doi), if it has one."""
        base = self.release_folder(release)
        path = base / "dois.csv" if base is not None else None
        if path is None or not path.is_file():
            return None
        with path.open(newline="", encoding="utf-8-sig") as fh:
            for row in csv.DictReader(fh):
                if row.get("productCode") == product and row.get("release") in (release, None, ""):
                    return (row.get("doi") or "").removeprefix("https://doi.org/") or None
        return None

    def documents(self, product: ProductSpec, release: str) -> tuple[ProductDocuments, str | None]:
        """The variables table, readme and issue log the snapshot holds for `product` in `release`, and
        its DOI (from `dois.csv`, when the folder has one)."""
        return self._documents(product, release), self.product_doi(product.code, release)

    def _documents(self, product: ProductSpec, release: str) -> ProductDocuments:
        folder = self.product_folder(product, release)
        docs = ProductDocuments()
        if folder is None:
            return docs
        variables = []
        for path in sorted(folder.iterdir()):
            match = _DOCUMENT.fullmatch(path.name)
            name = parse_file_name(path.name)
            if (match and match.group("kind") == "variables") or (name is not None and name.is_variables):
                variables.append(read_variables_table(path))
                docs.variables_file = docs.variables_file or path.name
            elif match and match.group("kind") == "readme":
                docs.readme, docs.readme_file = path.read_text(encoding="utf-8", errors="replace"), path.name
        docs.variables = merge_variables(variables)
        if docs.readme:
            docs.change_logs = issue_log_from_readme(docs.readme)
            docs.change_logs_origin = "readme"
        return docs

    def load_product(self, product: ProductSpec, release: str) -> ProductLoad:
        folder = self.product_folder(product, release)
        if folder is None:
            return ProductLoad.unpublished(
                product,
                release,
                self.describe(),
                f"this snapshot has no {release} folder for this product",
            )
        stacked, types = _stacked_files(folder, product)
        tables = {
            table: _declared_sites(stack_table(table, stacked, release, types.get(table)), product)
            for table in product.all_tables
            if any(f.table == table for f in stacked)
        }
        packaged = stack_packages(snapshot_package_files(folder), product, release, fallback_types=types).tables
        for table, from_packages in packaged.items():
            tables[table] = merge_stacked(tables[table], from_packages) if table in tables else from_packages
        notes = [f"{table}: not in this snapshot" for table in product.all_tables if table not in tables]
        return ProductLoad(
            product=product,
            release=release,
            tables=tables,
            origin=self.describe(),
            notes=notes,
            doi=self.product_doi(product.code, release),
            documents=self._documents(product, release),
        )


def _declared_sites(stacked: StackedTable, product: ProductSpec) -> StackedTable:
    """A stacked table's rows of the product's declared sites (all rows when it declares none)."""
    if not product.sites:
        return stacked
    stacked.frame = stacked.frame.filter(pl.col("site_id").is_in(product.sites))
    return stacked


def _stacked_files(folder: Path, product: ProductSpec) -> tuple[list[SourceFile], dict[str, dict[str, str]]]:
    """The product's stacked table files (`<table>.csv`) in `folder`, and the types of its variables files."""
    files = [
        SourceFile(path=entry, table=entry.stem)
        for entry in sorted(folder.iterdir())
        if entry.is_file() and entry.suffix == ".csv" and entry.stem in product.all_tables
    ]
    types: dict[str, dict[str, str]] = {}
    for entry in sorted(folder.iterdir()):
        document = _DOCUMENT.fullmatch(entry.name)
        if document and document.group("kind") == "variables" and entry.is_file():
            for table, fields in read_variables(entry).items():
                types.setdefault(table, {}).update(fields)
    return files, types


def snapshot_package_files(folder: Path) -> list[PackageFile]:
    """Every file of the download packages under `folder` (folders, zips, a portal zip), classified."""
    entries = [e for e in sorted(folder.iterdir()) if e.is_dir() or e.suffix == ".zip"]
    return [f for entry in entries for f in package_files(entry)]
