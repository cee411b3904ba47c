"""`cart.grow_tree` grows, node for node, the tree scikit-learn's public `DecisionTreeClassifier` grows: it
calls the estimator's own compiled builder, so this is the test that a scikit-learn upgrade must pass."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.tree import DecisionTreeClassifier

from rootassets.science.cart import TreeSeeder, grow_tree


@st.composite
def training_sets(draw) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    n = draw(st.integers(1, 30))
    p = draw(st.integers(1, 8))
    data_seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(data_seed)
    # Few distinct values, so ties in features and in impurity (where tie-breaking shows) are common.
    x = rng.integers(0, draw(st.integers(1, 6)), size=(n, p)).astype(np.float32)
    labels = np.array(["bimodal", "unimodal", "third"])[: draw(st.integers(1, 3))]
    y = rng.choice(labels, size=n)
    return np.ascontiguousarray(x), y, draw(st.integers(1, p)), draw(st.integers(2, 6)), draw(st.integers(0, 2**31 - 2))


@settings(max_examples=300, deadline=None)
@given(training_sets())
def test_grow_tree_is_the_decision_tree_classifier_tree(case) -> None:
    x, y, max_features, min_split, seed = case
    expected = DecisionTreeClassifier(max_features=max_features, min_samples_split=min_split, random_state=seed)
    expected.fit(x, y)
    grown = grow_tree(x, y, max_features, min_split, seed, TreeSeeder())
    ours, theirs = grown.structure, expected.tree_
    assert ours.node_count == theirs.node_count
    for attribute in ("feature", "threshold", "children_left", "children_right", "value", "n_node_samples"):
        assert np.array_equal(getattr(ours, attribute), getattr(theirs, attribute)), attribute
    assert list(grown.classes) == list(expected.classes_)
    assert np.array_equal(grown.predict(x), expected.predict(x))
    assert np.array_equal(grown.impurity_decrease(), theirs.compute_feature_importances(normalize=False))


def test_one_seeder_reused_across_trees_gives_each_tree_its_own_seeds_stream() -> None:
    rng = np.random.default_rng(7)
    x = np.ascontiguousarray(rng.normal(size=(20, 5)), dtype=np.float32)
    y = rng.choice(["bimodal", "unimodal"], size=20)
    seeder = TreeSeeder()
    for seed in (1, 99, 1, 12345):
        alone = grow_tree(x, y, 2, 4, seed, TreeSeeder()).structure
        shared = grow_tree(x, y, 2, 4, seed, seeder).structure
        assert np.array_equal(alone.feature, shared.feature) and np.array_equal(alone.threshold, shared.threshold)


@settings(max_examples=150, deadline=None)
@given(training_sets(), st.integers(0, 2**32 - 1))
def test_a_tree_grown_on_codes_is_the_tree_of_its_own_rows_labels(case, draw_seed: int) -> None:
    """The forest codes the labels once (`grow_coded_tree`); a tree's bag may hold only some of them, and it must
    then be the tree `grow_tree` grows on that bag's labels, with those labels as its classes."""
    from rootassets.science.cart import grow_coded_tree

    x, y, max_features, min_split, seed = case
    labels, codes = np.unique(y, return_inverse=True)
    rows = np.random.default_rng(draw_seed).integers(0, y.size, size=max(1, y.size // 3))
    coded = grow_coded_tree(x[rows], codes[rows], labels, max_features, min_split, seed, TreeSeeder())
    plain = grow_tree(x[rows], y[rows], max_features, min_split, seed, TreeSeeder())
    assert list(coded.classes) == list(plain.classes) == sorted(set(y[rows]))
    for attribute in ("feature", "threshold", "children_left", "children_right", "value", "n_node_samples"):
        assert np.array_equal(getattr(coded.structure, attribute), getattr(plain.structure, attribute)), attribute
    assert np.array_equal(coded.predict(x), plain.predict(x))
