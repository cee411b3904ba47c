"""Harmonized assets: METHOD.md sections 1 (root depth profiles) and 3 (soil on the root grid)."""

from collections.abc import Iterator

import polars as pl
from dagster import AssetExecutionContext, AssetKey, Config, asset

from rootassets.defs.partitions import neon_release
from rootassets.defs.publish import CheckOutcome, check_specs, publish
from rootassets.defs.resources import WarehouseResource
from rootassets.neon.identifiers import validate_release
from rootassets.schemas import HARMONIZED_CONTRACTS
from rootassets.science.root_profiles import (
    RootProfileParameters,
    derivation_report,
    profile_overlaps,
    root_increments,
    site_root_profiles,
    total_fine_root_biomass,
)
from rootassets.science.soil_profiles import (
    SOIL_PROPERTIES,
    horizon_properties,
    protocol_root_grid,
    soil_on_root_grid,
    values_outside_horizon_range,
)

HARMONIZED_CODE_VERSION = "harmonized-1"
GOOD_ROWS = "NOT quarantined"
COMMON = dict(
    partitions_def=neon_release,
    group_name="harmonized",
    kinds={"duckdb", "polars"},
    pool="duckdb",
    code_version=HARMONIZED_CODE_VERSION,
)


class RootProfileConfig(Config):
    """Section 1 parameters (METHOD.md defaults)."""

    cutoff_4mm_factor: float = 1.3
    depth_rule: str = "biomass_density_ratio"
    zero_fill_sampled_increments: bool = True

    def parameters(self) -> RootProfileParameters:
        return RootProfileParameters(
            cutoff_4mm_factor=self.cutoff_4mm_factor,
            depth_rule=self.depth_rule,
            zero_fill_sampled_increments=self.zero_fill_sampled_increments,
        )


def _key(name: str) -> AssetKey:
    return AssetKey(["harmonized", name])


def _raw(name: str) -> AssetKey:
    return AssetKey(["raw", name])


def _no_overlaps(frame: pl.DataFrame) -> CheckOutcome:
    overlaps = profile_overlaps(frame)
    return CheckOutcome(overlaps.is_empty(), {"overlapping_increments": overlaps.height})


ROOT_INCREMENT_CHECKS = {
    "increments_do_not_overlap": "Within each profile, an increment ends at or above the next one's top.",
    "every_site_has_a_profile": "Every site with live fine-root samples has at least one profile.",
}


@asset(
    key=_key("root_increments"),
    deps=[_raw("mpr_perrootsample"), _raw("mpr_perdepthincrement")],
    **COMMON,
    check_specs=check_specs(_key("root_increments"), ROOT_INCREMENT_CHECKS),
)
def harmonized_root_increments(
    context: AssetExecutionContext, config: RootProfileConfig, warehouse: WarehouseResource
) -> Iterator:
    """`harmonized.root_increments`: live fine-root density (g/m3) and biomass (g/m2) per site,
    profile and depth increment, with the fine-root cutoff (2 or 4 mm) and how the depths were
    obtained (`depth_derived`, `depth_rule`; METHOD.md section 1.1-1.3)."""
    release = validate_release(context.partition_key)
    params = config.parameters()
    samples = warehouse.read("raw", "mpr_perrootsample", release, GOOD_ROWS)
    depth_table = warehouse.read("raw", "mpr_perdepthincrement", release, GOOD_ROWS)
    usable_depths = depth_table if {"topDepth", "bottomDepth", "depthIncrementID"} <= set(depth_table.columns) else None
    increments = root_increments(samples, usable_depths, params)
    live_sites = set(samples.filter(pl.col("rootStatus") == params.live_status)["site_id"].unique().to_list())

    def every_site(frame: pl.DataFrame) -> CheckOutcome:
        missing = sorted(live_sites - set(frame["site_id"].unique().to_list()))
        return CheckOutcome(not missing, {"sites_without_profile": missing, "sites": frame["site_id"].n_unique()})

    yield from publish(
        warehouse,
        _key("root_increments"),
        increments,
        release,
        HARMONIZED_CONTRACTS["root_increments"],
        {"increments_do_not_overlap": _no_overlaps, "every_site_has_a_profile": every_site},
        {
            "parameters": params.as_metadata(),
            "derivation": derivation_report(increments),
            "depth_source": "mpr_perdepthincrement" if usable_depths is not None else "derived from depthIncrementID",
        },
    )


@asset(
    key=_key("root_profiles"),
    deps=[_key("root_increments")],
    **COMMON,
    check_specs=check_specs(
        _key("root_profiles"),
        {
            "profiles_cover_every_site": "Every site of root_increments has a profile, each row backed by >= 1 "
            "profile.",
        },
    ),
)
def harmonized_root_profiles(context: AssetExecutionContext, warehouse: WarehouseResource) -> Iterator:
    """`harmonized.root_profiles`: each site's fine-root profile, the mean density over the
    profiles that sampled each increment, with n_profiles, mid_cm and the standardized abundance
    Y / max(Y) (METHOD.md section 1.4)."""
    release = validate_release(context.partition_key)
    increments = warehouse.read("harmonized", "root_increments", release)
    profiles = site_root_profiles(increments)
    expected = set(increments["site_id"].unique().to_list())

    def covers(frame: pl.DataFrame) -> CheckOutcome:
        missing = sorted(expected - set(frame["site_id"].unique().to_list()))
        return CheckOutcome(
            not missing and bool((frame["n_profiles"] >= 1).all()),
            {"sites": frame["site_id"].n_unique(), "missing_sites": missing},
        )

    yield from publish(
        warehouse,
        _key("root_profiles"),
        profiles,
        release,
        HARMONIZED_CONTRACTS["root_profiles"],
        {"profiles_cover_every_site": covers},
        {},
    )


SITE_BIOMASS_CHECKS = {
    "one_row_per_site": "Exactly one row per site of root_increments, none missing, none repeated.",
}


@asset(
    key=_key("site_root_biomass"),
    deps=[_key("root_increments")],
    **COMMON,
    check_specs=check_specs(_key("site_root_biomass"), SITE_BIOMASS_CHECKS),
)
def harmonized_site_root_biomass(
    context: AssetExecutionContext, config: RootProfileConfig, warehouse: WarehouseResource
) -> Iterator:
    """`harmonized.site_root_biomass`: total fine-root biomass per site (g/m2): per profile the sum
    over increments, then the mean over profiles; also the 4 mm-equivalent total (2 mm sites x
    cutoff_4mm_factor) for comparing sites with different cutoffs (METHOD.md section 1.5)."""
    release = validate_release(context.partition_key)
    params = config.parameters()
    increments = warehouse.read("harmonized", "root_increments", release)
    expected = set(increments["site_id"].unique().to_list())

    def one_row_per_site(frame: pl.DataFrame) -> CheckOutcome:
        repeated = frame.group_by("site_id").len().filter(pl.col("len") > 1)["site_id"].sort().to_list()
        missing = sorted(expected - set(frame["site_id"].to_list()))
        return CheckOutcome(not repeated and not missing, {"repeated_sites": repeated, "missing_sites": missing})

    yield from publish(
        warehouse,
        _key("site_root_biomass"),
        total_fine_root_biomass(increments, params),
        release,
        HARMONIZED_CONTRACTS["site_root_biomass"],
        {"one_row_per_site": one_row_per_site},
        {
            "parameters": params.as_metadata(),
            "rescaling": f"total_fine_root_biomass_4mm_equiv_g_m2 = 2 mm totals x {params.cutoff_4mm_factor}; "
            "use it only where absolute biomass is compared across sites",
        },
    )


SOIL_CHECKS = {
    "values_within_horizon_range": "Each harmonized value lies between the min and max of the horizons it came from.",
    "coverage_within_unit_interval": "Every coverage column lies within [0, 1].",
}


@asset(
    key=_key("soil_profiles"),
    deps=[_raw("mgp_perhorizon"), _raw("mgp_perbiogeosample"), _raw("mgp_perbulksample"), _key("root_profiles")],
    **COMMON,
    check_specs=check_specs(_key("soil_profiles"), SOIL_CHECKS),
)
def harmonized_soil_profiles(context: AssetExecutionContext, warehouse: WarehouseResource) -> Iterator:
    """`harmonized.soil_profiles`: megapit soil properties (N, P, K, Ca, C, organic C, pH, sand, silt,
    clay, CEC, bulk density; NEON units in the column names) moved from horizons onto each site's
    root increments by overlap-weighted averaging, with coverage per property and overall
    (METHOD.md section 3). Sites without root data use NEON's protocol grid."""
    release = validate_release(context.partition_key)
    horizons = horizon_properties(
        warehouse.read("raw", "mgp_perhorizon", release, GOOD_ROWS),
        warehouse.read("raw", "mgp_perbiogeosample", release, GOOD_ROWS),
        warehouse.read("raw", "mgp_perbulksample", release, GOOD_ROWS),
    )
    root_grid = warehouse.read("harmonized", "root_profiles", release).select("site_id", "top_cm", "bottom_cm")
    soil_only = sorted(set(horizons["site_id"].unique().to_list()) - set(root_grid["site_id"].unique().to_list()))
    protocol = pl.DataFrame(
        [{"site_id": s, "top_cm": a, "bottom_cm": b} for s in soil_only for a, b in protocol_root_grid()],
        schema=root_grid.schema,
    )
    soil = soil_on_root_grid(horizons, pl.concat([root_grid, protocol]))
    soil = soil.with_columns(
        pl.when(pl.col("site_id").is_in(soil_only))
        .then(pl.lit("protocol"))
        .otherwise(pl.lit("root_profile"))
        .alias("grid")
    )

    def in_range(frame: pl.DataFrame) -> CheckOutcome:
        outside = values_outside_horizon_range(horizons, frame)
        return CheckOutcome(outside.is_empty(), {"values_outside": outside.height})

    def coverage(frame: pl.DataFrame) -> CheckOutcome:
        columns = [c for c in frame.columns if c.startswith("coverage")]
        bad = frame.filter(pl.any_horizontal([(pl.col(c) < 0) | (pl.col(c) > 1 + 1e-9) for c in columns]))
        return CheckOutcome(bad.is_empty(), {"rows_outside": bad.height})

    yield from publish(
        warehouse,
        _key("soil_profiles"),
        soil,
        release,
        HARMONIZED_CONTRACTS["soil_profiles"],
        {"values_within_horizon_range": in_range, "coverage_within_unit_interval": coverage},
        {
            "units": {p.column: f"{p.unit} (NEON {p.source})" for p in SOIL_PROPERTIES},
            "sites_on_protocol_grid": soil_only,
            "horizons_used": horizons.height,
        },
    )


harmonized_assets = [
    harmonized_root_increments,
    harmonized_root_profiles,
    harmonized_site_root_biomass,
    harmonized_soil_profiles,
]
