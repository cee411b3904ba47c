"""The binned-FFT KDE against the direct sum, and the optional bootstrap asset."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from dagster import RunConfig
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from rootassets.defs.analysis import analysis_assets
from rootassets.defs.harmonized import harmonized_assets
from rootassets.defs.raw import raw_assets
from rootassets.defs.steps import config_class
from rootassets.science.bootstrap import binned_fft_kde
from rootassets.science.modality import ModalityParameters, classify_modality, gaussian_kde
from rootassets.science.steps import STEPS
from rootassets.settings import Settings
from rootassets.warehouse import connect_read_only
from rootassets_tests.conftest import RELEASE, asset_resources

MODALITY = [a for a in analysis_assets if any(k.path[-1] == "site_modality" for k in a.keys)]
BOOTSTRAP = [a for a in analysis_assets if any(k.path[-1] == "site_modality_bootstrap" for k in a.keys)]
BOOTSTRAP_CONFIG = config_class(next(s for s in STEPS if s.name == "site_modality_bootstrap"))


@hsettings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 200), st.integers(1, 400)), min_size=1, max_size=20))
def test_binned_fft_kde_matches_the_direct_sum(points: list[tuple[float, int]]) -> None:
    depths = np.array([d for d, _ in points])
    counts = np.array([c for _, c in points], dtype=float)
    params = ModalityParameters(grid_points=2**13)
    direct, fft = gaussian_kde(depths, counts, params), binned_fft_kde(depths, counts, params)
    assert np.allclose(direct.grid, fft.grid)
    # Linear binning moves mass by under one bin (about 0.03 cm here): a small error relative to the peak.
    assert np.abs(direct.density - fft.density).max() <= 2e-3 * direct.density.max()


@hsettings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 200), st.integers(1, 400)), min_size=1, max_size=20),
    st.lists(st.sampled_from([1.0, 2.5, 7.0, 10.0, 12.5, 15.0, 15.0, 22.5, 40.0]), min_size=1, max_size=9),
    st.booleans(),
)
def test_kdes_at_several_bandwidths_in_one_batch_equal_each_alone_to_the_last_bit(
    points: list[tuple[float, int]], bandwidths: list[float], kernels_kept: bool
) -> None:
    """The label robustness estimates a site's KDEs several bandwidths at a time (their FFTs in one batch). Each
    must be the one-bandwidth estimate exactly, whether its kernel's FFT and its grid's interpolation were kept
    from before or not."""
    from rootassets.science.bootstrap import _KERNELS, _placement, binned_fft_kdes

    depths = np.array([d for d, _ in points])
    counts = np.array([c for _, c in points], dtype=float)
    params = ModalityParameters(grid_points=2**12)
    if not kernels_kept:
        _KERNELS.clear()
        _placement.cache_clear()
    together = binned_fft_kdes(depths, counts, params, bandwidths)
    _KERNELS.clear()
    _placement.cache_clear()
    for bandwidth, kde in zip(bandwidths, together, strict=True):
        alone = binned_fft_kde(depths, counts, dataclasses.replace(params, bandwidth_cm=bandwidth))
        assert np.array_equal(kde.grid, alone.grid) and np.array_equal(kde.density, alone.density)


@hsettings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-20, 220), min_size=1, max_size=25),
    st.integers(1, 4),
    st.integers(0, 2**32 - 1),
)
def test_binning_adds_depth_after_depth_as_a_loop_does(depths: list[float], rows: int, seed: int) -> None:
    """R's BinDist, vectorized: every row's bins equal, to the last bit, a loop adding each depth's two shares
    in depth order, with depths sharing a bin (a coarse grid) and depths off the range (ignored)."""
    from rootassets.science.bootstrap import _bins

    points = np.array(depths)
    weights = np.random.default_rng(seed).random((rows, points.size))
    lo, up, n = 0.0, 200.0, 64
    delta = (up - lo) / (n - 1)
    index = np.floor((points - lo) / delta).astype(int)
    fraction = (points - lo) / delta - index
    expected = np.zeros((rows, 2 * n))
    for i in np.flatnonzero((index >= 0) & (index <= n - 2)):
        expected[:, index[i]] += weights[:, i] * (1 - fraction[i])
        expected[:, index[i] + 1] += weights[:, i] * fraction[i]
    assert np.array_equal(_bins(weights, points, lo, up, n), expected)


@pytest.mark.parametrize(("scan_batch", "kde_batch"), [(2, 2), (8, 8), (8, 3), (1, 1), (5, 40)])
def test_the_critical_bandwidth_is_the_one_bandwidth_at_a_time_scan(
    scan_batch: int, kde_batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scanning down SCAN_BATCH bandwidths at a time, their KDEs estimated KDE_BATCH at a time, gives the
    bandwidth a scan of one at a time gives, for sites bimodal up to different bandwidths and one bimodal at
    every bandwidth (None)."""
    from rootassets.science import label_robustness
    from rootassets.science.label_robustness import RobustnessParameters, SiteKdes, critical_bandwidth

    monkeypatch.setattr(label_robustness, "SCAN_BATCH", scan_batch)
    monkeypatch.setattr(label_robustness, "KDE_BATCH", kde_batch)

    params = RobustnessParameters(grid_points=2**12)
    tops = np.arange(0, 300, 10.0)
    found = []
    for gap in (40, 70, 100, 140, 250):
        density = 1000 * np.exp(-0.5 * ((tops - 20) / 12) ** 2) + 800 * np.exp(-0.5 * ((tops - 20 - gap) / 12) ** 2)
        kdes = SiteKdes(tops + 5, density, params)
        one_at_a_time = None
        for bandwidth in np.arange(params.critical_bandwidth_max_cm, 0.5, -1.0):
            alone = binned_fft_kde(kdes.depths, kdes.counts, dataclasses.replace(params, bandwidth_cm=bandwidth))
            if classify_modality(alone, params).modality != "unimodal":
                break
            one_at_a_time = float(bandwidth)
        found.append(critical_bandwidth(kdes, params))
        assert found[-1] == one_at_a_time
    assert found[0] is not None and found[-1] is None and len(set(found)) >= 3


def test_bootstrap_asset_gives_each_site_a_reproducible_label_confidence(snapshot_settings: Settings) -> None:
    from dagster import DagsterInstance, materialize

    from rootassets.defs.partitions import NEON_RELEASE_PARTITIONS

    def run(home_settings: Settings) -> list[tuple]:
        instance = DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(NEON_RELEASE_PARTITIONS, [RELEASE])
        config = RunConfig({BOOTSTRAP[0].op.name: BOOTSTRAP_CONFIG(resamples=40, seed=5)})
        result = materialize(
            [*raw_assets, *harmonized_assets, *MODALITY, *BOOTSTRAP],
            resources=asset_resources(home_settings),
            partition_key=RELEASE,
            instance=instance,
            run_config=config,
        )
        assert result.success
        with connect_read_only(home_settings.database) as con:
            return con.execute(
                "select site_id, modality, resamples, bimodal_share, label_confidence "
                "from analysis.site_modality_bootstrap order by site_id"
            ).fetchall()

    first = run(snapshot_settings)
    again = run(dataclasses.replace(snapshot_settings, home=snapshot_settings.home.parent / "again"))
    assert first == again and len(first) == 44
    assert all(r[2] == 40 and 0 <= r[4] <= 1 for r in first)
    unimodal_shares = [r[3] for r in first if r[1] == "unimodal"]
    assert np.median(unimodal_shares) < 0.2  # most unimodal labels are stable under resampling


def test_the_direct_and_fft_labels_agree_on_a_planted_bimodal_profile() -> None:
    mids = np.arange(5, 200, 10.0)
    density = 1000 * np.exp(-mids / 20) + 250 * np.exp(-0.5 * ((mids - 130) / 12) ** 2)
    params = ModalityParameters()
    counts = np.rint(density)
    a = classify_modality(gaussian_kde(mids, counts, params), params)
    b = classify_modality(binned_fft_kde(mids, counts, params), params)
    assert a.modality == b.modality == "bimodal" and abs(a.d2_cm - b.d2_cm) < 0.5


@hsettings(max_examples=20, deadline=None)
@given(st.integers(1, 6))
def test_exact_resamples_are_every_multiset_with_multinomial_probabilities(n: int) -> None:
    from math import comb

    from rootassets.science.label_robustness import exact_resamples

    weights, probabilities = exact_resamples(n)
    assert weights.shape == (comb(2 * n - 1, n), n)
    assert (weights.sum(axis=1) == n).all() and len({tuple(w) for w in weights}) == weights.shape[0]
    assert probabilities.sum() == pytest.approx(1.0)


@hsettings(max_examples=8, deadline=None)
@given(st.integers(0, 10_000))
def test_the_exact_enumeration_equals_a_large_random_bootstrap_within_sampling_error(seed: int) -> None:
    import polars as pl

    from rootassets.science.bootstrap import bootstrap_site
    from rootassets.science.label_robustness import RobustnessParameters, resampled_share

    rng = np.random.default_rng(seed)
    tops = np.arange(0, 200, 10.0)
    rows = []
    for profile in ("1", "2", "3"):  # a deep second peak of random strength in each profile
        deep = rng.uniform(0, 400)
        density = 1000 * np.exp(-tops / 25) + deep * np.exp(-0.5 * ((tops - 130) / 15) ** 2)
        rows += [(profile, t, t + 10, d) for t, d in zip(tops, density, strict=True)]
    increments = pl.DataFrame(rows, schema=["profile", "top_cm", "bottom_cm", "root_density_g_m3"], orient="row")
    params = RobustnessParameters(grid_points=2**12)
    exact, method, distinct = resampled_share(increments, params, np.random.default_rng(0))
    assert method == "exact" and distinct == 10
    draws = 4000
    random = bootstrap_site(increments, params, draws, np.random.default_rng(seed)).bimodal_share
    assert abs(random - exact) <= 4 * np.sqrt(max(exact * (1 - exact), 1e-4) / draws) + 1e-9


def test_label_robustness_tables_do_not_depend_on_how_many_sites_run_at_once() -> None:
    """Sites are worked on in worker processes; the random resamples (a site with many profiles) are drawn first,
    site after site from one stream, so one process and two give the same tables, to the last bit."""
    import polars as pl

    from rootassets.science.label_robustness import RobustnessParameters, robustness_tables

    rng = np.random.default_rng(7)
    tops = np.arange(0, 200, 10.0)
    increments, profiles, labels = [], [], []
    for s, n_profiles in enumerate((3, 2, 9, 4, 9)):  # 9 profiles: beyond max_exact_resamples, random draws
        site = f"S{s:03d}"
        per_profile = []
        for p in range(n_profiles):
            density = 1000 * np.exp(-tops / 25) + rng.uniform(0, 500) * np.exp(-0.5 * ((tops - 130) / 15) ** 2)
            per_profile.append(density)
            increments += [(site, str(p), t, t + 10, d) for t, d in zip(tops, density, strict=True)]
        mean = np.mean(per_profile, axis=0)
        profiles += [(site, t, t + 10, t + 5, d) for t, d in zip(tops, mean, strict=True)]
        labels.append((site, "bimodal" if s % 2 else "unimodal"))
    increments_frame = pl.DataFrame(
        increments, schema=["site_id", "profile", "top_cm", "bottom_cm", "root_density_g_m3"], orient="row"
    )
    profiles_frame = pl.DataFrame(
        profiles, schema=["site_id", "top_cm", "bottom_cm", "mid_cm", "root_density_g_m3"], orient="row"
    )
    modality = pl.DataFrame(labels, schema=["site_id", "modality"], orient="row")
    params = RobustnessParameters(grid_points=2**12, max_exact_resamples=5000, resamples=200)
    one = robustness_tables(increments_frame, profiles_frame, modality, dataclasses.replace(params, n_jobs=1))
    two = robustness_tables(increments_frame, profiles_frame, modality, dataclasses.replace(params, n_jobs=2))
    assert one[0]["resample_method"].to_list() == ["exact", "exact", "random", "exact", "random"]
    assert one[0].equals(two[0]) and one[1].equals(two[1])


def test_label_robustness_of_each_site_is_its_own_whatever_the_other_sites_and_the_kept_kernels() -> None:
    """Sites are worked on grouped by the depths their profiles span (they share kernel FFTs), and the tables come
    back in site order: each site's rows equal those of the site worked on alone, with no kernel kept."""
    import polars as pl

    from rootassets.science.bootstrap import _KERNELS, _placement
    from rootassets.science.label_robustness import RobustnessParameters, robustness_tables

    rng = np.random.default_rng(11)
    increments, profiles = [], []
    for s, deepest in enumerate((200, 100, 150, 100, 200, 150)):  # sorted by span, the order changes
        site, tops = f"S{s:03d}", np.arange(0, deepest, 10.0)
        per_profile = []
        for p in range(3):
            density = 900 * np.exp(-tops / 30) + rng.uniform(0, 600) * np.exp(-0.5 * ((tops - deepest / 1.6) / 12) ** 2)
            per_profile.append(density)
            increments += [(site, str(p), t, t + 10, d) for t, d in zip(tops, density, strict=True)]
        profiles += [(site, t, t + 10, t + 5, d) for t, d in zip(tops, np.mean(per_profile, axis=0), strict=True)]
    increments_frame = pl.DataFrame(
        increments, schema=["site_id", "profile", "top_cm", "bottom_cm", "root_density_g_m3"], orient="row"
    )
    profiles_frame = pl.DataFrame(
        profiles, schema=["site_id", "top_cm", "bottom_cm", "mid_cm", "root_density_g_m3"], orient="row"
    )
    modality = pl.DataFrame({"site_id": [f"S{s:03d}" for s in range(6)], "modality": ["bimodal", "unimodal"] * 3})
    params = RobustnessParameters(grid_points=2**12, n_jobs=1)
    together, grid = robustness_tables(increments_frame, profiles_frame, modality, params)
    assert together["site_id"].to_list() == modality["site_id"].to_list()
    for site in modality["site_id"]:
        _KERNELS.clear()
        _placement.cache_clear()
        alone, alone_grid = robustness_tables(
            increments_frame.filter(pl.col("site_id") == site),
            profiles_frame.filter(pl.col("site_id") == site),
            modality.filter(pl.col("site_id") == site),
            params,
        )
        assert together.filter(pl.col("site_id") == site).equals(alone)
        assert grid.filter(pl.col("site_id") == site).equals(alone_grid)
