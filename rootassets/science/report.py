"""The report a scientist opens first (METHOD.md section 8): the key tables and every figure, as Markdown.

Pure: the tables come in as frames (read by whoever runs it: the report asset, the floor), the figures
as the names of the ones that exist.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from pathlib import PurePosixPath

import polars as pl

from rootassets.science.by_site import BySite
from rootassets.science.registry import Frames, Read

REPORT_READS: tuple[Read, ...] = (
    Read("analysis.paper_comparison"),
    Read("analysis.site_modality"),
    Read("harmonized.root_increments"),
    Read("analysis.site_factors"),
    Read("analysis.group_tests"),
    Read("analysis.classifier_performance"),
    Read("analysis.classifier_importance"),
    Read("analysis.nutrient_exponents"),
    Read("analysis.site_label_robustness"),
)


def site_flags(increments: pl.DataFrame, factors: pl.DataFrame, robustness: pl.DataFrame) -> list[str]:
    """The data flags of one site's page, from that site's own rows of each table: derived depths, zero-filled
    increments, imputed factors, a label that resampling or the bandwidth x threshold grid does not always give,
    a secondary mode that is barely a peak."""
    flags: list[str] = []
    derived = increments.filter(pl.col("depth_derived")).height
    if derived:
        flags.append(f"{derived} of {increments.height} increment depths derived (no mpr_perdepthincrement)")
    zero = increments.filter(pl.col("zero_filled")).height
    if zero:
        flags.append(f"{zero} increments without live fine roots, counted as 0")
    imputed = factors["imputed_factors"].to_list()
    if imputed and imputed[0]:
        flags.append(f"classifier factors imputed: {imputed[0]}")
    row = robustness.to_dicts()
    if row:
        r = row[0]
        if r["resample_agreement"] is not None and r["resample_agreement"] < 1:
            flags.append(f"label kept in {r['resample_agreement']:.0%} of profile resamples (beyond the paper)")
        if r["grid_agreement"] is not None and r["grid_agreement"] < 1:
            share = f"{r['grid_agreement']:.0%}"
            flags.append(f"label kept in {share} of the bandwidth x threshold grid (beyond the paper)")
        if r["secondary_prominence"] is not None and r["secondary_prominence"] < 0.05:
            flags.append(f"secondary mode rises only {r['secondary_prominence']:.3f} over the antimode (a shoulder)")
    return flags


class SiteFlags:
    """`site_flags` of any site of the report's tables, each table split by site once (`increments`, when the
    caller has split `root_increments` already)."""

    def __init__(self, inputs: Frames, increments: BySite | None = None) -> None:
        self._increments = increments or BySite(inputs["root_increments"])
        self._factors = BySite(inputs["site_factors"])
        self._robustness = BySite(inputs["site_label_robustness"])

    def __call__(self, site: str) -> list[str]:
        return site_flags(self._increments[site], self._factors[site], self._robustness[site])


def site_rows(inputs: Frames) -> pl.DataFrame:
    """The report's site index: label, D0/D1/D2 and data flags per site, in the order of the site pages."""
    modality = inputs["site_modality"].sort(pl.col("modality") != "bimodal", "site_id")
    flags_of = SiteFlags(inputs)
    flags = ["; ".join(flags_of(site)) for site in modality["site_id"].to_list()]
    return modality.select("site_id", "modality", "d0_cm", "d1_cm", "d2_cm").with_columns(
        pl.Series("data_flags", flags, dtype=pl.String)
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


def paper_table(comparison: pl.DataFrame) -> str:
    """The paper-vs-platform table: every published result with this release's value and whether it is
    reproduced within the stated tolerance, then the sensitivity rows."""
    shown = comparison.sort("position").select(
        "claim",
        "subset",
        pl.col("paper_printed").fill_null("").alias("paper"),
        pl.col("platform_value").fill_null("none").alias("platform"),
        "tolerance",
        pl.when(pl.col("reproduced").is_null())
        .then(pl.lit("(sensitivity)"))
        .when(pl.col("reproduced"))
        .then(pl.lit("yes"))
        .otherwise(pl.lit("NO"))
        .alias("reproduced"),
        pl.col("paper_source").fill_null("").alias("where in the paper"),
    )
    return markdown_table(shown)


def report_markdown(
    inputs: Frames,
    release: str,
    figures: Sequence[str],
    figure_folder: str,
    site_pages: str | None = None,
    paged: Collection[str] = (),
) -> str:
    """The report of `release`: the paper-vs-platform table first, then modality counts and bimodal sites, group
    tests, label robustness, the classifier, the nutrient exponents, each of `figures` (names) as an image under
    `figure_folder` (relative to the report), and the site index (with `site_pages`, the one-page-per-site
    document, when there is one). A figure in `paged` has several pages: its PDF is linked too."""
    from rootassets.science.paper_comparison import PAPER_CITATION

    comparison = inputs["paper_comparison"]
    compared = comparison.filter(pl.col("reproduced").is_not_null())
    reproduced = int(compared["reproduced"].sum()) if compared.height else 0
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
        "## The paper's headline results and this release's\n\n"
        f"{reproduced} of {compared.height} published results reproduced within the stated tolerance. The paper's "
        f"values are cited as printed in {PAPER_CITATION} (abstract and figure captions); they never feed the "
        "method. Every platform value comes from `analysis.paper_comparison` (its `platform_source` column "
        "names the table and row behind each).\n\n" + paper_table(comparison),
        "## Modality\n\n" + markdown_table(counts),
        "Bimodal sites (D0 highest mode, D2 secondary mode, D1 antimode between, cm):\n\n" + markdown_table(bimodal),
        "## Group tests (bimodal vs unimodal)\n\n" + markdown_table(tests),
        "## How robust the bimodal labels are (beyond the paper)\n\nShare of profile resamples and of the "
        "bandwidth x threshold grid agreeing with the label, the critical bandwidth (cm) and the secondary "
        "mode's prominence over the antimode:\n\n" + markdown_table(robustness),
        "## Classifier (out-of-bag, minority re-weighted vote)\n\n" + markdown_table(performance),
        "Gini importance:\n\n" + markdown_table(importance),
        "## Nutrient exponents\n\n" + markdown_table(exponents),
        "## Figures\n\n" + "\n\n".join(_figure_section(name, folder, name in paged) for name in figures),
        "## Sites\n\n"
        + (f"One page per site, in this order: [{site_pages}]({site_pages}).\n\n" if site_pages else "")
        + markdown_table(site_rows(inputs)),
    ]
    return "\n\n".join(sections) + "\n"


def _figure_section(name: str, folder: PurePosixPath, paged: bool) -> str:
    """A figure's heading and image; a figure of several pages shows its first and links the PDF of them all."""
    section = f"### {name}\n\n![{name}]({folder / (name + '.png')})"
    if paged:
        section += f"\n\nThe first page of several; every page: [{name}.pdf]({folder / (name + '.pdf')})."
    return section


HTML_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
code { background: #f6f6f6; padding: 0 0.2rem; }
"""


def report_html(markdown: str, release: str, images: dict[str, bytes]) -> str:
    """The report as one self-contained HTML page: the same text and tables as the Markdown, every figure
    inline (`images`: the Markdown's image links -> PNG bytes), so it opens anywhere without its folder."""
    import base64
    import html

    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(markdown)
    body = re.sub(r"<h([23])>([^<]+)</h\1>", lambda m: f'<h{m[1]} id="{_anchor(m[2])}">{m[2]}</h{m[1]}>', body)
    for link, data in images.items():
        uri = "data:image/png;base64," + base64.b64encode(data).decode()
        body = body.replace(f'src="{html.escape(link)}"', f'src="{uri}"')
    title = html.escape(f"Root bimodality at NEON megapit sites, {release}")
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
        f"<style>{HTML_STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )


def _anchor(heading: str) -> str:
    """A heading's link target: a figure's heading is its name (`report.html#figure_1_root_profiles`)."""
    return re.sub(r"[^a-z0-9_]+", "-", heading.lower()).strip("-")


def image_links(markdown: str) -> list[str]:
    """The targets of the Markdown's image links (`![alt](target)`), in order."""
    return re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", markdown)
