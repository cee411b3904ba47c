"""Every group comparison a figure draws says its n and p (issue #19: figures you can publish)."""

from __future__ import annotations

from collections.abc import Collection, Iterator

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rootassets.science.figures import factors_figure, phi_figure  # noqa: E402


def group_tests() -> pl.DataFrame:
    names = ["total_fine_root_biomass", "land_cover", "phi_root_biomass_increment", "phi_nitrogen_tot_g_kg_increment"]
    return pl.DataFrame(
        {
            "name": names,
            "test": ["student_t", "chi_square_monte_carlo", "welch_t", "student_t"],
            "statistic": [2.5, 9.58, 5.1, 0.9],
            "p_value": [0.0052, 0.018, 2.7e-06, 0.36],
            "n_bimodal": [3, 3, 3, 2],
            "n_unimodal": [4, 4, 4, 4],
        }
    )


def phi_table() -> pl.DataFrame:
    modality = ["bimodal"] * 3 + ["unimodal"] * 4
    return pl.DataFrame(
        {
            "site_id": [f"S{i:03d}" for i in range(7)] * 2,
            "property": ["root_biomass"] * 7 + ["nitrogen_tot_g_kg"] * 7,
            "method": ["increment"] * 14,
            "phi": [2.0, 3.0, 4.0, 0.3, 0.2, 0.5, 0.1, 1.1, 0.9, 1.0, 0.7, 0.8, 0.6, 0.9],
            "modality": modality * 2,
        }
    )


def texts(fig: plt.Figure) -> list[str]:
    """Every title and free text of the figure's axes."""
    return [t.get_text() for ax in fig.axes for t in (ax.title, *ax.texts)]


def test_the_group_comparisons_of_figures_2_and_3_say_n_and_p() -> None:
    modality = ["bimodal"] * 3 + ["unimodal"] * 4
    factors = pl.DataFrame(
        {
            "site_id": [f"S{i:03d}" for i in range(7)],
            "modality": modality,
            "total_fine_root_biomass_g_m2": [400.0, 500, 600, 900, 1000, 1100, 1200],
            "land_cover": ["forest", "shrubland", "forest", "forest", "cultivated", "forest", "forest"],
        }
    )
    importance = pl.DataFrame(
        {"run": ["all_factors"], "factor": ["clay_pct_0_30cm"], "importance": [0.1], "kept": [True]}
    )
    fig = factors_figure(importance, factors, group_tests())
    written = " | ".join(texts(fig))
    assert "n = 3 bimodal, 4 unimodal; Student's t, p = 0.0052" in written  # panel b
    assert "n = 3 bimodal, 4 unimodal; $\\chi^2$ = 9.58, p = 0.018 (Monte Carlo)" in written  # panel c
    assert "Clay, 0-30 cm (%)" in written or any(
        "Clay" in label.get_text() for label in fig.axes[0].get_yticklabels()
    )  # a factor's name and unit, not its column name
    plt.close(fig)

    fig = phi_figure(phi_table(), group_tests())
    written = " | ".join(texts(fig))
    assert "n = 3 bimodal, 4 unimodal; Welch's t, p = 2.7e-06" in written
    assert "n = 2 bimodal, 4 unimodal; Student's t, p = 0.36" in written
    plt.close(fig)


def test_the_site_map_has_a_basemap_that_needs_no_download(monkeypatch) -> None:  # noqa: ANN001
    import socket

    from matplotlib.image import AxesImage

    from rootassets.science.figures import site_map_figure

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the basemap tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    sites = pl.DataFrame(
        {
            "site_id": ["BARR", "GUAN", "HARV", "SJER"],
            "modality": ["unimodal", "bimodal", "unimodal", "bimodal"],
            "longitude": [-156.6, -66.9, -72.2, -119.7],
            "latitude": [71.3, 18.0, 42.5, 37.1],
        }
    )
    fig = site_map_figure(sites)
    ax = fig.axes[0]
    (relief,) = [a for a in ax.get_children() if isinstance(a, AxesImage)]
    assert relief.get_array().shape[2] == 3 and relief.get_array().shape[:2] == (360, 720)  # the world, 0.5 deg
    assert relief.get_zorder() < min(c.get_zorder() for c in ax.collections)  # under the site markers
    west, east = ax.get_xlim()
    south, north = ax.get_ylim()
    assert west < -156.6 and east > -66.9 and south < 18.0 and north > 71.3  # every site on the map
    sea, land = ax.transData.transform([(-140.0, 40.0), (-100.0, 40.0)])  # the Pacific; Kansas
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())
    height = pixels.shape[0]
    blue = pixels[height - int(sea[1]), int(sea[0])][:3].astype(int)
    plains = pixels[height - int(land[1]), int(land[0])][:3].astype(int)
    assert blue[2] > blue[0] + 30 and plains[0] > plains[2]  # water is blue, the Great Plains are not
    plt.close(fig)


def profiles_of(n_sites: int) -> tuple[pl.DataFrame, dict[str, str]]:
    """Standardized profiles of `n_sites` invented sites, every third bimodal, deeper for later sites."""
    sites = [f"S{i:03d}" for i in range(n_sites)]
    depths = np.arange(5.0, 105.0, 10.0)
    frame = pl.DataFrame(
        {
            "site_id": [s for s in sites for _ in depths],
            "mid_cm": [d + i for i, _ in enumerate(sites) for d in depths],
            "standardized": [float(np.exp(-d / 40.0)) for _ in sites for d in depths],
        }
    )
    return frame, {s: "bimodal" if i % 3 == 0 else "unimodal" for i, s in enumerate(sites)}


def panel_titles(fig: plt.Figure, sites: Collection[str]) -> list[str]:
    """The sites named on a page of panels, in the order they were drawn."""
    return [t.get_text() for ax in fig.axes for t in ax.texts if t.get_text() in sites]


def panel_frames(fig: plt.Figure) -> list[tuple[float, float, float, float]]:
    """Each panel's frame on a page drawn in one axes: (x, y, width, height) in its data units."""
    [ax] = fig.axes
    [frames] = [c for c in ax.collections if c.get_zorder() == 2.5]
    return [tuple(np.round(p.get_extents().bounds, 9)) for p in frames.get_paths()]


def test_a_panel_per_site_figure_is_drawn_in_pages_with_every_site_once_in_order() -> None:
    from rootassets.science.figures import root_profiles_pages
    from rootassets.science.pagination import PANELS_PER_PAGE

    profiles, modality = profiles_of(2 * PANELS_PER_PAGE + 5)
    shown, sizes, depth_labels = [], set(), set()
    pages = list(root_profiles_pages(profiles, modality))
    assert len(pages) == 3
    for number, fig in enumerate(pages, start=1):
        titles = panel_titles(fig, modality)
        assert len(titles) <= PANELS_PER_PAGE and len(panel_frames(fig)) == len(titles)
        assert fig.get_suptitle().endswith(f", page {number} of 3")
        shown += titles
        sizes |= {(w, h) for _, _, w, h in panel_frames(fig)}
        depth_labels.add(tuple(t.get_text() for t in fig.axes[0].texts if t.get_ha() == "right"))
        plt.close(fig)
    expected = sorted(modality, key=lambda s: (modality[s] != "bimodal", s))
    assert shown == expected  # every site once, bimodal first, across the pages
    assert len(sizes) == 1  # one depth axis for every page: every panel the same size, the same depth labels
    [labels] = {tuple(dict.fromkeys(labels)) for labels in depth_labels}
    assert labels[0] == "0" and len(labels) >= 3

    [single] = root_profiles_pages(*profiles_of(44))
    assert "page" not in single.get_suptitle() and len(panel_titles(single, profiles_of(44)[1])) == 44
    plt.close(single)


def test_each_panel_of_figure_1_shows_its_own_sites_points_inside_its_own_frame() -> None:
    from matplotlib.colors import same_color

    from rootassets.science.figures import COLORS, root_profiles_pages

    profiles, modality = profiles_of(11)
    [fig] = root_profiles_pages(profiles, modality)
    [ax] = fig.axes
    frames = panel_frames(fig)
    [points] = [c for c in ax.collections if len(c.get_offsets()) == profiles.height]
    offsets, colors = np.asarray(points.get_offsets()), points.get_facecolors()
    order = sorted(modality, key=lambda s: (modality[s] != "bimodal", s))
    start = 0
    for index, site in enumerate(order):
        x, y, w, h = frames[index]
        own = profiles.filter(pl.col("site_id") == site).sort("mid_cm")
        drawn = offsets[start : start + own.height]
        start += own.height
        np.testing.assert_allclose(drawn[:, 0] - x, own["standardized"].to_numpy() + 0.1)  # density from -0.1
        np.testing.assert_allclose(y + h - drawn[:, 1], own["mid_cm"].to_numpy())  # depth down from the top
        assert all(same_color(c, COLORS[modality[site]]) for c in colors[start - own.height : start])
    assert start == profiles.height
    plt.close(fig)


def test_a_figure_of_several_pages_renders_its_first_page_and_a_pdf_of_them_all() -> None:
    import io

    from pypdf import PdfReader

    from rootassets.science.figure_specs import FIGURES, render_figure
    from rootassets.science.pagination import PANELS_PER_PAGE

    spec = next(s for s in FIGURES if s.name == "figure_1_root_profiles")
    profiles, modality = profiles_of(PANELS_PER_PAGE + 1)
    labels = pl.DataFrame({"site_id": list(modality), "modality": list(modality.values())})
    rendered = render_figure(spec, {"root_profiles": profiles, "site_modality": labels})
    assert rendered.pages == 2 and rendered.png.startswith(b"\x89PNG") and b"<svg" in rendered.svg
    assert len(PdfReader(io.BytesIO(rendered.pdf)).pages) == 2

    profiles, modality = profiles_of(10)
    labels = pl.DataFrame({"site_id": list(modality), "modality": list(modality.values())})
    one = render_figure(spec, {"root_profiles": profiles, "site_modality": labels})
    assert one.pages == 1 and one.pdf is None


def test_a_selection_of_pages_draws_those_pages_as_the_whole_figure_draws_them() -> None:
    from rootassets.science.figures import root_profiles_pages
    from rootassets.science.pagination import PANELS_PER_PAGE, panel_pages

    profiles, modality = profiles_of(2 * PANELS_PER_PAGE + 5)
    assert panel_pages(profiles["site_id"]) == 3
    whole = list(root_profiles_pages(profiles, modality))
    [third] = root_profiles_pages(profiles, modality, only={3})
    assert third.get_suptitle() == whole[2].get_suptitle()
    assert [t.get_text() for t in third.axes[0].texts] == [t.get_text() for t in whole[2].axes[0].texts]
    assert panel_frames(third) == panel_frames(whole[2])
    assert third.axes[0].get_ylim() == whole[2].axes[0].get_ylim()
    assert list(root_profiles_pages(profiles, modality, only=set())) == []
    plt.close("all")


def _page_streams(pdf: bytes) -> list[bytes]:
    """Each page's drawing operations, its resources' names (numbered per document: /A1, /M0, /F1) blanked."""
    import io
    import re

    from pypdf import PdfReader

    return [re.sub(rb"/[A-Z]+[0-9]+", b"/R", p.get_contents().get_data()) for p in PdfReader(io.BytesIO(pdf)).pages]


def test_the_pages_drawn_in_worker_processes_are_the_pages_drawn_in_one() -> None:
    from rootassets.science.figure_specs import FIGURES, render_figure
    from rootassets.science.pagination import PANELS_PER_PAGE

    profiles, modality = profiles_of(2 * PANELS_PER_PAGE + 5)
    labels = pl.DataFrame({"site_id": list(modality), "modality": list(modality.values())})
    inputs = {"root_profiles": profiles, "site_modality": labels}
    spec = next(s for s in FIGURES if s.name == "figure_1_root_profiles")
    alone, shared = render_figure(spec, inputs, n_jobs=1), render_figure(spec, inputs, n_jobs=2)
    assert alone.pages == shared.pages == 3
    assert alone.png == shared.png
    streams = _page_streams(alone.pdf)
    assert len(streams) == 3 and _page_streams(shared.pdf) == streams  # the same drawing, page for page, in order


def test_the_report_links_every_page_of_a_figure_of_several() -> None:
    from pathlib import PurePosixPath

    from rootassets.science.report import _figure_section

    folder = PurePosixPath("../../figures/RELEASE-2021")
    paged = _figure_section("figure_1_root_profiles", folder, paged=True)
    assert "![figure_1_root_profiles](../../figures/RELEASE-2021/figure_1_root_profiles.png)" in paged
    assert "[figure_1_root_profiles.pdf](../../figures/RELEASE-2021/figure_1_root_profiles.pdf)" in paged
    assert ".pdf" not in _figure_section("figure_3_phi", folder, paged=False)


BANDWIDTHS = [10.0, 12.5, 15.0, 17.5, 20.0, 22.5, 25.0]
THRESHOLDS = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3]


@st.composite
def sensitivity_grids(draw: st.DrawFn) -> tuple[pl.DataFrame, list[str]]:
    """A label-sensitivity table of 1 to 64 invented sites (a page), some settings missing, labels at random."""
    sites = [f"S{i:03d}" for i in range(draw(st.integers(1, 64)))]
    settings = [(b, t) for b in BANDWIDTHS for t in THRESHOLDS]
    rows = [
        (site, b, t, draw(st.sampled_from(["bimodal", "unimodal"])))
        for site in sites
        for b, t in settings
        if draw(st.integers(0, 9))  # one setting in ten has no row
    ]
    frame = pl.DataFrame(
        rows, schema=["site_id", "bandwidth_cm", "secondary_threshold", "modality"], orient="row"
    ).with_columns(pl.col(c).cast(pl.Float64) for c in ("bandwidth_cm", "secondary_threshold"))
    return frame, sites


@settings(max_examples=40, deadline=None)
@given(sensitivity_grids())
def test_each_sites_block_of_the_label_sensitivity_page_is_its_own_grid(case) -> None:  # noqa: ANN001
    from rootassets.science.figures import NO_LABEL, label_mosaic, sensitivity_grid

    grid, sites = case
    layout = sensitivity_grid(len(BANDWIDTHS), len(THRESHOLDS), -(-len(sites) // 8), 8)
    cells = label_mosaic(grid, sites, BANDWIDTHS, THRESHOLDS, layout)
    labels = {(s, b, t): m for s, b, t, m in grid.iter_rows()}
    covered = np.zeros(cells.shape, dtype=bool)
    for index, site in enumerate(sites):
        x0, y0 = layout.origin(index)
        block = cells[y0 : y0 + len(THRESHOLDS), x0 : x0 + len(BANDWIDTHS)]
        expected = [
            [{"bimodal": 1.0, "unimodal": 0.0}.get(labels.get((site, b, t)), NO_LABEL) for b in BANDWIDTHS]
            for t in THRESHOLDS
        ]
        np.testing.assert_array_equal(block, expected)
        assert not covered[y0 : y0 + len(THRESHOLDS), x0 : x0 + len(BANDWIDTHS)].any()  # no two blocks overlap
        covered[y0 : y0 + len(THRESHOLDS), x0 : x0 + len(BANDWIDTHS)] = True
    assert np.isnan(cells[~covered]).all()  # between the blocks: nothing
    first = layout.origin(0)
    assert first[0] == 0 and first[1] + len(THRESHOLDS) == cells.shape[0]  # the first site top left


def test_the_label_sensitivity_page_names_every_site_in_its_colour_over_its_block() -> None:
    from matplotlib.collections import QuadMesh
    from matplotlib.colors import same_color, to_rgba

    from rootassets.science.figures import COLORS, label_sensitivity_pages

    sites = [f"S{i:03d}" for i in range(10)]
    modality = {s: "bimodal" if i % 3 == 0 else "unimodal" for i, s in enumerate(sites)}
    grid = pl.DataFrame(
        [(s, b, t, modality[s]) for s in sites for b in BANDWIDTHS for t in THRESHOLDS],
        schema=["site_id", "bandwidth_cm", "secondary_threshold", "modality"],
        orient="row",
    )
    [page] = label_sensitivity_pages(grid, modality, (15.0, 0.1))
    [ax] = page.axes
    names = {t.get_text(): t for t in ax.texts if t.get_text() in modality}
    assert sorted(names) == sites
    assert all(same_color(names[s].get_color(), COLORS[modality[s]]) for s in sites)
    meshes = [c for c in ax.collections if isinstance(c, QuadMesh)]
    assert len(meshes) == len(sites)  # a mesh a block: nothing drawn (or written to the SVG) between the blocks
    corners, named = set(), set()
    for mesh in meshes:
        cells = np.asarray(mesh.get_array())
        assert cells.shape[:2] == (len(THRESHOLDS), len(BANDWIDTHS))
        coordinates = mesh.get_coordinates()
        (left, bottom), (right, top) = coordinates[0, 0], coordinates[-1, -1]
        [site] = [
            s for s, t in names.items() if left < t.get_position()[0] < right and np.isclose(t.get_position()[1], top)
        ]
        colour = {tuple(np.round(c, 6)) for c in cells.reshape(-1, 4)}
        assert colour == {tuple(np.round(to_rgba(COLORS[modality[site]]), 6))}  # its own site's labels
        corners.add((left, bottom))
        named.add(site)
    assert named == set(sites)
    assert len({x for x, _ in corners}) == 8 and len({y for _, y in corners}) == 2  # 2 rows of 8 (then 2) blocks
    tick_labels = [t.get_text() for t in ax.texts if t.get_text() not in modality]
    assert tick_labels.count("12.5") == 8 and tick_labels.count("30%") == 2  # under each column, left of each row
    [boxes] = [c for c in ax.collections if not isinstance(c, QuadMesh)]
    assert len(boxes.get_paths()) == len(sites)  # the default setting outlined on every site
    plt.close(page)


def test_the_preview_is_the_png_shrunk_and_asking_for_it_leaves_png_and_svg_as_they_were() -> None:
    import io

    import numpy as np
    from PIL import Image

    from rootassets.science.figure_specs import FIGURE_DPI, FIGURES, PREVIEW_DPI, render_figure

    profiles, modality = profiles_of(10)
    labels = pl.DataFrame({"site_id": list(modality), "modality": list(modality.values())})
    spec = next(s for s in FIGURES if s.name == "figure_1_root_profiles")
    inputs = {"root_profiles": profiles, "site_modality": labels}
    plain, previewed = render_figure(spec, inputs), render_figure(spec, inputs, preview_dpi=PREVIEW_DPI)
    assert plain.preview is None and previewed.png == plain.png
    assert _svg_drawing(previewed.svg) == _svg_drawing(plain.svg)
    with Image.open(io.BytesIO(plain.png)) as png, Image.open(io.BytesIO(previewed.preview)) as preview:
        assert round(png.info["dpi"][0]) == FIGURE_DPI
        shrunk = png.reduce(round(FIGURE_DPI / PREVIEW_DPI))
        assert preview.size == shrunk.size and np.array_equal(np.asarray(preview), np.asarray(shrunk))


def _svg_drawing(svg: bytes) -> bytes:
    """An SVG without its date and with matplotlib's per-process random ids blanked."""
    import re

    return re.sub(rb"(#|id=\")[A-Za-z0-9_]*[0-9a-f]{10}", rb"\1ID", re.sub(rb"<dc:date>.*?</dc:date>", b"", svg))


def site_page_inputs(seed: int) -> dict:
    """One invented site's rows for `SitePage.draw`: 1-5 profiles over a depth it picks, a KDE, soil N or none,
    D1/D2 or not, and data flags of any length."""
    rng = np.random.default_rng(seed)
    n_profiles, bottom = int(rng.integers(1, 6)), float(rng.choice([60.0, 120.0, 200.0]))
    tops = np.arange(0.0, bottom, 10.0)
    increments = pl.DataFrame(
        {
            "profile": np.repeat(np.arange(1, n_profiles + 1), tops.size),
            "top_cm": np.tile(tops, n_profiles),
            "bottom_cm": np.tile(tops + 10.0, n_profiles),
            "root_density_g_m3": rng.lognormal(5.0 - seed % 3, 1.0, n_profiles * tops.size),
            "fine_root_cutoff_mm": [2.0] * (n_profiles * tops.size),
        }
    )
    depths = np.linspace(0.0, bottom, 64)
    kde = pl.DataFrame({"depth_cm": depths, "density": np.exp(-(((depths - bottom / 3) / 20) ** 2)) / (10 + seed)})
    with_n = seed % 2 == 0
    soil = pl.DataFrame(
        {
            "top_cm": tops,
            "bottom_cm": tops + 10.0,
            "nitrogen_tot_g_kg": rng.uniform(0.1, 3.0 * (seed + 1), tops.size) if with_n else [None] * tops.size,
        },
        schema={"top_cm": pl.Float64, "bottom_cm": pl.Float64, "nitrogen_tot_g_kg": pl.Float64},
    )
    bimodal = seed % 3 == 0
    modality = {
        "modality": "bimodal" if bimodal else ("unimodal" if seed % 3 == 1 else None),
        "d0_cm": bottom / 3,
        "d1_cm": bottom / 2 if bimodal else None,
        "d2_cm": bottom * 0.7 if bimodal else None,
    }
    flags = [f"flag {i}: " + "a long note that runs past the page's edge " * (i + 1) for i in range(seed % 3)]
    return {
        "site": f"S{seed:03d}",
        "modality": modality,
        "increments": increments,
        "kde": kde,
        "soil": soil,
        "flags": flags,
    }


def test_a_site_page_drawn_after_other_sites_looks_as_one_drawn_on_a_figure_of_its_own() -> None:
    """The site pages share one figure, redrawn site after site: nothing of one site's page (its profiles, their
    colours, its axis limits, its soil-N axis, its D lines, its flags) shows on the next one's."""
    import io

    from rootassets.science.figures import SitePage

    def pixels(fig: plt.Figure) -> bytes:
        out = io.BytesIO()
        fig.savefig(out, format="rgba", dpi=30)
        return out.getvalue()

    sites = [site_page_inputs(seed) for seed in (4, 1, 3, 0, 5, 2, 7)]  # N, none, none, N, none, N, none
    alone = [pixels(SitePage().draw(**site)) for site in sites]
    shared = SitePage()
    in_turn = [pixels(shared.draw(**site)) for site in sites]
    assert len(set(alone)) == len(sites)
    assert [a == b for a, b in zip(alone, in_turn, strict=True)] == [True] * len(sites)


def test_a_site_page_skips_wrapping_its_text_only_where_wrapping_would_change_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The flags text is wrapped by matplotlib only when a line may reach the page's edge; a page drawn that
    way equals, pixel for pixel, the page with matplotlib's wrapping always on, short flags and long alike."""
    import io

    from rootassets.science.figures import SitePage

    def pixels(fig: plt.Figure) -> bytes:
        out = io.BytesIO()
        fig.savefig(out, format="rgba", dpi=30)
        return out.getvalue()

    sites = [site_page_inputs(seed) for seed in (3, 4, 5, 8)]  # no flags, one, two, two long lines
    sites[3]["flags"] = ["w" * 60 + " " + "x" * 30, "y " * 54]  # past the edge by width, not by word count
    page = SitePage()
    drawn = [pixels(page.draw(**site)) for site in sites]
    wrapped = [page.text.get_wrap() for site in sites if page.draw(**site)]
    monkeypatch.setattr(SitePage, "_fits", lambda self, lines: False)  # matplotlib wraps every page
    always = SitePage()
    assert drawn == [pixels(always.draw(**site)) for site in sites]
    assert wrapped == [False, False, True, True]
    never = always.draw(**sites[3])
    never.texts[0].set_wrap(False)
    assert pixels(never) != drawn[3]  # the long flags were wrapped: both ways of deciding were checked


def failing_draw(inputs: dict) -> Iterator[plt.Figure]:
    raise ValueError("no such column: planted")
    yield  # a generator, as every figure's draw


def _failing_count(inputs: dict) -> int:
    raise ValueError("no page count: the panels' table is gone")


def test_figures_drawn_together_in_worker_processes_are_the_figures_drawn_one_by_one() -> None:
    """`render_figures` draws several figures (one of several pages) as tasks for two worker processes: each is
    what `render_figure` draws of it alone in this process, page for page. A figure whose drawing fails is
    returned as its error, naming it, and the others are drawn all the same."""
    import dataclasses

    from rootassets.science.figure_specs import FIGURES, FigureDrawingError, render_figure, render_figures
    from rootassets.science.pagination import PANELS_PER_PAGE

    profiles, modality = profiles_of(2 * PANELS_PER_PAGE + 5)
    labels = pl.DataFrame({"site_id": list(modality), "modality": list(modality.values())})
    paged = next(s for s in FIGURES if s.name == "figure_1_root_profiles")
    phi = next(s for s in FIGURES if s.name == "figure_3_phi")
    broken = dataclasses.replace(phi, name="figure_broken", draw=failing_draw)
    uncountable = dataclasses.replace(paged, name="figure_uncountable", pages=_failing_count)
    phi_inputs = {"phi": phi_table(), "group_tests": group_tests()}
    inputs_of_paged = {"root_profiles": profiles, "site_modality": labels}
    inputs = {
        paged.name: inputs_of_paged,
        phi.name: phi_inputs,
        broken.name: phi_inputs,
        uncountable.name: inputs_of_paged,
    }
    together = render_figures([paged, broken, uncountable, phi], inputs, n_jobs=2, preview_dpi=30)
    assert list(together) == [paged.name, broken.name, uncountable.name, phi.name]
    assert isinstance(together[broken.name], FigureDrawingError)
    assert "figure_uncountable" in str(together[uncountable.name]) and "no page count" in str(
        together[uncountable.name]
    )
    assert "figure_broken" in str(together[broken.name]) and "no such column: planted" in str(together[broken.name])
    for spec in (paged, phi):
        alone = render_figure(spec, inputs[spec.name], n_jobs=1, preview_dpi=30)
        drawn = together[spec.name]
        assert (drawn.png, drawn.preview, drawn.pages) == (alone.png, alone.preview, alone.pages)
        assert _svg_drawing(drawn.svg) == _svg_drawing(alone.svg)
    assert together[paged.name].pages == 3 and together[phi.name].pdf is None
    assert _page_streams(together[paged.name].pdf) == _page_streams(render_figure(paged, inputs[paged.name]).pdf)


def test_counting_a_figures_pages_does_not_import_matplotlib() -> None:
    """The job process counts the paged figures' pages before the workers draw them: importing matplotlib there
    for that cost ~0.8 s of every cold job (py-spy), so the count must not need it."""
    import subprocess
    import sys

    script = (
        "import sys, polars as pl\n"
        "from rootassets.science.figure_specs import label_sensitivity_pages, profile_pages\n"
        "sites = pl.DataFrame({'site_id': [f'S{i:03d}' for i in range(130)]})\n"
        "assert profile_pages({'root_profiles': sites}) == 3\n"
        "assert label_sensitivity_pages({'site_label_sensitivity': sites}) == 3\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
