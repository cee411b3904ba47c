"""Every METHOD.md step computed from tables, declared once (see `rootassets.science.registry`).

Each step's compute function is its asset's description in the UI. Only the soil-water path (computed
inside DuckDB), raw ingestion, the marts, the figures and the report keep assets of their own in `defs/`.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass

import polars as pl

from rootassets.science.bootstrap import BootstrapParameters, bootstrap_table
from rootassets.science.classifier import (
    BIMODAL,
    ForestParameters,
    TooFewSitesError,
    classifier_tables,
    factor_columns,
    imputed_column,
)
from rootassets.science.group_tests import GroupTestParameters, group_test_table
from rootassets.science.label_robustness import RobustnessParameters, robustness_tables
from rootassets.science.modality import KDE_STEP_CM, ModalityParameters, modality_table
from rootassets.science.nutrients import NutrientParameters, nutrient_tables
from rootassets.science.paper_comparison import PAPER_CITATION, PaperComparisonParameters, paper_comparison_table
from rootassets.science.phi import PhiParameters, phi_table
from rootassets.science.phi_sensitivity import PhiSensitivityParameters, phi_sensitivity_table
from rootassets.science.registry import (
    Check,
    Frames,
    Read,
    Step,
    StepInputError,
    StepResult,
    UserFile,
    parameter_metadata,
)
from rootassets.science.release_changes import CHANGE_SCHEMA, ChangeTolerances, compare_releases
from rootassets.science.root_profiles import (
    RootProfileParameters,
    depth_comparison,
    derivation_report,
    profile_overlaps,
    root_increments,
    site_root_profiles,
    total_fine_root_biomass,
)
from rootassets.science.site_factors import NEON_FACTORS, TOPSOIL_CM, read_user_factors, site_factor_table
from rootassets.science.soil_profiles import (
    SOIL_PROPERTIES,
    horizon_properties,
    protocol_root_grid,
    soil_on_root_grid,
    values_outside_horizon_range,
)
from rootassets.science.workers import WORKERS_TAG

DEPTH_COLUMNS = {"topDepth", "bottomDepth", "depthIncrementID"}

# -- METHOD.md section 1: root depth profiles -------------------------------------------------------------


def compute_root_increments(inputs: Frames, params: RootProfileParameters) -> StepResult:
    """`harmonized.root_increments`: live fine-root density (g/m3) and biomass (g/m2) per site,
    profile and depth increment, with the fine-root cutoff (2 or 4 mm) and how the depths were
    obtained (`depth_derived`, `depth_rule`; METHOD.md section 1.1-1.3)."""
    depths = inputs["mpr_perdepthincrement"]
    usable = depths if DEPTH_COLUMNS <= set(depths.columns) else None
    increments = root_increments(inputs["mpr_perrootsample"], usable, params)
    source = "mpr_perdepthincrement" if usable is not None else "derived from depthIncrementID"
    comparison = depth_comparison(inputs["mpr_perrootsample"], usable, params)
    differing = comparison.filter(pl.col("bottom_difference_cm").abs() > 0)
    return StepResult(
        {"root_increments": increments, "increment_depth_comparison": comparison},
        {
            "root_increments": {"derivation": derivation_report(increments), "depth_source": source},
            "increment_depth_comparison": {
                "increments_compared": comparison.height,
                "bottoms_differing": differing.height,
                "sites_with_differences": sorted(differing["site_id"].unique().to_list()),
            },
        },
    )


ROOT_INCREMENT_DESCRIPTIONS = {
    "harmonized.root_increments": inspect.cleandoc(compute_root_increments.__doc__ or ""),
    "harmonized.increment_depth_comparison": "`harmonized.increment_depth_comparison`: where NEON publishes "
    "an increment's depths (mpr_perdepthincrement), the bottom derived offline from depthIncrementID and the "
    "sample's thickness next to the published one (empty when the release has no mpr_perdepthincrement).",
}


def compared_increments_exist_in_both(frame: pl.DataFrame, inputs: Frames, params: object) -> tuple[bool, dict]:
    repeated = frame.group_by("site_id", "profile", "top_cm").len().filter(pl.col("len") > 1).height
    unpublished = frame.filter(pl.col("published_bottom_cm").is_null()).height
    return not repeated and not unpublished, {"repeated_increments": repeated, "without_published_depth": unpublished}


def increments_do_not_overlap(frame: pl.DataFrame, inputs: Frames, params: object) -> tuple[bool, dict]:
    overlaps = profile_overlaps(frame)
    return overlaps.is_empty(), {"overlapping_increments": overlaps.height}


def every_site_has_a_profile(frame: pl.DataFrame, inputs: Frames, params: RootProfileParameters) -> tuple[bool, dict]:
    samples = inputs["mpr_perrootsample"]
    live = set(samples.filter(pl.col("rootStatus") == params.live_status)["site_id"].unique().to_list())
    missing = sorted(live - set(frame["site_id"].unique().to_list()))
    return not missing, {"sites_without_profile": missing, "sites": frame["site_id"].n_unique()}


def compute_root_profiles(inputs: Frames, params: None) -> StepResult:
    """`harmonized.root_profiles`: each site's fine-root profile, the mean density over the
    profiles that sampled each increment, with n_profiles, mid_cm and the standardized abundance
    Y / max(Y) (METHOD.md section 1.4)."""
    return StepResult({"root_profiles": site_root_profiles(inputs["root_increments"])})


def profiles_cover_every_site(frame: pl.DataFrame, inputs: Frames, params: object) -> tuple[bool, dict]:
    missing = sorted(set(inputs["root_increments"]["site_id"].unique().to_list()) - set(frame["site_id"].to_list()))
    return not missing and bool((frame["n_profiles"] >= 1).all()), {
        "sites": frame["site_id"].n_unique(),
        "missing_sites": missing,
    }


def compute_site_root_biomass(inputs: Frames, params: RootProfileParameters) -> StepResult:
    """`harmonized.site_root_biomass`: total fine-root biomass per site (g/m2): per profile the sum
    over increments, then the mean over profiles; also the 4 mm-equivalent total (2 mm sites x
    cutoff_4mm_factor) for comparing sites with different cutoffs (METHOD.md section 1.5)."""
    rescaling = (
        f"total_fine_root_biomass_4mm_equiv_g_m2 = 2 mm totals x {params.cutoff_4mm_factor}; "
        "use it only where absolute biomass is compared across sites"
    )
    return StepResult(
        {"site_root_biomass": total_fine_root_biomass(inputs["root_increments"], params)},
        {"site_root_biomass": {"rescaling": rescaling}},
    )


def one_row_per_site(frame: pl.DataFrame, inputs: Frames, params: object) -> tuple[bool, dict]:
    repeated = (
        frame.group_by("site_id", maintain_order=True).len().filter(pl.col("len") > 1)["site_id"].sort().to_list()
    )
    missing = sorted(set(inputs["root_increments"]["site_id"].unique().to_list()) - set(frame["site_id"].to_list()))
    return not repeated and not missing, {"repeated_sites": repeated, "missing_sites": missing}


# -- METHOD.md section 3: soil on the root grid -------------------------------------------------------------


def soil_horizons(inputs: Frames) -> pl.DataFrame:
    return horizon_properties(inputs["mgp_perhorizon"], inputs["mgp_perbiogeosample"], inputs["mgp_perbulksample"])


def site_grids(horizons: pl.DataFrame, root_grid: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Each site's root increments; NEON's protocol grid for a site with soil but no root data."""
    soil_only = sorted(set(horizons["site_id"].unique().to_list()) - set(root_grid["site_id"].unique().to_list()))
    protocol = pl.DataFrame(
        [{"site_id": s, "top_cm": a, "bottom_cm": b} for s in soil_only for a, b in protocol_root_grid()],
        schema=root_grid.schema,
    )
    return pl.concat([root_grid, protocol]), soil_only


def compute_soil_profiles(inputs: Frames, params: None) -> StepResult:
    """`harmonized.soil_profiles`: megapit soil properties (N, P, K, Ca, C, organic C, pH, sand, silt,
    clay, CEC, bulk density; NEON units in the column names) moved from horizons onto each site's
    root increments by overlap-weighted averaging, with coverage per property and overall
    (METHOD.md section 3). Sites without root data use NEON's protocol grid."""
    horizons = soil_horizons(inputs)
    grid, soil_only = site_grids(horizons, inputs["root_profiles"].select("site_id", "top_cm", "bottom_cm"))
    soil = soil_on_root_grid(horizons, grid).with_columns(
        pl.when(pl.col("site_id").is_in(soil_only))
        .then(pl.lit("protocol"))
        .otherwise(pl.lit("root_profile"))
        .alias("grid")
    )
    return StepResult(
        {"soil_profiles": soil},
        {
            "soil_profiles": {
                "units": {p.column: f"{p.unit} (NEON {p.source})" for p in SOIL_PROPERTIES},
                "sites_on_protocol_grid": soil_only,
                "horizons_used": horizons.height,
            }
        },
    )


def values_within_horizon_range(frame: pl.DataFrame, inputs: Frames, params: object) -> tuple[bool, dict]:
    outside = values_outside_horizon_range(soil_horizons(inputs), frame)
    return outside.is_empty(), {"values_outside": outside.height}


def coverage_within_unit_interval(frame: pl.DataFrame, inputs: Frames, params: object) -> tuple[bool, dict]:
    columns = [c for c in frame.columns if c.startswith("coverage")]
    bad = frame.filter(pl.any_horizontal([(pl.col(c) < 0) | (pl.col(c) > 1 + 1e-9) for c in columns]))
    return bad.is_empty(), {"rows_outside": bad.height}


# -- METHOD.md sections 2, 4, 6, 7: modality, phi, group tests, nutrients ---------------------------------


def compute_site_modality(inputs: Frames, params: ModalityParameters) -> StepResult:
    """Each site's Gaussian KDE of root depths and what it says: modes, D0/D1/D2, the label (METHOD.md
    section 2), and the curve itself."""
    table, curves = modality_table(inputs["root_profiles"], params)
    biomass = inputs["site_root_biomass"].select("site_id", "total_fine_root_biomass_g_m2")
    table = table.join(biomass, on="site_id", how="left")
    counts = dict(table.group_by("modality", maintain_order=True).len().sort("modality").iter_rows())
    return StepResult(
        {"site_modality": table, "site_kde": curves},
        {
            "site_modality": {
                "modality_counts": counts,
                "bimodal_sites": table.filter(pl.col("modality") == BIMODAL)["site_id"].to_list(),
            },
            "site_kde": {"step_cm": KDE_STEP_CM},
        },
    )


SITE_MODALITY_DESCRIPTIONS = {
    "analysis.site_modality": "`analysis.site_modality`: each site's Gaussian KDE of root depths (bandwidth 15 cm "
    "in depth units, 2^15 grid points, as R's density), its modes, D0 (highest mode), D2 (highest secondary mode "
    "reaching 10% of D0), D1 (lowest antimode between), the label bimodal/unimodal, the heights and their ratio, "
    "and the site's total fine-root biomass (METHOD.md section 2).",
    "analysis.site_kde": "`analysis.site_kde`: each site's root-depth KDE (the curve behind site_modality) every "
    "1 cm, used for phi read off the smoothed profile and for figures.",
}


def compute_phi(inputs: Frames, params: PhiParameters) -> StepResult:
    """`analysis.phi`: phi = Y(D2) / Y(D1) for root biomass and every harmonized soil property, with the
    site's own D1/D2 when bimodal and 70/100 cm when unimodal. `method` says how Y(D) was read:
    `increment` (the increment containing D) or `kde` (the smoothed root profile) (METHOD.md section 4)."""
    table = phi_table(
        inputs["site_modality"], inputs["root_profiles"], inputs["soil_profiles"], inputs["site_kde"], params
    )
    return StepResult(
        {"phi": table},
        {"phi": {"methods": "increment: value of the increment containing D; kde: root KDE density at D"}},
    )


def compute_group_tests(inputs: Frames, params: GroupTestParameters) -> StepResult:
    """`analysis.group_tests`: bimodal vs unimodal sites. Continuous factors and phi: log10, F test of equal
    variances, then Student's or Welch's t. Modality vs land cover and vs growth form: Pearson chi-square
    with a Monte Carlo p from 2000 tables with the observed margins (METHOD.md section 6). Soil-water phi (each
    site's mean over its 30-minute steps; sites with too little data left out and named) is one more row."""
    table = group_test_table(inputs["site_factors"], inputs["phi"], params, inputs["soil_water_statistics"])
    return StepResult({"group_tests": table})


def compute_nutrients(inputs: Frames, params: NutrientParameters) -> StepResult:
    """Whether deep soil nutrients are under-exploited: the relative nutrient exponents per site, fitted
    across all profiles as the paper does (and on the site-mean profile, a labelled alternative), the points
    fitted, and their LOESS curves at bimodal sites (METHOD.md section 7)."""
    modality = dict(inputs["site_modality"].select("site_id", "modality").iter_rows())
    out = nutrient_tables(inputs["root_increments"], inputs["root_profiles"], inputs["soil_profiles"], modality, params)
    return StepResult(
        {name: out[name] for name in NUTRIENT_TABLES},
        {"nutrient_exponents": {"summary": out["summary"].to_dicts()}},
    )


def compute_phi_sensitivity(inputs: Frames, params: PhiSensitivityParameters) -> StepResult:
    """`analysis.phi_sensitivity` (beyond the paper): the phi group test (bimodal vs unimodal, METHOD.md
    sections 4 and 6) of every property over a grid of the depths assumed for unimodal sites (default 70 and
    100 cm), so a reader sees whether a difference survives other reasonable choices."""
    table = phi_sensitivity_table(
        inputs["site_modality"], inputs["root_profiles"], inputs["soil_profiles"], inputs["site_kde"], params
    )
    root = table.filter((pl.col("property") == "root_biomass") & (pl.col("method") == "increment"))
    significant = int((root["p_value"] < params.alpha).sum())
    return StepResult(
        {"phi_sensitivity": table},
        {
            "phi_sensitivity": {
                "note": "beyond the paper",
                "root_biomass_increment_significant": f"{significant} of {root.height} (D1, D2) pairs "
                f"at p < {params.alpha}",
            }
        },
    )


def compute_site_label_robustness(inputs: Frames, params: RobustnessParameters) -> StepResult:
    """Beyond the paper: how far each site's modality label holds. Resampling its profiles (every distinct
    resample, with its probability), the label over a grid of bandwidths and secondary thresholds with the
    critical bandwidth, and the secondary mode's prominence over the antimode."""
    table, grid = robustness_tables(inputs["root_increments"], inputs["root_profiles"], inputs["site_modality"], params)
    note = "beyond the paper (Lu et al. 2025 report one label per site); KDEs by R's binned FFT"
    return StepResult(
        {"site_label_robustness": table, "site_label_sensitivity": grid},
        {"site_label_robustness": {"note": note}, "site_label_sensitivity": {"note": note}},
    )


ROBUSTNESS_DESCRIPTIONS = {
    "analysis.site_label_robustness": "`analysis.site_label_robustness` (beyond the paper): per site, the share "
    "of resample probability labelled bimodal (every distinct resample of its profiles, exactly), the share of a "
    "bandwidth x threshold grid labelled bimodal, the critical bandwidth from which the KDE has one mode, and "
    "the secondary mode's prominence over the antimode ((f(D2) - f(D1)) / f(D2)).",
    "analysis.site_label_sensitivity": "`analysis.site_label_sensitivity` (beyond the paper): each site's label at "
    "every kernel bandwidth and secondary threshold of the grid.",
}


def compute_release_changes(inputs: Frames, params: ChangeTolerances) -> StepResult:
    """`analysis.release_changes`: what changed per site since the previous release present: sites added or
    removed, modality label changes, D0/D1/D2 shifts, total biomass change, and phi/exponent values that moved
    beyond a tolerance. Empty for the first release."""
    old = inputs["previous_site_modality"]
    before = old["release"][0] if old.height else None
    if before is None:
        changes = pl.DataFrame(schema=CHANGE_SCHEMA)
    else:
        changes = compare_releases(
            *(inputs[f"{age}{t}"] for t in ("site_modality", "phi", "nutrient_exponents") for age in ("previous_", "")),
            params,
        )
    summary = dict(changes.group_by("change").len().sort("change").iter_rows()) if changes.height else {}
    return StepResult(
        {"release_changes": changes.with_columns(pl.lit(before, dtype=pl.String).alias("previous_release"))},
        {"release_changes": {"previous_release": before or "none", "changes": summary}},
    )


def compute_site_modality_bootstrap(inputs: Frames, params: BootstrapParameters) -> StepResult:
    """`analysis.site_modality_bootstrap` (optional, beyond the paper: METHOD.md 2.5): per site, the
    profiles resampled with replacement `resamples` times, each resample's site profile labelled as in
    section 2 (KDE by R's binned FFT), and the share of resamples agreeing with the site's label.
    Not part of main_job: materialize it on its own (`rootassets materialize --select
    key:analysis/site_modality_bootstrap`)."""
    table = bootstrap_table(inputs["root_increments"], inputs["site_modality"], params)
    return StepResult(
        {"site_modality_bootstrap": table},
        {"site_modality_bootstrap": {"kde": "binned FFT (R density.default)"}},
    )


NUTRIENT_TABLES = ("nutrient_exponents", "nutrient_exponents_site_mean", "nutrient_points", "nutrient_loess")
NUTRIENT_DESCRIPTIONS = {
    "analysis.nutrient_exponents": "`analysis.nutrient_exponents`: per site and nutrient (N, P, K, Ca) the "
    "exponent b of log10(X / Y_root) = a + b * depth fitted across all profiles (one point per profile and "
    "increment, each profile's surface = 1, as the paper), with intercept, r2, n and a 95% band of b; "
    "positive b means nutrients grow relatively richer with depth (METHOD.md 7).",
    "analysis.nutrient_exponents_site_mean": "`analysis.nutrient_exponents_site_mean`: the same fit on the "
    "site-mean root profile (one point per increment): a labelled alternative to the paper's across-profile fit.",
    "analysis.nutrient_points": "`analysis.nutrient_points`: the points behind analysis.nutrient_exponents: "
    "per site, profile, nutrient and increment top, X / Y_root relative to the profile's surface.",
    "analysis.nutrient_loess": "`analysis.nutrient_loess`: LOESS curves (local quadratic, span from the run's "
    "parameters) of log10 relative nutrient concentration against depth, on the across-profile points of "
    "bimodal sites, as fitted points with an approximate 95% band.",
}

# -- METHOD.md section 5: the random forest of site factors -------------------------------------------------


@dataclass(frozen=True)
class SiteFactorParameters:
    """An optional user CSV of extra site factors (a site column and numeric columns), joined to NEON's."""

    extra_factors_csv: str | None = None
    extra_factor_columns: tuple[str, ...] = ()  # the CSV's columns to use (default: all, all numeric)


def compute_site_factors(inputs: Frames, params: SiteFactorParameters) -> StepResult:
    """`analysis.site_factors`: one row per site with the factors of METHOD.md section 5 (total fine-root
    biomass as 4 mm-equivalent g/m2, elevation, MAT, MAP, canopy height, green days, land cover, and soil
    pH, sand, clay, organic C and CEC over 0-30 cm), units in the column names, plus optional user factors."""
    modality = inputs["site_modality"].select("site_id", "modality")
    extra, extra_factors = None, []
    if "extra_factors" in inputs:
        try:
            extra, extra_factors = read_user_factors(
                inputs["extra_factors"], str(params.extra_factors_csv), params.extra_factor_columns
            )
        except ValueError as exc:
            raise StepInputError(f"extra factors: {exc}") from exc
    table = site_factor_table(
        modality["site_id"].to_list(),
        inputs["site_root_biomass"],
        inputs["field_site_metadata"],
        inputs["site_land_cover"],
        inputs["soil_profiles"],
        extra,
    ).join(modality, on="site_id", how="left")
    factors = [*NEON_FACTORS, *extra_factors]
    incomplete = table.filter(pl.any_horizontal([pl.col(f.column).is_null() for f in factors]))["site_id"].to_list()
    table = table.with_columns(imputed_column(table, *factor_columns(table)))
    return StepResult(
        {"site_factors": table},
        {
            "site_factors": {
                "factors": {f.column: f.unit for f in factors},
                "sites_with_missing_factors": incomplete,
                "imputation": "the classifier fills a missing factor as randomForest's na.roughfix (median over "
                "sites, or the most frequent level); imputed_factors lists what it fills per site",
                "extra_factors_csv": params.extra_factors_csv or "none",
                "topsoil_cm": TOPSOIL_CM,
            }
        },
    )


def compute_classifier(inputs: Frames, params: ForestParameters) -> StepResult:
    """The random forest of site factors predicting modality, as R ranger (METHOD.md section 5): out-of-bag
    performance, Gini importance with backward elimination, the run without total root biomass, a seed spread,
    and the fitted model."""
    try:
        out = classifier_tables(inputs["site_factors"], params)
    except TooFewSitesError as exc:
        common = {"fitted": False, "not_fitted_because": str(exc)}
        performance = pl.DataFrame(schema={"run": pl.String, "metric": pl.String, "value": pl.Float64})
        importance = pl.DataFrame(
            schema={
                "run": pl.String,
                "factor": pl.String,
                "importance": pl.Float64,
                "rank": pl.Int64,
                "kept": pl.Boolean,
            }
        )
        return StepResult(
            {"classifier_performance": performance, "classifier_importance": importance},
            {name: common for name in CLASSIFIER_OUTPUTS},
            artifacts={"classifier_model": None},
            notes=[f"classifier not fitted: {exc}"],
        )
    training_version = hashlib.sha256(out.frame.sort("site_id").write_csv().encode()).hexdigest()[:16]
    imputed = {
        site: text for site, text in inputs["site_factors"].select("site_id", "imputed_factors").iter_rows() if text
    }
    common = {"sites_used": out.frame.height, "sites_left_out": out.dropped, "sites_with_imputed_factors": imputed}
    model = {
        "forest": out.full.forest,
        "factors": out.names,
        "categorical": sorted(out.categorical),
        "parameters": parameter_metadata(params),
        "training_data_version": training_version,
    }
    return StepResult(
        {"classifier_performance": out.performance, "classifier_importance": out.importance},
        {
            "classifier_model": {**common, "features": out.names, "training_data_version": training_version},
            "classifier_performance": {
                **common,
                "confusion_all_factors": out.full.performance.confusion,
                "overall_accuracy": out.full.performance.overall_accuracy,
                "bimodal_accuracy": out.full.performance.class_accuracy[BIMODAL],
            },
            "classifier_importance": {**common, "kept_factors": out.kept, "elimination_steps": out.steps},
        },
        artifacts={"classifier_model": model},
    )


def compute_paper_comparison(inputs: Frames, params: PaperComparisonParameters) -> StepResult:
    """`analysis.paper_comparison`: the paper's headline results (Lu et al. 2025, cited as published, with
    where each is printed) next to this release's, each marked reproduced or not against its stated tolerance,
    and where each platform number comes from; then the same comparisons on the 2 mm fine-root cutoff sites
    only, as a sensitivity row (beyond the paper). The paper's numbers are never used by the method."""
    table = paper_comparison_table(
        inputs["site_modality"],
        inputs["group_tests"],
        inputs["classifier_performance"],
        inputs["classifier_importance"],
        inputs["site_factors"],
        inputs["site_root_biomass"],
        params,
    )
    compared = table.filter(pl.col("reproduced").is_not_null())
    return StepResult(
        {"paper_comparison": table},
        {
            "paper_comparison": {
                "paper": PAPER_CITATION,
                "results_compared": compared.height,
                "reproduced": int(compared["reproduced"].sum()),
                "not_reproduced": compared.filter(~pl.col("reproduced"))["result"].to_list(),
            }
        },
    )


CLASSIFIER_OUTPUTS = ("classifier_model", "classifier_performance", "classifier_importance")
CLASSIFIER_DESCRIPTIONS = {
    "analysis.classifier_model": "The fitted random forest of site factors predicting modality (METHOD.md section "
    "5), saved with its parameters, feature list and training-data version.",
    "analysis.classifier_performance": "`analysis.classifier_performance`: out-of-bag hard-vote confusion matrix, "
    "overall and per-class accuracy with the minority re-weighted vote, for all factors, the kept set, the run "
    "without total root biomass, and the spread over many seeds.",
    "analysis.classifier_importance": "`analysis.classifier_importance`: ranked Gini importance, the set kept by "
    "backward elimination, and the ranking without total root biomass.",
}

RAW_GOOD = {"good_rows": True}

STEPS: tuple[Step, ...] = (
    Step(
        "root_increments",
        compute_root_increments,
        (Read("raw.mpr_perrootsample", **RAW_GOOD), Read("raw.mpr_perdepthincrement", **RAW_GOOD)),
        ("harmonized.root_increments", "harmonized.increment_depth_comparison"),
        RootProfileParameters,
        (
            Check(
                "root_increments",
                "increments_do_not_overlap",
                "Within each profile, an increment ends at or above the next one's top.",
                increments_do_not_overlap,
            ),
            Check(
                "increment_depth_comparison",
                "compared_increments_exist_in_both",
                "Each compared increment appears once, with both its derived and its published bottom.",
                compared_increments_exist_in_both,
            ),
            Check(
                "root_increments",
                "every_site_has_a_profile",
                "Every site with live fine-root samples has at least one profile.",
                every_site_has_a_profile,
            ),
        ),
        group="harmonized",
        descriptions=ROOT_INCREMENT_DESCRIPTIONS,
    ),
    Step(
        "root_profiles",
        compute_root_profiles,
        (Read("harmonized.root_increments"),),
        ("harmonized.root_profiles",),
        None,
        (
            Check(
                "root_profiles",
                "profiles_cover_every_site",
                "Every site of root_increments has a profile, each row backed by >= 1 profile.",
                profiles_cover_every_site,
            ),
        ),
        group="harmonized",
    ),
    Step(
        "site_root_biomass",
        compute_site_root_biomass,
        (Read("harmonized.root_increments"),),
        ("harmonized.site_root_biomass",),
        RootProfileParameters,
        (
            Check(
                "site_root_biomass",
                "one_row_per_site",
                "Exactly one row per site of root_increments, none missing, none repeated.",
                one_row_per_site,
            ),
        ),
        group="harmonized",
    ),
    Step(
        "soil_profiles",
        compute_soil_profiles,
        (
            Read("raw.mgp_perhorizon", **RAW_GOOD),
            Read("raw.mgp_perbiogeosample", **RAW_GOOD),
            Read("raw.mgp_perbulksample", **RAW_GOOD),
            Read("harmonized.root_profiles"),
        ),
        ("harmonized.soil_profiles",),
        None,
        (
            Check(
                "soil_profiles",
                "values_within_horizon_range",
                "Each harmonized value lies between the min and max of the horizons it came from.",
                values_within_horizon_range,
            ),
            Check(
                "soil_profiles",
                "coverage_within_unit_interval",
                "Every coverage column lies within [0, 1].",
                coverage_within_unit_interval,
            ),
        ),
        group="harmonized",
    ),
    Step(
        "site_modality",
        compute_site_modality,
        (Read("harmonized.root_profiles"), Read("harmonized.site_root_biomass")),
        ("analysis.site_modality", "analysis.site_kde"),
        ModalityParameters,
        kinds=frozenset({"duckdb", "numpy"}),
        descriptions=SITE_MODALITY_DESCRIPTIONS,
    ),
    Step(
        "phi",
        compute_phi,
        (
            Read("analysis.site_modality"),
            Read("analysis.site_kde"),
            Read("harmonized.root_profiles"),
            Read("harmonized.soil_profiles"),
        ),
        ("analysis.phi",),
        PhiParameters,
        kinds=frozenset({"duckdb", "numpy"}),
    ),
    Step(
        "site_factors",
        compute_site_factors,
        (
            Read("raw.field_site_metadata", **RAW_GOOD),
            Read("raw.site_land_cover", **RAW_GOOD),
            Read("harmonized.site_root_biomass"),
            Read("harmonized.soil_profiles"),
            Read("analysis.site_modality"),
        ),
        ("analysis.site_factors",),
        SiteFactorParameters,
        files=(UserFile("extra_factors", "extra_factors_csv"),),
    ),
    Step(
        "classifier",
        compute_classifier,
        (Read("analysis.site_factors"),),
        ("analysis.classifier_performance", "analysis.classifier_importance"),
        ForestParameters,
        kinds=frozenset({"duckdb", "sklearn"}),
        descriptions=CLASSIFIER_DESCRIPTIONS,
        tags=WORKERS_TAG,
        artifacts={"analysis.classifier_model": "models/modality_forest.joblib"},
    ),
    Step(
        "group_tests",
        compute_group_tests,
        (Read("analysis.site_factors"), Read("analysis.phi"), Read("analysis.soil_water_statistics")),
        ("analysis.group_tests",),
        GroupTestParameters,
        kinds=frozenset({"duckdb", "scipy"}),
    ),
    Step(
        "nutrients",
        compute_nutrients,
        (
            Read("harmonized.soil_profiles"),
            Read("harmonized.root_increments"),
            Read("harmonized.root_profiles"),
            Read("analysis.site_modality"),
        ),
        tuple(f"analysis.{t}" for t in NUTRIENT_TABLES),
        NutrientParameters,
        kinds=frozenset({"duckdb"}),
        descriptions=NUTRIENT_DESCRIPTIONS,
    ),
    Step(
        "paper_comparison",
        compute_paper_comparison,
        (
            Read("analysis.site_modality"),
            Read("analysis.group_tests"),
            Read("analysis.classifier_performance"),
            Read("analysis.classifier_importance"),
            Read("analysis.site_factors"),
            Read("harmonized.site_root_biomass"),
        ),
        ("analysis.paper_comparison",),
        PaperComparisonParameters,
        kinds=frozenset({"duckdb", "scipy"}),
    ),
    Step(
        "phi_sensitivity",
        compute_phi_sensitivity,
        (
            Read("analysis.site_modality"),
            Read("analysis.site_kde"),
            Read("harmonized.root_profiles"),
            Read("harmonized.soil_profiles"),
        ),
        ("analysis.phi_sensitivity",),
        PhiSensitivityParameters,
        kinds=frozenset({"duckdb", "scipy"}),
    ),
    Step(
        "site_label_robustness",
        compute_site_label_robustness,
        (Read("harmonized.root_increments"), Read("harmonized.root_profiles"), Read("analysis.site_modality")),
        ("analysis.site_label_robustness", "analysis.site_label_sensitivity"),
        RobustnessParameters,
        kinds=frozenset({"duckdb", "numpy"}),
        descriptions=ROBUSTNESS_DESCRIPTIONS,
        tags=WORKERS_TAG,
    ),
    Step(
        "release_changes",
        compute_release_changes,
        tuple(
            Read(f"analysis.{t}", previous_release=previous)
            for t in ("site_modality", "phi", "nutrient_exponents")
            for previous in (False, True)
        ),
        ("analysis.release_changes",),
        ChangeTolerances,
        kinds=frozenset({"duckdb"}),
    ),
    Step(
        "site_modality_bootstrap",
        compute_site_modality_bootstrap,
        (Read("harmonized.root_increments"), Read("analysis.site_modality")),
        ("analysis.site_modality_bootstrap",),
        BootstrapParameters,
        group="analysis_optional",
        kinds=frozenset({"duckdb", "numpy"}),
        tags={"rootassets/optional": "true"},
    ),
)

__all__ = ["STEPS", "parameter_metadata"]
