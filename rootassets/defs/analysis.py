"""Analysis assets: METHOD.md sections 2 and 4-7. The registry's steps (`rootassets.science.steps`) and, by hand
for now, site factors (a user CSV) and release changes (two releases)."""

from collections.abc import Iterator

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    Config,
    Failure,
    MaterializeResult,
    asset,
)

from rootassets.defs.metadata import table_metadata
from rootassets.defs.partitions import neon_release
from rootassets.defs.publish import publish
from rootassets.defs.resources import WarehouseResource
from rootassets.defs.steps import assets_of_group
from rootassets.neon.identifiers import validate_release
from rootassets.schemas import ANALYSIS_CONTRACTS
from rootassets.science.site_factors import NEON_FACTORS, read_user_factors, site_factor_table

ANALYSIS_CODE_VERSION = "analysis-1"
COMMON = dict(partitions_def=neon_release, group_name="analysis", pool="duckdb", code_version=ANALYSIS_CODE_VERSION)


def _key(name: str) -> AssetKey:
    return AssetKey(["analysis", name])


def _h(name: str) -> AssetKey:
    return AssetKey(["harmonized", name])


class SiteFactorConfig(Config):
    """Optional user CSV of extra site factors (site_id + numeric columns)."""

    extra_factors_csv: str | None = None


@asset(
    key=_key("site_factors"),
    deps=[
        AssetKey(["raw", "field_site_metadata"]),
        AssetKey(["raw", "site_land_cover"]),
        _h("site_root_biomass"),
        _h("soil_profiles"),
        _key("site_modality"),
    ],
    kinds={"duckdb", "polars"},
    **COMMON,
)
def analysis_site_factors(
    context: AssetExecutionContext, config: SiteFactorConfig, warehouse: WarehouseResource
) -> Iterator:
    """`analysis.site_factors`: one row per site with the factors of METHOD.md section 5 (total fine-root
    biomass as 4 mm-equivalent g/m2, elevation, MAT, MAP, canopy height, green days, land cover, and soil
    pH, sand, clay, organic C and CEC over 0-30 cm), units in the column names, plus optional user factors."""
    release = validate_release(context.partition_key)
    modality = warehouse.read("analysis", "site_modality", release).select("site_id", "modality")
    extra, extra_factors = None, []
    if config.extra_factors_csv:
        try:
            extra, extra_factors = read_user_factors(pl.read_csv(config.extra_factors_csv), config.extra_factors_csv)
        except (OSError, pl.exceptions.PolarsError, ValueError) as exc:
            raise Failure(description=f"extra factors: {exc}") from exc
    table = site_factor_table(
        modality["site_id"].to_list(),
        warehouse.read("harmonized", "site_root_biomass", release),
        warehouse.read("raw", "field_site_metadata", release, "NOT quarantined"),
        warehouse.read("raw", "site_land_cover", release, "NOT quarantined"),
        warehouse.read("harmonized", "soil_profiles", release),
        extra,
    ).join(modality, on="site_id", how="left")
    factors = [*NEON_FACTORS, *extra_factors]
    incomplete = table.filter(pl.any_horizontal([pl.col(f.column).is_null() for f in factors]))["site_id"].to_list()
    yield from publish(
        warehouse,
        _key("site_factors"),
        table,
        release,
        ANALYSIS_CONTRACTS["site_factors"],
        {},
        {
            "factors": {f.column: f.unit for f in factors},
            "sites_with_missing_factors": incomplete,
            "extra_factors_csv": config.extra_factors_csv or "none",
        },
    )


analysis_assets = [*assets_of_group("analysis"), analysis_site_factors]


class ReleaseChangeConfig(Config):
    """Differences at or below these are not listed."""

    depth_cm: float = 1.0
    relative: float = 0.01
    exponent: float = 1e-4


@asset(
    key=_key("release_changes"),
    deps=[_key("site_modality"), _key("phi"), _key("nutrient_exponents")],
    kinds={"duckdb"},
    **COMMON,
)
def analysis_release_changes(
    context: AssetExecutionContext, config: ReleaseChangeConfig, warehouse: WarehouseResource
) -> MaterializeResult:
    """`analysis.release_changes`: what changed per site since the previous release present: sites added or
    removed, modality label changes, D0/D1/D2 shifts, total biomass change, and phi/exponent values that moved
    beyond a tolerance. Empty for the first release."""
    from rootassets.science.release_changes import (
        CHANGE_SCHEMA,
        ChangeTolerances,
        compare_releases,
        previous_release,
    )

    release = validate_release(context.partition_key)
    tolerances = ChangeTolerances(config.depth_cm, config.relative, config.exponent)
    present = warehouse.visible_releases("analysis", "site_modality")
    before = previous_release(present, release)
    if before is None:
        changes = pl.DataFrame(schema=CHANGE_SCHEMA)
    else:
        tables = {
            t: (warehouse.read("analysis", t, before), warehouse.read("analysis", t, release))
            for t in ("site_modality", "phi", "nutrient_exponents")
        }
        changes = compare_releases(*tables["site_modality"], *tables["phi"], *tables["nutrient_exponents"], tolerances)
    changes = changes.with_columns(
        pl.lit(before, dtype=pl.String).alias("previous_release"), pl.lit(release).alias("release")
    )
    warehouse.write({("analysis", "release_changes"): changes}, release)
    summary = dict(changes.group_by("change").len().sort("change").iter_rows()) if changes.height else {}
    return MaterializeResult(
        metadata={
            **table_metadata(changes, release),
            "previous_release": before or "none",
            "changes": summary,
            "tolerances": tolerances.as_metadata(),
        }
    )


analysis_assets.append(analysis_release_changes)
