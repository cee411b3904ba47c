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
    where site-level increments of different profiles both contain it; None if none does."""
    inside = (tops <= depth) & (depth < bottoms) & np.isfinite(values)
    chosen = values[inside]
    # np.mean's own sum and division, without its dispatch (a fifth of phi_sensitivity's 200,000 readings at 10x)
    return float(chosen.sum() / chosen.size) if chosen.size else None


def phi(y_d2: float | None, y_d1: float | None) -> float | None:
    """Y(D2) / Y(D1); None when either is missing or Y(D1) is zero."""
    if y_d1 is None or y_d2 is None or y_d1 == 0 or not np.isfinite(y_d1) or not np.isfinite(y_d2):
        return None
    return y_d2 / y_d1


def _site_arrays(frame: pl.DataFrame, columns: list[str], sort: str | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Per site, each of `columns` as a float array (nulls as NaN), in `sort` order within a site when given:
    one pass over the table instead of a filter per site (phi_sensitivity builds the table 18 times)."""
    frame = frame.with_row_index("_order").sort(["site_id", sort or "_order", "_order"])
    sites = frame["site_id"].to_numpy()
    arrays = {c: frame[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in columns}
    if not sites.size:
        return {}
    starts = np.flatnonzero(np.r_[True, sites[1:] != sites[:-1]])
    ends = np.r_[starts[1:], sites.size]
    return {sites[a]: {c: values[a:b] for c, values in arrays.items()} for a, b in zip(starts, ends, strict=True)}


def phi_table(
    modality: pl.DataFrame, profiles: pl.DataFrame, soil: pl.DataFrame, kde: pl.DataFrame, params: PhiParameters
) -> pl.DataFrame:
    """phi per site for root biomass and every soil property (`method` "increment"), and for the root KDE
    (`method` "kde"), with the depths and values behind it."""
    increments = ["top_cm", "bottom_cm"]
    root = _site_arrays(profiles, [*increments, "root_density_g_m3"])
    soil_by_site = _site_arrays(soil, [*increments, *(prop.column for prop in SOIL_PROPERTIES)])
    curves = _site_arrays(kde, ["depth_cm", "density"], sort="depth_cm")
    empty = np.array([], dtype=float)
    rows = []
    for site, label, d1_site, d2_site in modality.select("site_id", "modality", "d1_cm", "d2_cm").iter_rows():
        d1, d2 = phi_depths(label, d1_site, d2_site, params)
        site_root, site_soil = root.get(site, {}), soil_by_site.get(site, {})
        series = {"root_biomass": (site_root, "root_density_g_m3")}
        for prop in SOIL_PROPERTIES:
            series[prop.column] = (site_soil, prop.column)
        for name, (arrays, column) in series.items():
            tops, bottoms = arrays.get("top_cm", empty), arrays.get("bottom_cm", empty)
            values = arrays.get(column, empty)
            y1, y2 = value_in_increment(tops, bottoms, values, d1), value_in_increment(tops, bottoms, values, d2)
            rows.append(
                {
                    "site_id": site,
                    "property": name,
                    "method": "increment",
                    "phi": phi(y2, y1),
                    "d1_cm": d1,
                    "d2_cm": d2,
                    "y_d1": y1,
                    "y_d2": y2,
                    "modality": label,
                }
            )
        curve = curves.get(site, {})
        depths, density = curve.get("depth_cm", empty), curve.get("density", empty)
        k1, k2 = (float(np.interp(d, depths, density, left=0.0, right=0.0)) if depths.size else None for d in (d1, d2))
        rows.append(
            {
                "site_id": site,
                "property": "root_biomass",
                "method": "kde",
                "phi": phi(k2, k1),
                "d1_cm": d1,
                "d2_cm": d2,
                "y_d1": k1,
                "y_d2": k2,
                "modality": label,
            }
        )
    table = pl.DataFrame(rows, schema_overrides={"phi": pl.Float64, "y_d1": pl.Float64, "y_d2": pl.Float64})
    return table
