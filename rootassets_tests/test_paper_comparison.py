"""The paper-vs-platform table (issue 16 item 8): each published result once, compared under its stated
tolerance, every platform value taken from the tables it names, and the 2 mm sensitivity rows uncompared."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from rootassets.science.group_tests import GroupTestParameters, group_test_table
from rootassets.science.paper_comparison import (
    ALL_SITES,
    PUBLISHED,
    SENSITIVITY_SUBSET,
    PaperComparisonParameters,
    paper_comparison_table,
    within,
)
from rootassets.science.report import report_markdown

P = PaperComparisonParameters()


@pytest.mark.parametrize(
    ("kind", "paper", "platform", "expected"),
    [
        ("exact", 9, 9, True),
        ("exact", 9, 8, False),
        ("relative", 990.0, 965.8, True),
        ("relative", 990.0, 880.0, False),  # 11% off
        ("p_value", 0.004, 0.0052, True),
        ("p_value", 0.004, 0.013, False),  # a factor 3.25
        ("p_value", 0.04, 0.06, False),  # other side of 0.05
        ("p_value", 0.013, 0.36, False),
        ("same_test", "welch_t", "student_t", False),
        ("same_test", "student_t", "student_t", True),
        ("at_least_half", "at least half", 0.5, True),
        ("at_least_half", "at least half", 0.33, False),
        ("greater", "shrubland > grassland", True, True),
        ("relative", 9.6, None, False),  # the platform has no value: not reproduced
        ("relative", 9.6, float("nan"), False),
    ],
)
def test_tolerances(kind: str, paper: object, platform: object, expected: bool) -> None:
    assert within(kind, paper, platform, P) is expected


def inputs(seed: int = 3) -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    n = 44
    sites = [f"S{chr(65 + i // 26)}{chr(65 + i % 26)}A" for i in range(n)]
    modality = np.array(["bimodal"] * 9 + ["unimodal"] * 35)
    biomass = np.where(modality == "bimodal", rng.lognormal(np.log(368), 0.5, n), rng.lognormal(np.log(990), 0.5, n))
    cover = rng.choice(["forest", "shrubland", "rangeland/grassland", "cultivated"], n)
    factors = pl.DataFrame(
        {
            "site_id": sites,
            "modality": modality,
            "total_fine_root_biomass_g_m2": biomass,
            "total_fine_root_biomass_4mm_equiv_g_m2": biomass * 1.1,
            "land_cover": cover,
            "imputed_factors": [""] * n,
        }
    )
    phi = pl.DataFrame(
        {
            "site_id": sites * 2,
            "property": ["root_biomass"] * n + ["nitrogen_tot_g_kg"] * n,
            "method": ["increment"] * (2 * n),
            "phi": rng.lognormal(0, 1, 2 * n),
            "modality": list(modality) * 2,
        }
    )
    return {
        "site_modality": pl.DataFrame(
            {"site_id": sites, "modality": modality, "d2_cm": np.where(modality == "bimodal", 120.0, np.nan)}
        ),
        "group_tests": group_test_table(factors, phi, GroupTestParameters()),
        "classifier_performance": pl.DataFrame({"run": ["all_factors"], "metric": ["n_factors"], "value": [12.0]}),
        "classifier_importance": pl.DataFrame(
            {"run": ["all_factors"] * 2, "factor": ["total_fine_root_biomass_4mm_equiv_g_m2", "x"], "rank": [1, 2]}
        ),
        "site_factors": factors,
        "site_root_biomass": pl.DataFrame({"site_id": sites, "fine_root_cutoff_mm": [2] * 30 + [4] * 14}),
    }


def test_every_published_result_once_then_the_sensitivity_rows() -> None:
    data = inputs()
    table = paper_comparison_table(*data.values(), P)
    compared = table.filter(pl.col("subset") == ALL_SITES)
    assert compared["result"].to_list() == [p.key for p in PUBLISHED]
    assert compared["reproduced"].null_count() == 0
    assert compared.filter(pl.col("paper_doi") == "10.1038/s41467-025-60055-2").height == len(PUBLISHED)
    assert table["position"].to_list() == list(range(1, table.height + 1))
    sensitivity = table.filter(pl.col("subset") == SENSITIVITY_SUBSET)
    assert sensitivity["reproduced"].null_count() == sensitivity.height > 0
    assert sensitivity["paper_value"].null_count() == sensitivity.height
    assert sensitivity.filter(pl.col("result") == "n_sites")["platform_number"].item() == 30
    assert table.select("result", "subset").is_unique().all()


def test_platform_values_are_the_tables_values() -> None:
    data = inputs()
    table = paper_comparison_table(*data.values(), P)
    row = table.filter((pl.col("subset") == ALL_SITES) & (pl.col("result") == "biomass_p")).row(0, named=True)
    tests = data["group_tests"]
    assert row["platform_number"] == tests.filter(pl.col("name") == "total_fine_root_biomass")["p_value"].item()
    assert row["platform_source"] == "analysis.group_tests[total_fine_root_biomass].p_value"
    n = table.filter((pl.col("subset") == ALL_SITES) & (pl.col("result").is_in(["n_sites", "n_bimodal"])))
    assert n["platform_number"].to_list() == [44.0, 9.0] and n["reproduced"].all()
    deep = table.filter((pl.col("subset") == ALL_SITES) & (pl.col("result") == "d2_below_1m")).row(0, named=True)
    assert deep["platform_number"] == 1.0 and deep["reproduced"]


def test_a_changed_result_is_marked_not_reproduced() -> None:
    data = inputs()
    fewer = data["site_modality"].with_columns(
        pl.when(pl.col("site_id") == data["site_modality"]["site_id"][0])
        .then(pl.lit("unimodal"))
        .otherwise(pl.col("modality"))
        .alias("modality")
    )
    table = paper_comparison_table(fewer, *list(data.values())[1:], P)
    bimodal = table.filter((pl.col("subset") == ALL_SITES) & (pl.col("result") == "n_bimodal")).row(0, named=True)
    assert bimodal["platform_value"] == "8" and bimodal["reproduced"] is False


def test_the_report_opens_with_the_comparison() -> None:
    data = inputs()
    comparison = paper_comparison_table(*data.values(), P)
    frames = {
        "paper_comparison": comparison,
        "site_modality": data["site_modality"]
        .with_columns(pl.lit(None, pl.Float64).alias(c) for c in ("d0_cm", "d1_cm", "secondary_ratio"))
        .with_columns(pl.col("site_id").alias("site_id"), pl.lit(1.0).alias("total_fine_root_biomass_g_m2")),
        "group_tests": data["group_tests"],
        "classifier_performance": data["classifier_performance"],
        "classifier_importance": data["classifier_importance"].with_columns(
            pl.lit(0.1).alias("importance"), pl.lit(True).alias("kept")
        ),
        "nutrient_exponents": pl.DataFrame(
            schema={"nutrient": pl.String, "modality": pl.String, "exponent": pl.Float64, "r2": pl.Float64}
        ),
        "site_label_robustness": pl.DataFrame(
            schema={
                "site_id": pl.String,
                "modality": pl.String,
                "resample_agreement": pl.Float64,
                "grid_agreement": pl.Float64,
                "critical_bandwidth_cm": pl.Float64,
                "secondary_prominence": pl.Float64,
            }
        ),
        "root_increments": pl.DataFrame(
            schema={"site_id": pl.String, "depth_derived": pl.Boolean, "zero_filled": pl.Boolean}
        ),
        "site_factors": data["site_factors"],
    }
    text = report_markdown(frames, "RELEASE-2021", [], "figures", "site_pages.pdf")
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[0] == "## The paper's headline results and this release's"
    compared = comparison.filter(pl.col("reproduced").is_not_null())
    assert f"{int(compared['reproduced'].sum())} of {compared.height} published results reproduced" in text
    assert "[site_pages.pdf](site_pages.pdf)" in text and headings[-1] == "## Sites"
