"""METHOD.md section 4, phi = Y(D2) / Y(D1), the depth-level signature."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from rootassets.science.soil_profiles import SOIL_PROPERTIES


@dataclass(frozen=True)
class PhiParameters:
    """Section 4 constants: the depths used for unimodal sites."""

    unimodal_d1_cm: float = 70.0
    unimodal_d2_cm: float = 100.0

    def as_metadata(self) -> dict[str, float]:
        return asdict(self)


def phi_depths(modality: str, d1_cm: float | None, d2_cm: float | None, params: PhiParameters) -> tuple[float, float]:
    """A bimodal site's own D1 and D2; the defaults for a unimodal site."""
    if modality == "bimodal" and d1_cm is not None and d2_cm is not None:
        return d1_cm, d2_cm
    return params.unimodal_d1_cm, params.unimodal_d2_cm


def phi_depth_table(modality: pl.DataFrame, params: PhiParameters) -> pl.DataFrame:
    """site_id, modality, d1_cm, d2_cm: each site's depths for phi (`phi_depths` per row of `site_modality`)."""
    return pl.DataFrame(
        [
            (s, m, *phi_depths(m, d1, d2, params))
            for s, m, d1, d2 in modality.select("site_id", "modality", "d1_cm", "d2_cm").iter_rows()
        ],
        schema={"site_id": pl.String, "modality": pl.String, "d1_cm": pl.Float64, "d2_cm": pl.Float64},
        orient="row",
    )


def depths_used(phi: pl.DataFrame) -> pl.DataFrame:
    """site_id, modality, d1_cm, d2_cm: the depths `analysis.phi` used for each site (the same for every
    property), so that whatever reads them (soil water) follows the phi step's parameters."""
    return (
        phi.select("site_id", "modality", "d1_cm", "d2_cm")
        .unique("site_id", keep="first")
        .sort("site_id")
        .cast({"d1_cm": pl.Float64, "d2_cm": pl.Float64})
    )


def value_in_increment(tops: np.ndarray, bottoms: np.ndarray, values: np.ndarray, depth: float) -> float | None:
    """Y(D) as the value of the increment containing D (top <= D < bottom); the mean
    where site-level increments of different profiles both contain it; None if none does. One reading at a
    time: the definition `SiteRows.readings` follows for every site at once (test_phi.py)."""
    inside = (tops <= depth) & (depth < bottoms) & np.isfinite(values)
    chosen = values[inside]
    return float(chosen.sum() / chosen.size) if chosen.size else None


def phi(y_d2: float | None, y_d1: float | None) -> float | None:
    """Y(D2) / Y(D1); None when either is missing or Y(D1) is zero."""
    if y_d1 is None or y_d2 is None or y_d1 == 0 or not np.isfinite(y_d1) or not np.isfinite(y_d2):
        return None
    return y_d2 / y_d1


class SiteRows:
    """A table's rows by site, as flat float arrays (nulls as NaN) and each site's span in them: sites in code
    order, each site's rows in `sort` order when given, else in table order. One pass over the table serves
    every reading of it (phi_sensitivity reads the same tables 18 times)."""

    def __init__(self, frame: pl.DataFrame, columns: list[str], sort: str | None = None) -> None:
        frame = frame.with_row_index("_order").sort(["site_id", sort or "_order", "_order"])
        sites = frame["site_id"].to_numpy()
        self.columns = {c: frame[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in columns}
        self.span: dict[str, tuple[int, int]] = {}
        if sites.size:
            starts = np.flatnonzero(np.r_[True, sites[1:] != sites[:-1]])
            ends = np.r_[starts[1:], sites.size]
            self.span = {sites[a]: (int(a), int(b)) for a, b in zip(starts, ends, strict=True)}

    def of(self, site: str) -> dict[str, np.ndarray]:
        """The site's rows, each column an array (empty when the table has no row of the site)."""
        a, b = self.span.get(site, (0, 0))
        return {c: values[a:b] for c, values in self.columns.items()}

    def readings(
        self, columns: list[str], sites: list[str], depths: np.ndarray
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per column, `value_in_increment` of each (site, depth) pair at once: the values (to the bit) and
        whether one was found (where not, the value is meaningless)."""
        spans = np.array([self.span.get(site, (0, 0)) for site in sites], dtype=np.int64).reshape(-1, 2)
        lengths = spans[:, 1] - spans[:, 0]
        reading = np.repeat(np.arange(len(sites)), lengths)
        first_row = np.cumsum(lengths) - lengths
        row = np.arange(lengths.sum()) - np.repeat(first_row - spans[:, 0], lengths)
        depth = depths[reading]
        contains = (self.columns["top_cm"][row] <= depth) & (depth < self.columns["bottom_cm"][row])
        out = {}
        for column in columns:
            values = self.columns[column][row]
            inside = contains & np.isfinite(values)
            counts = np.bincount(reading[inside], minlength=len(sites))
            sums = sums_as_numpy_sums(values[inside], counts)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[column] = (sums / counts, counts > 0)
        return out


NUMPY_SEQUENTIAL_SUM_MAX = 7  # numpy sums up to 7 values one after another from 0.0, 8 or more pairwise


def sums_as_numpy_sums(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The sum of each run of `values` (runs of `counts` values, one after another), each exactly as numpy's
    `run.sum()` gives it: runs of up to NUMPY_SEQUENTIAL_SUM_MAX values are added in order from 0.0 for all
    runs at once; a longer run is summed by numpy itself. (`np.add.reduceat` adds in another order.)"""
    starts = np.cumsum(counts) - counts
    sums = np.zeros(counts.size)
    short = counts <= NUMPY_SEQUENTIAL_SUM_MAX
    for j in range(int(counts[short].max()) if short.any() else 0):
        take = short & (counts > j)
        sums[take] += values[starts[take] + j]
    for i in np.flatnonzero(~short):
        sums[i] = values[starts[i] : starts[i] + counts[i]].sum()
    return sums


@dataclass(frozen=True)
class PhiInputs:
    """The tables phi reads, each split by site once (`phi_inputs`)."""

    root: SiteRows
    soil: SiteRows
    curves: SiteRows


def phi_inputs(profiles: pl.DataFrame, soil: pl.DataFrame, kde: pl.DataFrame) -> PhiInputs:
    increments = ["top_cm", "bottom_cm"]
    return PhiInputs(
        SiteRows(profiles, [*increments, "root_density_g_m3"]),
        SiteRows(soil, [*increments, *(prop.column for prop in SOIL_PROPERTIES)]),
        SiteRows(kde, ["depth_cm", "density"], sort="depth_cm"),
    )


def phi_table(
    modality: pl.DataFrame, profiles: pl.DataFrame, soil: pl.DataFrame, kde: pl.DataFrame, params: PhiParameters
) -> pl.DataFrame:
    """phi per site for root biomass and every soil property (`method` "increment"), and for the root KDE
    (`method` "kde"), with the depths and values behind it."""
    return phi_table_of(modality, phi_inputs(profiles, soil, kde), params)


def phi_table_of(modality: pl.DataFrame, inputs: PhiInputs, params: PhiParameters) -> pl.DataFrame:
    """`phi_table` on tables already split by site. Every site's readings of a table are taken at once
    (`SiteRows.readings`), each equal to `value_in_increment`'s, and phi is `phi` of them, element by element;
    the rows come site by site: root biomass, each soil property, then the KDE."""
    labelled = modality.select("site_id", "modality", "d1_cm", "d2_cm").rows()
    sites = [site for site, *_ in labelled]
    labels = [label for _, label, *_ in labelled]
    depths = np.array([phi_depths(label, d1, d2, params) for _, label, d1, d2 in labelled], dtype=float)
    d1, d2 = depths.reshape(-1, 2).T
    pairs = [site for site in sites for _ in range(2)]  # (site, D1), (site, D2), ...
    at = depths.reshape(-1)
    soil_columns = [prop.column for prop in SOIL_PROPERTIES]
    read = inputs.root.readings(["root_density_g_m3"], pairs, at) | inputs.soil.readings(soil_columns, pairs, at)
    series = [("root_density_g_m3", "root_biomass")] + [(column, column) for column in soil_columns]
    y1, y2, found1, found2 = ([] for _ in range(4))
    for column, _ in series:
        values, found = read[column]
        y1.append(values[0::2])
        y2.append(values[1::2])
        found1.append(found[0::2])
        found2.append(found[1::2])
    k1, k2, kde_found = _kde_readings(inputs.curves, sites, d1, d2)
    y1, y2 = np.column_stack([*y1, k1]), np.column_stack([*y2, k2])  # sites x (series + kde)
    found1 = np.column_stack([*found1, kde_found])
    found2 = np.column_stack([*found2, kde_found])
    n = len(series) + 1
    names = [name for _, name in series] + ["root_biomass"]
    return pl.DataFrame(
        {
            "site_id": np.repeat(np.array(sites, dtype=object), n).tolist(),
            "property": names * len(sites),
            "method": (["increment"] * len(series) + ["kde"]) * len(sites),
            "phi": _or_null(*_phis(y2.reshape(-1), y1.reshape(-1), found2.reshape(-1), found1.reshape(-1))),
            "d1_cm": np.repeat(d1, n),
            "d2_cm": np.repeat(d2, n),
            "y_d1": _or_null(y1.reshape(-1), found1.reshape(-1)),
            "y_d2": _or_null(y2.reshape(-1), found2.reshape(-1)),
            "modality": np.repeat(np.array(labels, dtype=object), n).tolist(),
        },
        schema={
            "site_id": pl.String,
            "property": pl.String,
            "method": pl.String,
            "phi": pl.Float64,
            "d1_cm": pl.Float64,
            "d2_cm": pl.Float64,
            "y_d1": pl.Float64,
            "y_d2": pl.Float64,
            "modality": pl.String,
        },
    )


def _kde_readings(
    curves: SiteRows, sites: list[str], d1: np.ndarray, d2: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The root KDE at D1 and D2 of each site (0 outside its curve), and whether the site has a curve."""
    k1, k2, found = np.zeros(len(sites)), np.zeros(len(sites)), np.zeros(len(sites), dtype=bool)
    for i, site in enumerate(sites):
        curve = curves.of(site)
        if curve["depth_cm"].size:
            k1[i], k2[i] = np.interp([d1[i], d2[i]], curve["depth_cm"], curve["density"], left=0.0, right=0.0)
            found[i] = True
    return k1, k2, found


def _phis(
    y_d2: np.ndarray, y_d1: np.ndarray, found_d2: np.ndarray, found_d1: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`phi` element by element: Y(D2) / Y(D1), and where it is defined (both found, finite, Y(D1) not 0)."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        defined = found_d1 & found_d2 & (y_d1 != 0) & np.isfinite(y_d1) & np.isfinite(y_d2)
        return np.where(defined, y_d2 / np.where(defined, y_d1, 1.0), np.nan), defined


def _or_null(values: np.ndarray, present: np.ndarray) -> pl.Series:
    """`values` as a Float64 series, null where not `present` (a NaN that is present stays NaN)."""
    return pl.Series(values, dtype=pl.Float64).set(pl.Series(~present), None)
