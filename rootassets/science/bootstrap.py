"""Beyond the paper (METHOD.md section 2.5): a bootstrap over profiles giving each site's label a confidence.

Each resample draws the site's profiles with replacement, rebuilds the site
profile as section 1.4 does (per increment, the mean over the drawn profiles
that sampled it), and labels it as section 2 does. A resample's KDE is R's
binned FFT estimate (`binned_fft_kde`, the algorithm of `density.default`),
vectorized over a batch of resamples; the direct sum of `gaussian_kde` would
cost grid points x depths per resample.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from rootassets.science.modality import Kde, ModalityParameters, classify_modality, gaussian_kde

BATCH = 64  # resamples per FFT batch: bounds memory at about BATCH x 2^16 complex values
KERNELS_KEPT = 128  # kernel FFTs kept (0.5 MB each at 2^15 grid points): a site's 40-odd bandwidths, a few times
_KERNELS: OrderedDict[tuple[float, int, float], np.ndarray] = OrderedDict()  # (span, n, bw) -> FFT, oldest first


def _kernel_ffts(span_bandwidths: list[tuple[float, float]], n: int) -> list[np.ndarray]:
    """The Gaussian kernel's FFT on R's 2n-point circle over a binning range of length `span`, per (span,
    bandwidth); the ones not kept are transformed in one batch. The last KERNELS_KEPT are kept (read-only):
    sites whose profiles span the same depth range share them."""
    wanted = [(span, n, bw) for span, bw in span_bandwidths]
    missing = [key for key in dict.fromkeys(wanted) if key not in _KERNELS]
    if missing:
        kernels = np.empty((len(missing), 2 * n))
        for row, (span, _, bw) in enumerate(missing):
            kords = np.linspace(0, 2 * span, 2 * n)
            kords[n + 1 :] = -kords[n - 1 : 0 : -1]
            kernels[row] = np.exp(-0.5 * (kords / bw) ** 2) / (bw * np.sqrt(2 * np.pi))
        for key, transformed in zip(missing, np.fft.rfft(kernels, axis=1), strict=True):
            kept = np.conj(transformed)  # a copy of its own, so that no kept kernel holds the whole batch
            kept.setflags(write=False)
            _KERNELS[key] = kept
    found = []
    for key in wanted:
        _KERNELS.move_to_end(key)
        found.append(_KERNELS[key])
    while len(_KERNELS) > KERNELS_KEPT:
        _KERNELS.popitem(last=False)
    return found


def fft_grid(depths: np.ndarray, params: ModalityParameters) -> tuple[np.ndarray, float, float]:
    """The output grid of R's density (from min - cut*bw to max + cut*bw) and its binning range (4 bw wider).
    The grid is shared, read-only, with every other KDE on the same range (`_placement`)."""
    bw = params.bandwidth_cm
    start, stop = depths.min() - params.cut_bandwidths * bw, depths.max() + params.cut_bandwidths * bw
    lo, up = start - 4 * bw, stop + 4 * bw
    n = params.grid_points
    return _placement(float(start), float(stop), n, lo, up, n).grid, lo, up


@dataclass(frozen=True)
class _Placement:
    """An output grid and where each of its points falls on the binning grid of n points on [lo, up]: the
    left neighbour and the weights of the linear interpolation between it and the next."""

    grid: np.ndarray
    left: np.ndarray
    right: np.ndarray
    weight_left: np.ndarray
    weight_right: np.ndarray


PLACEMENTS_KEPT = 48  # ~1.3 MB each at 2^15 points: one site's bandwidths, for the next site on the same range


@functools.lru_cache(maxsize=PLACEMENTS_KEPT)
def _placement(start: float, stop: float, size: int, lo: float, up: float, n: int) -> _Placement:
    """`np.linspace(start, stop, size)` and its interpolation from n points on [lo, up]. Sites whose profiles
    span the same depths (the same range at every bandwidth) share them (read-only): the last PLACEMENTS_KEPT
    are kept."""
    grid = np.linspace(start, stop, size)
    delta = (up - lo) / (n - 1)
    at = np.clip((grid - lo) / delta, 0, n - 1)
    left = np.minimum(np.floor(at).astype(int), n - 2)
    t = at - left
    found = _Placement(grid, left, left + 1, 1 - t, t)
    for array in (found.grid, found.left, found.right, found.weight_left, found.weight_right):
        array.setflags(write=False)
    return found


def binned_fft_kde(depths: np.ndarray, counts: np.ndarray, params: ModalityParameters) -> Kde:
    """Section 2.2 the way R's density() computes it: linear binning on 2^k points, FFT convolution with
    the Gaussian kernel, and linear interpolation onto the output grid."""
    if depths.size == 0 or counts.sum() <= 0:
        raise ValueError("the profile has no depth with a positive count")
    grid, lo, up = fft_grid(depths, params)
    density = _fft_densities(np.array([counts / counts.sum()]), depths, grid, lo, up, params)[0]
    return Kde(grid=grid, density=density)


def binned_fft_kdes(
    depths: np.ndarray, counts: np.ndarray, params: ModalityParameters, bandwidths: list[float]
) -> list[Kde]:
    """`binned_fft_kde` of one sample at each of `bandwidths`, equal to it bit for bit (`test_bootstrap.py`).
    Each bandwidth has its own grid, binning range and kernel; only the FFTs are one batch, which numpy runs
    in less time than one-row calls (the label robustness asks for a site's 40-odd bandwidths a few at a time:
    `label_robustness.KDE_BATCH`)."""
    if depths.size == 0 or counts.sum() <= 0:
        raise ValueError("the profile has no depth with a positive count")
    weights = np.array([counts / counts.sum()])
    n = params.grid_points
    ranges = [fft_grid(depths, replace(params, bandwidth_cm=bw)) for bw in bandwidths]
    bins = np.concatenate([_bins(weights, depths, lo, up, n) for _, lo, up in ranges])
    kernels = _kernel_ffts([(up - lo, bw) for (_, lo, up), bw in zip(ranges, bandwidths, strict=True)], n)
    raw = _convolved(bins, kernels, n)
    return [
        Kde(grid=grid, density=_interpolated(raw[r : r + 1], grid, lo, up, n)[0])
        for r, (grid, lo, up) in enumerate(ranges)
    ]


def _fft_densities(
    weights: np.ndarray, depths: np.ndarray, grid: np.ndarray, lo: float, up: float, params: ModalityParameters
) -> np.ndarray:
    """Densities on `grid` for each row of `weights` (resamples x depths), all on one binning range.

    Binning is R's BinDist (linear binning onto n points on [lo, up], zero-padded to 2n). Binning and the
    final interpolation are fixed linear maps of the depths and the grid, so they
    are applied to the whole batch at once; only the FFT is per row (and numpy batches it too).
    """
    n = params.grid_points
    (kernel,) = _kernel_ffts([(up - lo, params.bandwidth_cm)], n)
    raw = _convolved(_bins(weights, depths, lo, up, n), [kernel], n)
    return _interpolated(raw, grid, lo, up, n)


def _bins(weights: np.ndarray, depths: np.ndarray, lo: float, up: float, n: int) -> np.ndarray:
    """R's BinDist: each row of `weights` linearly binned onto n points on [lo, up], zero-padded to 2n."""
    delta = (up - lo) / (n - 1)
    position = (depths - lo) / delta
    index = np.floor(position).astype(int)
    fraction = position - index
    inside = np.flatnonzero((index >= 0) & (index <= n - 2))
    # Each depth adds to its bin and the next, depth after depth: `add.at` adds in the order given, so depths
    # sharing a bin sum in the same order as a loop over them (`test_bootstrap.py`).
    columns = np.stack((index[inside], index[inside] + 1), axis=1).ravel()
    share = weights[:, inside]
    values = np.stack((share * (1 - fraction[inside]), share * fraction[inside]), axis=2)
    bins = np.zeros((weights.shape[0], 2 * n))
    np.add.at(bins, (slice(None), columns), values.reshape(weights.shape[0], -1))
    return bins


def _convolved(bins: np.ndarray, kernels: list[np.ndarray], n: int) -> np.ndarray:
    """Rows of `bins` convolved with the transformed kernel (one for every row, or one per row) on the
    2n-point circle, cut to their first n points and clipped at 0 (as R's density)."""
    spectra = np.fft.rfft(bins, axis=1)
    if len(kernels) == 1:
        spectra *= kernels[0]
    else:
        for row, kernel in zip(spectra, kernels, strict=True):
            row *= kernel
    raw = np.fft.irfft(spectra, n=2 * n, axis=1)[:, :n]
    np.maximum(raw, 0.0, out=raw)
    return raw


def _interpolated(raw: np.ndarray, grid: np.ndarray, lo: float, up: float, n: int) -> np.ndarray:
    """Rows of `raw` (n points on [lo, up]) linearly interpolated onto `grid` (an `fft_grid`)."""
    place = _placement(float(grid[0]), float(grid[-1]), grid.size, lo, up, n)
    out = np.take(raw, place.left, axis=1)  # `take` gathers rows of a batch ~2x faster than fancy indexing
    out *= place.weight_left
    right = np.take(raw, place.right, axis=1)
    right *= place.weight_right
    out += right
    return out


@dataclass(frozen=True)
class BootstrapResult:
    resamples: int
    bimodal_share: float
    d2_median_cm: float | None
    d2_iqr_cm: float | None


def profile_matrix(increments: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One site's increments as (mid depths, profiles x increments densities with 0 where unsampled, sampled)."""
    table = increments.pivot(
        on="profile", index=["top_cm", "bottom_cm"], values="root_density_g_m3", aggregate_function="mean"
    ).sort("top_cm", "bottom_cm")
    mids = ((table["top_cm"] + table["bottom_cm"]) / 2).to_numpy()
    values = table.drop("top_cm", "bottom_cm").to_numpy().T.astype(float)
    sampled = np.isfinite(values)
    return mids, np.where(sampled, values, 0.0), sampled


def label_resamples(
    increments: pl.DataFrame, params: ModalityParameters, weights: np.ndarray, method: str = "fft"
) -> tuple[list[str | None], list[float | None]]:
    """The label and D2 of the site profile rebuilt from each row of `weights` (resamples x profiles: how often
    each profile is drawn; section 1.4's mean over the drawn profiles that sampled each increment). A resample
    with no roots at all gets None. Every resample is estimated on the grid of the site's full set of
    increments, so that one kernel FFT serves all; `method="direct"` sums Gaussians instead."""
    mids, values, sampled = profile_matrix(increments)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (weights @ values) / (weights @ sampled)  # resamples x increments; NaN: nobody sampled it
    counts = np.rint(np.nan_to_num(means, nan=0.0) * params.count_scale)
    counts = np.where(counts > 0, counts, 0.0)
    grid, lo, up = fft_grid(mids, params)
    labels: list[str | None] = [None] * counts.shape[0]
    d2s: list[float | None] = [None] * counts.shape[0]
    usable = np.flatnonzero(counts.sum(axis=1) > 0)
    for start in range(0, usable.size, BATCH):
        rows = usable[start : start + BATCH]
        batch = counts[rows]
        if method == "direct":
            kdes = [gaussian_kde(mids[row > 0], row[row > 0], params) for row in batch]
        else:
            densities = _fft_densities(batch / batch.sum(axis=1, keepdims=True), mids, grid, lo, up, params)
            kdes = [Kde(grid, density) for density in densities]
        for row, kde in zip(rows, kdes, strict=True):
            result = classify_modality(kde, params)
            labels[row], d2s[row] = result.modality, result.d2_cm
    return labels, d2s


def bootstrap_site(
    increments: pl.DataFrame, params: ModalityParameters, resamples: int, rng: np.random.Generator, method: str = "fft"
) -> BootstrapResult:
    """Resample one site's profiles `resamples` times at random and label each resampled site profile.

    `increments`: profile, top_cm, bottom_cm, root_density_g_m3 of one site.
    """
    n_profiles = increments["profile"].n_unique()
    draws = rng.integers(0, n_profiles, size=(resamples, n_profiles))
    weights = np.stack([np.bincount(d, minlength=n_profiles) for d in draws]).astype(float)
    labels, d2s = label_resamples(increments, params, weights, method)
    known = [label for label in labels if label is not None]
    share = known.count("bimodal") / len(known) if known else float("nan")
    d2 = np.array([d for d in d2s if d is not None])
    return BootstrapResult(
        len(known),
        share,
        float(np.median(d2)) if d2.size else None,
        float(np.subtract(*np.percentile(d2, [75, 25]))) if d2.size else None,
    )


@dataclass(frozen=True)
class BootstrapParameters(ModalityParameters):
    """The labelling constants of section 2 (as `ModalityParameters`; set them as the site_modality run
    set its own) plus the number of resamples and the random seed."""

    resamples: int = 1000
    seed: int = 123


BOOTSTRAP_SCHEMA = {
    "site_id": pl.String,
    "modality": pl.String,
    "n_profiles": pl.Int64,
    "resamples": pl.Int64,
    "bimodal_share": pl.Float64,
    "label_confidence": pl.Float64,
    "d2_median_cm": pl.Float64,
    "d2_iqr_cm": pl.Float64,
}


def bootstrap_table(increments: pl.DataFrame, modality: pl.DataFrame, params: BootstrapParameters) -> pl.DataFrame:
    """Per site (in site order, one random stream for all): the bootstrap of `bootstrap_site`, and the share
    of resamples agreeing with the site's label in `modality` (site_id, modality)."""
    observed = dict(modality.select("site_id", "modality").iter_rows())
    rng = np.random.default_rng(params.seed)
    rows = []
    for (site,), g in increments.sort("site_id").group_by("site_id", maintain_order=True):
        result = bootstrap_site(
            g.select("profile", "top_cm", "bottom_cm", "root_density_g_m3"), params, params.resamples, rng
        )
        label = observed.get(site)
        rows.append(
            {
                "site_id": site,
                "modality": label,
                "n_profiles": g["profile"].n_unique(),
                "resamples": result.resamples,
                "bimodal_share": result.bimodal_share,
                "label_confidence": result.bimodal_share if label == "bimodal" else 1 - result.bimodal_share,
                "d2_median_cm": result.d2_median_cm,
                "d2_iqr_cm": result.d2_iqr_cm,
            }
        )
    return pl.DataFrame(rows, schema=BOOTSTRAP_SCHEMA)
