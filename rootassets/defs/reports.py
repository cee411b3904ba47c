"""Report assets: METHOD.md section 8 figures (one asset each) and the report a scientist opens first."""

import base64
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from rootassets.defs.partitions import neon_release
from rootassets.defs.resources import ArtifactStore, WarehouseResource
from rootassets.neon.identifiers import validate_release
from rootassets.science.figure_specs import FIGURES, FigureSpec
from rootassets.science.registry import module_version

REPORTS_CODE_VERSION = module_version(__name__)  # derived: this module's source and the rootassets code it uses

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COMMON = dict(
    partitions_def=neon_release, group_name="reports", kinds={"matplotlib"}, code_version=REPORTS_CODE_VERSION
)


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


def figure_asset(spec: FigureSpec):
    @asset(
        key=AssetKey(["reports", spec.name]),
        deps=[AssetKey(r.table.split(".")) for r in spec.reads],
        description=spec.description,
        **COMMON,
    )
    def _figure(
        context: AssetExecutionContext, warehouse: WarehouseResource, artifacts: ArtifactStore
    ) -> MaterializeResult:
        release = validate_release(context.partition_key)
        inputs = {
            r.name: warehouse.read(r.schema, r.name, release, "NOT quarantined" if r.good_rows else "")
            for r in spec.reads
        }
        return save_figure(spec.draw(inputs), artifacts, release, spec.name)

    _figure.__name__ = spec.name
    return _figure


figure_assets = [figure_asset(spec) for spec in FIGURES]


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
    deps=[AssetKey(["reports", spec.name]) for spec in FIGURES] + [_a("group_tests"), _a("classifier_performance")],
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
            f"### {spec.name}\n\n![{spec.name}]({relative / (spec.name + '.png')})"
            for spec in FIGURES
            if (figure_dir / f"{spec.name}.png").exists()
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
