"""What the mirror serves: snapshot folders split back into the files NEON publishes.

A product folder that holds NEON download packages (folders, zips, or a data-portal zip of them) is served
as it is, each package's files byte for byte under the package's site and month: any product can be
served that way. A folder of stacked tables is split back into per-site files:

Each stacked table becomes one file per site and publication, named and
written as NEON writes them (empty fields for missing values, no `release` or
`publicationDate` column: a stacking client adds those), with a variables,
readme and (where the snapshot has one) validation file per package. A
product's `changeLogs` come from the newest readme's ISSUE LOG; its DOI per
release from the release folder's `dois.csv`, else a DOI under the DataCite
test prefix 10.5072 that says it was minted by the mirror.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import google_crc32c
import polars as pl

from rootassets.neon.catalog import readme_name
from rootassets.neon.documents import issue_log_from_readme
from rootassets.neon.identifiers import (
    PRODUCT_PATTERN,
    TABLE_PATTERN,
    NeonFileName,
    parse_package_name,
    release_sort_key,
)
from rootassets.neon.products import PRODUCTS, ProductSpec
from rootassets.neon.snapshot import SnapshotSource, snapshot_package_files
from rootassets.neon.stack_by_table import PackageFile
from rootassets.neon.stacking import ADDED_COLUMNS, NEON_SITE_COLUMN, STACKING_COLUMNS

TEST_DOI_PREFIX = "10.5072"  # DataCite's prefix for test DOIs: never a real dataset
_DATE_COLUMNS = ("endDate", "collectDate", "setDate", "startDate")


@dataclass(frozen=True)
class MirrorFile:
    """One file as NEON's storage would hold it."""

    name: str
    product: str
    release: str
    site: str
    month: str
    body: bytes
    content_type: str = "text/csv"

    @property
    def md5(self) -> str:
        return hashlib.md5(self.body).hexdigest()

    @property
    def crc32c(self) -> str:
        return google_crc32c.Checksum(self.body).hexdigest().decode()


@dataclass
class ProductRelease:
    """One product in one release: its DOI and the months each site has."""

    doi: str
    months: dict[str, set[str]] = field(default_factory=dict)


class MirrorCatalogue:
    """Everything the mirror serves, built once from snapshot folders (`DIR` or `DIR1:DIR2`)."""

    def __init__(self, snapshot: Path | str | list[Path]) -> None:
        source = SnapshotSource(snapshot)
        self._roots = source.roots
        self.files: dict[tuple[str, str], MirrorFile] = {}  # (release, file name) -> file
        self.release_dates: dict[str, str] = {}
        self.products: dict[str, dict[str, ProductRelease]] = {}  # product -> release -> ...
        self.change_logs: dict[str, list[dict[str, Any]]] = {}
        self.domains: dict[str, str] = {}
        self.names: dict[str, str] = {}  # product -> name (the platform's, else its readme's `Name:`)
        self._log_release: dict[str, str] = {}
        self.members: dict[tuple[str, str, str, str], set[str]] = {}  # (product, release, site, month) -> names
        generated = source.release_info()
        for release in source.releases():
            release_folder = source.release_folder(release)
            for product in _products_in(release_folder):
                folder = source.product_folder(product, release)
                if folder is None:
                    continue
                self.release_dates.setdefault(release, generated.get(release) or _folder_date(folder))
                packages = [f for f in snapshot_package_files(folder) if f.release in (None, release)]
                if packages:
                    self._add_packages(product, release, packages)
                else:
                    self._add_product(source, product, release)

    def _add_packages(self, product: ProductSpec, release: str, files: list[PackageFile]) -> None:
        """A folder of NEON download packages (or a portal zip) is served as it is: each package's files
        under its site and month, byte for byte."""
        doi = self._doi(product, release)
        entry = self.products.setdefault(product.code, {}).setdefault(release, ProductRelease(doi=doi))
        readmes = []
        for f in files:
            package = parse_package_name(PurePosixPath(f.origin).parent.name)
            if package is None or package.product != product.code:
                continue  # a file outside any package (a stray file, another product's package)
            body = f.read()
            kind = "text/plain" if f.name.endswith(".txt") else "application/xml" if f.name.endswith(".xml") else None
            self._put(MirrorFile(f.name, product.code, release, package.site, package.month, body, kind or "text/csv"))
            entry.months.setdefault(package.site, set()).add(package.month)
            self.domains.setdefault(package.site, package.domain)
            if f.kind == "readme":
                readmes.append((f.publication, body.decode("utf-8", "replace")))
        if readmes:
            text = max(readmes)[1]
            self.names.setdefault(product.code, readme_name(text) or product.code)
            self._set_change_logs(product.code, release, issue_log_from_readme(text))
        self.change_logs.setdefault(product.code, [])

    def _doi(self, product: ProductSpec, release: str) -> str:
        found = SnapshotSource(self._roots).product_doi(product.code, release)
        return found or f"{TEST_DOI_PREFIX}/neon-mirror.{product.code}.{release}"

    def _set_change_logs(self, code: str, release: str, logs: list[dict[str, Any]]) -> None:
        seen = self._log_release.get(code)
        if logs and (seen is None or release_sort_key(release) > release_sort_key(seen)):
            self.change_logs[code] = [{"id": i + 1, **e} for i, e in enumerate(logs)]
            self._log_release[code] = release

    # -- building --------------------------------------------------------------

    def _add_product(self, source: SnapshotSource, product: ProductSpec, release: str) -> None:
        load = source.load_product(product, release)
        frames = {name: t.frame for name, t in load.tables.items() if t.frame.height}
        published = {name: next((s.columns for s in t.sources if s.columns), ()) for name, t in load.tables.items()}
        for frame in frames.values():
            if "domainID" in frame.columns:
                for site, domain in frame.select("site_id", "domainID").drop_nulls().unique().iter_rows():
                    self.domains.setdefault(site, domain)
        docs = load.documents
        named = PRODUCTS[product.code].name if product.code in PRODUCTS else readme_name(docs.readme or "")
        self.names.setdefault(product.code, named or product.code)
        self._set_change_logs(product.code, release, docs.change_logs)
        self.change_logs.setdefault(product.code, [])
        doi = load.doi or f"{TEST_DOI_PREFIX}/neon-mirror.{product.code}.{release}"
        entry = self.products.setdefault(product.code, {}).setdefault(release, ProductRelease(doi=doi))
        site_month = _site_months(frames)
        variables = _variables_csv(docs.variables, frames, published)
        newest: dict[tuple[str, str], str] = {}
        for table, frame in frames.items():
            for (site, publication), part in frame.group_by(["site_id", "publication_date"], maintain_order=True):
                month = site_month[site]
                stamp = publication.strftime("%Y%m%dT%H%M%SZ") if publication else "20000101T000000Z"
                name = self._name(site, product, table, month, stamp)
                published_part = _as_published(part, published.get(table, ()))
                self._put(MirrorFile(name, product.code, release, site, month, _neon_csv(published_part)))
                entry.months.setdefault(site, set()).add(month)
                newest[(site, month)] = max(stamp, newest.get((site, month), ""))
        for (site, month), stamp in newest.items():
            self._put(
                MirrorFile(
                    self._name(site, product, "variables", None, stamp, package=False),
                    product.code,
                    release,
                    site,
                    month,
                    variables,
                )
            )
            readme = docs.readme or _generated_readme(product, release)
            self._put(
                MirrorFile(
                    self._name(site, product, "readme", None, stamp, package=False, ext="txt"),
                    product.code,
                    release,
                    site,
                    month,
                    readme.encode(),
                    "text/plain",
                )
            )

    def _name(
        self,
        site: str,
        product: ProductSpec,
        table: str,
        month: str | None,
        stamp: str,
        package: bool = True,
        ext: str = "csv",
    ) -> str:
        name = NeonFileName(
            domain=self.domains.get(site, "D00"),
            site=site,
            product=product.code,
            table=table,
            month=month,
            package="basic" if package else None,
            publication=stamp,
        ).render()
        return name if ext == "csv" else name.removesuffix(".csv") + f".{ext}"

    def _put(self, f: MirrorFile) -> None:
        """File `f` in its package; a file of the same name in several packages (a lab table, say) is one
        stored file listed in each."""
        self.files.setdefault((f.release, f.name), f)
        self.members.setdefault((f.product, f.release, f.site, f.month), set()).add(f.name)

    # -- questions the server asks ---------------------------------------------

    def name_of(self, product: str) -> str:
        return self.names.get(product, product)

    def releases_of(self, product: str) -> list[str]:
        return sorted(self.products.get(product, {}), key=release_sort_key)

    def sites_of(self, product: str) -> dict[str, dict[str, set[str]]]:
        """site -> release -> months."""
        out: dict[str, dict[str, set[str]]] = {}
        for release, entry in self.products.get(product, {}).items():
            for site, months in entry.months.items():
                out.setdefault(site, {})[release] = months
        return out

    def latest_release_with(self, product: str, site: str, month: str, provisional: bool = False) -> str | None:
        """The newest release holding `product` at `site` in `month` (PROVISIONAL only when asked)."""
        found = [
            r
            for r, e in self.products.get(product, {}).items()
            if month in e.months.get(site, set()) and (provisional or r != "PROVISIONAL")
        ]
        return max(found, key=release_sort_key) if found else None

    def package_files(self, product: str, release: str, site: str, month: str) -> list[MirrorFile]:
        names = self.members.get((product, release, site, month), set())
        return [self.files[(release, name)] for name in sorted(names)]


def _products_in(release_folder: Path | None) -> list[ProductSpec]:
    """Every product folder of a release: the declared products, and any other `DPn.nnnnn.nnn` folder
    with the stacked tables it holds (one CSV per table), so the mirror serves whatever it is given."""
    if release_folder is None:
        return []
    found = []
    for folder in sorted(p for p in release_folder.iterdir() if p.is_dir() and PRODUCT_PATTERN.fullmatch(p.name)):
        if folder.name in PRODUCTS:
            found.append(PRODUCTS[folder.name])
            continue
        packaged = {f.table for f in snapshot_package_files(folder) if f.kind in ("site-date", "site-all", "lab")}
        if packaged:
            found.append(ProductSpec(code=folder.name, name=folder.name, tables=tuple(sorted(packaged))))
            continue
        tables = tuple(
            sorted(
                p.stem
                for p in folder.glob("*.csv")
                if TABLE_PATTERN.fullmatch(p.stem)
                and not p.stem.startswith(("variables_", "validation_", "categoricalCodes_"))
            )
        )
        if tables:
            found.append(ProductSpec(code=folder.name, name=folder.name, tables=tables))
    return found


def _folder_date(folder: Path) -> str:
    from datetime import UTC, datetime

    newest = max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()), default=0.0)
    return datetime.fromtimestamp(newest, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _as_published(part: pl.DataFrame, file_columns: tuple[str, ...] = ()) -> pl.DataFrame:
    """A stacked table's rows as NEON's per-site file holds them: without what a stacker adds, and with NEON's
    `siteID` back under its own name and in its place when the file had one (the stacker keeps it as
    `site_id`)."""
    if NEON_SITE_COLUMN in file_columns and NEON_SITE_COLUMN not in part.columns and "site_id" in part.columns:
        part = part.with_columns(pl.col("site_id").alias(NEON_SITE_COLUMN))
        part = part.select(
            [c for c in file_columns if c in part.columns] + [c for c in part.columns if c not in file_columns]
        )
    return part.drop([c for c in (*ADDED_COLUMNS, *STACKING_COLUMNS) if c in part.columns])


def _site_months(frames: dict[str, pl.DataFrame]) -> dict[str, str]:
    """One package month per site: the earliest sampling month in any table."""
    months: dict[str, str] = {}
    for frame in frames.values():
        column = next((c for c in _DATE_COLUMNS if c in frame.columns), None)
        if column is None:
            continue
        per_site = frame.group_by("site_id").agg(pl.col(column).min().cast(pl.String).str.slice(0, 7))
        for site, month in per_site.iter_rows():
            if month and (site not in months or month < months[site]):
                months[site] = month
    for frame in frames.values():
        for site in frame["site_id"].unique().to_list():
            months.setdefault(site, "2000-01")
    return months


def _neon_csv(frame: pl.DataFrame) -> bytes:
    """CSV as NEON's portal writes it: quoted text, empty fields for missing values, ISO dates in UTC."""
    buffer = io.BytesIO()
    frame.write_csv(
        buffer, null_value="", quote_style="non_numeric", date_format="%Y-%m-%d", datetime_format="%Y-%m-%dT%H:%M:%SZ"
    )
    return buffer.getvalue()


def _neon_type(dtype: pl.DataType) -> str:
    if dtype.is_float():
        return "real"
    if dtype.is_integer():
        return "integer"
    if dtype.is_temporal():
        return "dateTime"
    return "string"


def _variables_csv(
    published: pl.DataFrame | None, frames: dict[str, pl.DataFrame], file_columns: dict[str, tuple[str, ...]]
) -> bytes:
    """The snapshot's own variables table when it has one; otherwise types only (no descriptions or
    units are invented)."""
    if published is not None:
        return _neon_csv(published)
    rows = [
        {
            "table": table,
            "fieldName": name,
            "description": None,
            "dataType": _neon_type(dtype),
            "units": None,
            "downloadPkg": "basic",
            "pubFormat": None,
        }
        for table, frame in frames.items()
        for name, dtype in _as_published(frame, file_columns.get(table, ())).schema.items()
    ]
    return _neon_csv(pl.DataFrame(rows, schema={k: pl.String for k in rows[0]}))


def _generated_readme(product: ProductSpec, release: str) -> str:
    return (
        f"This readme was generated by the rootassets NEON mirror: the snapshot it serves held no readme for "
        f"{product.name} ({product.code}), {release}.\n"
    )
