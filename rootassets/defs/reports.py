"""Report assets: METHOD.md section 8 figures (one asset each) and the report a scientist opens first."""

import base64
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from rootassets.defs.partitions import neon_release
from rootassets.defs.resources import ArtifactStore, WarehouseResource
from rootassets.neon.identifiers import validate_release

if TYPE_CHECKING:
    from types import ModuleType

    from matplotlib.figure import Figure

REPORTS_CODE_VERSION = "reports-1"
COMMON = dict(
    partitions_def=neon_release, group_name="reports", kinds={"matplotlib"}, code_version=REPORTS_CODE_VERSION
)


def _figures() -> "ModuleType":
    """The figure functions; matplotlib is imported when a figure is drawn, not when definitions load."""
    from rootassets.science import figures

    return figures


def _a(name: str) -> AssetKey:
    return AssetKey(["analysis", name])


def save_figure(fig: "Figure", artifacts: ArtifactStore, release: str, name: str) -> MaterializeResult:
    """Write the PNG under figures/<release>/ and show it in the UI as markdown metadata."""
    import matplotlib.pyplot as plt

    path = artifacts.folder("figures", release) / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    encoded = base64.b64encode(path.read_bytes()).decode()
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(path)),
            "figure": MetadataValue.md(f"![{name}](data:image/png;base64,{encoded})"),
            "release": release,
        }
    )


def _modality(warehouse: WarehouseResource, release: str) -> dict[str, str]:
    return dict(warehouse.read("analysis", "site_modality", release).select("site_id", "modality").iter_rows())


def _figure_asset(name: str, deps: list[AssetKey], doc: str, draw: Callable[[WarehouseResource, str], "Figure"]):
    @asset(key=AssetKey(["reports", name]), deps=deps, description=doc, **COMMON)
    def _figure(
        context: AssetExecutionContext, warehouse: WarehouseResource, artifacts: ArtifactStore
    ) -> MaterializeResult:
        release = validate_release(context.partition_key)
        return save_figure(draw(warehouse, release), artifacts, release, name)

    _figure.__name__ = name
    return _figure


def _draw_profiles(w: WarehouseResource, release: str) -> "Figure":
    return _figures().root_profiles_figure(w.read("harmonized", "root_profiles", release), _modality(w, release))


def _draw_map(w: WarehouseResource, release: str) -> "Figure":
    sites = w.read("raw", "field_site_metadata", release, "NOT quarantined").select(
        "site_id", pl.col("field_latitude").alias("latitude"), pl.col("field_longitude").alias("longitude")
    )
    modality = w.read("analysis", "site_modality", release).select("site_id", "modality")
    return _figures().site_map_figure(modality.join(sites, on="site_id", how="inner"))


def _draw_factors(w: WarehouseResource, release: str) -> "Figure":
    return _figures().factors_figure(
        w.read("analysis", "classifier_importance", release), w.read("analysis", "site_factors", release)
    )


def _draw_phi(w: WarehouseResource, release: str) -> "Figure":
    return _figures().phi_figure(w.read("analysis", "phi", release))


def example_sites(exponents: pl.DataFrame) -> dict[str, str]:
    """The unimodal and the bimodal site with the most fitted increments (ties: alphabetical)."""
    best = (
        exponents.group_by("site_id", "modality")
        .agg(pl.col("n").max())
        .sort(["n", "site_id"], descending=[True, False])
    )
    return {
        m: best.filter(pl.col("modality") == m)["site_id"][0]
        for m in ("unimodal", "bimodal")
        if best.filter(pl.col("modality") == m).height
    }


def _draw_nutrients(w: WarehouseResource, release: str) -> "Figure":
    grid = w.read("harmonized", "root_profiles", release).join(
        w.read("harmonized", "soil_profiles", release), on=["site_id", "top_cm", "bottom_cm"], how="inner"
    )
    return _figures().relative_nutrients_figure(grid, example_sites(w.read("analysis", "nutrient_exponents", release)))


def _draw_exponents(w: WarehouseResource, release: str) -> "Figure":
    return _figures().exponents_figure(w.read("analysis", "nutrient_exponents", release))


FIGURES = [
    (
        "figure_1_root_profiles",
        [AssetKey(["harmonized", "root_profiles"]), _a("site_modality")],
        "Figure 1: standardized root profiles of every site (LOESS with 95% band), red bimodal, blue unimodal.",
        _draw_profiles,
    ),
    (
        "figure_1_site_map",
        [AssetKey(["raw", "field_site_metadata"]), _a("site_modality")],
        "Figure 1 (map): the sites by latitude and longitude, coloured by modality.",
        _draw_map,
    ),
    (
        "figure_2_factors",
        [_a("classifier_importance"), _a("site_factors")],
        "Figure 2: factor importance ranking; total fine-root biomass by modality (log axis); land cover by modality.",
        _draw_factors,
    ),
    ("figure_3_phi", [_a("phi")], "Figure 3: phi for root biomass and for soil N by modality.", _draw_phi),
    (
        "figure_4_relative_nutrients",
        [AssetKey(["harmonized", "soil_profiles"]), _a("nutrient_exponents")],
        "Figure 4: relative nutrient profiles of one unimodal and one bimodal site with the log-linear fit and band.",
        _draw_nutrients,
    ),
    (
        "figure_nutrient_exponents",
        [_a("nutrient_exponents")],
        "Per-nutrient exponent and r2 distributions by modality.",
        _draw_exponents,
    ),
]
figure_assets = [_figure_asset(*spec) for spec in FIGURES]


def _markdown_table(frame: pl.DataFrame, digits: int = 4) -> str:
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


@asset(
    key=AssetKey(["reports", "report"]),
    deps=[AssetKey(["reports", name]) for name, *_ in FIGURES] + [_a("group_tests"), _a("classifier_performance")],
    partitions_def=neon_release,
    group_name="reports",
    kinds={"markdown"},
    code_version=REPORTS_CODE_VERSION,
)
def report(context: AssetExecutionContext, warehouse: WarehouseResource, artifacts: ArtifactStore) -> MaterializeResult:
    """The report a scientist opens first: `reports/<release>/report.md` with the key tables and every figure."""
    release = validate_release(context.partition_key)
    modality = warehouse.read("analysis", "site_modality", release).sort("modality", "site_id")
    counts = modality.group_by("modality").len().sort("modality")
    tests = (
        warehouse.read("analysis", "group_tests", release)
        .select("name", "test", "statistic", "p_value", "n_bimodal", "n_unimodal")
        .sort("p_value")
    )
    performance = (
        warehouse.read("analysis", "classifier_performance", release)
        .filter(~pl.col("metric").str.starts_with("confusion"))
        .select("run", "metric", "value")
    )
    importance = (
        warehouse.read("analysis", "classifier_importance", release)
        .filter(pl.col("run") == "all_factors")
        .select("rank", "factor", "importance", "kept")
        .sort("rank")
    )
    exponents = (
        warehouse.read("analysis", "nutrient_exponents", release)
        .group_by("nutrient", "modality")
        .agg(
            pl.len().alias("sites"),
            pl.col("exponent").median().alias("median_exponent"),
            (pl.col("exponent") > 0).mean().alias("share_positive"),
            pl.col("r2").median().alias("median_r2"),
        )
        .sort("nutrient", "modality")
    )
    figure_dir = artifacts.folder("figures", release)
    folder = artifacts.folder("reports", release)
    relative = Path("..") / ".." / "figures" / release
    sections = [
        f"# Root bimodality at NEON megapit sites, {release}",
        "Reproduction of Lu et al. (Nature Communications 2025) by rootassets; method in METHOD.md.",
        "## Modality\n\n" + _markdown_table(counts),
        "Bimodal sites (D0 highest mode, D2 secondary mode, D1 antimode between, cm):\n\n"
        + _markdown_table(
            modality.filter(pl.col("modality") == "bimodal").select(
                "site_id", "d0_cm", "d1_cm", "d2_cm", "secondary_ratio", "total_fine_root_biomass_g_m2"
            )
        ),
        "## Group tests (bimodal vs unimodal)\n\n" + _markdown_table(tests),
        "## Classifier (out-of-bag, minority re-weighted vote)\n\n" + _markdown_table(performance),
        "Gini importance:\n\n" + _markdown_table(importance),
        "## Nutrient exponents\n\n" + _markdown_table(exponents),
        "## Figures\n\n"
        + "\n\n".join(
            f"### {name}\n\n![{name}]({relative / (name + '.png')})"
            for name, *_ in FIGURES
            if (figure_dir / f"{name}.png").exists()
        ),
    ]
    text = "\n\n".join(sections) + "\n"
    path = folder / "report.md"
    path.write_text(text)
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(path)),
            "report": MetadataValue.md(text.split("## Figures")[0]),
            "release": release,
        }
    )


report_assets = [*figure_assets, report]
