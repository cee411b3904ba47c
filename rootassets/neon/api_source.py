"""The NEON API (or a NEON-compatible mirror) as a data source.

Discovery costs one `/products` and one `/data/query` call per product and
release (not one per site-month: NEON rate-limits); files are downloaded
once, verified, and stacked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rootassets.neon.client import NeonClient, file_entries
from rootassets.neon.errors import NeonApiError, NeonContext
from rootassets.neon.identifiers import (
    RELEASE_PATTERN,
    parse_file_name,
    release_sort_key,
    validate_product,
    validate_release,
    validate_site,
)
from rootassets.neon.products import ProductSpec
from rootassets.neon.source import ProductLoad
from rootassets.neon.stacking import PackageFiles, SourceFile, stack_table


class ApiSource:
    """NEON data fetched through `client` into `download_dir`."""

    def fingerprint(self, product: ProductSpec, release: str) -> str | None:
        """None: whether the API's files changed is known only by asking it (the raw assets do)."""
        return None

    def __init__(self, client: NeonClient, download_dir: Path | str) -> None:
        self.client = client
        self.download_dir = Path(download_dir)

    def describe(self) -> str:
        return f"NEON API at {self.client.base_url}"

    def releases(self) -> list[str]:
        tags = {str(r.get("release")) for r in self.client.releases()}
        return sorted((t for t in tags if RELEASE_PATTERN.fullmatch(t)), key=release_sort_key)

    def release_info(self) -> dict[str, str]:
        """Releases listed by `/products/{dpID}` for every product the platform uses, with the
        newest generation date among them (from `/releases` where the product list lacks one)."""
        from rootassets.neon.products import PRODUCTS

        dates = {str(r.get("release")): str(r.get("generationDate") or "") for r in self.client.releases()}
        per_product: list[dict[str, str]] = []
        for code in PRODUCTS:
            info = self.client.product(code)
            per_product.append({
                str(r.get("release")): str(r.get("generationDate") or dates.get(str(r.get("release")), ""))
                for r in info.get("releases") or [] if isinstance(r, dict)
            })
        common = set.intersection(*(set(p) for p in per_product)) if per_product else set()
        tags = sorted((t for t in common if RELEASE_PATTERN.fullmatch(t)), key=release_sort_key)
        return {t: max(p[t] for p in per_product) for t in tags}

    def product_doi(self, product: str, release: str) -> str | None:
        """The product's DOI in `release` as `/releases` announces it, if it does."""
        for entry in self.client.releases():
            if entry.get("release") != release:
                continue
            for dp in entry.get("dataProducts") or []:
                if isinstance(dp, dict) and dp.get("productCode") == product and dp.get("productDoi"):
                    return str(dp["productDoi"]).removeprefix("https://doi.org/")
        return None

    def site_months(self, product: str, release: str) -> dict[str, list[str]]:
        """{site: months} with data of `product` in `release`, from `/products/{dpID}`."""
        info = self.client.product(validate_product(product))
        available: dict[str, list[str]] = {}
        for site in info.get("siteCodes") or []:
            code = site.get("siteCode") if isinstance(site, dict) else None
            for entry in site.get("availableReleases") or [] if code else []:
                if isinstance(entry, dict) and entry.get("release") == release:
                    available[validate_site(code)] = sorted(entry.get("availableMonths") or [])
        return available

    def load_product(self, product: ProductSpec, release: str) -> ProductLoad:
        validate_release(release)
        context = NeonContext(product=product.code, release=release)
        site_months = self.site_months(product.code, release)
        if not site_months:
            raise NeonApiError(f"{context.describe()}: the API lists no site with data in this release")
        months = sorted(m for ms in site_months.values() for m in ms)
        packages = self.client.query_files(
            product.code, release, sorted(site_months), months[0], months[-1]
        )
        files, variables = self._download(product, release, packages)
        tables = {
            table: stack_table(table, files, release, variables.get(table))
            for table in product.all_tables
            if any(f.table == table for f in files)
        }
        notes = [f"{t}: not published in this release" for t in product.all_tables if t not in tables]
        return ProductLoad(
            product=product,
            release=release,
            tables=tables,
            doi=self.product_doi(product.code, release),
            origin=self.describe(),
            notes=notes,
        )

    def _download(
        self, product: ProductSpec, release: str, packages: list[dict[str, Any]]
    ) -> tuple[list[SourceFile], dict[str, dict[str, str]]]:
        gathered = PackageFiles()
        folder = self.download_dir / release / product.code
        for package in packages:
            for entry in file_entries(package):
                name = parse_file_name(entry.name)
                if name is None or name.product != product.code:
                    continue
                if not (name.is_variables or name.table in product.all_tables):
                    continue
                context = NeonContext(
                    product=product.code, release=release, site=name.site, month=name.month or entry.month, file=entry.name
                )
                gathered.add(self.client.download(entry, folder / name.site, context), name)
        return gathered.files, gathered.variables
