"""Extra NEON products declared in configuration: `rootassets.toml` under ROOTASSETS_HOME.

    [[products]]
    dpid = "DP1.10033.001"
    name = "Litterfall and fine woody debris production and chemistry"
    tables = ["ltr_pertrap", "ltr_litterCarbonNitrogen"]
    package = "expanded"                      # default: basic
    sites = ["KONZ"]                          # default: every site
    start = "2022-01"                         # default: the earliest month
    end = "2022-12"                           # default: the latest month
    input = "downloads/NEON_litterfall.zip"   # optional: a portal zip, a folder of packages or of stacked tables

Each declared product becomes a group of raw assets, one per table. Without `input` its data come from the
platform's source (the NEON API, or the snapshot's `<release>/<dpid>/` folder); with it, from that local
download (a relative path is relative to the configuration file). Anything the file gets wrong is refused
with the file, the entry and the key, before any work starts.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from rootassets.neon.download_source import DownloadSource
from rootassets.neon.errors import NeonDataError
from rootassets.neon.identifiers import MONTH_PATTERN, PRODUCT_PATTERN, SITE_PATTERN, TABLE_PATTERN
from rootassets.neon.products import PRODUCTS, ProductSpec
from rootassets.neon.site_attributes import SITE_ATTRIBUTE_TABLES
from rootassets.neon.soil_water import SOIL_WATER_PRODUCT

CONFIG_NAME = "rootassets.toml"
BUILT_IN_PRODUCTS = (*PRODUCTS, SOIL_WATER_PRODUCT)
# Tables the platform's own raw assets already write: a declared table of the same name would overwrite them.
RESERVED_TABLES = frozenset(
    [
        *(t for p in PRODUCTS.values() for t in p.all_tables),
        *SITE_ATTRIBUTE_TABLES,
        "variables",
        "issue_log",
        "product_citations",
        "swc_sensor_positions",
        "swc_files",
    ]
)
KEYS = ("dpid", "name", "tables", "package", "sites", "start", "end", "input")


class DeclarationError(NeonDataError):
    """The configuration file declares a product the platform cannot take."""


@dataclass(frozen=True)
class DeclaredProduct:
    """A NEON product declared in configuration: what to take (`spec`) and, optionally, a local download."""

    spec: ProductSpec
    input: Path | None = None

    def download(self) -> DownloadSource | None:
        """Its local download as a source, when it names one (else it comes from the platform's source)."""
        return DownloadSource(self.input) if self.input is not None else None

    @property
    def group(self) -> str:
        """The Dagster group of its raw assets: `neon_<dpid>` with dots as underscores."""
        return "neon_" + self.spec.code.replace(".", "_")

    def as_toml(self, base: Path) -> dict[str, Any]:
        entry: dict[str, Any] = {"dpid": self.spec.code, "name": self.spec.name, "tables": list(self.spec.tables)}
        if self.spec.package != "basic":
            entry["package"] = self.spec.package
        if self.spec.sites:
            entry["sites"] = list(self.spec.sites)
        for key in ("start", "end"):
            if getattr(self.spec, key):
                entry[key] = getattr(self.spec, key)
        if self.input is not None:
            entry["input"] = _relative(self.input, base)
        return entry


def config_path(home: Path) -> Path:
    return home / CONFIG_NAME


def read_declared(path: Path) -> list[DeclaredProduct]:
    """The products `path` declares (none when the file does not exist), every entry checked."""
    if not path.is_file():
        return []
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DeclarationError(f"{path}: not valid TOML ({exc})") from exc
    unknown = sorted(set(document) - {"products"})
    if unknown:
        raise DeclarationError(f"{path}: unknown top-level key(s) {', '.join(unknown)} (expected [[products]])")
    entries = document.get("products", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise DeclarationError(f"{path}: `products` must be an array of tables ([[products]])")
    declared = [_entry(e, f"{path}: products[{i}]", path.parent) for i, e in enumerate(entries)]
    _check_unique(declared, path)
    return declared


def write_declared(path: Path, products: list[DeclaredProduct]) -> None:
    """Write `products` to `path` atomically (a reader sees the old file or the new one, never half)."""
    _check_unique(products, path)
    text = tomli_w.dumps({"products": [p.as_toml(path.parent) for p in products]})
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(
        "# NEON products declared for rootassets (`rootassets products add`); see README, 'Add a NEON product'.\n"
        + text,
        encoding="utf-8",
    )
    os.replace(partial, path)


def declared_product(
    dpid: str,
    name: str,
    tables: list[str],
    package: str = "basic",
    sites: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    input_path: Path | None = None,
) -> DeclaredProduct:
    """A declaration built by the CLI, checked as one read from the file is."""
    entry: dict[str, Any] = {"dpid": dpid, "name": name, "tables": tables, "package": package}
    entry.update({k: v for k, v in (("sites", sites), ("start", start), ("end", end)) if v})
    if input_path is not None:
        entry["input"] = str(input_path.absolute())
    return _entry(entry, dpid, Path.cwd())


def _entry(entry: dict[str, Any], where: str, base: Path) -> DeclaredProduct:
    unknown = sorted(set(entry) - set(KEYS))
    if unknown:
        raise DeclarationError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(KEYS)})")
    dpid = _text(entry, "dpid", where, required=True)
    where = f"{where} ({dpid})" if dpid not in where else where
    if not PRODUCT_PATTERN.fullmatch(dpid):
        raise DeclarationError(f"{where}: dpid {dpid!r} is not a NEON product code (like DP1.10033.001)")
    if dpid in BUILT_IN_PRODUCTS:
        raise DeclarationError(f"{where}: {dpid} is built into the platform; declare other products only")
    tables = _texts(entry, "tables", where)
    if not tables:
        raise DeclarationError(f"{where}: `tables` must list at least one NEON table")
    for table in tables:
        if not TABLE_PATTERN.fullmatch(table):
            raise DeclarationError(f"{where}: table {table!r} is not a NEON table name")
        if table in RESERVED_TABLES:
            raise DeclarationError(f"{where}: table {table!r} is already written by the platform (raw.{table})")
    package = _text(entry, "package", where) or "basic"
    if package not in ("basic", "expanded"):
        raise DeclarationError(f"{where}: package must be basic or expanded, not {package!r}")
    sites = _texts(entry, "sites", where)
    for site in sites:
        if not SITE_PATTERN.fullmatch(site):
            raise DeclarationError(f"{where}: site {site!r} is not a NEON site code (like KONZ)")
    start, end = _text(entry, "start", where), _text(entry, "end", where)
    for key, month in (("start", start), ("end", end)):
        if month and not MONTH_PATTERN.fullmatch(month):
            raise DeclarationError(f"{where}: {key} {month!r} is not a month (YYYY-MM)")
    if start and end and start > end:
        raise DeclarationError(f"{where}: start {start} is after end {end}")
    raw_input = _text(entry, "input", where)
    spec = ProductSpec(
        code=dpid,
        name=_text(entry, "name", where) or dpid,
        tables=tuple(dict.fromkeys(tables)),
        package=package,
        sites=tuple(sorted(set(sites))),
        start=start or None,
        end=end or None,
    )
    return DeclaredProduct(spec, (base / Path(raw_input).expanduser()).absolute() if raw_input else None)


def _text(entry: dict[str, Any], key: str, where: str, required: bool = False) -> str:
    value = entry.get(key)
    if value is None:
        if required:
            raise DeclarationError(f"{where}: `{key}` is missing")
        return ""
    if not isinstance(value, str):
        raise DeclarationError(f"{where}: `{key}` must be a string, not {type(value).__name__}")
    return value.strip()


def _texts(entry: dict[str, Any], key: str, where: str) -> list[str]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DeclarationError(f"{where}: `{key}` must be a list of strings")
    return [v.strip() for v in value]


def _check_unique(products: list[DeclaredProduct], path: Path) -> None:
    seen: dict[str, str] = {}
    for p in products:
        if p.spec.code in seen.values():
            raise DeclarationError(f"{path}: {p.spec.code} is declared twice")
        for table in p.spec.tables:
            if table in seen:
                raise DeclarationError(f"{path}: table {table} is declared by {seen[table]} and {p.spec.code}")
            seen[table] = p.spec.code


def _relative(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base.absolute()).as_posix()
    except ValueError:
        return str(path)
