"""The NEON API (or a NEON-compatible mirror) as a data source.

Discovery costs one `/products` and one `/data/query` call per product and
release (not one per site-month: NEON rate-limits); files are downloaded
once, verified, kept in a cache by md5 (a file unchanged between releases is
fetched once), and stacked. NEON_TOKEN is required before the first data
request; an expired signed URL is asked for again once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from rootassets.neon.client import NeonClient, NeonFileEntry, cached_copy, file_entries
from rootassets.neon.documents import ProductDocuments, read_variables_table
from rootassets.neon.errors import NeonApiError, NeonContext, NeonRequestRefusedError, NeonUrlExpiredError
from rootassets.neon.identifiers import (
    MONTH_PATTERN,
    RELEASE_PATTERN,
    parse_file_name,
    release_sort_key,
    validate_product,
    validate_release,
    validate_site,
)
from rootassets.neon.products import ROOT_MEGAPIT, ProductSpec
from rootassets.neon.soil_water import SOIL_WATER_PRODUCT, SWC_TABLE
from rootassets.neon.source import ProductLoad
from rootassets.neon.stack_by_table import PackageFile, classify_name
from rootassets.neon.stacking import PackageStack, stack_packages
from rootassets.neon.tokens import require_token

LARGE_DOWNLOAD_BYTES = 500 * 1024 * 1024
PROGRESS_EVERY_S = 10.0  # a long download says how far it is this often
SOIL_WATER_TABLES = (SWC_TABLE, "sensor_positions")
SOIL_WATER_SPEC = ProductSpec(SOIL_WATER_PRODUCT, "Soil water and salinity", SOIL_WATER_TABLES)
log = logging.getLogger(__name__)


class ApiSource:
    """NEON data fetched through `client` into `download_dir` (files by release, and a cache by md5)."""

    def fingerprint(self, product: ProductSpec, release: str) -> str | None:
        """A version of the product in `release` from one `/products/{dpID}` request (no token, no download):
        the release's generation date and the site-months it holds. None when the API does not list the
        product in `release` (or does not know it)."""
        try:
            info = self.client.product(validate_product(product.code))
        except NeonRequestRefusedError:
            return None
        entry = next(
            (r for r in info.get("releases") or [] if isinstance(r, dict) and r.get("release") == release), None
        )
        if entry is None:
            return None
        months = self.site_months(product.code, release, info)
        text = json.dumps(
            {"release": release, "generationDate": entry.get("generationDate"), "months": months}, sort_keys=True
        )
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def __init__(
        self, client: NeonClient, download_dir: Path | str, report: Callable[[str], None] | None = None
    ) -> None:
        self.client = client
        self.download_dir = Path(download_dir)
        self.report = report or log.info

    @property
    def cache_dir(self) -> Path:
        return self.download_dir / "by-md5"

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
            per_product.append(
                {
                    str(r.get("release")): str(r.get("generationDate") or dates.get(str(r.get("release")), ""))
                    for r in info.get("releases") or []
                    if isinstance(r, dict)
                }
            )
        common = set.intersection(*(set(p) for p in per_product)) if per_product else set()
        tags = sorted((t for t in common if RELEASE_PATTERN.fullmatch(t)), key=release_sort_key)
        return {t: max(p[t] for p in per_product) for t in tags}

    def product_doi(self, product: str, release: str, info: dict[str, Any] | None = None) -> str | None:
        """The product's DOI in `release`: `/products/{dpID}` releases[].productDoi, else `/releases`."""
        for entry in (info or {}).get("releases") or []:
            doi = entry.get("productDoi") if isinstance(entry, dict) and entry.get("release") == release else None
            url = doi.get("url") if isinstance(doi, dict) else doi
            if isinstance(url, str) and url:
                return url.removeprefix("https://doi.org/")
        for entry in self.client.releases():
            if entry.get("release") != release:
                continue
            for dp in entry.get("dataProducts") or []:
                if isinstance(dp, dict) and dp.get("productCode") == product and dp.get("productDoi"):
                    return str(dp["productDoi"]).removeprefix("https://doi.org/")
        return None

    def site_months(self, product: str, release: str, info: dict[str, Any] | None = None) -> dict[str, list[str]]:
        """{site: months} with data of `product` in `release`, from `/products/{dpID}`."""
        info = info or self.client.product(validate_product(product))
        available: dict[str, list[str]] = {}
        for site in info.get("siteCodes") or []:
            code = site.get("siteCode") if isinstance(site, dict) else None
            for entry in site.get("availableReleases") or [] if code else []:
                if isinstance(entry, dict) and entry.get("release") == release:
                    available[validate_site(code)] = sorted(entry.get("availableMonths") or [])
        return available

    def load_product(self, product: ProductSpec, release: str) -> ProductLoad:
        validate_release(release)
        require_token()  # before any data request: a missing or expired NEON_TOKEN fails here, in one line
        context = NeonContext(product=product.code, release=release)
        info = self.client.product(validate_product(product.code))
        listed = self.site_months(product.code, release, info)
        site_months = {
            site: chosen for site, months in listed.items() if (chosen := [m for m in months if product.wants(site, m)])
        }
        if listed and not site_months:
            return ProductLoad.unpublished(
                product,
                release,
                self.describe(),
                f"the API has no data of this product in {release} for the declared sites "
                f"({', '.join(product.sites) or 'all'}) and months ({product.start or '...'} to "
                f"{product.end or '...'})",
            )
        if not site_months:
            if not any(isinstance(r, dict) and r.get("release") == release for r in info.get("releases") or []):
                return ProductLoad.unpublished(
                    product,
                    release,
                    self.describe(),
                    f"the API has no data of this product in {release}",
                )
            raise NeonApiError(f"{context.describe()}: the API lists no site with data in this release")
        months = sorted(m for ms in site_months.values() for m in ms)
        packages = self.client.query_files(
            product.code, release, sorted(site_months), months[0], months[-1], package=product.package
        )
        stacked = self._download(product, release, packages)
        tables = stacked.tables
        documents = ProductDocuments(variables=stacked.variables, variables_file=stacked.variables_file)
        notes = [f"{t}: not published in this release" for t in product.all_tables if t not in tables]
        documents.change_logs, documents.change_logs_origin = _change_logs(info), "api"
        return ProductLoad(
            product=product,
            release=release,
            tables=tables,
            doi=self.product_doi(product.code, release, info),
            origin=self.describe(),
            notes=notes,
            documents=documents,
        )

    def download_soil_water(
        self, release: str, window: tuple[str, str] | None = None, sites: list[str] | None = None
    ) -> Path:
        """Download DP1.00094.001's 30-minute files, `sensor_positions` and NEON's corrected depth files for
        `sites` (default: the megapit sites, those DP1.10066.001 lists) within `window` (default: the three most
        recent complete years of the release), with one `/data/query` call, into
        `<downloads>/<release>/DP1.00094.001/<site>/`, the layout the soil-water assets read. Says how much
        it will download first; returns the folder (without files when nothing was asked for)."""
        validate_release(release)
        require_token()
        folder = self.download_dir / release / SOIL_WATER_PRODUCT
        try:
            available = self.site_months(SOIL_WATER_PRODUCT, release)
        except NeonRequestRefusedError as exc:
            self.report(f"{SOIL_WATER_PRODUCT} {release}: the API does not offer it ({exc})")
            return folder
        if sites is None:
            megapit = self.client.product(ROOT_MEGAPIT.code)
            sites = [str(s.get("siteCode")) for s in megapit.get("siteCodes") or [] if isinstance(s, dict)]
        chosen = {site: months for site, months in available.items() if site in set(sites)}
        months = sorted(m for ms in chosen.values() for m in ms)
        if not months:
            self.report(f"{SOIL_WATER_PRODUCT} {release}: the API lists no month at the {len(sites)} sites asked for")
            return folder
        start, end = window or default_window(months)
        if not any(start <= m <= end for m in months):
            self.report(
                f"{SOIL_WATER_PRODUCT} {release}: no month from {start} to {end} (the release has {months[0]} to "
                f"{months[-1]}); set ROOTASSETS_SOIL_WATER_WINDOW=YYYY-MM:YYYY-MM"
            )
            return folder
        targets = sorted(site for site, ms in chosen.items() if any(start <= m <= end for m in ms))
        packages = self.client.query_files(SOIL_WATER_PRODUCT, release, targets, start, end)
        wanted = []
        for package in packages:
            for entry in file_entries(package):
                found = classify_name(entry.name, release)
                keep = found is not None and (
                    found.kind in ("document", "variables", "readme") or found.table in SOIL_WATER_TABLES
                )
                if keep:
                    site = (found.site if found else None) or entry.site or "unknown"
                    context = NeonContext(
                        product=SOIL_WATER_PRODUCT, release=release, site=site, month=entry.month, file=entry.name
                    )
                    wanted.append((entry, site, context))
        self._summarize(SOIL_WATER_SPEC, release, [w[0] for w in wanted])
        progress = DownloadProgress(f"{SOIL_WATER_PRODUCT} {release}", [w[0] for w in wanted], self.report)
        for entry, site, context in wanted:
            self._fetch(entry, folder / site, context, release)
            progress.advance(entry)
        return folder

    def documents(self, product: ProductSpec, release: str) -> tuple[ProductDocuments, str | None]:
        """The product's variables table and readme (from one site's package: NEON's variables file lists
        every table of the product), its `changeLogs`, and its DOI in `release`."""
        require_token()
        info = self.client.product(validate_product(product.code))
        site_months = self.site_months(product.code, release, info)
        docs = ProductDocuments(change_logs=_change_logs(info), change_logs_origin="api")
        if site_months:
            site = sorted(site_months)[0]
            month = site_months[site][0]
            data = self.client.month_files(product.code, site, month, release)
            folder = self.download_dir / release / product.code / site
            for entry in file_entries({**data, "siteCode": site, "month": month}):
                context = NeonContext(product=product.code, release=release, site=site, month=month, file=entry.name)
                name = parse_file_name(entry.name)
                if name is not None and name.is_variables:
                    docs.variables = read_variables_table(self._fetch(entry, folder, context, release))
                    docs.variables_file = entry.name
                elif entry.name.startswith("NEON.") and f".{product.code}.readme." in entry.name:
                    path = self._fetch(entry, folder, context, release)
                    docs.readme, docs.readme_file = path.read_text(encoding="utf-8", errors="replace"), entry.name
        return docs, self.product_doi(product.code, release, info)

    def _download(self, product: ProductSpec, release: str, packages: list[dict[str, Any]]) -> PackageStack:
        """Download the product's variables files and the files of its declared tables (nothing else: a
        product's other tables can be far larger), then stack them."""
        folder = self.download_dir / release / product.code
        wanted: list[tuple[NeonFileEntry, PackageFile, NeonContext]] = []
        for package in packages:
            for entry in file_entries(package):
                found = classify_name(entry.name, release)
                if found is None or found.product not in (None, product.code):
                    continue
                if not (found.kind == "variables" or found.table in product.all_tables):
                    continue
                context = NeonContext(
                    product=product.code,
                    release=release,
                    site=found.site or entry.site,
                    month=found.month or entry.month,
                    file=entry.name,
                )
                wanted.append((entry, found, context))
        self._summarize(product, release, [w[0] for w in wanted])
        progress = DownloadProgress(f"{product.code} {release}", [w[0] for w in wanted], self.report)
        files = []
        for entry, found, context in wanted:
            path = self._fetch(entry, folder / (found.site or entry.site or "lab"), context, release)
            files.append(replace(found, origin=str(path), read=path.read_bytes, path=path))
            progress.advance(entry)
        return stack_packages(files, product, release)

    def _fetch(self, entry: NeonFileEntry, folder: Path, context: NeonContext, release: str) -> Path:
        """Download one file; an expired signed URL is asked of the API again, once."""
        try:
            return self.client.download(entry, folder, context, cache=self.cache_dir)
        except NeonUrlExpiredError:
            if not (entry.site and entry.month):
                raise
            self.report(f"{context.describe()}: signed URL expired; asking the API for a fresh one")
            fresh = self.client.month_files(context.product or "", entry.site, entry.month, release)
            for candidate in file_entries({**fresh, "siteCode": entry.site, "month": entry.month}):
                if candidate.name == entry.name:
                    return self.client.download(candidate, folder, context, cache=self.cache_dir)
            raise NeonApiError(f"{context.describe()}: the API no longer lists this file") from None

    def _summarize(self, product: ProductSpec, release: str, entries: list[NeonFileEntry]) -> None:
        """Say how much will be downloaded before downloading it (a warning when it is large)."""
        cached = [e for e in entries if cached_copy(self.cache_dir, e) is not None]
        todo = [e for e in entries if e not in cached]
        size = sum(e.size or 0 for e in todo)
        unknown = sum(1 for e in todo if e.size is None)
        message = (
            f"{product.code} {release}: {len(todo)} files to download, {size / 1e6:.1f} MB"
            + (f" (+{unknown} of unknown size)" if unknown else "")
            + f"; {len(cached)} already in the download cache"
        )
        if size >= LARGE_DOWNLOAD_BYTES:
            log.warning("large download: %s", message)
        self.report(message)


class DownloadProgress:
    """Says how far a download is (files and bytes done of the total) every `every_s` seconds, and when it ends;
    a download that ends within `every_s` says nothing beyond its summary."""

    def __init__(
        self,
        what: str,
        entries: list[NeonFileEntry],
        report: Callable[[str], None],
        every_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what, self.report, self.clock = what, report, clock
        self.every_s = PROGRESS_EVERY_S if every_s is None else every_s
        self.total_files, self.total_bytes = len(entries), sum(e.size or 0 for e in entries)
        self.files, self.bytes, self.started = 0, 0, clock()
        self._last = self.started

    def advance(self, entry: NeonFileEntry) -> None:
        self.files += 1
        self.bytes += entry.size or 0
        now = self.clock()
        ended = self.files == self.total_files
        if now - self._last >= self.every_s or (ended and now - self.started >= self.every_s):
            self._last = now
            self.report(
                f"{self.what}: {self.files}/{self.total_files} files, "
                f"{self.bytes / 1e6:.1f}/{self.total_bytes / 1e6:.1f} MB" + (" (done)" if ended else "")
            )


def default_window(months: list[str]) -> tuple[str, str]:
    """The three most recent complete years among `months` (YYYY-MM): a year is complete once its December is
    published."""
    latest = max(months)
    year = int(latest[:4]) if latest[5:] == "12" else int(latest[:4]) - 1
    return f"{year - 2}-01", f"{year}-12"


def parse_window(text: str) -> tuple[str, str]:
    """`YYYY-MM:YYYY-MM` as a (start, end) pair, checked."""
    parts = text.split(":")
    if len(parts) != 2 or not all(MONTH_PATTERN.fullmatch(p) for p in parts) or parts[0] > parts[1]:
        raise ValueError(f"a window is YYYY-MM:YYYY-MM with start <= end, not {text!r}")
    return parts[0], parts[1]


def _change_logs(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The product's `changeLogs` (NEON's issue log) from a `/products/{dpID}` answer."""
    return [c for c in info.get("changeLogs") or [] if isinstance(c, dict)]
