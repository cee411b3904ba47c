"""The paper's headline results next to the platform's, each marked reproduced or not against a stated tolerance.

The paper's numbers are cited as published in Lu et al. (2025), "A continental scale analysis reveals widespread
root bimodality", Nature Communications, doi:10.1038/s41467-025-60055-2: its abstract and the captions of its
figures 2 and 3, each row saying where. They are read here and nowhere else, and never feed the method: the
platform computes its own numbers from METHOD.md and this table only sets the two side by side.

A sensitivity row (beyond the paper) repeats the comparisons on the sites whose fine roots were sorted with the
2 mm cutoff only, where measured biomass needs no rescaling between cutoffs; it has no paper value.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from rootassets.science.group_tests import GroupTestParameters, chi_square_monte_carlo, two_group_test

PAPER_DOI = "10.1038/s41467-025-60055-2"
PAPER_CITATION = (
    "Lu et al. (2025) A continental scale analysis reveals widespread root bimodality. "
    f"Nature Communications. doi:{PAPER_DOI}"
)
SENSITIVITY_SUBSET = "sites with the 2 mm fine-root cutoff (beyond the paper)"
ALL_SITES = "all sites"


@dataclass(frozen=True)
class PaperComparisonParameters:
    relative_tolerance: float = 0.10  # a mean or statistic within 10% of the paper's
    p_value_factor: float = 3.0  # a p-value within a factor of 3 of the paper's ...
    alpha: float = 0.05  # ... and on the same side of alpha
    sensitivity_cutoff_mm: int = 2

    def as_metadata(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Published:
    """One number as the paper prints it, with where it is printed and how it is compared."""

    key: str
    claim: str
    value: float | str
    printed: str
    where: str
    kind: str  # exact | relative | p_value | same_test | at_least_half | greater


PUBLISHED: tuple[Published, ...] = (
    Published("n_sites", "megapit sites analysed", 44, "44 sites", "Abstract", "exact"),
    Published("n_bimodal", "bimodal sites", 9, "bimodal (n = 9)", "Fig. 2b and 3c captions", "exact"),
    Published("n_unimodal", "unimodal sites", 35, "unimodal (n = 35)", "Fig. 2b and 3c captions", "exact"),
    Published(
        "biomass_unimodal_g_m2",
        "total fine-root biomass of unimodal sites (g/m2; platform: geometric mean of measured totals)",
        990.0,
        "990 g/m2",
        "Fig. 2b caption",
        "relative",
    ),
    Published(
        "biomass_bimodal_g_m2",
        "total fine-root biomass of bimodal sites (g/m2; platform: geometric mean of measured totals)",
        368.0,
        "368 g/m2",
        "Fig. 2b caption",
        "relative",
    ),
    Published(
        "biomass_test",
        "test of total biomass by modality",
        "student_t",
        "Student's t-test",
        "Fig. 2b caption",
        "same_test",
    ),
    Published("biomass_p", "p of total biomass by modality", 0.004, "p = 0.004", "Fig. 2b caption", "p_value"),
    Published(
        "land_cover_chi2", "chi-square of modality vs land cover", 9.6, "chi2 = 9.6", "Fig. 2c caption", "relative"
    ),
    Published("land_cover_p", "p of modality vs land cover", 0.019, "p = 0.019", "Fig. 2c caption", "p_value"),
    Published(
        "shrubland_over_grassland",
        "bimodality more frequent in shrublands than grasslands (share of bimodal sites)",
        "shrubland > grassland",
        "more frequent in shrublands than grasslands",
        "Abstract; Fig. 2c caption",
        "greater",
    ),
    Published("n_factors", "site-level factors in the random forest", 12, "12 factors", "Fig. 2a caption", "exact"),
    Published(
        "top_factor",
        "most important factor (Gini importance, all factors)",
        "total fine root biomass",
        "total fine root biomass (g/m2) ... the most important factor",
        "Fig. 2a caption",
        "same_test",
    ),
    Published(
        "d2_below_1m",
        "bimodal sites whose secondary peak (D2) lies below 1 m ('often': read here as at least half)",
        "at least half",
        "secondary biomass peaks often below 1 m",
        "Abstract",
        "at_least_half",
    ),
    Published(
        "phi_root_test",
        "test of phi (root biomass) by modality",
        "welch_t",
        "Welch's t-test",
        "Fig. 3c caption",
        "same_test",
    ),
    Published(
        "phi_root_p", "p of phi (root biomass) by modality", 2.4e-06, "p = 2.4e-06", "Fig. 3c caption", "p_value"
    ),
    Published("phi_n_n_bimodal", "bimodal sites with phi (soil N)", 7, "bimodal (n = 7)", "Fig. 3d caption", "exact"),
    Published(
        "phi_n_n_unimodal", "unimodal sites with phi (soil N)", 27, "unimodal (n = 27)", "Fig. 3d caption", "exact"
    ),
    Published(
        "phi_n_test", "test of phi (soil N) by modality", "welch_t", "Welch's t-test", "Fig. 3d caption", "same_test"
    ),
    Published("phi_n_p", "p of phi (soil N) by modality", 0.013, "p = 0.013", "Fig. 3d caption", "p_value"),
)

BIOMASS = "total_fine_root_biomass"
PHI_ROOT = "phi_root_biomass_increment"
PHI_N = "phi_nitrogen_tot_g_kg_increment"
TOP_FACTOR_COLUMNS = ("total_fine_root_biomass_4mm_equiv_g_m2", "total_fine_root_biomass_g_m2")

COMPARISON_SCHEMA = {
    "position": pl.Int64,
    "result": pl.String,
    "claim": pl.String,
    "subset": pl.String,
    "paper_value": pl.String,
    "paper_number": pl.Float64,
    "paper_printed": pl.String,
    "paper_source": pl.String,
    "paper_doi": pl.String,
    "platform_value": pl.String,
    "platform_number": pl.Float64,
    "platform_source": pl.String,
    "tolerance": pl.String,
    "reproduced": pl.Boolean,
}


def tolerance_text(kind: str, params: PaperComparisonParameters) -> str:
    return {
        "exact": "equal",
        "relative": f"within {params.relative_tolerance:.0%} of the paper's value",
        "p_value": f"within a factor of {params.p_value_factor:g} and on the same side of {params.alpha:g}",
        "same_test": "the same",
        "at_least_half": "at least half of the bimodal sites",
        "greater": "shrubland share greater than grassland share",
    }[kind]


def within(kind: str, paper: float | str, platform: float | str | None, params: PaperComparisonParameters) -> bool:
    """Whether `platform` agrees with `paper` under the tolerance of `kind` (False when the platform has none)."""
    if platform is None or (isinstance(platform, float) and math.isnan(platform)):
        return False
    if kind == "exact":
        return float(platform) == float(paper)
    if kind == "relative":
        return abs(float(platform) - float(paper)) <= params.relative_tolerance * abs(float(paper))
    if kind == "p_value":
        p, q = float(paper), float(platform)
        if q <= 0:
            return False
        same_side = (p < params.alpha) == (q < params.alpha)
        return same_side and abs(math.log10(q / p)) <= math.log10(params.p_value_factor)
    if kind == "same_test":
        return str(platform) == str(paper)
    if kind == "at_least_half":
        return float(platform) >= 0.5
    if kind == "greater":
        return bool(platform)
    raise ValueError(f"unknown comparison kind {kind!r}")


def _shown(value: float | str | bool | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e6):
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.2e}" if abs(value) < 1e-3 else f"{value:.4g}"
    return str(value)


def _number(value: float | str | bool | None) -> float | None:
    """The value as a number when it is one (counts, means, statistics, p-values), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _test_row(tests: pl.DataFrame, name: str) -> dict[str, object]:
    row = tests.filter(pl.col("name") == name)
    return row.row(0, named=True) if row.height else {}


def _land_cover_shares(factors: pl.DataFrame) -> dict[str, float]:
    labelled = factors.filter(pl.col("land_cover").is_not_null() & pl.col("modality").is_not_null())
    shares = labelled.group_by("land_cover").agg((pl.col("modality") == "bimodal").mean().alias("share"))
    return dict(shares.iter_rows())


def platform_values(
    modality: pl.DataFrame,
    tests: pl.DataFrame,
    performance: pl.DataFrame,
    importance: pl.DataFrame,
    factors: pl.DataFrame,
) -> dict[str, tuple[float | str | None, str]]:
    """The platform's value of every published result, with the table (and row) it comes from."""
    labelled = modality.filter(pl.col("modality").is_not_null())
    bimodal = labelled.filter(pl.col("modality") == "bimodal")
    biomass, land, phi_root, phi_n = (_test_row(tests, n) for n in (BIOMASS, "land_cover", PHI_ROOT, PHI_N))
    n_factors = performance.filter((pl.col("run") == "all_factors") & (pl.col("metric") == "n_factors"))["value"]
    top = importance.filter((pl.col("run") == "all_factors") & (pl.col("rank") == 1))["factor"]
    shares = _land_cover_shares(factors)
    shrub, grass = shares.get("shrubland"), shares.get("rangeland/grassland")
    deep = bimodal.filter(pl.col("d2_cm") > 100).height / bimodal.height if bimodal.height else None
    t = "analysis.group_tests"
    return {
        "n_sites": (labelled.height, "analysis.site_modality: labelled sites"),
        "n_bimodal": (bimodal.height, "analysis.site_modality: modality = 'bimodal'"),
        "n_unimodal": (labelled.height - bimodal.height, "analysis.site_modality: modality = 'unimodal'"),
        "biomass_unimodal_g_m2": (biomass.get("geometric_mean_unimodal"), f"{t}[{BIOMASS}].geometric_mean_unimodal"),
        "biomass_bimodal_g_m2": (biomass.get("geometric_mean_bimodal"), f"{t}[{BIOMASS}].geometric_mean_bimodal"),
        "biomass_test": (biomass.get("test"), f"{t}[{BIOMASS}].test"),
        "biomass_p": (biomass.get("p_value"), f"{t}[{BIOMASS}].p_value"),
        "land_cover_chi2": (land.get("statistic"), f"{t}[land_cover].statistic"),
        "land_cover_p": (land.get("p_value"), f"{t}[land_cover].p_value (Monte Carlo)"),
        "shrubland_over_grassland": (
            None if shrub is None or grass is None else shrub > grass,
            f"analysis.site_factors: bimodal share shrubland {_shown(shrub)}, grassland {_shown(grass)}",
        ),
        "n_factors": (
            float(n_factors[0]) if n_factors.len() else None,
            "analysis.classifier_performance[all_factors].n_factors",
        ),
        "top_factor": (
            ("total fine root biomass" if top[0] in TOP_FACTOR_COLUMNS else top[0]) if top.len() else None,
            f"analysis.classifier_importance[all_factors] rank 1: {top[0] if top.len() else 'none'}",
        ),
        "d2_below_1m": (deep, "analysis.site_modality: share of bimodal sites with d2_cm > 100"),
        "phi_root_test": (phi_root.get("test"), f"{t}[{PHI_ROOT}].test"),
        "phi_root_p": (phi_root.get("p_value"), f"{t}[{PHI_ROOT}].p_value"),
        "phi_n_n_bimodal": (phi_n.get("n_bimodal"), f"{t}[{PHI_N}].n_bimodal"),
        "phi_n_n_unimodal": (phi_n.get("n_unimodal"), f"{t}[{PHI_N}].n_unimodal"),
        "phi_n_test": (phi_n.get("test"), f"{t}[{PHI_N}].test"),
        "phi_n_p": (phi_n.get("p_value"), f"{t}[{PHI_N}].p_value"),
    }


def sensitivity_rows(
    factors: pl.DataFrame, biomass: pl.DataFrame, params: PaperComparisonParameters
) -> list[dict[str, object]]:
    """The site count, biomass comparison and land-cover test again on the sites of one fine-root cutoff only."""
    subset = factors.join(
        biomass.filter(pl.col("fine_root_cutoff_mm") == params.sensitivity_cutoff_mm).select("site_id"), on="site_id"
    ).filter(pl.col("modality").is_not_null())
    source = "analysis.site_factors joined to harmonized.site_root_biomass (fine_root_cutoff_mm = "
    source += f"{params.sensitivity_cutoff_mm}), group test recomputed"
    groups = [subset.filter(pl.col("modality") == m) for m in ("bimodal", "unimodal")]
    test = two_group_test(
        groups[0]["total_fine_root_biomass_g_m2"].to_numpy(),
        groups[1]["total_fine_root_biomass_g_m2"].to_numpy(),
        GroupTestParameters(alpha=params.alpha),
        groups[0]["site_id"].to_list(),
        groups[1]["site_id"].to_list(),
    )
    labelled = subset.filter(pl.col("land_cover").is_not_null())
    chi2, chi_p = (None, None)
    if labelled.height and labelled["modality"].n_unique() > 1:
        chi2, chi_p, _ = chi_square_monte_carlo(
            labelled["modality"].to_numpy(), labelled["land_cover"].to_numpy(), GroupTestParameters(alpha=params.alpha)
        )
    values = {
        "n_sites": subset.height,
        "n_bimodal": groups[0].height,
        "n_unimodal": groups[1].height,
        "biomass_unimodal_g_m2": test.geometric_mean_unimodal,
        "biomass_bimodal_g_m2": test.geometric_mean_bimodal,
        "biomass_test": test.test,
        "biomass_p": test.p_value,
        "land_cover_chi2": chi2,
        "land_cover_p": chi_p,
    }
    claims = {p.key: p.claim for p in PUBLISHED}
    return [
        {
            "result": key,
            "claim": claims[key],
            "subset": SENSITIVITY_SUBSET,
            "paper_value": None,
            "paper_number": None,
            "paper_printed": None,
            "paper_source": None,
            "paper_doi": None,
            "platform_value": _shown(value),
            "platform_number": _number(value),
            "platform_source": source,
            "tolerance": "sensitivity: not compared",
            "reproduced": None,
        }
        for key, value in values.items()
    ]


def paper_comparison_table(
    modality: pl.DataFrame,
    tests: pl.DataFrame,
    performance: pl.DataFrame,
    importance: pl.DataFrame,
    factors: pl.DataFrame,
    biomass: pl.DataFrame,
    params: PaperComparisonParameters,
) -> pl.DataFrame:
    """One row per published result (all sites), then the sensitivity rows (2 mm cutoff sites); `position`
    keeps that order for readers."""
    platform = platform_values(modality, tests, performance, importance, factors)
    rows = []
    for published in PUBLISHED:
        value, source = platform[published.key]
        if isinstance(value, np.generic):
            value = value.item()
        rows.append(
            {
                "result": published.key,
                "claim": published.claim,
                "subset": ALL_SITES,
                "paper_value": _shown(published.value),
                "paper_number": _number(published.value),
                "paper_printed": published.printed,
                "paper_source": published.where,
                "paper_doi": PAPER_DOI,
                "platform_value": _shown(value),
                "platform_number": _number(value),
                "platform_source": source,
                "tolerance": tolerance_text(published.kind, params),
                "reproduced": within(published.kind, published.value, value, params),
            }
        )
    rows += sensitivity_rows(factors, biomass, params)
    return pl.DataFrame([{"position": i, **row} for i, row in enumerate(rows, start=1)], schema=COMPARISON_SCHEMA)
