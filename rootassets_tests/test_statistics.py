"""Phi, group tests and the classifier (METHOD.md sections 4-6) against scipy and by construction."""

from __future__ import annotations

import dataclasses

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


def test_non_positive_values_are_excluded_from_the_log10_test_and_named() -> None:
    result = two_group_test(
        np.array([-1.0, 2.0, 3.0]),
        np.array([1.0, 0.0, 5.0, 4.0]),
        G,
        ["AAAA", "BBBB", "CCCC"],
        ["DDDD", "EEEE", "FFFF", "GGGG"],
    )
    assert result.scale == "log10" and result.n_excluded == 2 and result.excluded_sites == "AAAA,EEEE"
    assert (result.n_bimodal, result.n_unimodal) == (2, 3)
    logged = stats.ttest_ind(np.log10([2.0, 3.0]), np.log10([1.0, 5.0, 4.0]), equal_var=result.test == "student_t")
    assert result.p_value == pytest.approx(logged.pvalue)
    assert "2 value(s) <= 0 excluded" in result.detail


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


def _monte_carlo_by_labels(rows: np.ndarray, columns: np.ndarray, params: GroupTestParameters) -> tuple:
    """The first definition: each simulated table counted from the permuted labels themselves."""
    table, _, _ = contingency(rows, columns)
    observed = pearson_chi_square(table)
    rng = np.random.default_rng(params.seed)
    almost_one = 1.0 - 64.0 * np.finfo(float).eps
    exceed = sum(
        pearson_chi_square(contingency(rows, rng.permutation(columns))[0]) >= almost_one * observed
        for _ in range(params.monte_carlo_tables)
    )
    return observed, (1 + exceed) / (params.monte_carlo_tables + 1), table


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(
        st.tuples(st.sampled_from(["bimodal", "unimodal"]), st.sampled_from(["forest", "shrub", "cultivated", "x"])),
        min_size=1,
        max_size=60,
    ),
    seed=st.integers(0, 2**31),
    as_objects=st.booleans(),
)
def test_monte_carlo_on_codes_equals_permuting_the_labels(
    labels: list[tuple[str, str]], seed: int, as_objects: bool
) -> None:
    """Permuting the columns' codes draws the same tables, p and statistic as permuting the labels, to the bit,
    whether the labels come as a numpy string array or as objects (polars' `to_numpy`)."""
    dtype = object if as_objects else None
    rows = np.array([r for r, _ in labels], dtype=dtype)
    columns = np.array([c for _, c in labels], dtype=dtype)
    params = GroupTestParameters(monte_carlo_tables=200, seed=seed)
    statistic, p, table = chi_square_monte_carlo(rows, columns, params)
    expected = _monte_carlo_by_labels(rows, columns, params)
    assert (statistic, p) == expected[:2] or (np.isnan(statistic) and np.isnan(expected[0]) and p == expected[1])
    assert np.array_equal(table, expected[2])


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
    assert set(run.importance) == {"informative", "noise_a", "noise_b", "cover"}  # one column per factor


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


def _loess_weights_one_point_at_a_time(x: np.ndarray, points: np.ndarray, span: float, degree: int) -> np.ndarray:
    """The reference: the weighted least squares at each point on its own (np.vander, one pseudo-inverse each)."""
    n = x.size
    k = max(degree + 1, int(np.ceil(span * n)))
    rows = []
    for x0 in points:
        distance = np.abs(x - x0)
        radius = np.sort(distance)[min(k, n) - 1] * max(1.0, span)
        radius = radius if radius > 0 else 1.0
        w = (1 - np.clip(distance / radius, 0, 1) ** 3) ** 3
        design = np.vander(x - x0, degree + 1, increasing=True)
        rows.append((np.linalg.pinv(design * np.sqrt(w)[:, None]) * np.sqrt(w)[None, :])[0])
    return np.array(rows)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(np.arange(0.0, 200.0, 5.0).tolist()), min_size=2, max_size=30),
    st.sampled_from([0.3, 0.5, 0.75, 1.2]),
    st.sampled_from([0, 1, 2]),
)
def test_loess_weights_for_every_point_at_once_are_those_of_each_point_alone(
    depths: list[float], span: float, degree: int
) -> None:
    from rootassets.science.nutrients import loess_weights

    x = np.sort(np.array(depths))
    grid = np.linspace(x.min(), x.max(), 17)
    for points in (x, grid):
        expected = _loess_weights_one_point_at_a_time(x, points, span, degree)
        assert np.array_equal(loess_weights(x, points, span, degree), expected, equal_nan=True)  # to the last bit


def test_the_kept_t_quantiles_and_the_fit_are_scipys() -> None:
    from rootassets.science.nutrients import t_quantile

    for df in (1, 2.5, 7, 30):
        assert t_quantile(0.95, df) == stats.t.ppf(0.975, df)
    depth = np.array([5.0, 15, 25, 35, 45])
    rel = np.array([1.0, 0.8, 0.7, 0.4, 0.35])
    fit, reference = log_linear_fit(depth, rel), stats.linregress(depth, np.log10(rel))
    assert (fit.exponent, fit.intercept, fit.r2) == (reference.slope, reference.intercept, reference.rvalue**2)
    t = stats.t.ppf(0.975, 3)
    assert (fit.exponent_low, fit.exponent_high) == (
        reference.slope - t * reference.stderr,
        reference.slope + t * reference.stderr,
    )


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


def test_holm_matches_r_p_adjust() -> None:
    from rootassets.science.group_tests import holm

    # R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") = 0.03 0.06 0.06 0.02
    assert holm([0.01, 0.04, 0.03, None, 0.005]) == pytest.approx([0.03, 0.06, 0.06, None, 0.02])


def test_nutrient_exponents_are_fitted_across_profiles_with_each_surface_at_one() -> None:
    from rootassets.science.nutrients import NUTRIENTS, NutrientParameters, nutrient_tables

    NUTRIENT_COLUMNS = list(NUTRIENTS.values())
    tops = [0.0, 10.0, 20.0, 30.0]
    # Two profiles with different root densities; soil (one megapit) is shared. rel = X / Y doubles every
    # 10 cm in profile 1 and triples in profile 2: the across-profile fit sees both, the site mean neither.
    increments = pl.DataFrame(
        {
            "site_id": ["AAAA"] * 8,
            "profile": ["1"] * 4 + ["2"] * 4,
            "top_cm": tops * 2,
            "root_density_g_m3": [100 / 2**i for i in range(4)] + [90 / 3**i for i in range(4)],
        }
    )
    soil = pl.DataFrame({"site_id": ["AAAA"] * 4, "top_cm": tops, **{c: [1.0] * 4 for c in NUTRIENT_COLUMNS}})
    profiles = increments.group_by("site_id", "top_cm", maintain_order=True).agg(pl.col("root_density_g_m3").mean())
    out = nutrient_tables(increments, profiles, soil, {"AAAA": "unimodal"}, NutrientParameters())
    points = out["nutrient_points"].filter(pl.col("nutrient") == "N").sort("profile", "depth_cm")
    assert points.height == 8
    assert points.filter(pl.col("depth_cm") == 0)["relative"].to_list() == [1.0, 1.0]
    across = out["nutrient_exponents"].filter(pl.col("nutrient") == "N").row(0, named=True)
    slopes = [np.log10(2) / 10, np.log10(3) / 10]
    assert across["n"] == 8 and across["fit"] == "across_profiles"
    assert across["exponent"] == pytest.approx(np.mean(slopes))
    site_mean = out["nutrient_exponents_site_mean"].filter(pl.col("nutrient") == "N").row(0, named=True)
    assert site_mean["n"] == 4 and site_mean["fit"] == "site_mean (alternative)"


def test_missing_factors_are_filled_as_na_roughfix_and_every_site_stays() -> None:
    from rootassets.science.classifier import imputed_column, roughfix, training_frame

    frame = synthetic_sites()
    frame = frame.with_columns(
        pl.when(pl.col("site_id") == "S003").then(None).otherwise(pl.col("noise_a")).alias("noise_a"),
        pl.when(pl.col("site_id").is_in(["S004", "S005"])).then(None).otherwise(pl.col("cover")).alias("cover"),
    )
    filled, by_site = roughfix(frame, ["noise_a", "cover"], {"cover"})
    median = frame["noise_a"].drop_nulls().median()
    most = frame["cover"].drop_nulls().value_counts().sort(["count", "cover"], descending=[True, False])["cover"][0]
    assert filled.filter(pl.col("site_id") == "S003")["noise_a"][0] == pytest.approx(median)
    assert filled.filter(pl.col("site_id") == "S004")["cover"][0] == most
    assert by_site == {"S003": [("noise_a", median)], "S004": [("cover", most)], "S005": [("cover", most)]}
    column = imputed_column(frame, ["noise_a", "cover"], {"cover"})
    assert column.to_list()[3] == f"noise_a={median:.6g}" and column.to_list()[0] == ""
    training, names, _, left_out = training_frame(frame)
    assert training.height == 44 and not left_out and training.null_count().sum_horizontal()[0] == 0


def test_a_node_splits_only_when_it_holds_more_than_min_node_size_samples() -> None:
    from rootassets.science.classifier import fit_forest

    # Three samples and min_node_size 3: ranger keeps the node whole (num_samples_node <= min_node_size).
    x = np.array([[0.0], [1.0], [2.0]])
    y = np.array(["bimodal", "unimodal", "unimodal"])
    params = ForestParameters(n_trees=5, min_node_size=3, sample_fraction=1.0, replace=False)
    forest = fit_forest(x, y, ["f"], ["f"], params)
    assert all(tree.structure.node_count == 1 for tree in forest.trees)
    split = fit_forest(x, y, ["f"], ["f"], dataclasses.replace(params, min_node_size=2))
    assert all(tree.structure.node_count > 1 for tree in split.trees)


def test_the_real_aridity_table_gives_a_numeric_and_a_categorical_extra_factor(snapshot) -> None:
    """../shared/neon-samples/site-factors/aridity_index.csv: NEON-site aridity (Global Aridity Index v3) and
    Koppen classes, the shape of a real user's extra-factors table (text columns beside the numbers)."""
    from rootassets.science.site_factors import read_user_factors

    path = snapshot.parent / "neon-samples" / "site-factors" / "aridity_index.csv"
    raw = pl.read_csv(path)
    with pytest.raises(ValueError, match="column 'domainNumb'.*extra_factor_columns"):
        read_user_factors(raw, str(path))
    frame, factors = read_user_factors(raw, str(path), ("ai", "koppen_coarse"))
    assert [(f.name, f.categorical) for f in factors] == [("ai", False), ("koppen_coarse", True)]
    assert frame.height == 47 and frame.filter(pl.col("site_id") == "HARV")["ai"][0] == pytest.approx(1.0841, abs=1e-4)
    assert frame.schema["koppen_coarse"] == pl.String


def test_phi_table_of_a_release_without_soil_rows_gives_no_soil_phi() -> None:
    """A release whose soil table is empty (a sample with root data only) still gets root phi; soil phi is None."""
    from rootassets.science.phi import PhiParameters, phi_table
    from rootassets.science.soil_profiles import SOIL_PROPERTIES

    modality = pl.DataFrame({"site_id": ["BART"], "modality": ["unimodal"], "d1_cm": [None], "d2_cm": [None]})
    profiles = pl.DataFrame(
        {"site_id": ["BART"] * 2, "top_cm": [60.0, 90.0], "bottom_cm": [90.0, 120.0], "root_density_g_m3": [4.0, 2.0]}
    )
    columns = {"site_id": pl.String, "top_cm": pl.Float64, "bottom_cm": pl.Float64}
    soil = pl.DataFrame(schema={**columns, **{p.column: pl.Float64 for p in SOIL_PROPERTIES}})
    kde = pl.DataFrame({"site_id": ["BART"] * 2, "depth_cm": [0.0, 200.0], "density": [1.0, 1.0]})
    table = phi_table(modality, profiles, soil, kde, PhiParameters())
    root = table.filter((pl.col("property") == "root_biomass") & (pl.col("method") == "increment"))
    assert root["phi"].to_list() == [0.5]
    assert table.filter(pl.col("property") != "root_biomass")["phi"].null_count() == table.height - 2


def test_a_land_cover_without_a_growth_form_is_left_out_of_that_test_and_named() -> None:
    """A site whose land cover has no growth form (say, wetland), or that has no label, is left out of the
    growth-form test and named in it, instead of failing the step; the land-cover test keeps the labelled sites.
    Both tests on the sites left equal the tests of those sites alone."""
    from rootassets.science.group_tests import group_test_table

    covers = ["forest", "shrubland", "rangeland/grassland", "cultivated", "forest", "rangeland/grassland", "wetland"]
    modality = ["bimodal", "bimodal", "unimodal", "unimodal", "unimodal", "bimodal", "unimodal"]
    sites = ["AAAA", "BBBB", "CCCC", "DDDD", "EEEE", "FFFF", "GGGG"]
    factors = pl.DataFrame(
        {"site_id": [*sites, "HHHH"], "modality": [*modality, None], "land_cover": [*covers, "forest"]}
    )
    phi_schema = {"site_id": pl.String, "property": pl.String, "method": pl.String, "phi": pl.Float64}
    phi_table = pl.DataFrame(schema={**phi_schema, "modality": pl.String})
    table = group_test_table(factors, phi_table, G)
    growth = table.filter(pl.col("name") == "growth_form").row(0, named=True)
    assert growth["n_excluded"] == 2 and growth["excluded_sites"] == "GGGG,HHHH"
    assert growth["detail"].endswith("left out: GGGG (wetland), HHHH (no modality)")
    forms = np.array([growth_form(c) for c in covers[:6]])
    statistic, p, _ = chi_square_monte_carlo(np.array(modality[:6]), forms, G)
    assert (growth["statistic"], growth["p_value"], growth["n_bimodal"], growth["n_unimodal"]) == (statistic, p, 3, 3)
    cover = table.filter(pl.col("name") == "land_cover").row(0, named=True)
    assert cover["n_excluded"] == 1 and cover["excluded_sites"] == "HHHH"
    statistic, p, _ = chi_square_monte_carlo(np.array(modality), np.array(covers), G)
    assert (cover["statistic"], cover["p_value"]) == (statistic, p)
