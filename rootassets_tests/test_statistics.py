"""Phi, group tests and the classifier (METHOD.md sections 4-6) against scipy and by construction."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from rootassets.science.classifier import ForestParameters, reweighted_calls, run_classifier
from rootassets.science.group_tests import (
    GroupTestParameters,
    chi_square_monte_carlo,
    contingency,
    f_test_equal_variances,
    growth_form,
    pearson_chi_square,
    two_group_test,
)
from rootassets.science.nutrients import loess, log_linear_fit, relative_profile
from rootassets.science.phi import PhiParameters, phi, phi_depths, value_in_increment

G = GroupTestParameters()


def test_phi_depths_and_increment_reading() -> None:
    assert phi_depths("unimodal", None, None, PhiParameters()) == (70.0, 100.0)
    assert phi_depths("bimodal", 60.0, 130.0, PhiParameters()) == (60.0, 130.0)
    tops, bottoms, values = np.array([60.0, 70.0, 100.0]), np.array([70.0, 80.0, 120.0]), np.array([1.0, 2.0, 8.0])
    assert value_in_increment(tops, bottoms, values, 70.0) == 2.0  # [70, 80) contains 70
    assert value_in_increment(tops, bottoms, values, 90.0) is None
    assert phi(8.0, 2.0) == 4.0 and phi(1.0, 0.0) is None and phi(None, 1.0) is None


positive = st.lists(st.floats(0.01, 1e4), min_size=3, max_size=20)


@settings(max_examples=50, deadline=None)
@given(positive, positive)
def test_two_group_test_equals_scipy_on_log10(a: list[float], b: list[float]) -> None:
    la, lb = np.log10(a), np.log10(b)
    if np.var(la, ddof=1) == 0 or np.var(lb, ddof=1) == 0:
        return
    result = two_group_test(np.array(a), np.array(b), G)
    f = np.var(la, ddof=1) / np.var(lb, ddof=1)
    f_p = 2 * min(stats.f.cdf(f, len(a) - 1, len(b) - 1), stats.f.sf(f, len(a) - 1, len(b) - 1))
    equal = min(1.0, f_p) >= G.alpha
    expected = stats.ttest_ind(la, lb, equal_var=equal)
    assert result.test == ("student_t" if equal else "welch_t")
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-9, abs=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-12)
    assert (result.n_bimodal, result.n_unimodal) == (len(a), len(b))


def test_f_test_matches_r_var_test_example() -> None:
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    b = np.array([2.0, 4.0, 6.0, 8.0, 10.0])
    f, p = f_test_equal_variances(a, b)
    assert f == pytest.approx(0.25)
    assert p == pytest.approx(2 * stats.f.cdf(0.25, 4, 4))


def test_non_positive_values_are_tested_untransformed_and_said_so() -> None:
    result = two_group_test(np.array([-1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0, 4.0]), G)
    assert "not log-transformed" in result.detail


def test_chi_square_statistic_equals_scipy_without_correction() -> None:
    rows = np.array(["b"] * 5 + ["u"] * 20 + ["b"] * 3 + ["u"] * 4)
    cols = np.array(["forest"] * 25 + ["shrub"] * 7)
    table, _, _ = contingency(rows, cols)
    expected = stats.chi2_contingency(table, correction=False).statistic
    assert pearson_chi_square(table) == pytest.approx(expected)


def test_monte_carlo_p_is_reproducible_for_a_seed_and_well_formed() -> None:
    rng = np.random.default_rng(7)
    rows = rng.choice(["bimodal", "unimodal"], 44, p=[0.2, 0.8])
    cols = rng.choice(["forest", "grassland", "shrubland", "cultivated"], 44)
    first = chi_square_monte_carlo(rows, cols, G)
    again = chi_square_monte_carlo(rows, cols, G)
    assert first[0] == again[0] and first[1] == again[1]
    assert 1 / 2001 <= first[1] <= 1.0
    assert (first[1] * 2001) == pytest.approx(round(first[1] * 2001))  # (1 + k) / 2001


def test_monte_carlo_p_detects_strong_association() -> None:
    rows = np.array(["bimodal"] * 10 + ["unimodal"] * 30)
    cols = np.array(["shrubland"] * 10 + ["forest"] * 30)
    _, p, _ = chi_square_monte_carlo(rows, cols, G)
    assert p == pytest.approx(1 / 2001)


def test_growth_form() -> None:
    assert [growth_form(c) for c in ("forest", "shrubland", "rangeland/grassland", "cultivated", None)] == [
        "woody",
        "woody",
        "herbaceous",
        "herbaceous",
        None,
    ]


def synthetic_sites(seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = 44
    signal = rng.normal(size=n)
    return pl.DataFrame(
        {
            "site_id": [f"S{i:03d}" for i in range(n)],
            "modality": np.where(signal > 0.9, "bimodal", "unimodal"),
            "informative": signal + rng.normal(scale=0.2, size=n),
            "noise_a": rng.normal(size=n),
            "noise_b": rng.normal(size=n),
            "cover": rng.choice(["forest", "grassland"], n),
        }
    )


SMALL = ForestParameters(n_trees=120, n_seeds=3)


def test_forest_is_deterministic_for_a_seed() -> None:
    frame = synthetic_sites()
    factors = ["informative", "noise_a", "noise_b", "cover"]
    one = run_classifier(frame, factors, {"cover"}, SMALL)
    two = run_classifier(frame, factors, {"cover"}, SMALL)
    np.testing.assert_array_equal(one.votes, two.votes)
    assert one.importance == two.importance
    other = run_classifier(frame, factors, {"cover"}, SMALL, seed=999)
    assert not np.array_equal(one.votes, other.votes)


def test_forest_finds_the_informative_factor() -> None:
    run = run_classifier(synthetic_sites(), ["informative", "noise_a", "noise_b", "cover"], {"cover"}, SMALL)
    assert list(run.importance)[0] == "informative"
    assert run.performance.class_accuracy["bimodal"] >= 0.6
    assert set(run.importance) == {"informative", "noise_a", "noise_b", "cover"}  # one-hot summed back


def test_oob_means_each_tree_votes_only_for_sites_it_did_not_see() -> None:
    frame = synthetic_sites()
    run = run_classifier(frame, ["informative", "noise_a"], set(), SMALL)
    out_of_bag = (~run.forest.in_bag).sum(axis=0)
    np.testing.assert_array_equal(run.votes.sum(axis=1), out_of_bag)


def test_minority_reweighted_vote() -> None:
    y = np.array(["bimodal"] * 2 + ["unimodal"] * 8)  # prior 0.2 / 0.8
    votes = np.array([[30.0, 70.0], [10.0, 90.0]] + [[0.0, 100.0]] * 8)
    calls = reweighted_calls(votes, y)
    assert calls[0] == "bimodal"  # 0.3 / 0.2 = 1.5 > 0.7 / 0.8
    assert calls[1] == "unimodal"  # 0.1 / 0.2 = 0.5 < 0.9 / 0.8


def test_log_linear_exponent_recovers_a_planted_slope() -> None:
    depth = np.arange(0.0, 200.0, 10.0)
    root = 100 * np.exp(-depth / 30)
    nutrient = root * 10 ** (0.004 * depth) * 3.0
    d, rel = relative_profile(depth, nutrient, root)
    assert rel[0] == pytest.approx(1.0)
    fit = log_linear_fit(d, rel)
    assert fit.exponent == pytest.approx(0.004) and fit.r2 == pytest.approx(1.0)
    assert fit.exponent_low <= 0.004 <= fit.exponent_high


def test_loess_reproduces_a_quadratic_exactly() -> None:
    x = np.linspace(0, 100, 15)
    y = 0.01 * x**2 - x + 3
    fitted, _, _ = loess(x, y, x, span=0.5, degree=2)
    np.testing.assert_allclose(fitted, y, atol=1e-8)


def test_user_factors_are_validated() -> None:
    from rootassets.science.site_factors import read_user_factors

    frame, factors = read_user_factors(pl.DataFrame({"siteID": ["BART", "HARV"], "npp": ["1.5", "2"]}), "x.csv")
    assert frame.columns == ["site_id", "npp"] and frame["npp"].to_list() == [1.5, 2.0]
    assert [f.name for f in factors] == ["npp"]
    with pytest.raises(ValueError, match="x.csv: no site column"):
        read_user_factors(pl.DataFrame({"name": ["BART"]}), "x.csv")
    with pytest.raises(ValueError, match=r"x.csv: row 2, column 'npp': 'lots' is not a number"):
        read_user_factors(pl.DataFrame({"site_id": ["BART", "HARV"], "npp": ["1", "lots"]}), "x.csv")
    with pytest.raises(ValueError, match="not a NEON site code"):
        read_user_factors(pl.DataFrame({"site_id": ["../x"], "npp": [1.0]}), "x.csv")


def test_leading_number_parses_neon_site_table_units() -> None:
    from rootassets.science.site_factors import leading_number

    frame = pl.DataFrame({"t": ["10.0°C", "-12.0°C", None, "n/a"]})
    assert frame.select(leading_number("t"))["t"].to_list() == [10.0, -12.0, None, None]
