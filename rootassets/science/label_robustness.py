"""Beyond the paper: how far each site's modality label can be trusted (analysis.site_label_robustness).

Three views of one label, all on the labelling rules of section 2:
- resampling the site's profiles with replacement. With n profiles there are only C(2n-1, n) distinct
  resamples (10 for three profiles), so they are enumerated exactly with their multinomial probabilities;
  beyond `max_exact_resamples` distinct resamples, `resamples` random draws stand in;
- sensitivity: the label over a grid of kernel bandwidths and secondary thresholds, and the critical
  bandwidth (on a 1 cm grid) from which on the site's KDE has one mode only;
- the prominence of the secondary mode: how far it rises over the antimode, as a share of its height (a
  bump a few percent above the antimode is a shoulder, not a peak).
KDEs are R's binned FFT estimate (as the bootstrap's), so hundreds per site stay cheap.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from rootassets.science.bootstrap import binned_fft_kde, label_resamples
from rootassets.science.modality import ModalityParameters, classify_modality, depth_sample


@dataclass(frozen=True)
class RobustnessParameters(ModalityParameters):
    """The labelling constants of section 2 (as `ModalityParameters`), and the grids and resampling of the
    robustness views."""

    bandwidths_cm: tuple[float, ...] = (10.0, 12.5, 15.0, 17.5, 20.0, 22.5, 25.0)
    thresholds: tuple[float, ...] = (0.05, 0.10, 0.15, 0.20, 0.25, 0.30)
    critical_bandwidth_max_cm: float = 40.0
    max_exact_resamples: int = 5000
    resamples: int = 1000
    seed: int = 123


def exact_resamples(n_profiles: int) -> tuple[np.ndarray, np.ndarray]:
    """Every distinct resample of `n_profiles` profiles drawn with replacement, as draw counts per profile,
    and its probability (multinomial: n! / prod(c!) / n^n)."""
    rows, probabilities = [], []
    for draw in itertools.combinations_with_replacement(range(n_profiles), n_profiles):
        counts = np.bincount(draw, minlength=n_profiles)
        rows.append(counts)
        ways = math.factorial(n_profiles) // math.prod(math.factorial(int(c)) for c in counts)
        probabilities.append(ways / n_profiles**n_profiles)
    return np.array(rows, dtype=float), np.array(probabilities)


def distinct_resamples(n_profiles: int) -> int:
    return math.comb(2 * n_profiles - 1, n_profiles)


def resampled_share(
    increments: pl.DataFrame, params: RobustnessParameters, rng: np.random.Generator
) -> tuple[float, str, int]:
    """Share of resample probability labelled bimodal, how it was obtained (exact or random), and over how
    many resamples."""
    n = increments["profile"].n_unique()
    if distinct_resamples(n) <= params.max_exact_resamples:
        weights, probabilities = exact_resamples(n)
        method = "exact"
    else:
        draws = rng.integers(0, n, size=(params.resamples, n))
        weights = np.stack([np.bincount(d, minlength=n) for d in draws]).astype(float)
        probabilities = np.full(params.resamples, 1.0 / params.resamples)
        method = "random"
    labels, _ = label_resamples(increments, params, weights)
    known = np.array([label is not None for label in labels])
    bimodal = np.array([label == "bimodal" for label in labels])
    total = probabilities[known].sum()
    return (float(probabilities[bimodal].sum() / total) if total > 0 else float("nan")), method, len(labels)


def sensitivity_grid(mid_cm: np.ndarray, density: np.ndarray, params: RobustnessParameters) -> list[dict]:
    """The label at every bandwidth x threshold of the grid (one KDE per bandwidth)."""
    depths, counts = depth_sample(mid_cm, density, params.count_scale)
    rows = []
    for bandwidth in params.bandwidths_cm:
        kde = binned_fft_kde(depths, counts, dataclasses.replace(params, bandwidth_cm=bandwidth))
        for threshold in params.thresholds:
            label = classify_modality(kde, dataclasses.replace(params, secondary_threshold=threshold)).modality
            rows.append({"bandwidth_cm": bandwidth, "secondary_threshold": threshold, "modality": label})
    return rows


def critical_bandwidth(mid_cm: np.ndarray, density: np.ndarray, params: RobustnessParameters) -> float | None:
    """The smallest bandwidth (1 cm grid, 1 cm to `critical_bandwidth_max_cm`) from which on every larger one
    labels the site unimodal; None when it is still bimodal at the largest."""
    depths, counts = depth_sample(mid_cm, density, params.count_scale)
    critical = None
    for bandwidth in np.arange(params.critical_bandwidth_max_cm, 0.5, -1.0):
        kde = binned_fft_kde(depths, counts, dataclasses.replace(params, bandwidth_cm=float(bandwidth)))
        if classify_modality(kde, params).modality != "unimodal":
            break
        critical = float(bandwidth)
    return critical


def secondary_prominence(mid_cm: np.ndarray, density: np.ndarray, params: ModalityParameters) -> float | None:
    """(f(D2) - f(D1)) / f(D2) on the site's KDE: 0 for a shoulder, 1 for a peak over an empty antimode."""
    depths, counts = depth_sample(mid_cm, density, params.count_scale)
    kde = binned_fft_kde(depths, counts, params)
    result = classify_modality(kde, params)
    if result.d1_cm is None or result.d2_cm is None or not result.d2_kde_density:
        return None
    return float((result.d2_kde_density - kde.at(result.d1_cm)) / result.d2_kde_density)


ROBUSTNESS_SCHEMA = {
    "site_id": pl.String,
    "modality": pl.String,
    "n_profiles": pl.Int64,
    "resample_method": pl.String,
    "resamples": pl.Int64,
    "resample_bimodal_share": pl.Float64,
    "resample_agreement": pl.Float64,
    "grid_bimodal_share": pl.Float64,
    "grid_agreement": pl.Float64,
    "critical_bandwidth_cm": pl.Float64,
    "secondary_prominence": pl.Float64,
    "beyond_the_paper": pl.Boolean,
}


def robustness_tables(
    increments: pl.DataFrame, profiles: pl.DataFrame, modality: pl.DataFrame, params: RobustnessParameters
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per site: the three views of its label (`ROBUSTNESS_SCHEMA`), and the long sensitivity grid."""
    observed = dict(modality.select("site_id", "modality").iter_rows())
    rng = np.random.default_rng(params.seed)
    rows, grid_rows = [], []
    for (site,), g in profiles.sort("site_id", "top_cm").group_by("site_id", maintain_order=True):
        mids, density = g["mid_cm"].to_numpy(), g["root_density_g_m3"].to_numpy()
        label = observed.get(site)
        site_increments = increments.filter(pl.col("site_id") == site).select(
            "profile", "top_cm", "bottom_cm", "root_density_g_m3"
        )
        share, method, resamples = resampled_share(site_increments, params, rng)
        grid = sensitivity_grid(mids, density, params)
        grid_share = sum(r["modality"] == "bimodal" for r in grid) / len(grid)
        grid_rows += [{"site_id": site, **r} for r in grid]
        rows.append(
            {
                "site_id": site,
                "modality": label,
                "n_profiles": site_increments["profile"].n_unique(),
                "resample_method": method,
                "resamples": resamples,
                "resample_bimodal_share": share,
                "resample_agreement": share if label == "bimodal" else 1 - share,
                "grid_bimodal_share": grid_share,
                "grid_agreement": grid_share if label == "bimodal" else 1 - grid_share,
                "critical_bandwidth_cm": critical_bandwidth(mids, density, params),
                "secondary_prominence": secondary_prominence(mids, density, params),
                "beyond_the_paper": True,
            }
        )
    grid_schema = {
        "site_id": pl.String,
        "bandwidth_cm": pl.Float64,
        "secondary_threshold": pl.Float64,
        "modality": pl.String,
    }
    return pl.DataFrame(rows, schema=ROBUSTNESS_SCHEMA), pl.DataFrame(grid_rows, schema=grid_schema)
