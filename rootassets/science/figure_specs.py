"""The figures of METHOD.md section 8, declared once: what each reads and how it is drawn from those tables.

matplotlib is imported when a figure is drawn (`rootassets.science.figures`), not when this loads.
"""

from __future__ import annotations

import io
import math
import traceback
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from rootassets.science.pagination import panel_pages
from rootassets.science.registry import Frames, Read
from rootassets.science.workers import worker_count

if TYPE_CHECKING:
    from matplotlib.figure import Figure


FIGURE_DPI = 300  # the PNG files, for print; the assets and the floor use the same (an SVG is written beside)
PREVIEW_DPI = 90  # the image shown in the UI's metadata: small enough to keep the event log light


@dataclass(frozen=True)
class FigureSpec:
    name: str
    reads: tuple[Read, ...]
    description: str
    draw: Callable[..., Iterator[Figure]]  # (inputs[, only=page numbers]) -> its pages, drawn one at a time
    pages: Callable[[Frames], int] | None = None  # how many pages it takes (None: one; then `draw` takes no `only`)


def _modality(inputs: Frames) -> dict[str, str]:
    return dict(inputs["site_modality"].select("site_id", "modality").iter_rows())


def draw_profiles(inputs: Frames, only: Collection[int] | None = None) -> Iterator[Figure]:
    from rootassets.science import figures

    return figures.root_profiles_pages(inputs["root_profiles"], _modality(inputs), only=only)


def profile_pages(inputs: Frames) -> int:
    return panel_pages(inputs["root_profiles"]["site_id"])


def draw_map(inputs: Frames) -> Iterator[Figure]:
    from rootassets.science import figures

    sites = inputs["field_site_metadata"].select(
        "site_id", pl.col("field_latitude").alias("latitude"), pl.col("field_longitude").alias("longitude")
    )
    modality = inputs["site_modality"].select("site_id", "modality")
    yield figures.site_map_figure(modality.join(sites, on="site_id", how="inner"))


def draw_factors(inputs: Frames) -> Iterator[Figure]:
    from rootassets.science import figures

    yield figures.factors_figure(inputs["classifier_importance"], inputs["site_factors"], inputs["group_tests"])


def draw_phi(inputs: Frames) -> Iterator[Figure]:
    from rootassets.science import figures

    yield figures.phi_figure(inputs["phi"], inputs["group_tests"])


def example_sites(exponents: pl.DataFrame) -> dict[str, str]:
    """Figure 4's sites: the unimodal and the bimodal site with the most fitted increments (ties: alphabetical)."""
    best = (
        exponents.group_by("site_id", "modality", maintain_order=True)
        .agg(pl.col("n").max())
        .sort(["n", "site_id"], descending=[True, False])
    )
    return {
        m: best.filter(pl.col("modality") == m)["site_id"][0]
        for m in ("unimodal", "bimodal")
        if best.filter(pl.col("modality") == m).height
    }


def draw_nutrients(inputs: Frames) -> Iterator[Figure]:
    from rootassets.science import figures

    yield figures.relative_nutrients_figure(
        inputs["nutrient_points"], example_sites(inputs["nutrient_exponents"]), inputs["nutrient_loess"]
    )


def draw_exponents(inputs: Frames) -> Iterator[Figure]:
    from rootassets.science import figures

    yield figures.exponents_figure(inputs["nutrient_exponents"])


def draw_label_sensitivity(inputs: Frames, only: Collection[int] | None = None) -> Iterator[Figure]:
    from rootassets.science import figures
    from rootassets.science.modality import ModalityParameters

    defaults = ModalityParameters()
    return figures.label_sensitivity_pages(
        inputs["site_label_sensitivity"],
        _modality(inputs),
        (defaults.bandwidth_cm, defaults.secondary_threshold),
        only=only,
    )


def label_sensitivity_pages(inputs: Frames) -> int:
    return panel_pages(inputs["site_label_sensitivity"]["site_id"])


def draw_soil_water(inputs: Frames) -> Iterator[Figure]:
    from rootassets.science import figures

    yield figures.soil_water_figure(
        inputs["soil_water_statistics"], inputs["soil_water_phi_series"], inputs["group_tests"]
    )


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec(
        "figure_1_root_profiles",
        (Read("harmonized.root_profiles"), Read("analysis.site_modality")),
        "Figure 1: standardized root profiles of every site (LOESS with 95% band), red bimodal, blue unimodal.",
        draw_profiles,
        profile_pages,
    ),
    FigureSpec(
        "figure_1_site_map",
        (Read("raw.field_site_metadata", good_rows=True), Read("analysis.site_modality")),
        "Figure 1 (map): the sites by latitude and longitude, coloured by modality.",
        draw_map,
    ),
    FigureSpec(
        "figure_2_factors",
        (Read("analysis.classifier_importance"), Read("analysis.site_factors"), Read("analysis.group_tests")),
        "Figure 2: (a) factor importance ranking; (b) measured total fine-root biomass by modality (log axis, with n "
        "and the t-test's p); (c) land cover by modality (with the chi-square test).",
        draw_factors,
    ),
    FigureSpec(
        "figure_3_phi",
        (Read("analysis.phi"), Read("analysis.group_tests")),
        "Figure 3: phi for (a) root biomass and (b) soil N by modality, with n and the t-test's p.",
        draw_phi,
    ),
    FigureSpec(
        "figure_4_relative_nutrients",
        (Read("analysis.nutrient_points"), Read("analysis.nutrient_exponents"), Read("analysis.nutrient_loess")),
        "Figure 4: relative nutrient profiles (every profile) of one unimodal and one bimodal site with the fit "
        "across profiles, its band, and the LOESS curve at the bimodal site.",
        draw_nutrients,
    ),
    FigureSpec(
        "figure_nutrient_exponents",
        (Read("analysis.nutrient_exponents"),),
        "Per-nutrient exponent and r2 distributions by modality.",
        draw_exponents,
    ),
    FigureSpec(
        "figure_soil_water",
        (
            Read("analysis.soil_water_statistics"),
            Read("analysis.soil_water_phi_series"),
            Read("analysis.group_tests"),
        ),
        "Soil water: (a) each site's mean phi of soil water content by modality, with n and the group test's p; "
        "(b) soil water at D1 and D2 over time at one bimodal and one unimodal site.",
        draw_soil_water,
    ),
    FigureSpec(
        "figure_label_sensitivity",
        (Read("analysis.site_label_sensitivity"), Read("analysis.site_modality")),
        "Beyond the paper: each site's modality label over a grid of kernel bandwidths and secondary thresholds.",
        draw_label_sensitivity,
        label_sensitivity_pages,
    ),
)


@dataclass(frozen=True)
class RenderedFigure:
    """A figure's files, as bytes: its first page as a FIGURE_DPI PNG and as an SVG and, when it has several pages
    (a panel per site, past PANELS_PER_PAGE sites), every page in one PDF; with a preview asked for, the first
    page as a small PNG too."""

    png: bytes
    svg: bytes
    pdf: bytes | None
    pages: int
    preview: bytes | None = None


def render_figure(
    spec: FigureSpec, inputs: Frames, n_jobs: int = 0, preview_dpi: float | None = None
) -> RenderedFigure:
    """One figure, as `render_figures` draws it; a figure that cannot be drawn raises `FigureDrawingError`."""
    rendered = render_figures([spec], {spec.name: inputs}, n_jobs, preview_dpi)[spec.name]
    if isinstance(rendered, FigureDrawingError):
        raise rendered
    return rendered


class FigureDrawingError(RuntimeError):
    """A figure that could not be drawn: its name, and the traceback of the error where it was drawn."""


def render_figures(
    specs: Sequence[FigureSpec], inputs: Mapping[str, Frames], n_jobs: int = 0, preview_dpi: float | None = None
) -> dict[str, RenderedFigure | FigureDrawingError]:
    """Draw each figure of `specs` from its own tables (`inputs[spec.name]`) and render it: its first page as a
    FIGURE_DPI PNG and an SVG (with `preview_dpi`, a small PNG too: the PNG's own pixels shrunk) and, for a
    figure of several pages, every page in one PDF. The assets and the floor write these bytes.

    The figures are independent, and each is mostly one core of matplotlib: every first page, and every run of
    a paged figure's pages (contiguous, joined in page order), is a task for `n_jobs` worker processes at once
    (0: one per CPU core; one task, or one core: in this process). Each page is closed once rendered, so memory
    stays that of a page or two however many sites there are. A figure that fails is returned as its
    `FigureDrawingError`, and the others are drawn all the same."""
    tasks: list[tuple[str, str, tuple]] = []  # (figure, kind, arguments)
    uncounted: dict[str, str] = {}  # figure: the traceback of counting its pages
    for spec in specs:
        frames = inputs[spec.name]
        try:
            count = spec.pages(frames) if spec.pages is not None else 1
        except Exception:  # noqa: BLE001 - as a drawing's error: that figure's alone
            uncounted[spec.name] = traceback.format_exc()
            continue
        tasks.append((spec.name, "first", (spec, frames, count, preview_dpi)))
        if count > 1:
            runs = _runs(list(range(1, count + 1)), worker_count(n_jobs, count))
            tasks += [(spec.name, "pages", (spec, frames, run)) for run in runs]
    workers = worker_count(n_jobs, len(tasks))
    if workers <= 1:
        results = [_figure_task(kind, *args) for _, kind, args in tasks]
    else:
        from joblib import Parallel, delayed  # heavy: imported only when figures are drawn at once

        results = Parallel(n_jobs=workers)(delayed(_figure_task)(kind, *args) for _, kind, args in tasks)
    out: dict[str, RenderedFigure | FigureDrawingError] = {}
    for spec in specs:
        own = [result for (name, _, _), result in zip(tasks, results, strict=True) if name == spec.name]
        failed = (
            [_Failed(uncounted[spec.name])] if spec.name in uncounted else [r for r in own if isinstance(r, _Failed)]
        )
        if failed:
            out[spec.name] = FigureDrawingError(f"{spec.name}: {failed[0].traceback}")
            continue
        (png, svg, preview, count), *parts = own
        pdf = None if count == 1 else parts[0] if len(parts) == 1 else _joined_pdf(parts)
        out[spec.name] = RenderedFigure(png, svg, pdf, count, preview)
    return out


@dataclass(frozen=True)
class _Failed:
    traceback: str


def _figure_task(kind: str, *args: Any) -> tuple | bytes | _Failed:
    """One task of `render_figures`, its error returned as text (so one figure's failure stops no other)."""
    try:
        return _first_page(*args) if kind == "first" else _figure_pages_pdf(*args)
    except Exception:  # noqa: BLE001 - any error of a figure's drawing is that figure's, reported with it
        return _Failed(traceback.format_exc())


def _first_page(
    spec: FigureSpec, inputs: Frames, count: int, preview_dpi: float | None
) -> tuple[bytes, bytes, bytes | None, int]:
    """The first page's PNG, SVG and preview (None without `preview_dpi`), and the figure's page count."""
    import matplotlib.pyplot as plt

    first = next(spec.draw(inputs, only={1}) if count > 1 else spec.draw(inputs))
    pixels = _pixels(first, FIGURE_DPI)
    with ThreadPoolExecutor(max_workers=1) as encoder:  # zlib runs without the GIL: PNG encoded while SVG drawn
        encoding = encoder.submit(_png, pixels, FIGURE_DPI)
        svg = _rendered(first, "svg")
        preview = _png(_shrunk(pixels, FIGURE_DPI / preview_dpi)) if preview_dpi else None
        png = encoding.result()
    plt.close(first)
    return png, svg, preview, count


def _pixels(fig: Figure, dpi: float) -> np.ndarray:
    """`fig` drawn by Agg at `dpi`: the RGBA pixels `savefig(format="png", dpi=dpi)` encodes (a copy)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    original = fig.dpi
    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(dpi)
    try:
        canvas.draw()
        return np.array(canvas.buffer_rgba())
    finally:
        fig.set_dpi(original)


def _png(pixels: np.ndarray, dpi: float | None = None) -> bytes:
    """RGBA `pixels` as a PNG: with `dpi`, as matplotlib's savefig writes it (its software tag and resolution);
    without, plain at zlib's default level (`optimize=True` made the 8 previews 3% smaller for 1.3 s more of a
    cold main job)."""
    out = io.BytesIO()
    if dpi is None:
        from PIL import Image  # matplotlib's own dependency

        Image.fromarray(pixels, "RGBA").save(out, format="PNG")
    else:
        from matplotlib.image import imsave

        imsave(out, pixels, format="png", origin="upper", dpi=dpi)
    return out.getvalue()


def _shrunk(pixels: np.ndarray, factor: float) -> np.ndarray:
    """`pixels` `factor` times smaller (each output pixel the mean of a block, as PIL's `reduce`)."""
    from PIL import Image

    return np.asarray(Image.fromarray(pixels, "RGBA").reduce(max(1, round(factor))))


def _figure_pages_pdf(spec: FigureSpec, inputs: Frames, numbers: list[int]) -> bytes:
    return _pdf_of(spec.draw(inputs, only=set(numbers)))


def _pdf_of(pages: Iterable[Figure]) -> bytes:
    """The pages in one PDF, each closed once written."""
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    out = io.BytesIO()
    with PdfPages(out) as pdf:
        for fig in pages:
            pdf.savefig(fig)
            plt.close(fig)
    return out.getvalue()


def _workers(n_jobs: int, items: int, per_worker_min: int) -> int:
    """Worker processes for `items` pages: `n_jobs` (0: one per CPU core), at most one per `per_worker_min`."""
    return worker_count(n_jobs, items // per_worker_min)


def _pdf_in_runs(draw: Callable[..., bytes], args: tuple, items: list, workers: int) -> bytes:
    """`draw(*args, run)` over contiguous runs of `items`, `workers` processes at once, as one PDF in order."""
    if workers <= 1:
        return draw(*args, items)
    from joblib import Parallel, delayed  # heavy: imported only when pages are drawn at once

    runs = _runs(items, workers)
    return _joined_pdf(Parallel(n_jobs=len(runs))(delayed(draw)(*args, run) for run in runs))


def _runs(items: list, workers: int) -> list[list]:
    """`items` in at most `workers` contiguous runs of (nearly) equal length, in order."""
    size = math.ceil(len(items) / workers)
    return [items[i : i + size] for i in range(0, len(items), size)]


def _joined_pdf(parts: list[bytes]) -> bytes:
    """PDF documents joined into one, in order (pypdf)."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for part in parts:
        writer.append(io.BytesIO(part))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _rendered(fig: Figure, fmt: str, dpi: float | None = None) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format=fmt, **({"dpi": dpi} if dpi else {}))
    return out.getvalue()


SITE_PAGES_FILE = "site_pages.pdf"  # under reports/<release>/, beside report.md
SITE_PAGE_READS: tuple[Read, ...] = (
    Read("analysis.site_modality"),
    Read("harmonized.root_increments"),
    Read("analysis.site_kde"),
    Read("harmonized.soil_profiles"),
    Read("analysis.site_factors"),
    Read("analysis.site_label_robustness"),
)


def _in_page_order(inputs: Frames) -> pl.DataFrame:
    """The site modality rows in the page document's order: bimodal first, then by site code."""
    return inputs["site_modality"].sort(pl.col("modality") != "bimodal", "site_id")


def site_order(inputs: Frames) -> list[str]:
    """The sites of the page document, in page order."""
    return _in_page_order(inputs)["site_id"].to_list()


def site_pages(inputs: Frames, only: Collection[str] | None = None) -> Iterator[tuple[str, Figure]]:
    """One page per site (sorted by modality then site): its profile, KDE with D0/D1/D2, soil N and data flags.
    With `only`, the pages of those sites alone, in the same order. Every page is drawn on the same Figure
    (`figures.SitePage`): save it before asking for the next."""
    from rootassets.science.by_site import BySite
    from rootassets.science.figures import SitePage
    from rootassets.science.report import SiteFlags

    increments, kde, soil = (BySite(inputs[name]) for name in ("root_increments", "site_kde", "soil_profiles"))
    flags_of = SiteFlags(inputs, increments)
    page = SitePage()
    for row in _in_page_order(inputs).iter_rows(named=True):
        site = row["site_id"]
        if only is not None and site not in only:
            continue
        yield site, page.draw(site, row, increments[site], kde[site], soil[site], flags_of(site))


PAGES_PER_WORKER_MIN = 8  # fewer pages than this per worker process: drawing them costs less than starting it


def site_pages_pdf(inputs: Frames, n_jobs: int = 0) -> bytes:
    """The whole page document as PDF bytes. The pages are drawn in contiguous runs of sites, `n_jobs` worker
    processes at once (0: one per CPU core; matplotlib's drawing is the cost, ~0.07 s a page), and the runs'
    documents are joined in page order (pypdf)."""
    sites = site_order(inputs)
    return _pdf_in_runs(_site_pages_pdf, (inputs,), sites, _workers(n_jobs, len(sites), PAGES_PER_WORKER_MIN))


def _site_pages_pdf(inputs: Frames, sites: list[str]) -> bytes:
    return _pdf_of(fig for _, fig in site_pages(inputs, set(sites)))
