"""Site modality (METHOD.md section 2): the KDE against analytic values, and planted profiles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rootassets.science.modality import (
    Kde,
    ModalityParameters,
    depth_sample,
    gaussian_kde,
    modes_and_antimodes,
    site_modality,
)

P = ModalityParameters()
MIDS = np.array([5, 15, 25, 35, 45, 55, 65, 75, 85, 95, 110, 130, 150, 170, 190], dtype=float)


def normal_pdf(x: np.ndarray, mean: float, sd: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))


def test_kde_grid_is_r_density_grid() -> None:
    kde = gaussian_kde(np.array([10.0, 50.0]), np.array([1.0, 1.0]), P)
    assert kde.grid.size == 2**15
    assert kde.grid[0] == pytest.approx(10 - 3 * 15) and kde.grid[-1] == pytest.approx(50 + 3 * 15)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 200), st.integers(1, 500)), min_size=1, max_size=6, unique_by=lambda t: t[0]))
def test_kde_is_the_analytic_sum_of_gaussians_of_sd_15(points: list[tuple[float, int]]) -> None:
    depths = np.array([d for d, _ in points])
    counts = np.array([c for _, c in points], dtype=float)
    kde = gaussian_kde(depths, counts, P)
    expected = sum(c * normal_pdf(kde.grid, d, 15.0) for d, c in zip(depths, counts, strict=True)) / counts.sum()
    np.testing.assert_allclose(kde.density, expected, rtol=1e-10, atol=1e-15)
    assert np.trapezoid(kde.density, kde.grid) == pytest.approx(1.0, abs=0.003)  # 3 bw each side: ~99.7%


def test_bandwidth_is_in_depth_units_not_a_factor_of_spread() -> None:
    narrow = gaussian_kde(np.array([50.0]), np.array([1.0]), P)
    assert narrow.at(50.0) == pytest.approx(1 / (15 * np.sqrt(2 * np.pi)), rel=1e-6)
    wide = gaussian_kde(np.array([0.0, 100.0]), np.array([1.0, 1.0]), P)
    assert wide.at(0.0) == pytest.approx(
        0.5 * (normal_pdf(np.array([0.0]), 0, 15)[0] + normal_pdf(np.array([0.0]), 100, 15)[0])
    )


def test_depth_sample_repeats_each_midpoint_round_y_times() -> None:
    depths, counts = depth_sample(np.array([5.0, 15.0, 25.0]), np.array([2.4, 0.4, 3.6]))
    assert depths.tolist() == [5.0, 25.0] and counts.tolist() == [2.0, 4.0]


def planted(peak_share: float, decay_cm: float = 20.0) -> np.ndarray:
    """An exponential decay plus a deep peak at 130 cm of `peak_share` of the surface height."""
    decay = 1000 * np.exp(-MIDS / decay_cm)
    return decay + peak_share * decay[0] * np.exp(-0.5 * ((MIDS - 130) / 10) ** 2)


def test_exponential_decay_is_unimodal() -> None:
    result, _ = site_modality(MIDS, planted(0.0), P)
    assert result.modality == "unimodal" and result.n_modes == 1 and result.d2_cm is None
    assert result.d0_cm < 20


def test_decay_plus_deep_peak_of_20_percent_is_bimodal_at_130() -> None:
    result, kde = site_modality(MIDS, planted(0.20), P)
    assert result.modality == "bimodal"
    assert abs(result.d2_cm - 130) <= 3
    assert result.d0_cm < result.d1_cm < result.d2_cm
    assert result.secondary_ratio >= P.secondary_threshold
    assert kde.at(result.d1_cm) < kde.at(result.d2_cm)


def test_the_same_peak_at_8_percent_is_unimodal() -> None:
    result, _ = site_modality(MIDS, planted(0.08), P)
    assert result.modality == "unimodal"
    assert result.n_modes == 2  # the raw mode is there, below the 10% rule


def test_threshold_is_a_parameter() -> None:
    lenient = ModalityParameters(secondary_threshold=0.01)
    assert site_modality(MIDS, planted(0.08), lenient)[0].modality == "bimodal"


def test_modes_and_antimodes_alternate() -> None:
    kde = gaussian_kde(np.array([20.0, 80.0, 140.0]), np.array([5.0, 3.0, 4.0]), P)
    modes, antimodes = modes_and_antimodes(kde)
    assert modes.size == 3 and antimodes.size == 2
    assert modes[0] < antimodes[0] < modes[1] < antimodes[1] < modes[2]


def sign_carrying_turns(density: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Section 2.3's turns by their definition (the first implementation, kept as the reference): each step's
    slope sign, flat steps carrying the last non-zero sign, turns where that carried sign changes."""
    slope = np.sign(np.diff(density))
    last_nonzero = np.maximum.accumulate(np.where(slope != 0, np.arange(slope.size), 0))
    turns = np.diff(slope[last_nonzero])
    return np.where(turns < 0)[0] + 1, np.where(turns > 0)[0] + 1


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.integers(0, 3), min_size=1, max_size=40),
    st.integers(0, 4),
    st.integers(0, 4),
    st.booleans(),
)
def test_modes_and_antimodes_are_the_sign_carrying_turns(values: list[int], lead: int, tail: int, smooth: bool) -> None:
    """Plateaus, flat starts and ends, constant curves and curves with no flat step at all (a KDE's usual
    case, taken by a faster path): the same modes and antimodes as the definition."""
    body = np.array(values, dtype=float)
    if smooth:  # no two neighbours equal
        body = np.cumsum(np.where(np.arange(body.size) % 2, 1.0, -1.0) * (body + 1)) + np.arange(body.size) * 0.1
    density = np.concatenate((np.zeros(lead), body, np.zeros(tail)))
    found = modes_and_antimodes(Kde(np.arange(density.size, dtype=float), density))
    expected = sign_carrying_turns(density)
    assert all(np.array_equal(f, e) and f.dtype == e.dtype for f, e in zip(found, expected, strict=True))


def test_empty_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="no depth with a positive count"):
        site_modality(MIDS, np.zeros_like(MIDS), P)


def test_the_table_of_every_site_reads_each_site_kde_as_one_site_alone() -> None:
    """modality_table drops each fine grid once read: its curves and labels are still each site's own."""
    import polars as pl
    from polars.testing import assert_frame_equal

    from rootassets.science.modality import kde_on_steps, modality_table

    tops = np.concatenate([[0.0], (MIDS[1:] + MIDS[:-1]) / 2])
    profiles = pl.DataFrame(
        {
            "site_id": ["AAAA"] * MIDS.size + ["BBBB"] * MIDS.size,
            "top_cm": np.concatenate([tops, tops]),
            "mid_cm": np.concatenate([MIDS, MIDS]),
            "root_density_g_m3": np.concatenate([planted(0.0), planted(0.20)]),
        }
    )
    table, curves = modality_table(profiles, P)
    assert table["modality"].to_list() == ["unimodal", "bimodal"]
    for site, density in (("AAAA", planted(0.0)), ("BBBB", planted(0.20))):
        _, kde = site_modality(MIDS, density, P)
        assert_frame_equal(curves.filter(pl.col("site_id") == site), kde_on_steps(site, kde))
