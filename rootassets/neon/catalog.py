"""What a NEON product holds, for `rootassets products`: its tables, releases, DOIs, sites and months.

From the API (`/products` and `/products/{dpID}`, plus one site-month's file list for the table names when
a token is at hand) or from a local download (file names, the newest variables file and readme).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from rootassets.neon.client import NeonClient, file_entries
from rootassets.neon.errors import NeonDataError
from rootassets.neon.identifiers import release_sort_key, validate_product
from rootassets.neon.stack_by_table import (
    DATA_KINDS,
    PackageFile,
    classify_name,
    package_files,
    read_strings,
    select_files,
)

_README_NAME = re.compile(r"^Name:\s*(.+?)\s*$", re.MULTILINE)
_README_TABLE = re.compile(r"^([A-Za-z][A-Za-z0-9_\\]*) - (.+?)\s*$", re.MULTILINE)


@dataclass
class ProductDescription:
    """One product as a source describes it."""

    code: str
    name: str
    origin: str
    tables: dict[str, str] = field(default_factory=dict)  # table -> site-date | site-all | lab
    table_descriptions: dict[str, str] = field(default_factory=dict)  # from the readme
    releases: dict[str, str | None] = field(default_factory=dict)  # release -> DOI
    sites: list[str] = field(default_factory=list)
    months: tuple[str, str] | None = None
    package: str = "basic"
    variables: pl.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A plain-text description, one fact per line."""
        out = [f"{self.code}  {self.name}", f"  from: {self.origin}"]
        for release, doi in self.releases.items():
            out.append(f"  release {release}: {f'https://doi.org/{doi}' if doi else 'no DOI announced'}")
        if self.sites:
            span = f", months {self.months[0]}..{self.months[1]}" if self.months else ""
            out.append(f"  {len(self.sites)} site(s): {' '.join(self.sites)}{span}")
        out.append(f"  package: {self.package}")
        for table, kind in self.tables.items():
            fields = self.fields(table)
            detail = f"{kind}, {len(fields)} fields" if fields else kind
            text = self.table_descriptions.get(table)
            out.append(f"  table {table} ({detail})" + (f": {text}" if text else ""))
        return out + [f"  note: {n}" for n in self.notes]

    def fields(self, table: str) -> list[str]:
        if self.variables is None or not {"table", "fieldName"} <= set(self.variables.columns):
            return []
        return self.variables.filter(pl.col("table") == table)["fieldName"].to_list()


def readme_name(text: str) -> str | None:
    """The product name of a NEON readme (`Name: ...` under DATA PRODUCT INFORMATION)."""
    match = _README_NAME.search(text)
    return match.group(1) if match else None


def readme_tables(text: str) -> dict[str, str]:
    """NEON's one-line description of each table, as the readme lists them (`table - description`)."""
    return {m.group(1).replace("\\", ""): m.group(2) for m in _README_TABLE.finditer(text)}


def describe_download(path: Path) -> ProductDescription:
    """A local NEON download (portal zip, folder of packages) described from its file names and documents."""
    files = package_files(path)
    products = sorted({f.product for f in files if f.product})
    if len(products) != 1:
        found = ", ".join(products) or "none"
        raise NeonDataError(f"{path}: expected the packages of one NEON product, found {found}")
    releases = sorted({f.release for f in files if f.release}, key=release_sort_key)
    newest = [f for f in files if f.release == releases[-1]] if releases else files
    selection = select_files(newest)
    readme = selection.documents.get("readme")
    text = readme.read().decode("utf-8", "replace") if readme else ""
    variables = selection.documents.get("variables")
    months = sorted(f.month for f in files if f.month)
    return ProductDescription(
        code=products[0],
        name=readme_name(text) or products[0],
        origin=f"NEON download {path}",
        tables={t: fs[0].kind for t, fs in selection.tables.items()},
        table_descriptions=readme_tables(text),
        releases=dict.fromkeys(releases),
        sites=sorted({f.site for f in files if f.site}),
        months=(months[0], months[-1]) if months else None,
        package=selection.package,
        variables=read_strings(variables) if variables else None,
    )


def list_products(client: NeonClient, release: str | None = None) -> list[dict[str, Any]]:
    """`/products` (optionally for one release): every product's code, name and number of sites."""
    return [
        {"code": str(p["productCode"]), "name": str(p.get("productName") or ""), "sites": len(p.get("siteCodes") or [])}
        for p in client.products(release)
        if p.get("productCode")
    ]


def describe_api(client: NeonClient, code: str, list_files: bool) -> ProductDescription:
    """`/products/{dpID}`: name, releases with DOIs, sites and months; with `list_files` (a token is set), one
    site-month's file list of the newest release gives the table names and the variables file."""
    info = client.product(validate_product(code))
    releases: dict[str, str | None] = {}
    for entry in info.get("releases") or []:
        if isinstance(entry, dict) and entry.get("release"):
            doi = (entry.get("productDoi") or {}).get("url") if isinstance(entry.get("productDoi"), dict) else None
            releases[str(entry["release"])] = str(doi).removeprefix("https://doi.org/") if doi else None
    releases = dict(sorted(releases.items(), key=lambda kv: release_sort_key(kv[0])))
    site_months = {
        str(s.get("siteCode")): [str(m) for m in s.get("availableMonths") or []]
        for s in info.get("siteCodes") or []
        if isinstance(s, dict) and s.get("siteCode")
    }
    months = sorted(m for ms in site_months.values() for m in ms)
    description = ProductDescription(
        code=code,
        name=str(info.get("productName") or code),
        origin=f"NEON API at {client.base_url}",
        releases=releases,
        sites=sorted(site_months),
        months=(months[0], months[-1]) if months else None,
    )
    if not list_files:
        description.notes.append("tables not listed: NEON lists a package's files only with an API token (NEON_TOKEN)")
        return description
    numbered = [r for r in releases if r != "PROVISIONAL"]
    if not numbered or not site_months:
        description.notes.append("no released data to list tables from")
        return description
    release = numbered[-1]
    site = sorted(site_months)[0]
    month = site_months[site][-1]
    data = client.month_files(code, site, month, release)
    classified = [
        c
        for e in file_entries({**data, "siteCode": site, "month": month})
        if (c := classify_name(e.name, release)) is not None
    ]
    description.tables = _tables(classified)
    description.notes.append(
        f"tables from the files of {site} {month} in {release} (a table another site-month "
        "publishes alone is not listed)"
    )
    return description


def _tables(files: list[PackageFile]) -> dict[str, str]:
    tables: dict[str, str] = {}
    for f in files:
        if f.kind in DATA_KINDS:
            tables.setdefault(f.table, f.kind)
    return dict(sorted(tables.items()))
