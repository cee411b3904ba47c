"""Report assets: METHOD.md section 8 figures (one asset each) and the report a scientist opens first."""

import base64
from collections.abc import Iterator

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from rootassets.defs.partitions import neon_release
from rootassets.defs.resources import ArtifactStore, WarehouseResource
from rootassets.defs.version_cache import module_code_version
from rootassets.neon.identifiers import validate_release
from rootassets.science.figure_specs import (
    FIGURE_DPI,
    FIGURES,
    PREVIEW_DPI,
    SITE_PAGE_READS,
    SITE_PAGES_FILE,
    FigureDrawingError,
    FigureSpec,
    RenderedFigure,
    render_figures,
    site_order,
    site_pages_pdf,
)
from rootassets.science.report import REPORT_READS, image_links, report_html, report_markdown
from rootassets.science.workers import WORKERS_TAG

REPORTS_CODE_VERSION = module_code_version(__name__)  # derived: this module's source and the rootassets code it uses

COMMON = dict(
    partitions_def=neon_release, group_name="reports", kinds={"matplotlib"}, code_version=REPORTS_CODE_VERSION
)


def save_figure(rendered: RenderedFigure, artifacts: ArtifactStore, release: str, name: str) -> MaterializeResult:
    """Write the figure under figures/<release>/ as a 300 dpi PNG and an SVG (its first page) and, for a figure
    of several pages, a PDF of them all (else any earlier one is removed); show a small preview in the UI as
    markdown metadata."""
    folder = artifacts.folder("figures", release)
    path, vector, document = folder / f"{name}.png", folder / f"{name}.svg", folder / f"{name}.pdf"
    path.write_bytes(rendered.png)
    vector.write_bytes(rendered.svg)
    if rendered.pdf is not None:
        document.write_bytes(rendered.pdf)
    else:
        document.unlink(missing_ok=True)
    return MaterializeResult(
        asset_key=AssetKey(["reports", name]),
        metadata={
            # a short image link renders inline in the UI (served by `rootassets ui`); the embedded preview is
            # too long for that and sits behind "[Show Markdown]", but needs no server
            "figure": MetadataValue.md(f"![{name}]({artifacts.url('figures', release, path.name)})"),
            "in_report": MetadataValue.url(artifacts.url("reports", release, f"report.html#{name}")),
            "path": MetadataValue.path(str(path)),
            "svg": MetadataValue.path(str(vector)),
            "pages": rendered.pages,
            **({"every_page": MetadataValue.path(str(document))} if rendered.pdf is not None else {}),
            "dpi": FIGURE_DPI,
            **(
                {
                    "figure_embedded": MetadataValue.md(
                        f"![{name}](data:image/png;base64,{base64.b64encode(rendered.preview).decode()})"
                    )
                }
                if rendered.preview
                else {}
            ),
            "release": release,
        },
    )


def figure_spec(spec: FigureSpec) -> AssetSpec:
    """A figure's asset: reports/<name>, after the tables it reads."""
    return AssetSpec(
        AssetKey(["reports", spec.name]),
        deps=[AssetKey(r.table.split(".")) for r in spec.reads],
        description=spec.description,
        tags=WORKERS_TAG,  # drawn in the worker pool, with the other figures
        **COMMON,
    )


@multi_asset(name="reports__figures", specs=[figure_spec(spec) for spec in FIGURES], can_subset=True)
def figures(
    context: AssetExecutionContext, warehouse: WarehouseResource, artifacts: ArtifactStore
) -> Iterator[MaterializeResult]:
    """METHOD.md section 8's figures, one asset each, drawn together: each is mostly one core of matplotlib, so
    the selected figures (and the pages of a figure of several) are drawn in the worker processes at once.
    A figure that fails is reported with its traceback once the others are written."""
    release = validate_release(context.partition_key)
    selected = [spec for spec in FIGURES if AssetKey(["reports", spec.name]) in context.selected_asset_keys]
    with warehouse.session():
        inputs = {
            spec.name: {
                r.name: warehouse.read(r.schema, r.name, release, "NOT quarantined" if r.good_rows else "")
                for r in spec.reads
            }
            for spec in selected
        }
    rendered = render_figures(selected, inputs, preview_dpi=PREVIEW_DPI)
    failed = {name: result for name, result in rendered.items() if isinstance(result, FigureDrawingError)}
    for spec in selected:
        result = rendered[spec.name]
        if not isinstance(result, FigureDrawingError):
            yield save_figure(result, artifacts, release, spec.name)
    if failed:
        raise Failure(
            description=f"{len(failed)} of {len(selected)} figures could not be drawn for {release}: "
            + ", ".join(failed),
            metadata={"errors": MetadataValue.md("\n\n".join(f"```\n{error}\n```" for error in failed.values()))},
        )


@asset(
    key=AssetKey(["reports", "site_pages"]),
    deps=[AssetKey(r.table.split(".")) for r in SITE_PAGE_READS],
    partitions_def=neon_release,
    group_name="reports",
    kinds={"matplotlib", "pdf"},
    code_version=REPORTS_CODE_VERSION,
    tags=WORKERS_TAG,
)
def site_pages_document(
    context: AssetExecutionContext, warehouse: WarehouseResource, artifacts: ArtifactStore
) -> MaterializeResult:
    """One page per site, `reports/<release>/site_pages.pdf`: every profile's live fine-root density, the KDE
    with D0, D1 and D2, soil total N on the root grid, and the site's data flags (derived depths, zero-filled
    increments, imputed factors, a label that resampling or the bandwidth grid does not always give)."""
    release = validate_release(context.partition_key)
    with warehouse.session():
        inputs = {r.name: warehouse.read(r.schema, r.name, release) for r in SITE_PAGE_READS}
    path = artifacts.folder("reports", release) / SITE_PAGES_FILE
    partial = path.with_suffix(".pdf.partial")
    partial.write_bytes(site_pages_pdf(inputs))
    partial.replace(path)
    sites = site_order(inputs)
    return MaterializeResult(
        metadata={"path": MetadataValue.path(str(path)), "pages": len(sites), "sites": sites, "release": release}
    )


@asset(
    key=AssetKey(["reports", "report"]),
    deps=[AssetKey(["reports", spec.name]) for spec in FIGURES]
    + [AssetKey(["reports", "site_pages"])]
    + [AssetKey(r.table.split(".")) for r in REPORT_READS],
    partitions_def=neon_release,
    group_name="reports",
    kinds={"markdown", "html"},
    code_version=REPORTS_CODE_VERSION,
)
def report(context: AssetExecutionContext, warehouse: WarehouseResource, artifacts: ArtifactStore) -> MaterializeResult:
    """The report a scientist opens first: `reports/<release>/report.md`, opening with the paper's headline
    results next to this release's (`analysis.paper_comparison`), then the key tables, every figure and the
    site index with its one-page-per-site document; and the same report as one self-contained HTML page
    (`report.html`, figures inline) that opens in any browser."""
    release = validate_release(context.partition_key)
    with warehouse.session():
        inputs = {r.name: warehouse.read(r.schema, r.name, release) for r in REPORT_READS}
    figure_dir = artifacts.folder("figures", release)
    drawn = [spec.name for spec in FIGURES if (figure_dir / f"{spec.name}.png").exists()]
    paged = {name for name in drawn if (figure_dir / f"{name}.pdf").exists()}
    folder = artifacts.folder("reports", release)
    pages = SITE_PAGES_FILE if (folder / SITE_PAGES_FILE).exists() else None
    text = report_markdown(inputs, release, drawn, f"../../figures/{release}", pages, paged)
    path = folder / "report.md"
    path.write_text(text)
    images = {link: (folder / link).read_bytes() for link in image_links(text) if (folder / link).is_file()}
    page = folder / "report.html"
    partial = page.with_suffix(".html.partial")
    partial.write_text(report_html(text, release, images))
    partial.replace(page)
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(path)),
            "html": MetadataValue.path(str(page)),
            "html_in_browser": MetadataValue.url(artifacts.url("reports", release, page.name)),
            "html_figures_inline": len(images),
            "report": MetadataValue.md(text.split("## Figures")[0]),
            "release": release,
        }
    )


report_assets = [figures, site_pages_document, report]
