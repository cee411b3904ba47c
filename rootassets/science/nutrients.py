"""METHOD.md section 7: are deep nutrients under-exploited? Relative nutrient profiles.

rel = X / Y_root on the root depth grid, rescaled so the surface increment is
1; fit log10(rel) = a + b * depth (depth = increment top, cm). b is the
exponent: positive means nutrients get relatively more abundant with depth,
from the roots' point of view. Bimodal sites also get a LOESS curve.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from rootassets.science.by_site import groups_in_order
from rootassets.science.soil_profiles import float_matrix

LOESS_MIN_POINTS = 6  # fewer increments leave a local quadratic nothing to smooth
NUTRIENTS = {
    "N": "nitrogen_tot_g_kg",
    "P": "phosphorus_mjelm_mg_kg",
    "K": "potassium_mjelm_mg_kg",
    "Ca": "calcium_mjelm_mg_kg",
}


@dataclass(frozen=True)
class NutrientParameters:
    loess_span: float = 0.5
    loess_degree: int = 2
    band_level: float = 0.95
    loess_points: int = 50

    def as_metadata(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class ExponentFit:
    exponent: float
    intercept: float
    r2: float
    n: int
    exponent_low: float
    exponent_high: float


def relative_profile(depth: np.ndarray, nutrient: np.ndarray, root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(depth, rel) where rel = X / Y_root is finite and positive, rescaled so the shallowest is 1."""
    order = np.argsort(depth)
    depth, nutrient, root = depth[order], nutrient[order], root[order]
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = nutrient / root
    keep = np.isfinite(rel) & (rel > 0)
    depth, rel = depth[keep], rel[keep]
    return (depth, rel / rel[0]) if rel.size else (depth, rel)


@functools.lru_cache(maxsize=256)
def t_quantile(level: float, df: float) -> float:
    """The two-sided `level` quantile of Student's t with `df` degrees of freedom (the same few, site after site)."""
    from scipy import stats  # imported where used: loading scipy.stats is slow

    return float(stats.t.ppf(0.5 + level / 2, df))


def _linregress() -> Callable:
    """scipy's linregress without its NaN-policy wrapper (which cost 5x the fit on a profile's dozen points; the
    points here are finite and one-dimensional), or with it if a scipy has none."""
    from scipy import stats

    return getattr(stats.linregress, "__wrapped__", stats.linregress)


def log_linear_fit(depth: np.ndarray, rel: np.ndarray, level: float = 0.95) -> ExponentFit | None:
    """Least squares of log10(rel) on depth; None with fewer than 3 points."""
    if depth.size < 3 or np.ptp(depth) == 0:
        return None
    fit = _linregress()(depth, np.log10(rel))
    t = t_quantile(level, depth.size - 2)
    return ExponentFit(
        float(fit.slope),
        float(fit.intercept),
        float(fit.rvalue**2),
        int(depth.size),
        float(fit.slope - t * fit.stderr),
        float(fit.slope + t * fit.stderr),
    )


def fit_band(depth: np.ndarray, rel: np.ndarray, grid: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, ...]:
    """The fitted log10(rel) line on `grid` with its confidence band (for figures)."""
    y = np.log10(rel)
    n = depth.size
    slope, intercept = np.polyfit(depth, y, 1)
    resid = y - (intercept + slope * depth)
    s = np.sqrt(np.sum(resid**2) / (n - 2))
    t = t_quantile(level, n - 2)
    se = s * np.sqrt(1 / n + (grid - depth.mean()) ** 2 / np.sum((depth - depth.mean()) ** 2))
    fitted = intercept + slope * grid
    return fitted, fitted - t * se, fitted + t * se


def loess_weights(x: np.ndarray, points: np.ndarray, span: float, degree: int) -> np.ndarray:
    """points x n: row i gives the local fit at points[i] as a combination of the n observations at `x` (weighted
    least squares of a degree-`degree` polynomial, tricube weights over the nearest span*n points). Every point at
    once: one stacked pseudo-inverse, the same numbers as one point at a time (7x faster)."""
    n = x.size
    k = max(degree + 1, int(np.ceil(span * n)))
    offsets = x[None, :] - np.asarray(points, dtype=float)[:, None]
    distance = np.abs(offsets)
    radius = np.sort(distance, axis=1)[:, min(k, n) - 1] * max(1.0, span)
    radius = np.where(radius > 0, radius, 1.0)
    u = np.clip(distance / radius[:, None], 0, 1)
    w = (1 - u**3) ** 3
    design = np.ones((*offsets.shape, degree + 1))  # np.vander(offsets, degree + 1, increasing=True), per point
    if degree >= 1:
        design[..., 1:] = offsets[..., None]
        np.multiply.accumulate(design[..., 1:], out=design[..., 1:], axis=-1)
    sqrt_w = np.sqrt(w)
    solution = np.linalg.pinv(design * sqrt_w[..., None]) * sqrt_w[:, None, :]
    return solution[:, 0, :]


def loess(
    x: np.ndarray, y: np.ndarray, grid: np.ndarray, span: float = 0.5, degree: int = 2, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local polynomial regression (tricube weights, nearest span*n points), as R's loess.

    Returns fitted values on `grid` and an approximate pointwise band from the
    smoother's weights and the residual scale; the band is NaN when fewer than
    2 residual degrees of freedom remain.
    """
    n = x.size
    at_data = loess_weights(x, x, span, degree)
    residual = y - at_data @ y
    trace = np.trace(at_data)
    sigma = np.sqrt(np.sum(residual**2) / max(n - trace, 1.0))
    rows = loess_weights(x, grid, span, degree)
    fitted = rows @ y
    residual_df = n - trace
    if residual_df < 2:
        nan = np.full_like(fitted, np.nan)
        return fitted, nan, nan
    t = t_quantile(level, residual_df)
    se = sigma * np.sqrt(np.sum(rows**2, axis=1))
    return fitted, fitted - t * se, fitted + t * se


EXPONENT_SCHEMA = {
    "site_id": pl.String,
    "nutrient": pl.String,
    "exponent": pl.Float64,
    "intercept": pl.Float64,
    "r2": pl.Float64,
    "n": pl.Int64,
    "exponent_low": pl.Float64,
    "exponent_high": pl.Float64,
    "modality": pl.String,
    "fit": pl.String,
}
POINT_SCHEMA = {
    "site_id": pl.String,
    "profile": pl.String,
    "nutrient": pl.String,
    "depth_cm": pl.Float64,
    "relative": pl.Float64,
}
ACROSS_PROFILES, SITE_MEAN = "across_profiles", "site_mean (alternative)"


def relative_points(increments: pl.DataFrame, soil: pl.DataFrame) -> pl.DataFrame:
    """Section 7 as the paper fits it: one point per profile, increment and nutrient, rel = X / Y_root of that
    profile's increment (X: the site's megapit soil on the root grid), each profile's surface set to 1."""
    grid = increments.select("site_id", "profile", "top_cm", "root_density_g_m3").join(
        soil.select("site_id", "top_cm", *NUTRIENTS.values()), on=["site_id", "top_cm"], how="inner"
    )
    rows = []
    columns = list(NUTRIENTS.values())
    # every column once, a missing value as NaN, sliced per profile (a polars call per profile was the cost)
    all_tops = grid["top_cm"].to_numpy().astype(float)
    all_roots = grid["root_density_g_m3"].to_numpy().astype(float)
    all_values = float_matrix(grid, columns)
    for (site, profile), at in groups_in_order(grid, ["site_id", "profile"]):
        tops, roots, values = all_tops[at], all_roots[at], all_values[at]
        for index, nutrient in enumerate(NUTRIENTS):
            depth, rel = relative_profile(tops, np.ascontiguousarray(values[:, index]), roots)
            rows += [
                {"site_id": site, "profile": profile, "nutrient": nutrient, "depth_cm": float(d), "relative": float(r)}
                for d, r in zip(depth, rel, strict=True)
            ]
    return pl.DataFrame(rows, schema=POINT_SCHEMA).sort("site_id", "nutrient", "profile", "depth_cm")


def _site_mean_points(profiles: pl.DataFrame, soil: pl.DataFrame) -> pl.DataFrame:
    """The alternative: the points of the site-mean root profile (one per increment)."""
    grid = profiles.with_columns(pl.lit("site_mean").alias("profile"))
    return relative_points(grid, soil)


def _fits(points: pl.DataFrame, modality: dict[str, str], level: float, fit: str) -> pl.DataFrame:
    rows = []
    depths, relatives = points["depth_cm"].to_numpy(), points["relative"].to_numpy()
    for (site, nutrient), at in groups_in_order(points, ["site_id", "nutrient"]):
        result = log_linear_fit(depths[at], relatives[at], level)
        if result is not None:
            rows.append(
                {"site_id": site, "nutrient": nutrient, **result.__dict__, "modality": modality[site], "fit": fit}
            )
    return pl.DataFrame(rows, schema=EXPONENT_SCHEMA).sort("site_id", "nutrient")


def nutrient_tables(
    increments: pl.DataFrame,
    profiles: pl.DataFrame,
    soil: pl.DataFrame,
    modality: dict[str, str],
    params: NutrientParameters,
) -> dict[str, pl.DataFrame]:
    """Section 7 for every site and nutrient: the exponent fits across all profiles (the paper's), the same
    fit on the site-mean profile (a labelled alternative), the points fitted, the LOESS curves at bimodal
    sites (on the same points), and the median exponent per nutrient and modality."""
    from rootassets.science.classifier import BIMODAL

    points = relative_points(increments, soil)
    exponents = _fits(points, modality, params.band_level, ACROSS_PROFILES)
    site_mean = _fits(_site_mean_points(profiles, soil), modality, params.band_level, SITE_MEAN)
    curves = []
    depths, relatives = points["depth_cm"].to_numpy(), points["relative"].to_numpy()
    for (site, nutrient), at in groups_in_order(points, ["site_id", "nutrient"]):
        depth, rel = depths[at], relatives[at]
        if modality.get(site) != BIMODAL or np.unique(depth).size < LOESS_MIN_POINTS:
            continue
        grid = np.linspace(depth.min(), depth.max(), params.loess_points)
        fitted, low, high = loess(depth, np.log10(rel), grid, params.loess_span, params.loess_degree, params.band_level)
        curves += [
            {
                "site_id": site,
                "nutrient": nutrient,
                "depth_cm": float(x),
                "log10_rel_fitted": float(f),
                "lower": float(lo),
                "upper": float(hi),
            }
            for x, f, lo, hi in zip(grid, fitted, low, high, strict=True)
        ]
    loess_table = pl.DataFrame(
        curves,
        schema={
            "site_id": pl.String,
            "nutrient": pl.String,
            "depth_cm": pl.Float64,
            "log10_rel_fitted": pl.Float64,
            "lower": pl.Float64,
            "upper": pl.Float64,
        },
    )
    summary = (
        pl.concat([exponents, site_mean])
        .group_by("fit", "nutrient", "modality", maintain_order=True)
        .agg(
            pl.col("exponent").median().alias("median_exponent"),
            pl.col("r2").median().alias("median_r2"),
            pl.len().alias("n"),
        )
        .sort("fit", "nutrient", "modality")
    )
    return {
        "nutrient_exponents": exponents,
        "nutrient_exponents_site_mean": site_mean,
        "nutrient_points": points,
        "nutrient_loess": loess_table,
        "summary": summary,
    }
