"""A NEON download on disk as the source of one declared product.

Three shapes, as users have them: a data-portal zip (`NEON_<name>.zip`, per-site-month folders or zips
inside), a folder of download packages (unzipped or zipped), or a folder of tables neonUtilities already
stacked (`<table>.csv` with its `release` column, `variables_<number>.csv`, `readme_<number>.txt`).

Packages are stacked as the snapshot's and the API's are (`stacking.stack_packages`): chosen by the
generic stacker's rules, read with the platform's NEON reader, every row given its `site_id` (none for a
lab table), `release`, `publication_date` and `source_file`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from rootassets.neon.csvfiles import read_variables
from rootassets.neon.documents import ProductDocuments, issue_log_from_readme
from rootassets.neon.errors import NeonDataError
from rootassets.neon.identifiers import release_sort_key, validate_release
from rootassets.neon.products import ProductSpec
from rootassets.neon.source import ProductLoad
from rootassets.neon.stack_by_table import (
    DATA_KINDS,
    PackageFile,
    formatted_readme,
    package_files,
    read_strings,
    select_files,
)
from rootassets.neon.stacking import SourceFile, StackedTable, files_fingerprint, stack_packages, stack_table


class DownloadSource:
    """One product's NEON download at `path` (see the module docstring); no network."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._files: list[PackageFile] | None = None

    def describe(self) -> str:
        return f"NEON download {self.path}"

    def _require(self) -> None:
        if not self.path.exists():
            raise NeonDataError(f"{self.path}: the declared download does not exist")

    def stacked_tables(self, product: ProductSpec) -> dict[str, Path]:
        """The product's tables as neonUtilities stacked them, when `path` is a folder of stacked tables."""
        if not self.path.is_dir():
            return {}
        return {t: self.path / f"{t}.csv" for t in product.all_tables if (self.path / f"{t}.csv").is_file()}

    def _packages(self, product: ProductSpec) -> list[PackageFile]:
        """The download's NEON files, found once per source (a portal zip is read once, not per question)."""
        self._require()
        if self._files is None:
            self._files = package_files(self.path)
        files = self._files
        other = sorted({f.product for f in files if f.product and f.product != product.code})
        if other:
            raise NeonDataError(f"{self.path}: holds packages of {', '.join(other)}, declared as {product.code}")
        return files

    def releases_of(self, product: ProductSpec) -> list[str]:
        """Every release the download holds (packages name theirs; stacked tables carry a `release` column)."""
        stacked = self.stacked_tables(product)
        if stacked:
            found: set[str] = set()
            for path in stacked.values():
                column = pl.scan_csv(path, infer_schema=False).collect_schema()
                if "release" in column:
                    found |= set(pl.scan_csv(path, infer_schema=False).select("release").unique().collect()["release"])
            return sorted((r for r in found if r), key=release_sort_key)
        return sorted({f.release for f in self._packages(product) if f.release}, key=release_sort_key)

    def fingerprint(self, product: ProductSpec, release: str) -> str | None:
        """A cheap version of the download (names, sizes, modification times) and the release asked for."""
        if not self.path.exists():
            return None
        paths = [p for p in self.path.rglob("*") if p.is_file()] if self.path.is_dir() else [self.path]
        digest = files_fingerprint(paths, self.path.parent)
        return hashlib.sha256(f"{digest}:{release}:{product}".encode()).hexdigest()[:24]

    # -- loading ---------------------------------------------------------------------------------------------

    def load_product(self, product: ProductSpec, release: str) -> ProductLoad:
        validate_release(release)
        self._require()
        held = self.releases_of(product)
        if release not in held:
            return ProductLoad.unpublished(
                product,
                release,
                self.describe(),
                f"the download holds {', '.join(held) or 'no release'}, not {release}",
            )
        stacked = self.stacked_tables(product)
        tables = self._load_stacked(product, release, stacked) if stacked else self._load_packages(product, release)
        notes = [f"{t}: not in this download" for t in product.all_tables if t not in tables]
        return ProductLoad(
            product=product,
            release=release,
            tables=tables,
            origin=self.describe(),
            notes=notes,
            documents=self._documents(product, release),
        )

    def _load_packages(self, product: ProductSpec, release: str) -> dict[str, StackedTable]:
        files = [f for f in self._packages(product) if f.release == release]
        return stack_packages(files, product, release).tables

    def _load_stacked(self, product: ProductSpec, release: str, stacked: dict[str, Path]) -> dict[str, StackedTable]:
        types: dict[str, dict[str, str]] = {}
        for path in sorted(self.path.glob("variables_*.csv")):
            types.update(read_variables(path))
        tables = {}
        for table, path in stacked.items():
            loaded = stack_table(table, [SourceFile(path=path, table=table)], release, types.get(table))
            if product.sites:
                loaded.frame = loaded.frame.filter(pl.col("site_id").is_in(product.sites))
            tables[table] = loaded
        return tables

    def documents(self, product: ProductSpec, release: str) -> tuple[ProductDocuments, str | None]:
        return self._documents(product, release), None

    def _documents(self, product: ProductSpec, release: str) -> ProductDocuments:
        docs = ProductDocuments()
        if not self.path.exists():
            return docs
        if self.stacked_tables(product):
            number = product.code.split(".")[1]
            variables, readme = self.path / f"variables_{number}.csv", self.path / f"readme_{number}.txt"
            if variables.is_file():
                docs.variables, docs.variables_file = pl.read_csv(variables, infer_schema=False), variables.name
            if readme.is_file():
                docs.readme, docs.readme_file = readme.read_text(encoding="utf-8", errors="replace"), readme.name
        else:
            files = [f for f in self._packages(product) if f.release == release]
            chosen = select_files(files).documents if any(f.kind in DATA_KINDS for f in files) else {}
            if "variables" in chosen:
                docs.variables, docs.variables_file = read_strings(chosen["variables"]), chosen["variables"].name
            if "readme" in chosen:
                text = chosen["readme"].read().decode("utf-8", "replace")
                docs.readme, docs.readme_file = formatted_readme(text), chosen["readme"].name
        if docs.readme:
            docs.change_logs, docs.change_logs_origin = issue_log_from_readme(docs.readme), "readme"
        return docs
