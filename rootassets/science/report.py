"""The report a scientist opens first (METHOD.md section 8): the key tables and every figure, as Markdown.

Pure: the tables come in as frames (read by whoever runs it: the report asset, the floor), the figures
as the names of the ones that exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

import polars as pl

from rootassets.science.registry import Frames, Read

REPORT_READS: tuple[Read, ...] = (
    Read("analysis.site_modality"),
    Read("analysis.group_tests"),
    Read("analysis.classifier_performance"),
    Read("analysis.classifier_importance"),
    Read("analysis.nutrient_exponents"),
    Read("analysis.site_label_robustness"),
)


def markdown_table(frame: pl.DataFrame, digits: int = 4) -> str:
    """`frame` as a Markdown table, floats to `digits` significant figures."""
    frame = frame.with_columns(pl.col(pl.Float64).round_sig_figs(digits))
    with pl.Config(
        tbl_formatting="MARKDOWN",
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_rows=-1,
        tbl_cols=-1,
        tbl_width_chars=10_000,
        fmt_str_lengths=200,
    ):
        return str(frame)


def _scientific(column: str) -> pl.Expr:
    """A p-value in scientific notation (a Markdown table rounds 1e-5 to 0)."""
    return pl.col(column).map_elements(lambda p: f"{p:.2e}", return_dtype=pl.String).alias(column)


def report_markdown(inputs: Frames, release: str, figures: Sequence[str], figure_folder: str) -> str:
    """The report of `release`: modality counts and bimodal sites, group tests, the classifier, the nutrient
    exponents, then each of `figures` (names) as an image under `figure_folder` (relative to the report)."""
    modality = inputs["site_modality"].sort("modality", "site_id")
    counts = modality.group_by("modality", maintain_order=True).len().sort("modality")
    tests = (
        inputs["group_tests"]
        .sort("p_value", "name")
        .select(
            "name",
            "test",
            "statistic",
            _scientific("p_value"),
            _scientific("p_value_holm"),
            "n_bimodal",
            "n_unimodal",
            "n_excluded",
        )
    )
    robustness = (
        inputs["site_label_robustness"]
        .filter(pl.col("modality") == "bimodal")
        .select("site_id", "resample_agreement", "grid_agreement", "critical_bandwidth_cm", "secondary_prominence")
        .sort("site_id")
    )
    performance = (
        inputs["classifier_performance"]
        .filter(~pl.col("metric").str.starts_with("confusion"))
        .select("run", "metric", "value")
    )
    importance = (
        inputs["classifier_importance"]
        .filter(pl.col("run") == "all_factors")
        .select("rank", "factor", "importance", "kept")
        .sort("rank")
    )
    exponents = (
        inputs["nutrient_exponents"]
        .group_by("nutrient", "modality", maintain_order=True)
        .agg(
            pl.len().alias("sites"),
            pl.col("exponent").median().alias("median_exponent"),
            (pl.col("exponent") > 0).mean().alias("share_positive"),
            pl.col("r2").median().alias("median_r2"),
        )
        .sort("nutrient", "modality")
    )
    bimodal = modality.filter(pl.col("modality") == "bimodal").select(
        "site_id", "d0_cm", "d1_cm", "d2_cm", "secondary_ratio", "total_fine_root_biomass_g_m2"
    )
    folder = PurePosixPath(figure_folder)
    sections = [
        f"# Root bimodality at NEON megapit sites, {release}",
        "Reproduction of Lu et al. (Nature Communications 2025) by rootassets; method in METHOD.md.",
        "## Modality\n\n" + markdown_table(counts),
        "Bimodal sites (D0 highest mode, D2 secondary mode, D1 antimode between, cm):\n\n" + markdown_table(bimodal),
        "## Group tests (bimodal vs unimodal)\n\n" + markdown_table(tests),
        "## How robust the bimodal labels are (beyond the paper)\n\nShare of profile resamples and of the "
        "bandwidth x threshold grid agreeing with the label, the critical bandwidth (cm) and the secondary "
        "mode's prominence over the antimode:\n\n" + markdown_table(robustness),
        "## Classifier (out-of-bag, minority re-weighted vote)\n\n" + markdown_table(performance),
        "Gini importance:\n\n" + markdown_table(importance),
        "## Nutrient exponents\n\n" + markdown_table(exponents),
        "## Figures\n\n" + "\n\n".join(f"### {name}\n\n![{name}]({folder / (name + '.png')})" for name in figures),
    ]
    return "\n\n".join(sections) + "\n"
