"""METHOD.md section 7: are deep nutrients under-exploited? Relative nutrient profiles.

rel = X / Y_root on the root depth grid, rescaled so the surface increment is
1; fit log10(rel) = a + b * depth (depth = increment top, cm). b is the
exponent: positive means nutrients get relatively more abundant with depth,
from the roots' point of view. Bimodal sites also get a LOESS curve.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

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


def log_linear_fit(depth: np.ndarray, rel: np.ndarray, level: float = 0.95) -> ExponentFit | None:
    """Least squares of log10(rel) on depth; None with fewer than 3 points."""
    from scipy import stats  # imported where used: loading scipy.stats is slow

    if depth.size < 3 or np.ptp(depth) == 0:
        return None
    fit = stats.linregress(depth, np.log10(rel))
    t = stats.t.ppf(0.5 + level / 2, depth.size - 2)
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
    from scipy import stats  # imported where used: loading scipy.stats is slow

    y = np.log10(rel)
    n = depth.size
    slope, intercept = np.polyfit(depth, y, 1)
    resid = y - (intercept + slope * depth)
    s = np.sqrt(np.sum(resid**2) / (n - 2))
    t = stats.t.ppf(0.5 + level / 2, n - 2)
    se = s * np.sqrt(1 / n + (grid - depth.mean()) ** 2 / np.sum((depth - depth.mean()) ** 2))
    fitted = intercept + slope * grid
    return fitted, fitted - t * se, fitted + t * se


def loess(
    x: np.ndarray, y: np.ndarray, grid: np.ndarray, span: float = 0.5, degree: int = 2, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local polynomial regression (tricube weights, nearest span*n points), as R's loess.

    Returns fitted values on `grid` and an approximate pointwise band from the
    smoother's weights and the residual scale; the band is NaN when fewer than
    2 residual degrees of freedom remain.
    """
    from scipy import stats  # imported where used: loading scipy.stats is slow

    n = x.size
    k = max(degree + 1, int(np.ceil(span * n)))

    def weights_at(x0: float) -> np.ndarray:
        distance = np.abs(x - x0)
        radius = np.sort(distance)[min(k, n) - 1] * max(1.0, span)
        radius = radius if radius > 0 else 1.0
        u = np.clip(distance / radius, 0, 1)
        w = (1 - u**3) ** 3
        design = np.vander(x - x0, degree + 1, increasing=True)
        sqrt_w = np.sqrt(w)[:, None]
        solution = np.linalg.pinv(design * sqrt_w) * np.sqrt(w)[None, :]
        return solution[0]  # the row giving the fit at x0 as a combination of y

    at_data = np.array([weights_at(x0) for x0 in x])
    residual = y - at_data @ y
    trace = np.trace(at_data)
    sigma = np.sqrt(np.sum(residual**2) / max(n - trace, 1.0))
    rows = np.array([weights_at(x0) for x0 in grid])
    fitted = rows @ y
    residual_df = n - trace
    if residual_df < 2:
        nan = np.full_like(fitted, np.nan)
        return fitted, nan, nan
    t = stats.t.ppf(0.5 + level / 2, residual_df)
    se = sigma * np.sqrt(np.sum(rows**2, axis=1))
    return fitted, fitted - t * se, fitted + t * se


def nutrient_tables(
    profiles: pl.DataFrame, soil: pl.DataFrame, modality: dict[str, str], params: NutrientParameters
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Section 7 for every site and nutrient: the exponent fits, the LOESS curves at bimodal sites,
    and the median exponent per nutrient and modality."""
    from rootassets.science.classifier import BIMODAL

    grid = profiles.join(soil, on=["site_id", "top_cm", "bottom_cm"], how="inner")
    fits, curves = [], []
    for (site,), g in grid.sort("top_cm").group_by("site_id", maintain_order=True):
        for nutrient, column in NUTRIENTS.items():
            depth, rel = relative_profile(
                g["top_cm"].to_numpy(),
                g[column].cast(pl.Float64).fill_null(np.nan).to_numpy(),
                g["root_density_g_m3"].to_numpy(),
            )
            fit = log_linear_fit(depth, rel, params.band_level)
            if fit is None:
                continue
            fits.append({"site_id": site, "nutrient": nutrient, **fit.__dict__, "modality": modality[site]})
            if modality[site] == BIMODAL and depth.size >= LOESS_MIN_POINTS:
                points = np.linspace(depth.min(), depth.max(), params.loess_points)
                fitted, low, high = loess(
                    depth, np.log10(rel), points, params.loess_span, params.loess_degree, params.band_level
                )
                curves += [
                    {
                        "site_id": site,
                        "nutrient": nutrient,
                        "depth_cm": float(x),
                        "log10_rel_fitted": float(f),
                        "lower": float(lo),
                        "upper": float(hi),
                    }
                    for x, f, lo, hi in zip(points, fitted, low, high, strict=True)
                ]
    exponents = pl.DataFrame(
        fits,
        schema={
            "site_id": pl.String,
            "nutrient": pl.String,
            "exponent": pl.Float64,
            "intercept": pl.Float64,
            "r2": pl.Float64,
            "n": pl.Int64,
            "exponent_low": pl.Float64,
            "exponent_high": pl.Float64,
            "modality": pl.String,
        },
    )
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
        exponents.group_by("nutrient", "modality", maintain_order=True)
        .agg(
            pl.col("exponent").median().alias("median_exponent"),
            pl.col("r2").median().alias("median_r2"),
            pl.len().alias("n"),
        )
        .sort("nutrient", "modality")
    )
    return exponents, loess_table, summary
