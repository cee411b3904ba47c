"""METHOD.md section 8: the figures, as functions from tables to matplotlib Figures (no I/O)."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from rootassets.science.basemap import NATURAL_EARTH_CITATION, WORLD_EXTENT, map_extent, world_relief  # noqa: E402
from rootassets.science.nutrients import LOESS_MIN_POINTS, NUTRIENTS, fit_band, loess  # noqa: E402
from rootassets.science.pagination import pages_of  # noqa: E402

COLORS = {"bimodal": "#c0392b", "unimodal": "#2e6fba"}
# Human-readable factor names with units, for the importance ranking (columns not listed keep their name).
FACTOR_LABELS = {
    "total_fine_root_biomass_4mm_equiv_g_m2": "Total fine-root biomass (g m$^{-2}$, 4 mm-equiv.)",
    "elevation_m": "Elevation (m)",
    "mean_annual_temperature_c": "Mean annual temperature (\N{DEGREE SIGN}C)",
    "mean_annual_precipitation_mm": "Mean annual precipitation (mm)",
    "canopy_height_m": "Canopy height (m)",
    "green_days": "Green days (d yr$^{-1}$)",
    "land_cover": "Land cover",
    "soil_ph_0_30cm": "Soil pH (H$_2$O), 0-30 cm",
    "sand_pct_0_30cm": "Sand, 0-30 cm (%)",
    "clay_pct_0_30cm": "Clay, 0-30 cm (%)",
    "organic_carbon_g_kg_0_30cm": "Organic C, 0-30 cm (g kg$^{-1}$)",
    "cec_cmol_kg_0_30cm": "CEC, 0-30 cm (cmol(+) kg$^{-1}$)",
}


def panel_letters(axes: list[plt.Axes]) -> None:
    """Bold a, b, c, ... in the top-left corner of each panel, as the paper's figures."""
    for letter, ax in zip("abcdefghij", axes, strict=False):
        ax.text(-0.12, 1.04, letter, transform=ax.transAxes, fontsize=13, fontweight="bold", va="bottom")


def plain_log_ticks(ax: plt.Axes) -> None:
    """Decimal tick labels (0.5, 1, 10, 1000) on a log y axis instead of 5x10^-1 and friends."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def comparison_note(tests: pl.DataFrame | None, name: str) -> str:
    """'n = 9 vs 35, Student's t, p = 5.2e-03' for the group test `name` (empty when there is none)."""
    if tests is None or "name" not in tests.columns:
        return ""
    row = tests.filter(pl.col("name") == name)
    if row.is_empty() or row["p_value"][0] is None:
        return ""
    r = row.row(0, named=True)
    test = {"student_t": "Student's t", "welch_t": "Welch's t"}.get(r["test"], r["test"])
    return f"n = {r['n_bimodal']} bimodal, {r['n_unimodal']} unimodal; {test}, p = {r['p_value']:.2g}"


def _by_modality_colors(modality: list[str]) -> list[str]:
    return [COLORS.get(m, "grey") for m in modality]


def grid_margins(
    fig: Figure,
    rows: int,
    *,
    left: float,
    bottom: float,
    top: float,
    single: tuple[float, float],
    wspace: float,
    hspace: float,
) -> None:
    """Fixed margins for a grid of `rows` panel rows, instead of tight_layout, which measures every panel's text
    and grows with the number of panels (the 10x scaling benchmark exposed it). `bottom` and `top` are shared out
    over the rows; `single` is (bottom, top) for a one-row grid."""
    fig.subplots_adjust(
        left=left,
        right=0.99,
        bottom=bottom / rows + 0.02 if rows > 1 else single[0],
        top=1 - top / rows if rows > 1 else single[1],
        wspace=wspace,
        hspace=hspace,
    )


@dataclass(frozen=True)
class PanelGrid:
    """Where each site's panel sits when a page's panels are drawn in one axes: panels of `width` x `height`
    data units, `gap_x` and `gap_y` apart, in rows of `cols`, the first panel top left. One axes with every
    panel in it draws a page of 64 panels several times faster than 64 axes of their own (each axes sets up and
    draws its own ticks); the panels sit where the separate axes did."""

    width: float
    height: float
    gap_x: float
    gap_y: float
    rows: int
    cols: int

    @property
    def total_width(self) -> float:
        return self.cols * self.width + (self.cols - 1) * self.gap_x

    @property
    def total_height(self) -> float:
        return self.rows * self.height + (self.rows - 1) * self.gap_y

    def origin(self, index: int) -> tuple[float, float]:
        """The lower-left corner of the `index`-th panel (y up)."""
        row, col = divmod(index, self.cols)
        return col * (self.width + self.gap_x), (self.rows - 1 - row) * (self.height + self.gap_y)

    def is_lowest_in_column(self, index: int, panels: int) -> bool:
        """Whether no panel of the `panels` on the page sits below the `index`-th."""
        return index + self.cols >= panels

    def is_first_in_row(self, index: int) -> bool:
        return index % self.cols == 0


def _in_panel_order(sites: pl.Series, modality: dict[str, str]) -> list[str]:
    """The sites of a panel-per-site figure: bimodal first, then by code."""
    return sorted(sites.unique().to_list(), key=lambda s: (modality.get(s) != "bimodal", s))


def _page_title(title: str, page: int, pages: int) -> str:
    return title if pages == 1 else f"{title}, page {page} of {pages}"


def _selected(pages: list[list[str]], only: Collection[int] | None) -> Iterator[tuple[int, list[str]]]:
    """(page number from 1, its sites) of the pages in `only` (every page when None)."""
    for number, page in enumerate(pages, start=1):
        if only is None or number in only:
            yield number, page


def root_profiles_pages(
    profiles: pl.DataFrame, modality: dict[str, str], span: float = 0.5, only: Collection[int] | None = None
) -> Iterator[Figure]:
    """Figure 1: standardized root profiles of every site, LOESS fit with 95% band; red bimodal, blue unimodal.
    Pages of at most PANELS_PER_PAGE sites (bimodal first, then by code), each drawn when the one before has
    been used, so memory stays that of one page whatever the number of sites; every page has the same depth
    axis. With `only`, those pages alone (numbered from 1), so that several processes can share the pages."""
    sites = _in_panel_order(profiles["site_id"], modality)
    deepest = float(profiles["mid_cm"].max()) if profiles.height else 1.0
    pages = pages_of(sites)
    wanted = {site for _, page in _selected(pages, only) for site in page}
    by_site = _profiles_by_site(profiles.filter(pl.col("site_id").is_in(list(wanted))))
    for number, page in _selected(pages, only):
        yield _root_profiles_page(by_site, page, modality, span, deepest, (number, len(pages)))


def _profiles_by_site(profiles: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {key[0]: g.sort("mid_cm") for key, g in profiles.group_by("site_id", maintain_order=True)}


PROFILE_X = (-0.1, 1.2)  # the standardized density axis of every panel


def _root_profiles_page(
    by_site: dict[str, pl.DataFrame],
    sites: list[str],
    modality: dict[str, str],
    span: float,
    deepest: float,
    page: tuple[int, int],
) -> Figure:
    """One page of Figure 1: the sites' panels drawn in one axes (PanelGrid), each framed, with the same depth
    and density axes; tick labels on the lowest panel of each column and the first of each row."""
    from matplotlib.collections import PatchCollection, PolyCollection
    from matplotlib.lines import Line2D
    from matplotlib.markers import TICKDOWN, TICKLEFT
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator
    from matplotlib.transforms import Bbox, TransformedBbox, offset_copy

    cols = 8
    rows = max(1, math.ceil(len(sites) / cols))
    fig = plt.figure(figsize=(cols * 1.9, rows * 2.3))
    ax = fig.add_subplot()
    grid_margins(fig, rows, left=0.06, bottom=0.5, top=0.6, single=(0.12, 0.85), wspace=0.15, hspace=0.45)
    low, high = PROFILE_X
    depth = deepest * 1.05
    layout = PanelGrid(high - low, depth, 0.15 * (high - low), 0.45 * depth, rows, cols)
    ax.set_xlim(0, layout.total_width)
    ax.set_ylim(0, layout.total_height)
    ax.set_axis_off()
    x_ticks = [v for v in MaxNLocator(nbins=3).tick_values(low, high) if low <= v <= high]
    y_ticks = [v for v in MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]).tick_values(0, depth) if v <= depth]
    tick = 3.5 + 3.5  # points: matplotlib's tick length and label pad
    title_at = offset_copy(ax.transData, fig, y=6, units="points")
    under, beside = (
        offset_copy(ax.transData, fig, y=-tick, units="points"),
        offset_copy(ax.transData, fig, x=-tick, units="points"),
    )
    frames, bands, band_colors, marks_x, marks_y = [], [], [], [], []
    points_x, points_y, point_colors = [], [], []
    for index, site in enumerate(sites):
        x0, y0 = layout.origin(index)

        def at(value: np.ndarray, mid: np.ndarray, x0: float = x0, y0: float = y0) -> tuple[np.ndarray, np.ndarray]:
            return x0 + (value - low), y0 + depth - mid  # a panel's (density, depth) in the page's axes

        g = by_site[site]
        x, y = g["mid_cm"].to_numpy(), g["standardized"].to_numpy()
        color = COLORS[modality.get(site, "unimodal")]
        px, py = at(y, x)
        points_x.append(px)
        points_y.append(py)
        point_colors += [color] * len(px)
        panel = Bbox.from_bounds(x0, y0, layout.width, layout.height)
        if x.size >= LOESS_MIN_POINTS:
            grid = np.linspace(x.min(), x.max(), 60)
            fitted, lower, upper = loess(x, y, grid, span=span, degree=2)
            if np.isfinite(lower).all():  # the band as its panel shows it: cut at the panel's sides
                left, depths = at(np.clip(lower, low, high), grid)
                right, _ = at(np.clip(upper, low, high), grid)
                bands.append(np.column_stack([np.r_[left, right[::-1]], np.r_[depths, depths[::-1]]]))
                band_colors.append(color)
            curve = Line2D(*at(fitted, grid), color=color, lw=1.2)
        else:  # too few increments for a LOESS: join the points
            curve = Line2D(px, py, color=color, lw=0.8, ls=":")
        ax.add_line(curve)
        curve.set_clip_box(TransformedBbox(panel, ax.transData))
        frames.append(Rectangle((x0, y0), layout.width, layout.height))
        ax.text(
            x0 + layout.width / 2,
            y0 + depth,
            site,
            transform=title_at,
            fontsize=9,
            color=color,
            ha="center",
            va="baseline",
        )
        marks_x += [(x0 + v - low, y0) for v in x_ticks]
        marks_y += [(x0, y0 + depth - v) for v in y_ticks]
        if layout.is_lowest_in_column(index, len(sites)):
            for v in x_ticks:
                ax.text(x0 + v - low, y0, f"{v:.1f}", transform=under, fontsize=7, ha="center", va="top")
        if layout.is_first_in_row(index):
            for v in y_ticks:
                ax.text(x0, y0 + depth - v, f"{v:g}", transform=beside, fontsize=7, ha="right", va="center_baseline")
    if point_colors:  # under the bands, as each panel drew them
        ax.scatter(np.concatenate(points_x), np.concatenate(points_y), s=8, color=point_colors)
    ax.add_collection(PolyCollection(bands, facecolors=band_colors, alpha=0.2, lw=0))
    ax.add_collection(PatchCollection(frames, facecolor="none", edgecolor="k", lw=0.8, zorder=2.5))
    for marks, marker in ((marks_x, TICKDOWN), (marks_y, TICKLEFT)):
        if marks:
            xs, ys = zip(*marks, strict=True)
            ax.plot(xs, ys, ls="none", marker=marker, ms=3.5, mew=0.8, color="k", clip_on=False)
    fig.supxlabel("standardized live fine-root density (Y / max Y)")
    fig.supylabel("depth (cm)")
    title = "Root profiles by site (red: bimodal, blue: unimodal; LOESS span 0.5 with 95% band)"
    fig.suptitle(_page_title(title, *page))
    return fig


LABEL_FONT = 6
# Where a site's label may go, in points from its marker (lower-left corner of the label), nearest first.
LABEL_OFFSETS_PT = [
    (3.0 + 6 * r * cx, 2.0 + 6 * r * cy)
    for r in range(6)
    for cx, cy in ((0, 0), (0, -1.6), (-3.2, 0), (-3.2, -1.6), (0, 1.2), (-1.6, 1.2), (-1.6, -2.4), (1.2, -0.8))
]


def place_labels(
    anchors: np.ndarray, sizes: list[tuple[float, float]], offsets: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """For each anchor (pixels), the first offset whose label box (`sizes`, pixels; the offset is its lower-left
    corner) overlaps neither a label already placed nor another anchor's marker; the last offset tried when
    none is free. Greedy, densest anchors first, so crowded clusters get the near places.

    Linear in the number of anchors for a bounded density: a label can only meet labels and markers of
    anchors within its reach, found through a grid of cells that size, and every offset is tried at once."""
    n = len(sizes)
    if n == 0:
        return []
    points = np.asarray(anchors, dtype=float).reshape(n, 2)
    shifts = np.asarray(offsets, dtype=float)
    extents = np.asarray(sizes, dtype=float)
    marker = 4.0  # half a marker's width, pixels
    reach = float(np.abs(shifts).max() + extents.max() + marker)  # farthest a label's box gets from its anchor
    cell = 2 * reach  # two anchors farther apart than this cannot clash
    keys = [(int(c[0]), int(c[1])) for c in np.floor(points / cell)]
    grid: dict[tuple[int, int], list[int]] = {}
    for index, key in enumerate(keys):
        grid.setdefault(key, []).append(index)
    crowd = np.zeros(n, dtype=int)
    for index, (kx, ky) in enumerate(keys):
        near = [j for dx in (-1, 0, 1) for dy in (-1, 0, 1) for j in grid.get((kx + dx, ky + dy), ())]
        crowd[index] = int((np.linalg.norm(points[near] - points[index], axis=1) < 30.0).sum())
    boxes = np.zeros((n, 4))
    is_placed = np.zeros(n, dtype=bool)
    chosen: list[tuple[float, float]] = [offsets[-1]] * n
    for i in sorted(range(n), key=lambda k: (-crowd[k], k)):
        x, y = points[i]
        w, h = extents[i]
        candidates = np.column_stack([x + shifts[:, 0], y + shifts[:, 1], x + shifts[:, 0] + w, y + shifts[:, 1] + h])
        kx, ky = keys[i]
        near = np.array([j for dx in (-1, 0, 1) for dy in (-1, 0, 1) for j in grid.get((kx + dx, ky + dy), ())])
        others = near[near != i]
        labels = boxes[near[is_placed[near]]]
        clash = (
            (candidates[:, None, 0] < labels[None, :, 2])
            & (labels[None, :, 0] < candidates[:, None, 2])
            & (candidates[:, None, 1] < labels[None, :, 3])
            & (labels[None, :, 1] < candidates[:, None, 3])
        ).any(axis=1)
        px, py = points[others, 0], points[others, 1]
        clash |= (
            (candidates[:, None, 0] - marker < px[None, :])
            & (px[None, :] < candidates[:, None, 2] + marker)
            & (candidates[:, None, 1] - marker < py[None, :])
            & (py[None, :] < candidates[:, None, 3] + marker)
        ).any(axis=1)
        free = np.flatnonzero(~clash)
        if free.size:
            chosen[i] = offsets[int(free[0])]
        dx, dy = chosen[i]
        boxes[i] = (x + dx, y + dy, x + dx + w, y + dy + h)
        is_placed[i] = True
    return chosen


def site_map_figure(sites: pl.DataFrame) -> Figure:
    """Figure 1 (map): site locations (longitude, latitude) coloured by modality, each labelled where its label
    overlaps no other label or marker (a thin leader line when it had to move away)."""
    located = sites.filter(pl.col("longitude").is_not_null() & pl.col("latitude").is_not_null())
    west, east, south, north = map_extent(located["longitude"].to_numpy(), located["latitude"].to_numpy())
    aspect = 1 / np.cos(np.radians((south + north) / 2))  # degrees of longitude shrink with latitude
    height_in = 6.5
    fig, ax = plt.subplots(figsize=(1.4 + height_in * (east - west) / ((north - south) * aspect), height_in))
    ax.imshow(world_relief(), extent=WORLD_EXTENT, interpolation="bilinear", alpha=0.75, zorder=0)
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.set_aspect(aspect)
    for label, g in sites.group_by("modality", maintain_order=True):
        ax.scatter(
            g["longitude"], g["latitude"], s=40, color=COLORS[label[0]], label=label[0], edgecolor="k", lw=0.4, zorder=3
        )
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("latitude (deg)")
    ax.set_title("NEON megapit sites by root modality")
    credit = f"basemap: {NATURAL_EARTH_CITATION}"
    ax.text(0.99, 0.01, credit, transform=ax.transAxes, ha="right", va="bottom", fontsize=5)
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()  # the axes' final size: label places are computed in its pixels
    ax.apply_aspect()
    rows = sites.select("site_id", "longitude", "latitude").drop_nulls().rows()
    anchors = ax.transData.transform([(lon, lat) for _, lon, lat in rows]) if rows else np.empty((0, 2))
    scale = fig.dpi / 72.0  # points -> pixels
    sizes = [(len(site) * LABEL_FONT * 0.62 * scale, LABEL_FONT * 1.1 * scale) for site, _, _ in rows]
    offsets = place_labels(anchors, sizes, [(dx * scale, dy * scale) for dx, dy in LABEL_OFFSETS_PT])
    leaders = []
    for (site, lon, lat), anchor, size, (dx, dy) in zip(rows, anchors, sizes, offsets, strict=True):
        ax.annotate(site, (lon, lat), fontsize=LABEL_FONT, xytext=(dx / scale, dy / scale), textcoords="offset points")
        if abs(dx) + abs(dy) > 20 * scale:  # moved away from its site: a leader line
            line = leader_line(anchor, (anchor[0] + dx, anchor[1] + dy), size, 2.0 * scale)
            if line is not None:
                leaders.append(line)
    if leaders:
        # One collection in data coordinates (the layout is final): an annotation's own arrow clipped itself to its
        # label by bisection, half the map's drawing time with thousands of sites.
        ends = ax.transData.inverted().transform(np.array([end for line in leaders for end in line]))
        ax.add_collection(LineCollection(ends.reshape(-1, 2, 2), linewidths=0.3, colors="0.5", zorder=3))
    return fig


def leader_line(
    anchor: np.ndarray, corner: tuple[float, float], size: tuple[float, float], gap: float
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The line from a moved label to its site (pixels), as an annotation's arrow draws it: from the label's
    centre towards the site, starting where it leaves the label's box padded by `gap`, and stopping `gap` short of
    both ends. None when the site lies within that box."""
    (sx, sy), (w, h) = anchor, size
    cx, cy = corner[0] + w / 2, corner[1] + h / 2
    vx, vy = sx - cx, sy - cy
    exits = [half / abs(v) for half, v in ((w / 2 + gap, vx), (h / 2 + gap, vy)) if v]
    length = float(np.hypot(vx, vy))
    start = min(exits) if exits else 1.0  # fraction of the way from the centre to the site
    if start >= 1.0 or length * (1.0 - start) <= 2 * gap:
        return None
    start += gap / length
    stop = 1.0 - gap / length
    return (cx + start * vx, cy + start * vy), (cx + stop * vx, cy + stop * vy)


def _box_strip(ax: plt.Axes, groups: dict[str, np.ndarray], log: bool = False) -> None:
    labels = list(groups)
    ax.boxplot([groups[k] for k in labels], tick_labels=labels, showfliers=False)
    rng = np.random.default_rng(0)
    for i, k in enumerate(labels, start=1):
        ax.scatter(
            i + rng.uniform(-0.12, 0.12, groups[k].size),
            groups[k],
            s=14,
            color=COLORS.get(k, "grey"),
            alpha=0.8,
            zorder=3,
        )
    if log:
        ax.set_yscale("log")
        plain_log_ticks(ax)


def factors_figure(importance: pl.DataFrame, factors: pl.DataFrame, tests: pl.DataFrame | None = None) -> Figure:
    """Figure 2: factor importance ranking; total fine-root biomass by modality (log axis, with n and the group
    test's p); land cover by modality."""
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4.8))
    ranked = importance.filter(pl.col("run") == "all_factors").sort("importance")
    if ranked.height:
        a.barh(
            [FACTOR_LABELS.get(f, f) for f in ranked["factor"].to_list()],
            ranked["importance"].to_numpy(),
            color=["#555" if k else "#bbb" for k in ranked["kept"]],
        )
        a.set_title("Factor importance (dark: kept after elimination)")
    else:
        a.text(
            0.5, 0.5, "classifier not fitted:\ntoo few complete sites", ha="center", va="center", transform=a.transAxes
        )
        a.set_title("Factor importance")
    a.set_xlabel("mean decrease in Gini impurity")
    a.tick_params(axis="y", labelsize=8)
    groups = {
        m: factors.filter(pl.col("modality") == m)["total_fine_root_biomass_g_m2"].drop_nulls().to_numpy()
        for m in ("bimodal", "unimodal")
    }
    _box_strip(b, groups, log=True)
    b.set_ylabel("Total fine-root biomass, measured (g m$^{-2}$)")
    b.set_title("Total fine-root biomass by modality")
    note = comparison_note(tests, "total_fine_root_biomass")
    if note:
        b.text(0.5, -0.16, note, transform=b.transAxes, ha="center", va="top", fontsize=8)
    counts = (
        factors.filter(pl.col("land_cover").is_not_null()).group_by("land_cover", "modality", maintain_order=True).len()
    )
    covers = sorted(counts["land_cover"].unique().to_list())
    bottom = np.zeros(len(covers))
    for m in ("bimodal", "unimodal"):
        values = np.array(
            [counts.filter((pl.col("land_cover") == lc) & (pl.col("modality") == m))["len"].sum() for lc in covers],
            dtype=float,
        )
        c.bar(covers, values, bottom=bottom, color=COLORS[m], label=m)
        bottom += values
    c.set_ylabel("Sites")
    c.set_title("Land cover by modality")
    c.tick_params(axis="x", labelrotation=20, labelsize=8)
    c.legend()
    if tests is not None and "name" in tests.columns:
        chi = tests.filter(pl.col("name") == "land_cover")
        if chi.height and chi["p_value"][0] is not None:
            r = chi.row(0, named=True)
            c.set_title(
                f"Land cover by modality\nn = {r['n_bimodal']} bimodal, {r['n_unimodal']} unimodal; "
                f"$\\chi^2$ = {r['statistic']:.2f}, p = {r['p_value']:.2g} (Monte Carlo)",
                fontsize=10,
            )
    panel_letters([a, b, c])
    fig.tight_layout()
    return fig


def phi_figure(phi: pl.DataFrame, tests: pl.DataFrame | None = None) -> Figure:
    """Figure 3: phi for root biomass and for soil N by modality (log axis, plain ticks, n and the group test's
    p under each panel)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
    for ax, prop, title in (
        (axes[0], "root_biomass", "$\\phi$, root biomass"),
        (axes[1], "nitrogen_tot_g_kg", "$\\phi$, soil total N"),
    ):
        g = phi.filter((pl.col("property") == prop) & (pl.col("method") == "increment") & (pl.col("phi") > 0))
        _box_strip(
            ax, {m: g.filter(pl.col("modality") == m)["phi"].to_numpy() for m in ("bimodal", "unimodal")}, log=True
        )
        ax.axhline(1.0, color="k", lw=0.6, ls="--")
        ax.set_title(f"{title} (Y(D2) / Y(D1), increment values)")
        ax.set_ylabel("$\\phi$ (unitless)")
        note = comparison_note(tests, f"phi_{prop}_increment")
        if note:
            ax.text(0.5, -0.12, note, transform=ax.transAxes, ha="center", va="top", fontsize=8)
    panel_letters(list(axes))
    fig.tight_layout()
    return fig


def relative_nutrients_figure(points: pl.DataFrame, sites: dict[str, str], curves: pl.DataFrame) -> Figure:
    """Figure 4: relative nutrient profiles (X / Y_root, each profile's surface = 1) of one unimodal and one
    bimodal site: the points of analysis.nutrient_points (one per profile and increment), the log-linear fit
    across them with its 95% band, and the LOESS curve of analysis.nutrient_loess at the bimodal site."""
    fig, axes = plt.subplots(2, 4, figsize=(14, 7), sharey="row", squeeze=False)
    for row, (label, site) in enumerate(sites.items()):
        for col, nutrient in enumerate(NUTRIENTS):
            ax = axes[row, col]
            g = points.filter((pl.col("site_id") == site) & (pl.col("nutrient") == nutrient))
            depth, rel = g["depth_cm"].to_numpy(), g["relative"].to_numpy()
            color = COLORS[label]
            ax.scatter(np.log10(rel), depth, s=12, color=color)
            if np.unique(depth).size >= 3:
                grid = np.linspace(depth.min(), depth.max(), 60)
                fitted, low, high = fit_band(depth, rel, grid)
                ax.plot(fitted, grid, color="k", lw=1)
                ax.fill_betweenx(grid, low, high, color="k", alpha=0.12, lw=0)
            curve = curves.filter((pl.col("site_id") == site) & (pl.col("nutrient") == nutrient)).sort("depth_cm")
            if label == "bimodal" and curve.height:
                ax.plot(curve["log10_rel_fitted"], curve["depth_cm"], color=color, lw=1.2, ls="--")
            ax.set_title(f"{site} ({label}): {nutrient}", fontsize=9)
            ax.axvline(0, color="grey", lw=0.5)
            if col == 0:
                ax.set_ylabel("depth (cm)")
            ax.set_xlabel("log10 relative concentration")
    for row in range(len(sites)):
        axes[row, 0].invert_yaxis()
    fig.suptitle(
        "Nutrients relative to roots (each profile's surface = 1): fit across profiles with 95% band; dashed: LOESS"
    )
    fig.tight_layout()
    return fig


def exponents_figure(exponents: pl.DataFrame) -> Figure:
    """Per-nutrient exponent and r2 distributions by modality."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    nutrients = list(NUTRIENTS)
    for ax, column, label in ((axes[0], "exponent", "exponent b (cm$^{-1}$)"), (axes[1], "r2", "$R^2$")):
        for offset, m in ((-0.18, "bimodal"), (0.18, "unimodal")):
            data = [
                exponents.filter((pl.col("nutrient") == n) & (pl.col("modality") == m))[column].to_numpy()
                for n in nutrients
            ]
            positions = np.arange(len(nutrients)) + offset
            parts = ax.boxplot(data, positions=positions, widths=0.3, showfliers=False, patch_artist=True)
            for patch in parts["boxes"]:
                patch.set_facecolor(COLORS[m])
                patch.set_alpha(0.35)
            for p, d in zip(positions, data, strict=True):
                ax.scatter(np.full(d.size, p), d, s=8, color=COLORS[m], zorder=3)
        ax.set_xticks(range(len(nutrients)), nutrients)
        ax.set_ylabel(label)
        if column == "exponent":
            ax.axhline(0, color="k", lw=0.6, ls="--")
    axes[0].set_title("Exponents by nutrient (red: bimodal, blue: unimodal)")
    axes[1].set_title("$R^2$ of the log-linear fits")
    fig.tight_layout()
    return fig


def label_sensitivity_pages(
    grid: pl.DataFrame,
    modality: dict[str, str],
    default: tuple[float, float],
    only: Collection[int] | None = None,
) -> Iterator[Figure]:
    """Beyond the paper: each site's label over the bandwidth x secondary-threshold grid (red bimodal, blue
    unimodal), the default setting outlined; site names coloured by their label. Pages of at most
    PANELS_PER_PAGE sites, as Figure 1 (and `only`, as there)."""
    sites = _in_panel_order(grid["site_id"], modality)
    pages = pages_of(sites)
    for number, page in _selected(pages, only):
        yield _label_sensitivity_page(grid, page, modality, default, (number, len(pages)))


def sensitivity_grid(n_bandwidths: int, n_thresholds: int, rows: int, cols: int) -> PanelGrid:
    """A label-sensitivity page's blocks: a cell per (bandwidth, threshold), apart by whole cells, about the
    spacing the page had as separate panels."""
    return PanelGrid(
        n_bandwidths, n_thresholds, max(1, round(0.35 * n_bandwidths)), max(1, round(0.5 * n_thresholds)), rows, cols
    )


NO_LABEL = 2.0  # a site's cell without a label at that setting (none computed, or none given)
NO_LABEL_COLOR = "#bdbdbd"


def label_mosaic(
    grid: pl.DataFrame, sites: list[str], bandwidths: list[float], thresholds: list[float], layout: PanelGrid
) -> np.ndarray:
    """The page's cells (row 0 at the bottom): in each site's block, 1 where it is bimodal at that (bandwidth,
    threshold), 0 where it is unimodal, NO_LABEL where it has no label; NaN between the blocks."""
    cells = np.full((int(layout.total_height), int(layout.total_width)), np.nan)
    at = {site: tuple(map(int, layout.origin(index))) for index, site in enumerate(sites)}
    for x0, y0 in at.values():
        cells[y0 : y0 + len(thresholds), x0 : x0 + len(bandwidths)] = NO_LABEL
    column = {b: i for i, b in enumerate(bandwidths)}
    row = {t: j for j, t in enumerate(thresholds)}
    for site, bandwidth, threshold, label in grid.select(
        "site_id", "bandwidth_cm", "secondary_threshold", "modality"
    ).iter_rows():
        if site in at and label in ("bimodal", "unimodal"):
            x0, y0 = at[site]
            cells[y0 + row[threshold], x0 + column[bandwidth]] = 1.0 if label == "bimodal" else 0.0
    return cells


def _label_sensitivity_page(
    grid: pl.DataFrame, sites: list[str], modality: dict[str, str], default: tuple[float, float], page: tuple[int, int]
) -> Figure:
    """One page of the label sensitivity: the sites' grids as a mesh each in one axes (64 panels of their
    own, each with its ticks, took ~0.8 s a page to set up and as much to draw; this is the same picture)."""
    from matplotlib.collections import PatchCollection
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Rectangle
    from matplotlib.transforms import offset_copy

    bandwidths = sorted(grid["bandwidth_cm"].unique().to_list())
    thresholds = sorted(grid["secondary_threshold"].unique().to_list())
    cols = 8
    rows = max(1, math.ceil(len(sites) / cols))
    layout = sensitivity_grid(len(bandwidths), len(thresholds), rows, cols)
    cells = label_mosaic(grid.filter(pl.col("site_id").is_in(sites)), sites, bandwidths, thresholds, layout)
    fig = plt.figure(figsize=(cols * 1.7, rows * 1.7))
    ax = fig.add_subplot()
    grid_margins(fig, rows, left=0.07, bottom=0.45, top=0.5, single=(0.15, 0.82), wspace=0.35, hspace=0.5)
    # The cells as a mesh of RGBA quads: an image would be resampled to the 300 dpi PNG's size in floats and
    # converted back to bytes (~1 s a page), and through a colormap every resampled pixel coloured (2-3 s)
    palette = np.array([to_rgba(c) for c in (COLORS["unimodal"], COLORS["bimodal"], NO_LABEL_COLOR)])
    edges_x, edges_y = np.arange(cells.shape[1] + 1) - 0.5, np.arange(cells.shape[0] + 1) - 0.5
    for index in range(len(sites)):  # a mesh a block: the gaps between blocks are neither drawn nor written
        x0, y0 = map(int, layout.origin(index))
        x1, y1 = x0 + len(bandwidths), y0 + len(thresholds)
        block = palette[cells[y0:y1, x0:x1].astype(int)]
        ax.pcolormesh(edges_x[x0 : x1 + 1], edges_y[y0 : y1 + 1], block, antialiased=False, lw=0)
    ax.set_xlim(-0.5, layout.total_width - 0.5)
    ax.set_ylim(-0.5, layout.total_height - 0.5)
    ax.set_axis_off()
    above = offset_copy(ax.transData, fig, y=6, units="points")  # where a title goes
    below = offset_copy(ax.transData, fig, y=-2, units="points")
    beside = offset_copy(ax.transData, fig, x=-2, units="points")
    boxes = []
    outlined = (
        (bandwidths.index(default[0]), thresholds.index(default[1]))
        if default[0] in bandwidths and default[1] in thresholds
        else None
    )
    for index, site in enumerate(sites):
        x0, y0 = layout.origin(index)
        color = COLORS.get(modality.get(site, ""), "grey")
        ax.text(
            x0 + (len(bandwidths) - 1) / 2,
            y0 + len(thresholds) - 0.5,
            site,
            transform=above,
            fontsize=8,
            color=color,
            ha="center",
            va="baseline",
        )
        if outlined is not None:  # the default setting's cell
            boxes.append(Rectangle((x0 + outlined[0] - 0.5, y0 + outlined[1] - 0.5), 1, 1))
        if layout.is_lowest_in_column(index, len(sites)):  # the bandwidths under it
            for i, b in enumerate(bandwidths):
                ax.text(x0 + i, y0 - 0.5, f"{b:g}", transform=below, fontsize=5, ha="center", va="top")
        if layout.is_first_in_row(index):  # the thresholds left of it
            for j, t in enumerate(thresholds):
                ax.text(x0 - 0.5, y0 + j, f"{t:.0%}", transform=beside, fontsize=5, ha="right", va="center_baseline")
    ax.add_collection(PatchCollection(boxes, facecolor="none", edgecolor="k", lw=1.2))
    fig.supxlabel("kernel bandwidth (cm)")
    fig.supylabel("secondary threshold")
    title = "Label sensitivity (beyond the paper): red bimodal, blue unimodal; box: the default setting"
    fig.suptitle(_page_title(title, *page))
    return fig


TWIN_AXIS_POINTS = 31.0  # a top x axis's ticks, tick labels and label, at the default sizes
SOIL_N_COLOR = "#2a9d3a"


class SitePage:
    """The one-page-per-site figure, drawn site after site on one A4 figure: its axes, their ticks and the
    twin axis are made once and only the site's own artists are replaced: a page takes a third less time to
    draw (a new figure's axes and ticks were ~40% of it). A page looks exactly as on a figure of its own.

    `draw` returns the same Figure each time: save or copy it before drawing the next site."""

    def __init__(self) -> None:
        self.figure = fig = Figure(figsize=(8.27, 11.69))  # A4 portrait
        grid = fig.add_gridspec(2, 2, height_ratios=[3, 1], hspace=0.25, wspace=0.3)
        self.roots, self.density = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
        self.roots.set_ylabel("depth (cm)")
        # units in Unicode superscripts, not mathtext: mathtext is parsed anew on every page (6% of a page's time)
        self.roots.set_xlabel("live fine-root density (g m⁻³)")
        # Titles placed, not found: matplotlib's search for a free place measures every tick label of the axes
        # and its twin on each page, a fifth of the page's drawing time.
        self.roots.set_title("Profiles", y=1.0)
        self.twin = self.density.twiny()
        self.twin.set_xlabel("soil total N (g kg⁻¹)", color=SOIL_N_COLOR)
        self.twin.tick_params(axis="x", colors=SOIL_N_COLOR)
        self.density.set_xlabel("root-depth KDE (per cm)")
        self.density.locator_params(axis="x", nbins=4)
        below = grid[1, :].get_position(fig)  # the text where a third axes would sit, without making one
        self.text = fig.text(below.x0, below.y1, "", va="top", family="monospace", fontsize=8, wrap=True)
        self._text_width_pt = (1.0 - below.x0) * fig.get_figwidth() * 72.0  # where matplotlib wraps a line
        self._drawn: list = []  # this page's own artists, removed before the next page

    def draw(
        self,
        site: str,
        modality: dict[str, object],
        increments: pl.DataFrame,
        kde: pl.DataFrame,
        soil: pl.DataFrame,
        flags: list[str],
    ) -> Figure:
        """The site's page, from its own rows of each table: every profile's live fine-root density and the site
        mean by increment, the KDE with D0, D1 and D2, soil total N on the root grid, and the site's data
        flags."""
        roots, density, twin = self.roots, self.density, self.twin
        for artist in self._drawn:
            artist.remove()
        drawn = self._drawn = []
        roots.set_prop_cycle(None)  # each page's profiles in the colours a new figure's would have
        label = str(modality.get("modality") or "unlabelled")
        color = COLORS.get(label, "grey")
        own = increments.sort("profile", "top_cm")
        for (profile,), g in own.group_by("profile", maintain_order=True):
            mids = ((g["top_cm"] + g["bottom_cm"]) / 2).to_numpy()
            values = g["root_density_g_m3"].to_numpy()
            drawn += roots.plot(values, mids, marker="o", ms=3, lw=0.8, alpha=0.6, label=f"profile {profile}")
        _rescaled(roots)
        if not roots.yaxis_inverted():
            roots.invert_yaxis()
        drawn.append(roots.legend(fontsize=7))
        curve = kde.sort("depth_cm")
        drawn += density.plot(curve["density"].to_numpy(), curve["depth_cm"].to_numpy(), color=color)
        for name, style in (("d0_cm", "-"), ("d1_cm", ":"), ("d2_cm", "--")):
            depth = modality.get(name)
            if depth is not None:
                drawn.append(density.axhline(float(depth), color="k", ls=style, lw=0.8))
                drawn.append(
                    density.annotate(
                        name[:2].upper(),
                        (0.98, float(depth)),
                        xycoords=("axes fraction", "data"),
                        ha="right",
                        va="bottom",
                        fontsize=8,
                    )
                )
        _rescaled(density)
        soil_n = soil.filter(pl.col("nitrogen_tot_g_kg").is_not_null()).sort("top_cm")
        twin.set_visible(bool(soil_n.height))
        if soil_n.height:
            mids = ((soil_n["top_cm"] + soil_n["bottom_cm"]) / 2).to_numpy()
            nitrogen = soil_n["nitrogen_tot_g_kg"].to_numpy()
            drawn += twin.plot(nitrogen, mids, color=SOIL_N_COLOR, marker="s", ms=3, lw=0.8)
            _rescaled(twin)
        density.set_ylim(roots.get_ylim())
        title_pad = 6.0 + (TWIN_AXIS_POINTS if soil_n.height else 0.0)  # points: matplotlib's default, + the twin
        density.set_title("KDE, modes (D0, D2) and antimode (D1)", fontsize=9, y=1.0, pad=title_pad)

        def shown(name: str) -> str:
            value = modality.get(name)
            return "-" if value is None else f"{float(value):.0f} cm"

        lines = [
            f"{site}: {label}   D0 {shown('d0_cm')}   D1 {shown('d1_cm')}   D2 {shown('d2_cm')}",
            f"profiles {own['profile'].n_unique()}, increments {own.height}, fine-root cutoff "
            f"{', '.join(str(c) for c in own['fine_root_cutoff_mm'].unique().sort().to_list())} mm",
            "data flags:" if flags else "data flags: none",
            *(f"  - {flag}" for flag in flags),
        ]
        self.text.set_text("\n".join(lines))
        self.text.set_wrap(not self._fits(lines))
        self.figure.suptitle(f"{site} ({label})", color=color)
        return self.figure

    def _fits(self, lines: list[str]) -> bool:
        """Whether every line is surely narrower than the page, so that matplotlib's wrapping would leave the
        text as it is: it measures every prefix of every line, 11-16% of a page's drawing. One measure of each
        line (unhinted, `WRAP_MARGIN` to spare) decides; text that matplotlib would read as mathtext is left
        to it."""
        if any("$" in line for line in lines):
            return False
        from matplotlib.textpath import text_to_path

        prop = self.text.get_fontproperties()
        widest = max(text_to_path.get_text_width_height_descent(line, prop, ismath=False)[0] for line in lines)
        return widest * WRAP_MARGIN <= self._text_width_pt


WRAP_MARGIN = 1.25  # hinted renderers measured lines at most 1.05x the unhinted width (Agg 30-300 dpi, PDF)


def _rescaled(ax: plt.Axes) -> None:
    """Data limits from the axes' current artists alone, and both axes autoscaled to them."""
    ax.relim()
    ax.autoscale()


def soil_water_figure(statistics: pl.DataFrame, series: pl.DataFrame, tests: pl.DataFrame | None = None) -> Figure:
    """Soil water (METHOD.md section 4): (a) each site's mean phi of soil water content over its 30-minute steps,
    by modality (hollow: too little data, left out of the test), with n and p; (b) soil water at D1 and D2 over
    time at one bimodal and one unimodal site (the ones with the most steps with phi)."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1, 2]})
    phi = statistics.filter(pl.col("variable") == "phi") if "variable" in statistics.columns else statistics
    if phi.is_empty() or series.is_empty():
        for ax in (a, b):
            ax.text(
                0.5,
                0.5,
                "no soil-water data (DP1.00094.001) for this release\n"
                "set ROOTASSETS_SOIL_WATER to a folder of NEON files",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
            ax.set_axis_off()
        a.set_title("Soil-water $\\phi$ by modality")
        b.set_title("Soil water at D1 and D2")
        panel_letters([a, b])
        return fig
    enough = pl.col("sufficient_data") if "sufficient_data" in phi.columns else pl.lit(True)
    groups = {
        m: phi.filter((pl.col("modality") == m) & enough & (pl.col("mean") > 0))["mean"].to_numpy()
        for m in ("bimodal", "unimodal")
    }
    _box_strip(a, groups, log=True)
    short = phi.filter(~enough & pl.col("modality").is_not_null())
    for i, m in enumerate(("bimodal", "unimodal"), start=1):
        values = short.filter(pl.col("modality") == m)["mean"].to_numpy()
        a.scatter(np.full(values.size, i + 0.25), values, s=18, facecolors="none", edgecolors=COLORS[m], zorder=3)
    a.axhline(1.0, color="k", lw=0.6, ls="--")
    a.set_ylabel("site mean of $\\phi$ = SWC(D2) / SWC(D1)")
    a.set_title("Soil-water $\\phi$ by modality")
    note = comparison_note(tests, "soil_water_phi_mean")
    if note:
        a.text(0.5, -0.12, note, transform=a.transAxes, ha="center", va="top", fontsize=8)
    counts = series.filter(pl.col("phi").is_not_null()).group_by("site_id").len()
    labelled = counts.join(phi.select("site_id", "modality").unique(), on="site_id")
    for m in ("bimodal", "unimodal"):
        best = labelled.filter(pl.col("modality") == m).sort(["len", "site_id"], descending=[True, False])
        if best.is_empty():
            continue
        site = best["site_id"][0]
        g = series.filter(pl.col("site_id") == site).sort("start_time")
        b.plot(g["start_time"], g["swc_d1"], color=COLORS[m], lw=0.8, label=f"{site} ({m}), D1")
        b.plot(g["start_time"], g["swc_d2"], color=COLORS[m], lw=0.8, ls="--", label=f"{site} ({m}), D2")
    b.set_ylabel("volumetric soil water content (m$^3$ m$^{-3}$)")
    b.set_title("Soil water at D1 (solid) and D2 (dashed)")
    b.legend(fontsize=8)
    fig.autofmt_xdate()
    panel_letters([a, b])
    fig.tight_layout()
    return fig
