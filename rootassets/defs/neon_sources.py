"""NEON as the source of the graph: one observable source asset per NEON product (and the site-attribute files).

Observing a source records its data version for a release: a fingerprint of
the product's files in a snapshot, or of what NEON's `/products/{dpID}` says
about the release (generation date and site-months) on the API. The raw
assets depend on these sources, so Dagster itself knows a raw table is stale
when its source changed, and up to date (with everything downstream) when
it did not: `rootassets materialize` observes first and re-reads only what
changed; in the UI, "Observe sources" does the same.
"""

import warnings
from collections.abc import Iterator
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    BetaWarning,
    DataVersion,
    ObserveResult,
    multi_observable_source_asset,
)

from rootassets.defs.partitions import neon_release
from rootassets.defs.resources import NeonSourceResource
from rootassets.neon.api_source import SOIL_WATER_SPEC
from rootassets.neon.declared import DeclaredProduct
from rootassets.neon.identifiers import validate_release
from rootassets.neon.products import PRODUCTS
from rootassets.neon.site_attributes import site_attributes_fingerprint
from rootassets.neon.soil_water import discover, soil_water_folder

ABSENT = "absent"  # the source has nothing for the release: a version too, so that its appearance is a change
SOIL_WATER = "DP1.00094.001"
SITE_ATTRIBUTES = "site_attributes"


def source_key(name: str) -> AssetKey:
    return AssetKey(["neon", name])


DESCRIPTIONS = {
    **{
        code: f"NEON {product.name} ({code}) as published in each release. Its data version is a fingerprint of "
        "the product's files (snapshot) or of the release's generation date and site-months (NEON API), so "
        "the raw tables re-read it only when it changed."
        for code, product in PRODUCTS.items()
    },
    SITE_ATTRIBUTES: "NEON's field-site metadata and the four-way land cover of each megapit site (the "
    "site-attribute folder). Data version: a fingerprint of its files.",
    SOIL_WATER: "NEON Soil water and salinity (DP1.00094.001), the 30-minute files of the release's folder. "
    "Data version: a fingerprint of its files.",
}


def fingerprint(
    name: str, neon: NeonSourceResource, release: str, declared: dict[str, DeclaredProduct] | None = None
) -> str | None:
    """The current fingerprint of source `name` in `release`; None when the source has nothing for it."""
    if name in PRODUCTS:
        return neon.source().fingerprint(PRODUCTS[name], release)
    if declared and name in declared:
        product = declared[name]
        source = product.download() or neon.source()
        return source.fingerprint(product.spec, release)
    if name == SITE_ATTRIBUTES:
        folder = Path(neon.site_attributes_dir) if neon.site_attributes_dir else None
        return site_attributes_fingerprint(folder) if folder and folder.is_dir() else None
    if not (neon.soil_water_dir or neon.snapshot_dir):  # from the API: what /products says about the release
        return neon.source().fingerprint(SOIL_WATER_SPEC, release)
    files = discover(soil_water_folder(neon.soil_water_path(), release))
    return files.fingerprint() if files.data or files.positions else None


def declared_description(product: DeclaredProduct) -> str:
    where = f"the download {product.input}" if product.input else "the platform's NEON source"
    return (
        f"NEON {product.spec.name} ({product.spec.code}), declared in rootassets.toml and read from {where}. "
        "Data version: a fingerprint of its files (or of the API's release and site-months)."
    )


def build_neon_sources(declared: list[DeclaredProduct]) -> AssetsDefinition:
    """The observable NEON sources: the platform's products, site attributes, soil water and every declared
    product."""
    by_code = {p.spec.code: p for p in declared}
    descriptions = {**DESCRIPTIONS, **{code: declared_description(p) for code, p in by_code.items()}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)  # observable source assets are beta in Dagster 1.13
        observe_neon = multi_observable_source_asset(
            name="neon_sources",
            specs=[
                AssetSpec(source_key(name), description=text, group_name="neon", kinds={"neon"})
                for name, text in descriptions.items()
            ],
            partitions_def=neon_release,
            can_subset=True,
            required_resource_keys={"neon"},
            description="Observes NEON: the data version of each product (and of the site-attribute files) in the "
            "release.",
        )

    @observe_neon
    def neon_sources(context: AssetExecutionContext) -> Iterator[ObserveResult]:
        release = validate_release(context.partition_key)
        for key in sorted(context.selected_asset_keys, key=str):
            version = fingerprint(key.path[-1], context.resources.neon, release, by_code) or ABSENT
            context.log.info(f"{key.to_user_string()} {release}: data version {version}")
            yield ObserveResult(asset_key=key, data_version=DataVersion(version))

    return neon_sources


neon_source_assets = [build_neon_sources([])]
