"""The classifier's seed spread and permutation null (METHOD.md section 5; issue 16 item 5): every run reports
both, the numbers are what a direct loop gives, and the null separates signal from noise."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rootassets.science.classifier import (
    ForestParameters,
    classifier_tables,
    encode,
    oob_accuracies,
    permuted_labels,
    run_classifier,
    spread_and_null,
)

SMALL = ForestParameters(n_trees=60, n_seeds=4, n_permutations=9, n_jobs=1)


def sites(informative: bool, n: int = 44, seed: int = 5) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    label = np.where(signal > 0.8, "bimodal", "unimodal")
    return pl.DataFrame(
        {
            "site_id": [f"S{i:03d}" for i in range(n)],
            "modality": label,
            "total_fine_root_biomass_4mm_equiv_g_m2": np.exp(6 - signal) if informative else rng.lognormal(6, 1, n),
            "noise_a": rng.normal(size=n),
            "noise_b": rng.normal(size=n),
            "cover": rng.choice(["forest", "grassland"], n),
            "imputed_factors": [""] * n,
        }
    )


def metric(performance: pl.DataFrame, run: str, name: str) -> float:
    return performance.filter((pl.col("run") == run) & (pl.col("metric") == name))["value"].item()


def test_every_run_has_its_seed_spread_and_null() -> None:
    out = classifier_tables(sites(True), SMALL)
    runs = set(out.performance["run"])
    assert runs == {"all_factors", "kept_factors", "without_total_biomass", "total_biomass_alone"}
    for run in runs:
        assert metric(out.performance, run, "n_sites") == 44
        assert metric(out.performance, run, "n_seeds") == SMALL.n_seeds
        assert metric(out.performance, run, "n_permutations") == SMALL.n_permutations
        for accuracy in ("overall_accuracy", "bimodal_accuracy", "unimodal_accuracy"):
            low, high = (metric(out.performance, run, f"{accuracy}_seed_{s}") for s in ("min", "max"))
            assert low <= metric(out.performance, run, f"{accuracy}_seed_mean") <= high
            p = metric(out.performance, run, f"{accuracy}_null_p_value")
            assert 1 / (SMALL.n_permutations + 1) <= p <= 1


def test_seed_spread_equals_forests_grown_one_by_one() -> None:
    frame = sites(True)
    factors = ["total_fine_root_biomass_4mm_equiv_g_m2", "noise_a", "cover"]
    run = run_classifier(frame, factors, {"cover"}, SMALL)
    table = spread_and_null(frame, [("r", run)], {"cover"}, SMALL)
    direct = [
        run_classifier(frame, factors, {"cover"}, SMALL, seed=s).performance.overall_accuracy
        for s in range(SMALL.seed, SMALL.seed + SMALL.n_seeds)
    ]
    assert metric(table, "r", "overall_accuracy_seed_mean") == pytest.approx(np.mean(direct))
    assert metric(table, "r", "overall_accuracy_seed_sd") == pytest.approx(np.std(direct, ddof=1))
    x, _, _ = encode(frame, factors, {"cover"})
    y = frame["modality"].to_numpy()
    null = [oob_accuracies(x, permuted_labels(y, SMALL, k), factors, SMALL, SMALL.seed)[0] for k in range(9)]
    observed = run.performance.overall_accuracy
    expected_p = (1 + sum(v >= observed for v in null)) / (len(null) + 1)
    assert metric(table, "r", "overall_accuracy_null_p_value") == pytest.approx(expected_p)
    assert metric(table, "r", "overall_accuracy_null_mean") == pytest.approx(np.mean(null))


def test_permutations_shuffle_labels_only() -> None:
    y = np.array(["bimodal"] * 9 + ["unimodal"] * 35)
    shuffled = [permuted_labels(y, SMALL, k) for k in range(5)]
    assert all(sorted(s) == sorted(y) for s in shuffled)
    assert len({tuple(s) for s in shuffled}) == 5
    np.testing.assert_array_equal(permuted_labels(y, SMALL, 3), permuted_labels(y, SMALL, 3))


def test_the_answer_does_not_depend_on_how_many_forests_grow_at_once() -> None:
    frame = sites(True)
    one = classifier_tables(frame, SMALL).performance
    two = classifier_tables(frame, ForestParameters(**{**SMALL.as_metadata(), "n_jobs": 2})).performance
    assert one.sort("run", "metric").equals(two.sort("run", "metric"))


def test_null_separates_a_planted_signal_from_noise() -> None:
    params = ForestParameters(n_trees=100, n_seeds=2, n_permutations=19, n_jobs=1)
    signal = classifier_tables(sites(True), params).performance
    noise = classifier_tables(sites(False), params).performance
    run = "total_biomass_alone"
    assert metric(signal, run, "overall_accuracy_null_p_value") == pytest.approx(1 / 20)  # beats every shuffle
    assert metric(noise, run, "overall_accuracy_null_p_value") > 0.1


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**63 - 1), st.integers(1, 5000), st.floats(0.01, 1.0))
def test_bagging_with_replacement_draws_what_choice_draws(seed: int, n: int, fraction: float) -> None:
    """`fit_forest` draws a bag with `integers(0, n, size)`, which is what `choice(n, size, replace=True)` draws
    (without its argument checks), the tree seed after it included: the forests stay those of earlier releases."""
    size = max(1, round(fraction * n))
    ours, theirs = np.random.default_rng(seed), np.random.default_rng(seed)
    for _ in range(3):
        assert np.array_equal(ours.integers(0, n, size=size), theirs.choice(n, size=size, replace=True))
        assert ours.integers(0, 2**31 - 1) == theirs.integers(0, 2**31 - 1)


def test_out_of_bag_votes_count_each_tree_that_did_not_see_the_site() -> None:
    """The votes equal a direct count: for each site, over the trees whose bag left it out, how many predict
    each class."""
    from rootassets.science.classifier import fit_forest, oob_votes, tree_input

    frame = sites(informative=True)
    factors = ["total_fine_root_biomass_4mm_equiv_g_m2", "noise_a", "noise_b", "cover"]
    x, features, _ = encode(frame, factors, {"cover"})
    y = frame["modality"].to_numpy()
    forest = fit_forest(x, y, factors, features, SMALL, seed=3)
    expected = np.zeros((y.size, 2))
    for t, tree in enumerate(forest.trees):
        for site in np.flatnonzero(~forest.in_bag[t]):
            label = tree.predict(tree_input(x[site : site + 1]))[0]
            expected[site, 0 if label == "bimodal" else 1] += 1
    votes = oob_votes(forest, x)
    assert np.array_equal(votes, expected)
    assert votes.sum() == (~forest.in_bag).sum() and 0 < votes[:, 0].sum() < votes.sum()


def test_a_runs_own_forest_is_not_grown_again_for_its_seed_spread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The spread's first seed is the run's own forest: its accuracies are taken from the run, and the table
    is the one growing it again gives, to the bit."""
    import dataclasses

    from rootassets.science import classifier

    frame = sites(True)
    factors = ["total_fine_root_biomass_4mm_equiv_g_m2", "noise_a", "cover"]
    run = run_classifier(frame, factors, {"cover"}, SMALL)
    stranger = dataclasses.replace(run, forest=dataclasses.replace(run.forest, seed=None))  # grown by someone else
    grown: list[int] = []
    real_jobs = classifier.forest_jobs
    monkeypatch.setattr(classifier, "forest_jobs", lambda jobs, n: grown.append(len(jobs)) or real_jobs(jobs, n))
    reused = spread_and_null(frame, [("r", run)], {"cover"}, SMALL)
    regrown = spread_and_null(frame, [("r", stranger)], {"cover"}, SMALL)
    assert grown == [SMALL.n_seeds - 1 + SMALL.n_permutations, SMALL.n_seeds + SMALL.n_permutations]
    assert reused.equals(regrown)


def test_own_accuracies_only_for_the_same_forest() -> None:
    from rootassets.science.classifier import own_accuracies

    frame = sites(True)
    run = run_classifier(frame, ["noise_a", "cover"], {"cover"}, SMALL)
    assert own_accuracies(run, frame, SMALL, SMALL.seed) == oob_accuracies(
        *encode(frame, ["noise_a", "cover"], {"cover"})[:1],
        frame["modality"].to_numpy(),
        ["noise_a", "cover"],
        SMALL,
        SMALL.seed,
    )
    assert own_accuracies(run, frame, SMALL, SMALL.seed + 1) is None
    assert own_accuracies(run, frame.head(40), SMALL, SMALL.seed) is None
    assert own_accuracies(run, frame, ForestParameters(n_trees=61, n_jobs=1), SMALL.seed) is None


def test_backward_elimination_hands_back_the_kept_sets_run() -> None:
    """The kept set's run is the elimination's own last accepted forest: the one growing it anew gives."""
    from rootassets.science.classifier import backward_elimination

    frame = sites(True)
    factors = ["total_fine_root_biomass_4mm_equiv_g_m2", "noise_a", "noise_b", "cover"]
    full = run_classifier(frame, factors, {"cover"}, SMALL)
    kept, steps, kept_run = backward_elimination(frame, factors, {"cover"}, SMALL, start=full)
    again = run_classifier(frame, kept, {"cover"}, SMALL)
    assert kept_run.forest.factors == kept and len(steps) >= 2
    assert np.array_equal(kept_run.votes, again.votes) and kept_run.importance == again.importance
    assert backward_elimination(frame, factors, {"cover"}, SMALL)[:2] == (kept, steps)
