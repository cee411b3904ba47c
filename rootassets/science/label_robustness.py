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
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from rootassets.science.bootstrap import binned_fft_kdes, label_resamples
from rootassets.science.by_site import BySite
from rootassets.science.modality import (
    Kde,
    ModalityParameters,
    classify_modality,
    depth_sample,
    modes_and_antimodes,
)


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
    n_jobs: int = 0  # sites worked on at once, each in a worker process; 0 = one per CPU core (same results)


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


def resample_weights(
    n_profiles: int, params: RobustnessParameters, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, str]:
    """The resamples of a site's `n_profiles` profiles as draw counts per profile, their probabilities, and how
    they were obtained: every distinct one (exact) or, beyond `max_exact_resamples`, `resamples` random draws
    from `rng`."""
    if distinct_resamples(n_profiles) <= params.max_exact_resamples:
        weights, probabilities = exact_resamples(n_profiles)
        return weights, probabilities, "exact"
    draws = rng.integers(0, n_profiles, size=(params.resamples, n_profiles))
    weights = np.stack([np.bincount(d, minlength=n_profiles) for d in draws]).astype(float)
    return weights, np.full(params.resamples, 1.0 / params.resamples), "random"


def resampled_share(
    increments: pl.DataFrame, params: RobustnessParameters, rng: np.random.Generator
) -> tuple[float, str, int]:
    """Share of resample probability labelled bimodal, how it was obtained (exact or random), and over how
    many resamples."""
    weights, probabilities, method = resample_weights(increments["profile"].n_unique(), params, rng)
    return _bimodal_share(increments, params, weights, probabilities), method, len(probabilities)


def _bimodal_share(
    increments: pl.DataFrame, params: RobustnessParameters, weights: np.ndarray, probabilities: np.ndarray
) -> float:
    labels, _ = label_resamples(increments, params, weights)
    known = np.array([label is not None for label in labels])
    bimodal = np.array([label == "bimodal" for label in labels])
    total = probabilities[known].sum()
    return float(probabilities[bimodal].sum() / total) if total > 0 else float("nan")


# Two KDEs at a time (~1.5 MB of arrays a KDE at 2^15 points). With 8, two worker processes slowed each other
# down, likely over the shared cache (not shown by counters): 300 sites on 2 workers took 9.6 and 10.4 s with
# batches of 8, 8.4 and 7.9 s with 2 (two series, each figure the mean of 6 runs; 8.6 s with 4, 8.8 s with 3,
# 9.3 s with KDEs one at a time); one process alone, 13.2 s with 8 and 14.1 s with 2.
SCAN_BATCH = 2  # bandwidths of the critical-bandwidth scan estimated at a time (before looking at their labels)
KDE_BATCH = 2  # KDEs whose FFTs run as one batch


class SiteKdes:
    """One site's KDE (section 2.2, R's binned FFT) at any bandwidth, each computed once: the sensitivity grid,
    the critical-bandwidth scan and the prominence ask for some of the same bandwidths (15 cm, the default, by
    all three). `prepare` estimates them `KDE_BATCH` at a time (their FFTs in one batch, the same numbers)."""

    def __init__(self, mid_cm: np.ndarray, density: np.ndarray, params: ModalityParameters) -> None:
        self.depths, self.counts = depth_sample(mid_cm, density, params.count_scale)
        self._params = params
        self._kdes: dict[float, Kde] = {}

    def prepare(self, bandwidths: Sequence[float]) -> None:
        missing = [bw for bw in dict.fromkeys(bandwidths) if bw not in self._kdes]
        for start in range(0, len(missing), KDE_BATCH):
            chunk = missing[start : start + KDE_BATCH]
            self._kdes.update(zip(chunk, binned_fft_kdes(self.depths, self.counts, self._params, chunk), strict=True))

    def at(self, bandwidth: float) -> Kde:
        self.prepare([bandwidth])
        return self._kdes[bandwidth]


def sensitivity_grid(kdes: SiteKdes, params: RobustnessParameters) -> list[dict]:
    """The label at every bandwidth x threshold of the grid (one KDE per bandwidth)."""
    kdes.prepare(params.bandwidths_cm)
    rows = []
    for bandwidth in params.bandwidths_cm:
        kde = kdes.at(bandwidth)
        turns = modes_and_antimodes(kde)
        for threshold in params.thresholds:
            at_threshold = dataclasses.replace(params, secondary_threshold=threshold)
            label = classify_modality(kde, at_threshold, turns=turns).modality
            rows.append({"bandwidth_cm": bandwidth, "secondary_threshold": threshold, "modality": label})
    return rows


def critical_bandwidth(kdes: SiteKdes, params: RobustnessParameters) -> float | None:
    """The smallest bandwidth (1 cm grid, 1 cm to `critical_bandwidth_max_cm`) from which on every larger one
    labels the site unimodal; None when it is still bimodal at the largest. Scanned down from the largest,
    `SCAN_BATCH` bandwidths estimated at a time."""
    scan = [float(bw) for bw in np.arange(params.critical_bandwidth_max_cm, 0.5, -1.0)]
    critical = None
    for start in range(0, len(scan), SCAN_BATCH):
        kdes.prepare(scan[start : start + SCAN_BATCH])
        for bandwidth in scan[start : start + SCAN_BATCH]:
            if classify_modality(kdes.at(bandwidth), params).modality != "unimodal":
                return critical
            critical = bandwidth
    return critical


def secondary_prominence(kdes: SiteKdes, params: ModalityParameters) -> float | None:
    """(f(D2) - f(D1)) / f(D2) on the site's KDE: 0 for a shoulder, 1 for a peak over an empty antimode."""
    kde = kdes.at(params.bandwidth_cm)
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
    """Per site: the three views of its label (`ROBUSTNESS_SCHEMA`), and the long sensitivity grid.

    Sites are independent, so `params.n_jobs` of them are worked on at once. The random resamples (sites with
    many profiles) are drawn here first, site after site from one seeded stream, so the tables do not depend on
    how many ran at once."""
    observed = dict(modality.select("site_id", "modality").iter_rows())
    rng = np.random.default_rng(params.seed)
    columns = ["profile", "top_cm", "bottom_cm", "root_density_g_m3"]
    by_site = BySite(increments.select("site_id", *columns))  # one pass over the increments, not a filter a site
    jobs = []
    for (site,), g in profiles.sort("site_id", "top_cm").group_by("site_id", maintain_order=True):
        site_increments = by_site[site].drop("site_id")
        resamples = resample_weights(site_increments["profile"].n_unique(), params, rng)
        jobs.append(
            (
                site,
                observed.get(site),
                g["mid_cm"].to_numpy(),
                g["root_density_g_m3"].to_numpy(),
                site_increments,
                resamples,
                params,
            )
        )
    # Sites whose profiles span the same depths share their kernels' FFTs (`binned_fft_kde`): worked on next to
    # each other, each worker finds them still kept. The tables stay in site order.
    order = sorted(range(len(jobs)), key=lambda i: _depth_range(jobs[i][2], jobs[i][3], params))
    if params.n_jobs == 1 or len(jobs) < 2:
        worked = [site_views(*jobs[i]) for i in order]
    else:
        from joblib import Parallel, delayed  # heavy: imported only when sites are worked on at once

        worked = Parallel(n_jobs=params.n_jobs or -1)(delayed(site_views)(*jobs[i]) for i in order)
    views = [view for _, view in sorted(zip(order, worked, strict=True), key=lambda pair: pair[0])]
    rows = [row for row, _ in views]
    grid_rows = [r for _, grid in views for r in grid]
    grid_schema = {
        "site_id": pl.String,
        "bandwidth_cm": pl.Float64,
        "secondary_threshold": pl.Float64,
        "modality": pl.String,
    }
    return pl.DataFrame(rows, schema=ROBUSTNESS_SCHEMA), pl.DataFrame(grid_rows, schema=grid_schema)


def _depth_range(mids: np.ndarray, density: np.ndarray, params: RobustnessParameters) -> tuple[float, float]:
    depths, _ = depth_sample(mids, density, params.count_scale)
    return (float(depths.min()), float(depths.max())) if depths.size else (math.inf, math.inf)


def site_views(
    site: str,
    label: str | None,
    mids: np.ndarray,
    density: np.ndarray,
    site_increments: pl.DataFrame,
    resamples: tuple[np.ndarray, np.ndarray, str],
    params: RobustnessParameters,
) -> tuple[dict, list[dict]]:
    """One site's row of `ROBUSTNESS_SCHEMA` and its sensitivity grid rows."""
    weights, probabilities, method = resamples
    share = _bimodal_share(site_increments, params, weights, probabilities)
    kdes = SiteKdes(mids, density, params)
    grid = sensitivity_grid(kdes, params)
    grid_share = sum(r["modality"] == "bimodal" for r in grid) / len(grid)
    row = {
        "site_id": site,
        "modality": label,
        "n_profiles": site_increments["profile"].n_unique(),
        "resample_method": method,
        "resamples": len(probabilities),
        "resample_bimodal_share": share,
        "resample_agreement": share if label == "bimodal" else 1 - share,
        "grid_bimodal_share": grid_share,
        "grid_agreement": grid_share if label == "bimodal" else 1 - grid_share,
        "critical_bandwidth_cm": critical_bandwidth(kdes, params),
        "secondary_prominence": secondary_prominence(kdes, params),
        "beyond_the_paper": True,
    }
    return row, [{"site_id": site, **r} for r in grid]
