"""METHOD.md section 1, root depth profiles: live fine roots on a depth grid per site.

Pure functions on polars frames; no I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import polars as pl

DEPTH_RULES = ("protocol_unless_measured", "biomass_density_ratio", "protocol")


@dataclass(frozen=True)
class RootProfileParameters:
    """Every constant of section 1, with METHOD.md's defaults."""

    live_status: str = "live"
    fine_size_categories: tuple[str, ...] = ("<=2mm", "<=4mm")
    cutoff_4mm_factor: float = 1.3
    # Increment depths derived from depthIncrementID when mpr_perdepthincrement is absent:
    protocol_break_cm: float = 100.0
    protocol_shallow_step_cm: float = 10.0
    protocol_deep_step_cm: float = 20.0
    protocol_max_depth_cm: float = 200.0
    depth_rule: str = "protocol_unless_measured"
    # protocol_unless_measured: a sample's own thickness replaces the protocol's only when it is a whole
    # number of cm (within this tolerance: rounded biomass gives ratios such as 19.4 or 14.29) and at least
    # measured_shorter_by_cm shorter than the protocol increment (OSBS's 10 cm increments below 1 m).
    measured_whole_cm_tolerance: float = 0.1
    measured_shorter_by_cm: float = 3.0
    zero_fill_sampled_increments: bool = True

    def as_metadata(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def parse_depth_increment_ids(samples: pl.DataFrame) -> pl.DataFrame:
    """Add profile and top_cm from `depthIncrementID` (SITE.PROFILE.TOPDEPTH)."""
    parts = pl.col("depthIncrementID").str.split(".")
    return samples.with_columns(
        parts.list.get(1).alias("profile"),
        parts.list.get(2).cast(pl.Float64).alias("top_cm"),
    )


def live_fine_roots(samples: pl.DataFrame, params: RootProfileParameters) -> pl.DataFrame:
    """Section 1.1: live roots of the fine size class, with each row's cutoff (2 or 4 mm)."""
    return samples.filter(
        (pl.col("rootStatus") == params.live_status) & pl.col("sizeCategory").is_in(params.fine_size_categories)
    ).with_columns(pl.col("sizeCategory").str.extract(r"(\d+)mm").cast(pl.Int64).alias("fine_root_cutoff_mm"))


def increment_depths(samples: pl.DataFrame, params: RootProfileParameters) -> pl.DataFrame:
    """Section 1.2 without mpr_perdepthincrement: derive each increment's bottom.

    The top comes from depthIncrementID. By default (`protocol_unless_measured`) the bottom is NEON's
    protocol step (10 cm to 100 cm, 20 cm below, never past 200 cm), cut short where the profile's next
    increment starts; the thickness the sample itself records (100 * incrementRootBiomass /
    incrementRootDensity: biomass per area over biomass per volume, median over the increment's samples)
    wins only where it clearly says otherwise: a whole number of cm, and shorter than the protocol's by at
    least `measured_shorter_by_cm`. `biomass_density_ratio` takes the recorded thickness wherever there is
    one (rounded to the cm, capped at the next top); `protocol` never does. Returns site_id, profile,
    top_cm, bottom_cm, depth_rule.
    """
    if params.depth_rule not in DEPTH_RULES:
        raise ValueError(f"depth_rule must be one of {DEPTH_RULES}, not {params.depth_rule!r}")
    ratio = 100.0 * pl.col("incrementRootBiomass") / pl.col("incrementRootDensity")
    usable = (pl.col("incrementRootDensity") > 0) & (pl.col("incrementRootBiomass") > 0)
    increments = (
        parse_depth_increment_ids(samples)
        .group_by("site_id", "profile", "top_cm", maintain_order=True)
        .agg(pl.when(usable).then(ratio).median().alias("measured_cm"))
        .sort("site_id", "profile", "top_cm")
    )
    step = (
        pl.when(pl.col("top_cm") < params.protocol_break_cm)
        .then(pl.lit(params.protocol_shallow_step_cm))
        .otherwise(pl.lit(params.protocol_deep_step_cm))
    )
    protocol_bottom = (
        pl.when(pl.col("top_cm") < params.protocol_max_depth_cm)
        .then(pl.min_horizontal(pl.col("top_cm") + step, pl.lit(params.protocol_max_depth_cm)))
        .otherwise(pl.col("top_cm") + step)
    )
    measured = pl.col("measured_cm").round(0)
    has_measured = pl.col("measured_cm").is_not_null() & (measured > 0)
    if params.depth_rule == "protocol":
        use_measured = pl.lit(False)
    elif params.depth_rule == "biomass_density_ratio":
        use_measured = has_measured
    else:
        whole = (pl.col("measured_cm") - measured).abs() <= params.measured_whole_cm_tolerance
        shorter = (pl.col("protocol_bottom") - pl.col("top_cm")) - measured >= params.measured_shorter_by_cm
        use_measured = has_measured & whole & shorter
    next_top = pl.col("top_cm").shift(-1).over("site_id", "profile", order_by="top_cm")
    return (
        increments.with_columns(protocol_bottom.alias("protocol_bottom"), next_top.alias("next_top_cm"))
        .with_columns(
            pl.when(use_measured)
            .then(pl.col("top_cm") + measured)
            .otherwise(pl.col("protocol_bottom"))
            .alias("bottom"),
            pl.when(use_measured).then(pl.lit("measured_thickness")).otherwise(pl.lit("protocol")).alias("rule"),
        )
        .with_columns(
            pl.when(pl.col("next_top_cm").is_not_null() & (pl.col("bottom") > pl.col("next_top_cm")))
            .then(pl.struct(bottom_cm=pl.col("next_top_cm"), depth_rule=pl.lit("capped_at_next_increment")))
            .otherwise(pl.struct(bottom_cm=pl.col("bottom"), depth_rule=pl.col("rule")))
            .alias("derived")
        )
        .select("site_id", "profile", "top_cm", pl.col("derived").struct.unnest())
    )


def root_increments(
    samples: pl.DataFrame,
    depth_increments: pl.DataFrame | None,
    params: RootProfileParameters,
) -> pl.DataFrame:
    """Live fine-root density and biomass per site, profile and increment (sections 1.1-1.3).

    `samples` are mpr_perrootsample rows (all statuses and sizes: they show
    which increments were sampled); `depth_increments` is mpr_perdepthincrement
    (depthIncrementID, topDepth, bottomDepth) when the source has it.
    Increments that were sampled but hold no live fine-root sample get zero
    (`zero_filled`), when `zero_fill_sampled_increments` is on: NEON records
    no sample for a class with no roots.
    """
    parsed = parse_depth_increment_ids(samples)
    depths = _depths(samples, depth_increments, params)
    live = (
        live_fine_roots(parsed, params)
        .group_by("site_id", "profile", "top_cm", maintain_order=True)
        .agg(
            pl.col("incrementRootDensity").sum().alias("root_density_g_m3"),
            pl.col("incrementRootBiomass").sum().alias("root_biomass_g_m2"),
            pl.col("fine_root_cutoff_mm").max().alias("fine_root_cutoff_mm"),
        )
        .with_columns(pl.lit(False).alias("zero_filled"))
    )
    if params.zero_fill_sampled_increments:
        site_cutoff = live.group_by("site_id", maintain_order=True).agg(pl.col("fine_root_cutoff_mm").max())
        sampled = parsed.select("site_id", "profile", "top_cm").unique()
        missing = (
            sampled.join(live, on=["site_id", "profile", "top_cm"], how="anti")
            .join(site_cutoff, on="site_id", how="inner")
            .with_columns(
                pl.lit(0.0).alias("root_density_g_m3"),
                pl.lit(0.0).alias("root_biomass_g_m2"),
                pl.lit(True).alias("zero_filled"),
            )
            .select(live.columns)
        )
        live = pl.concat([live, missing])
    return (
        live.join(depths, on=["site_id", "profile", "top_cm"], how="left")
        .select(
            "site_id",
            "profile",
            "top_cm",
            "bottom_cm",
            "root_density_g_m3",
            "root_biomass_g_m2",
            "fine_root_cutoff_mm",
            "depth_derived",
            "depth_rule",
            "zero_filled",
        )
        .sort("site_id", "profile", "top_cm")
    )


def published_depths(depth_increments: pl.DataFrame) -> pl.DataFrame:
    """mpr_perdepthincrement as site_id, profile, top_cm (from depthIncrementID), published_top_cm and
    published_bottom_cm (its topDepth and bottomDepth), one row per increment."""
    return (
        parse_depth_increment_ids(depth_increments)
        .select(
            "site_id",
            "profile",
            "top_cm",
            pl.col("topDepth").cast(pl.Float64).alias("published_top_cm"),
            pl.col("bottomDepth").cast(pl.Float64).alias("published_bottom_cm"),
        )
        .unique(subset=["site_id", "profile", "top_cm"], keep="first", maintain_order=True)
    )


def _depths(
    samples: pl.DataFrame, depth_increments: pl.DataFrame | None, params: RootProfileParameters
) -> pl.DataFrame:
    derived = increment_depths(samples, params).with_columns(pl.lit(True).alias("depth_derived"))
    if depth_increments is None or depth_increments.is_empty():
        return derived
    published = published_depths(depth_increments).rename({"published_bottom_cm": "bottom_cm_published"})
    merged = derived.join(published, on=["site_id", "profile", "top_cm"], how="left")
    have = pl.col("bottom_cm_published").is_not_null()
    return (
        merged.select(
            "site_id",
            "profile",
            pl.when(have).then(pl.col("published_top_cm")).otherwise(pl.col("top_cm")).alias("top_cm_out"),
            "top_cm",
            pl.when(have).then(pl.col("bottom_cm_published")).otherwise(pl.col("bottom_cm")).alias("bottom_cm"),
            pl.when(have).then(pl.lit(False)).otherwise(pl.lit(True)).alias("depth_derived"),
            pl.when(have).then(pl.lit("mpr_perdepthincrement")).otherwise(pl.col("depth_rule")).alias("depth_rule"),
        )
        .drop("top_cm")
        .rename({"top_cm_out": "top_cm"})
    )


def depth_comparison(
    samples: pl.DataFrame, depth_increments: pl.DataFrame | None, params: RootProfileParameters
) -> pl.DataFrame:
    """Where NEON publishes an increment's depths (mpr_perdepthincrement) and the samples let us derive them:
    both, side by side, so the derivation used offline can be judged against the published depths."""
    schema = {
        "site_id": pl.String,
        "profile": pl.String,
        "top_cm": pl.Float64,
        "derived_bottom_cm": pl.Float64,
        "derived_rule": pl.String,
        "published_top_cm": pl.Float64,
        "published_bottom_cm": pl.Float64,
        "bottom_difference_cm": pl.Float64,
    }
    if depth_increments is None or depth_increments.is_empty():
        return pl.DataFrame(schema=schema)
    derived = increment_depths(samples, params).rename({"bottom_cm": "derived_bottom_cm", "depth_rule": "derived_rule"})
    return (
        derived.join(published_depths(depth_increments), on=["site_id", "profile", "top_cm"], how="inner")
        .with_columns((pl.col("derived_bottom_cm") - pl.col("published_bottom_cm")).alias("bottom_difference_cm"))
        .select(list(schema))
        .cast(schema)
        .sort("site_id", "profile", "top_cm")
    )


def site_root_profiles(increments: pl.DataFrame) -> pl.DataFrame:
    """Section 1.4: per site and increment, the mean density over the profiles that sampled it.

    One row per site and increment top: where profiles ended the increment at different depths, the row
    takes the bottom most of them share (ties: the deeper). Adds mid_cm, n_profiles and the standardized
    abundance Y / max(Y) within the site.
    """
    bottoms = (
        increments.group_by("site_id", "top_cm", "bottom_cm", maintain_order=True)
        .len()
        .sort(["site_id", "top_cm", "len", "bottom_cm"], descending=[False, False, True, True])
        .unique(["site_id", "top_cm"], keep="first", maintain_order=True)
        .select("site_id", "top_cm", "bottom_cm")
    )
    profile = (
        increments.group_by("site_id", "top_cm", maintain_order=True)
        .agg(
            pl.col("root_density_g_m3").mean(),
            pl.len().cast(pl.Int64).alias("n_profiles"),
            pl.col("fine_root_cutoff_mm").max(),
            pl.col("depth_derived").any(),
        )
        .join(bottoms, on=["site_id", "top_cm"], how="left")
        .with_columns(((pl.col("top_cm") + pl.col("bottom_cm")) / 2).alias("mid_cm"))
    )
    peak = pl.col("root_density_g_m3").max().over("site_id")
    return (
        profile.with_columns(
            pl.when(peak > 0).then(pl.col("root_density_g_m3") / peak).otherwise(0.0).alias("standardized")
        )
        .select(
            "site_id",
            "top_cm",
            "bottom_cm",
            "mid_cm",
            "root_density_g_m3",
            "standardized",
            "n_profiles",
            "fine_root_cutoff_mm",
            "depth_derived",
        )
        .sort("site_id", "top_cm", "bottom_cm")
    )


def total_fine_root_biomass(increments: pl.DataFrame, params: RootProfileParameters) -> pl.DataFrame:
    """Section 1.5: per profile the sum of biomass (g/m2), then the mean over the site's profiles.

    Also gives the 4 mm-equivalent total (2 mm sites times cutoff_4mm_factor),
    for comparing absolute biomass across sites with different cutoffs.
    """
    per_profile = increments.group_by("site_id", "profile", maintain_order=True).agg(
        pl.col("root_biomass_g_m2").sum().alias("profile_biomass"),
        pl.col("bottom_cm").max().alias("deepest"),
        pl.col("fine_root_cutoff_mm").max(),
    )
    return (
        per_profile.group_by("site_id", maintain_order=True)
        .agg(
            pl.col("profile_biomass").mean().alias("total_fine_root_biomass_g_m2"),
            pl.col("fine_root_cutoff_mm").max(),
            pl.len().cast(pl.Int64).alias("n_profiles"),
            pl.col("deepest").max().alias("deepest_sample_cm"),
        )
        .with_columns(
            pl.when(pl.col("fine_root_cutoff_mm") == 2)
            .then(pl.col("total_fine_root_biomass_g_m2") * params.cutoff_4mm_factor)
            .otherwise(pl.col("total_fine_root_biomass_g_m2"))
            .alias("total_fine_root_biomass_4mm_equiv_g_m2")
        )
        .select(
            "site_id",
            "total_fine_root_biomass_g_m2",
            "total_fine_root_biomass_4mm_equiv_g_m2",
            "fine_root_cutoff_mm",
            "n_profiles",
            "deepest_sample_cm",
        )
        .sort("site_id")
    )


def profile_overlaps(increments: pl.DataFrame) -> pl.DataFrame:
    """Invariant: increments of a profile that overlap the next one (should be none)."""
    next_top = pl.col("top_cm").shift(-1).over("site_id", "profile", order_by="top_cm")
    return increments.with_columns(next_top.alias("next_top_cm")).filter(
        pl.col("next_top_cm").is_not_null() & (pl.col("bottom_cm") > pl.col("next_top_cm"))
    )


def derivation_report(increments: pl.DataFrame) -> dict[str, object]:
    """What was derived and why, for metadata: rules used, zero fills, gaps, shallow profiles."""
    next_top = pl.col("top_cm").shift(-1).over("site_id", "profile", order_by="top_cm")
    gaps = increments.with_columns(next_top.alias("n")).filter(pl.col("n") > pl.col("bottom_cm"))
    deepest = increments.group_by("site_id", maintain_order=True).agg(pl.col("bottom_cm").max()).sort("bottom_cm")
    profiles = increments.select("site_id", "profile").unique()
    non_standard = sorted(profiles.filter(~pl.col("profile").is_in(["1", "2", "3"]))["site_id"].unique().to_list())
    return {
        "depth_rules": dict(
            increments.group_by("depth_rule", maintain_order=True).len().sort("depth_rule").iter_rows()
        ),
        "zero_filled_increments": int(increments["zero_filled"].sum()),
        "profiles_with_skipped_increments": sorted(
            f"{s}.{p}" for s, p in gaps.select("site_id", "profile").unique().iter_rows()
        ),
        "sites_shallower_than_100cm": {s: d for s, d in deepest.filter(pl.col("bottom_cm") < 100).iter_rows()},
        "sites_with_profile_numbers_other_than_1_3": non_standard,
    }
