"""METHOD.md section 3, soil properties on the root depth grid.

Horizon properties are moved onto root increments by overlap-weighted
averaging: Y[a,b) = sum(v_h * overlap_h) / sum(overlap_h) over horizons with a
non-missing v, overlap_h = max(0, min(b, bottom_h) - max(a, top_h)). No
overlap gives missing (never zero); coverage = sum(overlap_h) / (b - a).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from rootassets.science.by_site import groups_in_order


@dataclass(frozen=True)
class SoilProperty:
    """A harmonized soil property: its output column, NEON source column and NEON unit."""

    column: str
    source: str
    unit: str
    label: str


SOIL_PROPERTIES: tuple[SoilProperty, ...] = (
    SoilProperty("nitrogen_tot_g_kg", "nitrogenTot", "g/kg", "N"),
    SoilProperty("phosphorus_mjelm_mg_kg", "pMjelm", "mg/kg", "P"),
    SoilProperty("potassium_mjelm_mg_kg", "kMjelm", "mg/kg", "K"),
    SoilProperty("calcium_mjelm_mg_kg", "caMjelm", "mg/kg", "Ca"),
    SoilProperty("carbon_tot_g_kg", "carbonTot", "g/kg", "C"),
    SoilProperty("organic_carbon_g_kg", "estimatedOC", "g/kg", "organic C"),
    SoilProperty("ph_h2o", "phH2o", "pH", "pH"),
    SoilProperty("sand_pct", "sandTotal", "%", "sand"),
    SoilProperty("silt_pct", "siltTotal", "%", "silt"),
    SoilProperty("clay_pct", "clayTotal", "%", "clay"),
    SoilProperty("cec_cmol_kg", "cecdNh4", "cmol(+)/kg", "CEC"),
    SoilProperty("bulk_density_g_cm3", "bulkDensExclCoarseFrag", "g/cm3", "bulk density"),
)
REGULAR_SAMPLE = "Regular"


def protocol_root_grid(break_cm: float = 100.0, bottom_cm: float = 200.0) -> list[tuple[float, float]]:
    """NEON's root sampling grid: 10 cm increments to 100 cm, 20 cm increments to 200 cm."""
    shallow = [(float(t), float(t + 10)) for t in range(0, int(break_cm), 10)]
    deep = [(float(t), float(t + 20)) for t in range(int(break_cm), int(bottom_cm), 20)]
    return shallow + deep


def horizon_properties(horizons: pl.DataFrame, biogeo: pl.DataFrame, bulk: pl.DataFrame) -> pl.DataFrame:
    """One row per horizon: site_id, horizon_id, top_cm, bottom_cm and the property values.

    Chemistry and texture come from `Regular` biogeo samples, bulk density
    from `Regular` bulk samples, each averaged per horizon; horizon depths from
    mgp_perhorizon. A release whose source does not publish the soil product
    (empty tables) gives no horizons.
    """
    horizons = _unpublished_as_empty(
        horizons, {"horizonID": pl.String, "horizonTopDepth": pl.Float64, "horizonBottomDepth": pl.Float64}
    )
    biogeo = _unpublished_as_empty(biogeo, {"horizonID": pl.String, "biogeoSampleType": pl.String})
    bulk = _unpublished_as_empty(
        bulk, {"horizonID": pl.String, "bulkDensSampleType": pl.String, "bulkDensExclCoarseFrag": pl.Float64}
    )
    chem_columns = [p.source for p in SOIL_PROPERTIES if p.source in biogeo.columns]
    chemistry = (
        biogeo.filter(pl.col("biogeoSampleType") == REGULAR_SAMPLE)
        .group_by("horizonID", maintain_order=True)
        .agg([pl.col(c).cast(pl.Float64).mean() for c in chem_columns])
    )
    density = (
        bulk.filter(pl.col("bulkDensSampleType") == REGULAR_SAMPLE)
        .group_by("horizonID", maintain_order=True)
        .agg(pl.col("bulkDensExclCoarseFrag").cast(pl.Float64).mean())
    )
    out = (
        horizons.select(
            "site_id",
            pl.col("horizonID").alias("horizon_id"),
            pl.col("horizonTopDepth").cast(pl.Float64).alias("top_cm"),
            pl.col("horizonBottomDepth").cast(pl.Float64).alias("bottom_cm"),
        )
        .join(chemistry, left_on="horizon_id", right_on="horizonID", how="left")
        .join(density, left_on="horizon_id", right_on="horizonID", how="left")
    )
    for prop in SOIL_PROPERTIES:
        if prop.source not in out.columns:
            out = out.with_columns(pl.lit(None, dtype=pl.Float64).alias(prop.source))
    return out.rename({p.source: p.column for p in SOIL_PROPERTIES}).sort("site_id", "top_cm")


def _unpublished_as_empty(frame: pl.DataFrame, columns: dict[str, pl.DataType]) -> pl.DataFrame:
    """An empty table gains the columns it would have had; a non-empty one is left to fail loudly."""
    if frame.height:
        return frame
    return frame.with_columns([pl.lit(None, dtype=t).alias(c) for c, t in columns.items() if c not in frame.columns])


def overlap_matrix(tops: np.ndarray, bottoms: np.ndarray, h_tops: np.ndarray, h_bottoms: np.ndarray) -> np.ndarray:
    """overlap[i, h] = max(0, min(b_i, bottom_h) - max(a_i, top_h)), in cm."""
    upper = np.minimum(bottoms[:, None], h_bottoms[None, :])
    lower = np.maximum(tops[:, None], h_tops[None, :])
    return np.clip(upper - lower, 0.0, None)


def overlap_weighted_average(
    tops: np.ndarray, bottoms: np.ndarray, h_tops: np.ndarray, h_bottoms: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Values and coverage of one property on increments [tops, bottoms) from horizons.

    Horizons with a missing (NaN) value do not count. Where no horizon with a
    value overlaps, the value is NaN (never zero) and coverage 0.
    """
    overlap = overlap_matrix(tops, bottoms, h_tops, h_bottoms)
    present = ~np.isnan(values)
    weights = overlap * present[None, :]
    total = weights.sum(axis=1)
    share = np.divide(weights, total[:, None], out=np.zeros_like(weights), where=total[:, None] > 0)
    result = np.where(total > 0, share @ np.where(present, values, 0.0), np.nan)
    return result, total / (bottoms - tops)


def soil_on_root_grid(horizons: pl.DataFrame, grid: pl.DataFrame) -> pl.DataFrame:
    """Every property of `horizons` on each site's increments in `grid` (site_id, top_cm, bottom_cm).

    Adds `coverage` (share of the increment covered by any horizon) and a
    `coverage_<property>` per property.
    """
    properties = [prop.column for prop in SOIL_PROPERTIES]
    # every column taken once and sliced by each site's row positions: a polars frame per site was the cost
    horizons_of, h_tops_all, h_bottoms_all, values_all = _site_columns(horizons, properties)
    grid_of, tops_all, bottoms_all, _ = _site_columns(grid, [])
    rows, parts = [], []
    for key, at in grid_of.items():
        own = horizons_of.get(key)
        if own is None:
            continue
        tops, bottoms = tops_all[at], bottoms_all[at]
        h_tops, h_bottoms, values = h_tops_all[own], h_bottoms_all[own], values_all[own]
        columns: dict[str, np.ndarray] = {}
        for index, column in enumerate(properties):
            columns[column], columns[f"coverage_{column}"] = overlap_weighted_average(
                tops, bottoms, h_tops, h_bottoms, np.ascontiguousarray(values[:, index])
            )
        _, columns["coverage"] = overlap_weighted_average(tops, bottoms, h_tops, h_bottoms, np.zeros(len(h_tops)))
        rows.append(at)
        parts.append(columns)
    ordered = ["site_id", "top_cm", "bottom_cm", "coverage"]
    ordered += [c for p in SOIL_PROPERTIES for c in (p.column, f"coverage_{p.column}")]
    if not parts:  # no site has horizons (e.g. the release lacks the soil product): the table's columns, no rows
        return pl.DataFrame(schema={c: pl.String if c == "site_id" else pl.Float64 for c in ordered})
    increments = grid.select("site_id", "top_cm", "bottom_cm")[np.concatenate(rows)]
    # a property no horizon gives is missing (null), never NaN; a coverage keeps its number
    return (
        increments.with_columns(pl.Series(name, np.concatenate([part[name] for part in parts])) for name in parts[0])
        .with_columns(pl.col(properties).fill_nan(None))
        .select(ordered)
        .sort("site_id", "top_cm", "bottom_cm")
    )


def _site_columns(
    frame: pl.DataFrame, properties: list[str]
) -> tuple[dict[tuple, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Each site's row positions in `frame`, and its tops, bottoms and `properties` (rows x properties, a missing
    value as NaN; none asked, an empty matrix) as float arrays, taken once for the whole frame."""
    tops, bottoms = (frame[c].to_numpy().astype(float) for c in ("top_cm", "bottom_cm"))
    values = float_matrix(frame, properties) if properties else np.empty((frame.height, 0))
    return dict(groups_in_order(frame, ["site_id"])), tops, bottoms, values


def float_matrix(frame: pl.DataFrame, columns: list[str]) -> np.ndarray:
    """rows x `columns` as floats, a missing value as NaN."""
    return frame.select(pl.col(c).cast(pl.Float64) for c in columns).to_numpy().reshape(-1, len(columns))


def values_outside_horizon_range(horizons: pl.DataFrame, soil: pl.DataFrame) -> pl.DataFrame:
    """Invariant: harmonized values outside [min, max] of the overlapping horizons' values (should be none)."""
    properties = [prop.column for prop in SOIL_PROPERTIES]
    horizons_of, h_tops_all, h_bottoms_all, sources_all = _site_columns(horizons, properties)
    soil_of, tops_all, bottoms_all, results_all = _site_columns(soil, properties)
    no_rows = np.array([], dtype=np.int64)
    problems = []
    for (site,), at in soil_of.items():
        own = horizons_of.get((site,), no_rows)
        overlap = overlap_matrix(tops_all[at], bottoms_all[at], h_tops_all[own], h_bottoms_all[own]) > 0
        sources_of, results_of = sources_all[own], results_all[at]
        for index, column in enumerate(properties):
            values, result = sources_of[:, index], results_of[:, index]
            source = overlap & ~np.isnan(values)[None, :]  # increments x horizons: the values each increment came from
            has_source = source.any(axis=1)
            low = np.where(source, values[None, :], np.inf).min(axis=1, initial=np.inf)
            high = np.where(source, values[None, :], -np.inf).max(axis=1, initial=-np.inf)
            largest = np.where(source, np.abs(values)[None, :], 0.0).max(axis=1, initial=0.0)
            tol = 1e-9 * np.where(has_source, np.maximum(1.0, largest), 1.0)
            with np.errstate(invalid="ignore"):
                outside = ~np.isnan(result) & (~has_source | (result < low - tol) | (result > high + tol))
            problems += [
                {
                    "site_id": site,
                    "top_cm": float(tops_all[at[i]]),
                    "property": column,
                    "value": float(result[i]),
                }
                for i in np.flatnonzero(outside).tolist()
            ]
    return pl.DataFrame(
        problems, schema={"site_id": pl.String, "top_cm": pl.Float64, "property": pl.String, "value": pl.Float64}
    )
