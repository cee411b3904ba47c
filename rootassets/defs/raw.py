"""Raw assets: NEON tables as published, one DuckDB table `raw.<table>` each.

One multi-asset per NEON product, so a product is read (or downloaded) once
per run and its tables are replaced together, in one transaction.
"""

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    AssetsDefinition,
    AssetSpec,
    DataVersion,
    Failure,
    MaterializeResult,
    multi_asset,
)

from rootassets.defs.metadata import comment_statement, sources_metadata, table_metadata
from rootassets.defs.neon_sources import SITE_ATTRIBUTES, source_key
from rootassets.defs.partitions import neon_release
from rootassets.defs.resources import NeonSourceResource, WarehouseResource
from rootassets.defs.version_cache import module_code_version
from rootassets.neon.api_source import ApiSource
from rootassets.neon.declared import DeclaredProduct
from rootassets.neon.errors import NeonDataError, NeonTokenError
from rootassets.neon.identifiers import release_sort_key, validate_release
from rootassets.neon.products import ROOT_MEGAPIT, SOIL_MEGAPIT, ProductSpec
from rootassets.neon.site_attributes import SITE_ATTRIBUTE_TABLES, site_attributes_fingerprint
from rootassets.neon.source import NeonSource
from rootassets.neon.stacking import STACKING_COLUMNS, StackedTable, empty_table
from rootassets.schemas import RAW_CONTRACTS, TableContract, generic_contract
from rootassets.warehouse import qualified, quote_ident
from rootassets.warehouse.quarantine import (
    Screened,
    StructuralError,
    screen_stacked,
    screened_frames,
)

RAW_CODE_VERSION = module_code_version(__name__)  # derived: this module's source and the rootassets code it uses


TABLE_DESCRIPTIONS = {
    "mpr_perrootsample": "Megapit root samples: dry mass, biomass (g/m2) and density (g/m3) per depth increment, "
    "root status and size class (DP1.10066.001).",
    "mpr_carbonNitrogen": "Carbon, nitrogen and stable isotopes of megapit root samples (DP1.10066.001).",
    "mpr_perdepthincrement": "Top and bottom depth (cm) of each megapit root sampling increment (DP1.10066.001), "
    "when the source publishes it.",
    "mpr_perpitprofile": "Megapit root sampling profiles (DP1.10066.001), when the source publishes it.",
    "mgp_permegapit": "Megapit location and soil taxonomy (DP1.00096.001).",
    "mgp_perhorizon": "Soil horizons of each megapit with top and bottom depth (cm) (DP1.00096.001).",
    "mgp_perbiogeosample": "Chemistry and texture of megapit horizon samples (DP1.00096.001).",
    "mgp_perbulksample": "Bulk density of megapit horizon samples (DP1.00096.001).",
    "field_site_metadata": "NEON field-site metadata: location, elevation, climate, NLCD classes, canopy height, "
    "green days.",
    "site_land_cover": "Four-way land cover of each megapit site (forest, rangeland/grassland, shrubland, cultivated).",
}


QUARANTINE_SHARE_LIMIT = 0.05
RAW_CHECKS = {
    "quarantine_share": f"Warns when more than {QUARANTINE_SHARE_LIMIT:.0%} of the table's records were refused by its "
    "contract (they are in quarantine.<table> with the reason).",
    "columns_unchanged_since_previous_release": "Warns when NEON added, removed or renamed a column of this table "
    "since the previous release materialized here.",
}


def _checks(tables: tuple[str, ...]) -> list[AssetCheckSpec]:
    return [
        AssetCheckSpec(name, asset=AssetKey(["raw", t]), description=text)
        for t in tables
        for name, text in RAW_CHECKS.items()
    ]


def _spec(table: str, source: AssetKey, description: str | None = None, group: str = "raw") -> AssetSpec:
    return AssetSpec(
        key=AssetKey(["raw", table]),
        deps=[source],
        description=f"`raw.{table}`: {description or TABLE_DESCRIPTIONS[table]}",
        group_name=group,
        kinds={"duckdb"},
        code_version=RAW_CODE_VERSION,
        partitions_def=neon_release,
    )


def _product_asset(product: ProductSpec, name: str):
    @multi_asset(
        name=name,
        specs=[_spec(t, source_key(product.code)) for t in product.all_tables],
        check_specs=_checks(product.all_tables),
        can_subset=True,
        pool="duckdb",
        description=f"NEON {product.name} ({product.code}), stacked across sites.",
    )
    def _product(
        context: AssetExecutionContext, neon: NeonSourceResource, warehouse: WarehouseResource
    ) -> Iterator[MaterializeResult]:
        yield from load_and_write(context, warehouse, product, neon.source())

    return _product


def declared_product_asset(declared: DeclaredProduct) -> AssetsDefinition:
    """The raw assets of a product declared in rootassets.toml: one per table, in the product's own group,
    stacked from its download (or the platform's source) and screened by a contract from its variables file."""
    product = declared.spec
    where = f"the download {declared.input}" if declared.input else "the platform's NEON source"
    scope = ", ".join(
        part
        for part in (
            f"sites {' '.join(product.sites)}" if product.sites else "",
            f"months {product.start or '...'} to {product.end or '...'}" if product.start or product.end else "",
            f"{product.package} package",
        )
        if part
    )

    @multi_asset(
        name=f"raw_{declared.group}",
        specs=[
            _spec(
                t,
                source_key(product.code),
                f"NEON table {t} of {product.name} ({product.code}; {scope}), declared in rootassets.toml, "
                f"stacked from {where}. Contract: NEON's primary key from its variables file.",
                group=declared.group,
            )
            for t in product.tables
        ],
        check_specs=_checks(product.tables),
        can_subset=True,
        pool="duckdb",
        description=f"NEON {product.name} ({product.code}), declared in rootassets.toml, stacked across sites.",
    )
    def _declared(
        context: AssetExecutionContext, neon: NeonSourceResource, warehouse: WarehouseResource
    ) -> Iterator[MaterializeResult]:
        source = declared.download() or neon.source()
        yield from load_and_write(context, warehouse, product, source, (NeonTokenError, NeonDataError), True)

    return _declared


def load_and_write(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    product: ProductSpec,
    source: NeonSource,
    refused: tuple[type[Exception], ...] = (NeonTokenError,),
    generic_contracts: bool = False,
) -> Iterator[MaterializeResult | AssetCheckResult]:
    """Load `product` for the partition's release from `source` and write its selected tables (`write_raw`).
    An error in `refused` fails the asset in one line; `generic_contracts` screens each table by the contract
    its variables file gives (a declared product) instead of the platform's own."""
    release = validate_release(context.partition_key)
    if isinstance(source, ApiSource):
        source.report = context.log.info  # the download summary, before the download
    fingerprint = source.fingerprint(product, release)
    try:
        load = source.load_product(product, release)
    except refused as exc:
        raise Failure(description=str(exc)) from None
    for note in load.notes:
        context.log.info(note)
    selected = [key.path[-1] for key in context.selected_asset_keys]
    stacked = {t: load.tables.get(t) or StackedTable(t, empty_table()) for t in selected}
    provenance: dict[str, Any] = {
        "neon_product": product.code,
        "doi": load.doi or "not announced by the source",
        "citation": load.citation,
        "source": load.origin,
        "source_fingerprint": fingerprint or "unknown",
    }
    contracts = None
    if generic_contracts:
        variables = load.documents.variables
        contracts = {t: generic_contract(t, variables, product.package, stacked[t].frame.schema) for t in selected}
        provenance["primary_key"] = {t: list(c.key) for t, c in contracts.items()}
    descriptions = neon_descriptions(warehouse, product.code, load.documents.variables)
    yield from write_raw(context, warehouse, stacked, release, set(load.tables), provenance, descriptions, contracts)


raw_root_megapit = _product_asset(ROOT_MEGAPIT, "raw_root_megapit")
raw_soil_megapit = _product_asset(SOIL_MEGAPIT, "raw_soil_megapit")


@multi_asset(
    name="raw_site_attributes",
    specs=[_spec(t, source_key(SITE_ATTRIBUTES)) for t in SITE_ATTRIBUTE_TABLES],
    check_specs=_checks(SITE_ATTRIBUTE_TABLES),
    can_subset=True,
    pool="duckdb",
    description="NEON field-site metadata and the four-way land cover of each site.",
)
def raw_site_attributes(
    context: AssetExecutionContext, neon: NeonSourceResource, warehouse: WarehouseResource
) -> Iterator[MaterializeResult]:
    release = validate_release(context.partition_key)
    tables = neon.site_attributes(release)
    selected = {key.path[-1] for key in context.selected_asset_keys}
    chosen = {t: s for t, s in tables.items() if t in selected}
    fingerprint = site_attributes_fingerprint(Path(neon.site_attributes_dir)) if neon.site_attributes_dir else "unknown"
    yield from write_raw(
        context,
        warehouse,
        chosen,
        release,
        set(chosen),
        {"source": neon.site_attributes_dir or "", "source_fingerprint": fingerprint},
    )


def neon_descriptions(
    warehouse: WarehouseResource, product: str, variables: pl.DataFrame | None
) -> dict[str, dict[str, str]]:
    """{table: {column: "description (units)"}} from this release's variables file, else from the newest
    release in `raw.variables` that describes the product (NEON's field definitions rarely change)."""
    if variables is None or variables["description"].drop_nulls().is_empty():
        variables = warehouse.described_variables(product)
    if variables is None:
        return {}
    return described_columns(variables)


def described_columns(variables: pl.DataFrame) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for table, field, description, units in variables.select("table", "fieldName", "description", "units").iter_rows():
        if table and field and description:
            text = description if not units or units == "NA" else f"{description} ({units})"
            out.setdefault(table, {})[field] = text
    return out


def comment_statements(schema: str, table: str, columns: list[str], descriptions: dict[str, str]) -> list[str]:
    """COMMENT ON COLUMN for every written column NEON describes (descriptions are data: quoted as literals)."""
    target = qualified(schema, table)
    return [
        f"COMMENT ON COLUMN {target}.{quote_ident(c)} IS '{descriptions[c].replace(chr(39), chr(39) * 2)}'"
        for c in columns
        if c in descriptions
    ]


def raw_checks(
    context: AssetExecutionContext, stacked: dict[str, StackedTable], screened: dict[str, Screened], release: str
) -> Iterator[AssetCheckResult]:
    """The quarantine share and the column comparison with the previous release, for each selected table."""
    selected = context.selected_asset_check_keys
    for table, s in stacked.items():
        key = AssetKey(["raw", table])
        if AssetCheckKey(key, "quarantine_share") in selected:
            yield quarantine_share_check(key, screened[table])
        if AssetCheckKey(key, "columns_unchanged_since_previous_release") in selected:
            yield _columns_check(context, key, s, release)


def quarantine_share_check(key: AssetKey, screened: Screened) -> AssetCheckResult:
    """Warn when more than QUARANTINE_SHARE_LIMIT of the table's records were refused by its contract."""
    rows_in, refused = screened.rows_in, screened.quarantined.height
    share = refused / rows_in if rows_in else 0.0
    return AssetCheckResult(
        asset_key=key,
        check_name="quarantine_share",
        passed=share <= QUARANTINE_SHARE_LIMIT,
        severity=AssetCheckSeverity.WARN,
        metadata={"share": share, "rows_quarantined": refused, "rows_in": rows_in, "limit": QUARANTINE_SHARE_LIMIT},
    )


def neon_columns(s: StackedTable) -> list[str]:
    """The columns NEON published for the table, across its source files (without a stacker's additions)."""
    return sorted({c for source in s.sources for c in source.columns if c not in STACKING_COLUMNS})


def _columns_check(context: AssetExecutionContext, key: AssetKey, s: StackedTable, release: str) -> AssetCheckResult:
    published = neon_columns(s)
    previous = _previous_columns(context, key, release) if published else None
    if previous is None:
        reason = "not published in this release" if not published else "no earlier release that published it"
        return AssetCheckResult(
            asset_key=key,
            check_name="columns_unchanged_since_previous_release",
            passed=True,
            severity=AssetCheckSeverity.WARN,
            metadata={"compared_with": reason, "columns": published},
        )
    release_before, columns_before = previous
    added = sorted(set(published) - set(columns_before))
    removed = sorted(set(columns_before) - set(published))
    return AssetCheckResult(
        asset_key=key,
        check_name="columns_unchanged_since_previous_release",
        passed=not added and not removed,
        severity=AssetCheckSeverity.WARN,
        metadata={"compared_with": release_before, "added": added, "removed": removed},
    )


def _previous_columns(context: AssetExecutionContext, key: AssetKey, release: str) -> tuple[str, list[str]] | None:
    """The NEON columns recorded by the newest materialization of `key` for a release before `release`."""
    earlier = sorted(
        (
            r
            for r in context.instance.get_dynamic_partitions(neon_release.name)
            if release_sort_key(r) < release_sort_key(release) and r != "PROVISIONAL"
        ),
        key=release_sort_key,
        reverse=True,
    )
    for tag in earlier:
        records = context.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=[tag]), limit=1
        ).records
        if records:
            recorded = records[0].asset_materialization.metadata.get("neon_columns")
            if recorded is not None and recorded.value:  # a release that published the table
                return tag, list(recorded.value)
    return None


def write_raw(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    stacked: dict[str, StackedTable],
    release: str,
    published: set[str],
    provenance: dict[str, Any],
    descriptions: dict[str, dict[str, str]] | None = None,
    contracts: dict[str, TableContract] | None = None,
) -> Iterator[MaterializeResult | AssetCheckResult]:
    """Screen each stacked table, replace its raw and quarantine rows in one transaction, comment its columns
    with NEON's descriptions, report each table with its data version, accounting and provenance, and
    evaluate its visible checks."""
    contracts = contracts or {t: RAW_CONTRACTS[t] for t in stacked}
    screened = {t: screen_raw(t, s, release, contracts[t], t in published) for t, s in stacked.items()}
    described = descriptions or {}
    with warehouse.session():  # the rows and every table's comments: one opening of the file
        warehouse.write(screened_frames(screened), release)
        for table in stacked:
            spec = context.assets_def.specs_by_key[AssetKey(["raw", table])]
            statements = comment_statement("raw", table, spec.description)
            statements += comment_statements("raw", table, screened[table].rows.columns, described.get(table, {}))
            if statements:
                warehouse.define(f"comments:raw.{table}", statements)
    for table, s in stacked.items():
        yield MaterializeResult(
            asset_key=AssetKey(["raw", table]),
            data_version=source_data_version(release, s),
            metadata={
                "neon_columns": neon_columns(s),
                **table_metadata(screened[table].rows, release, described.get(table), f"raw.{table}"),
                **screened[table].summary(),
                "published_by_source": table in published,
                **provenance,
                "source_files": sources_metadata(s.sources),
            },
        )
    yield from raw_checks(context, stacked, screened, release)


def source_data_version(release: str, stacked: StackedTable) -> DataVersion:
    """The data version of a raw table: its release and the MD5 of every source file, so that
    unchanged NEON files leave everything downstream up to date."""
    digest = hashlib.sha256(release.encode())
    for source in sorted(stacked.sources, key=lambda s: s.file):
        digest.update(f"{source.file}:{source.md5}".encode())
    for record in stacked.malformed:
        digest.update(record.text.encode())
    return DataVersion(digest.hexdigest()[:24])


def screen_raw(
    table: str, stacked: StackedTable, release: str, contract: TableContract, published: bool = True
) -> Screened:
    """`screen_stacked`, failing the asset (naming file and column) on a structural error."""
    try:
        return screen_stacked(table, stacked, release, contract, published)
    except StructuralError as exc:
        raise Failure(description=str(exc)) from exc


raw_assets = [raw_root_megapit, raw_soil_megapit, raw_site_attributes]
