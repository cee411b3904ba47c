"""One classification tree (CART, Gini), grown by scikit-learn's own compiled tree builder.

`grow_tree` builds exactly the tree `DecisionTreeClassifier(max_features=..., min_samples_split=...,
random_state=seed).fit(x, y)` builds (same nodes, thresholds and values: `test_cart.py` checks it against the
estimator), without the estimator's per-fit checks of its parameters, targets and random state. On the forest's
44 sites those checks, and above all seeding a fresh `RandomState` per tree, cost six times the tree itself,
and the forest grows some 150,000 trees per release.

The builder, splitter and criterion are scikit-learn's Cython classes (`sklearn.tree._tree`, `_splitter`,
`_criterion`), not its public API: pyproject.toml pins scikit-learn to the minor version the equality test
passes on, and moving the pin means re-running that test.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sklearn.tree._tree import Tree

NO_DEPTH_LIMIT = np.iinfo(np.int32).max  # DecisionTreeClassifier's max_depth=None


@dataclass(frozen=True)
class GrownTree:
    """A fitted tree and the labels its class codes stand for (the sorted labels of its own training rows)."""

    structure: Tree
    classes: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The label of the leaf each row of `x` (float32, C-ordered, as `tree_input` gives) falls in."""
        return self.classes[self.class_index(x)]

    def class_index(self, x: np.ndarray) -> np.ndarray:
        """`predict` as positions in `classes` (no labels built: a forest's votes compare 1-2 classes, not
        thousands of labels)."""
        return np.argmax(self.structure.predict(x), axis=1)

    def impurity_decrease(self) -> np.ndarray:
        """Per feature, the weighted Gini decrease of the splits on it, not normalized (ranger's 'impurity')."""
        return self.structure.compute_feature_importances(normalize=False)


class TreeSeeder:
    """Seeds each tree's splitter as `DecisionTreeClassifier(random_state=seed)` does: the splitter draws its
    own stream's start with `randint` from a `RandomState(seed)`. Re-seeding one legacy generator gives the
    same draw without building a new one (and its OS-entropy seed sequence) for every tree."""

    def __init__(self) -> None:
        self._state = np.random.RandomState()

    def for_seed(self, seed: int) -> np.random.RandomState:
        self._state.seed(seed)
        return self._state


@functools.cache
def _compiled() -> tuple[Any, Any, Any, Any]:
    """scikit-learn's criterion, splitter, builder and tree classes, imported on first use: importing
    scikit-learn takes seconds, and every process that loads the definitions imports this module."""
    from sklearn.tree._criterion import Gini
    from sklearn.tree._splitter import BestSplitter
    from sklearn.tree._tree import DepthFirstTreeBuilder, Tree

    return Gini, BestSplitter, DepthFirstTreeBuilder, Tree


def grow_tree(
    x: np.ndarray, y: np.ndarray, max_features: int, min_samples_split: int, seed: int, seeder: TreeSeeder
) -> GrownTree:
    """Grow one tree on rows `x` (float32, C-ordered, finite) and labels `y`, trying `max_features` features
    per split and splitting a node of at least `min_samples_split` rows (repeated rows count each time)."""
    labels, codes = np.unique(y, return_inverse=True)
    return grow_coded_tree(x, codes, labels, max_features, min_samples_split, seed, seeder)


def grow_coded_tree(
    x: np.ndarray,
    codes: np.ndarray,
    labels: np.ndarray,
    max_features: int,
    min_samples_split: int,
    seed: int,
    seeder: TreeSeeder,
) -> GrownTree:
    """`grow_tree` with the labels given as `codes` into sorted `labels` (`np.unique(y, return_inverse=True)`
    of the whole training set, done once for a forest): the tree's classes are the labels its own rows hold,
    as the estimator's are."""
    Gini, BestSplitter, DepthFirstTreeBuilder, Tree = _compiled()
    present = np.bincount(codes, minlength=labels.size) > 0
    if present.all():
        classes = labels
    else:
        classes, codes = labels[present], (np.cumsum(present) - 1)[codes]
    n_classes = np.array([classes.size], dtype=np.intp)
    targets = np.ascontiguousarray(codes.reshape(-1, 1), dtype=np.float64)
    splitter = BestSplitter(Gini(1, n_classes), max_features, 1, 0.0, seeder.for_seed(seed), None)
    structure = Tree(x.shape[1], n_classes, 1)
    builder = DepthFirstTreeBuilder(splitter, min_samples_split, 1, 0.0, NO_DEPTH_LIMIT, 0.0)
    builder.build(structure, x, targets, None, None)
    return GrownTree(structure, classes)
