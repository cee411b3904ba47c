"""METHOD.md section 5: a random forest of site factors that predicts modality.

The forest is bagged by hand around scikit-learn's CART trees (`cart.grow_tree`) so
that each tree's out-of-bag sites are known exactly, as in R's ranger: 500 trees,
`mtry` factors tried per split, each tree grown on a 30% sample drawn with
replacement, seeded. Two details follow ranger's own code rather than its
name: a node is split only while it holds more than `min_node_size` samples
(ranger's `num_samples_node <= min_node_size` stops it), and a categorical
factor is one column of level codes (ranger's default for unordered factors,
`respect.unordered.factors = "ignore"`), so that `mtry` counts factors.
Missing factor values are filled as randomForest's `na.roughfix` does (median,
or most frequent level), and `analysis.site_factors` records which.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from rootassets.science.cart import GrownTree

BIMODAL, UNIMODAL = "bimodal", "unimodal"


@dataclass(frozen=True)
class ForestParameters:
    n_trees: int = 500
    mtry: int = 6
    min_node_size: int = 3
    sample_fraction: float = 0.3
    replace: bool = True
    seed: int = 123
    n_seeds: int = 20
    n_permutations: int = 50
    permutation_seed: int = 20250612
    n_jobs: int = 0  # forests grown at once for the seed spread and the null; 0 = one per CPU core

    def as_metadata(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Forest:
    """A fitted forest: the trees, their in-bag rows, and the encoded feature names."""

    trees: list[GrownTree]
    in_bag: np.ndarray  # (n_trees, n_sites) bool
    features: list[str]  # encoded columns (one per factor; level codes for categories)
    factors: list[str]  # factor names as given
    classes: list[str]
    parameters: ForestParameters
    site_ids: list[str] = field(default_factory=list)
    seed: int | None = None  # the forest's own seed (`parameters.seed` unless another was given)


@dataclass(frozen=True)
class Performance:
    predicted: list[str | None]
    confusion: dict[str, dict[str, int]]
    overall_accuracy: float
    class_accuracy: dict[str, float]

    def accuracies(self) -> tuple[float, float, float]:
        """(overall, bimodal, unimodal) accuracy: the order of `ACCURACIES`."""
        return self.overall_accuracy, self.class_accuracy[BIMODAL], self.class_accuracy[UNIMODAL]


def encode(frame: pl.DataFrame, factors: list[str], categorical: set[str]) -> tuple[np.ndarray, list[str], list[str]]:
    """Numeric matrix of `factors`, one column each; a categorical factor as the codes of its levels in sorted
    order (ranger's treatment of unordered factors by default). Returns X, columns, owner factor."""
    columns: list[np.ndarray] = []
    for factor in factors:
        if factor in categorical:
            values = frame[factor].cast(pl.String).to_list()
            levels = {level: code for code, level in enumerate(sorted({v for v in values if v is not None}))}
            columns.append(np.array([levels[v] if v is not None else np.nan for v in values], dtype=float))
        else:
            columns.append(frame[factor].cast(pl.Float64).to_numpy())
    return np.column_stack(columns), list(factors), list(factors)


def roughfix(frame: pl.DataFrame, factors: list[str], categorical: set[str]) -> tuple[pl.DataFrame, dict[str, list]]:
    """Fill each missing factor value as randomForest's na.roughfix: the median over sites of a numeric factor,
    the most frequent level of a categorical one (ties: the first in sorted order). Returns the filled frame and,
    per site, the factors filled with their values."""
    filled: dict[str, list] = {}
    out = frame
    for factor in factors:
        missing = frame.filter(pl.col(factor).is_null())["site_id"].to_list()
        known = frame[factor].drop_nulls()
        if not missing or known.is_empty():
            continue
        if factor in categorical:
            counts = known.cast(pl.String).value_counts().sort(["count", factor], descending=[True, False])
            value = counts[factor][0]
        else:
            value = float(known.cast(pl.Float64).median())
        out = out.with_columns(pl.col(factor).fill_null(value))
        for site in missing:
            filled.setdefault(site, []).append((factor, value))
    return out, filled


def imputed_column(frame: pl.DataFrame, factors: list[str], categorical: set[str]) -> pl.Series:
    """Per site, the factors the forest fills and with what (`factor=value; ...`; empty when none)."""
    _, filled = roughfix(frame, factors, categorical)
    text = {
        site: "; ".join(f"{f}={v:.6g}" if isinstance(v, float) else f"{f}={v}" for f, v in pairs)
        for site, pairs in filled.items()
    }
    return pl.Series("imputed_factors", [text.get(s, "") for s in frame["site_id"].to_list()], dtype=pl.String)


def tree_input(x: np.ndarray) -> np.ndarray:
    """`x` as the trees read it (C-ordered float32, which scikit-learn's own validation would produce), so
    that each tree is fitted and asked without re-validating the same matrix 500 times. Refuses missing
    values: the forest fills them first (`roughfix`)."""
    ready = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(ready).all():
        raise ValueError("factor matrix has missing or infinite values: fill them (roughfix) before the forest")
    return ready


def fit_forest(
    x: np.ndarray,
    y: np.ndarray,
    factors: list[str],
    features: list[str],
    params: ForestParameters,
    seed: int | None = None,
) -> Forest:
    """Grow the forest; deterministic for a seed. Each tree sees its in-bag rows with their repeats (ranger
    counts a row drawn twice twice in a node's size), which scikit-learn's own ensemble does not do (it
    weights distinct rows), hence the loop."""
    from rootassets.science.cart import TreeSeeder, grow_coded_tree  # scikit-learn is heavy: imported when needed

    seed = params.seed if seed is None else seed
    rng = np.random.default_rng(seed)
    ready = tree_input(x)
    n = y.size
    size = max(1, int(round(params.sample_fraction * n)))
    mtry = min(params.mtry, len(factors), x.shape[1])
    min_split = max(2, params.min_node_size + 1)  # ranger splits nodes of more than min_node_size
    seeder = TreeSeeder()
    labels, codes = np.unique(y, return_inverse=True)
    trees, in_bag = [], np.zeros((params.n_trees, n), dtype=bool)
    for t in range(params.n_trees):
        # with replacement, `integers` draws what `choice` draws, without its checks (test_classifier_null.py)
        rows = rng.integers(0, n, size=size) if params.replace else rng.choice(n, size=size, replace=False)
        in_bag[t, rows] = True
        seed_t = int(rng.integers(0, 2**31 - 1))
        trees.append(grow_coded_tree(ready[rows], codes[rows], labels, mtry, min_split, seed_t, seeder))
    return Forest(trees, in_bag, features, factors, [BIMODAL, UNIMODAL], params, seed=seed)


def oob_votes(forest: Forest, x: np.ndarray) -> np.ndarray:
    """(n_sites, 2) hard votes for (bimodal, unimodal) from the trees that did not see each site. Every tree
    predicts every site (as cheap as its out-of-bag ones alone); only the out-of-bag predictions are counted."""
    ready = tree_input(x)
    predicts = np.zeros((2, len(forest.trees), x.shape[0]), dtype=bool)  # (bimodal, unimodal) x trees x sites
    for t, tree in enumerate(forest.trees):
        index = tree.class_index(ready)
        predicts[0, t] = (tree.classes == BIMODAL)[index]
        predicts[1, t] = (tree.classes == UNIMODAL)[index]
    return (predicts & ~forest.in_bag).sum(axis=1).T.astype(float)


def reweighted_calls(votes: np.ndarray, y: np.ndarray) -> list[str | None]:
    """Bimodal when (bimodal vote share / bimodal share of sites) beats the same for unimodal."""
    prior_b = float(np.mean(y == BIMODAL))
    prior_u = 1.0 - prior_b
    calls: list[str | None] = []
    for b, u in votes:
        total = b + u
        if total == 0 or prior_b == 0 or prior_u == 0:
            calls.append(None)
            continue
        calls.append(BIMODAL if (b / total) / prior_b > (u / total) / prior_u else UNIMODAL)
    return calls


def performance(predicted: list[str | None], y: np.ndarray) -> Performance:
    confusion = {actual: {p: 0 for p in (BIMODAL, UNIMODAL)} for actual in (BIMODAL, UNIMODAL)}
    for p, actual in zip(predicted, y, strict=True):
        if p is not None:
            confusion[str(actual)][p] += 1
    called = [(p, a) for p, a in zip(predicted, y, strict=True) if p is not None]
    overall = float(np.mean([p == a for p, a in called])) if called else float("nan")
    per_class = {}
    for cls in (BIMODAL, UNIMODAL):
        members = [p == a for p, a in called if a == cls]
        per_class[cls] = float(np.mean(members)) if members else float("nan")
    return Performance(predicted, confusion, overall, per_class)


def gini_importance(forest: Forest, owners: list[str]) -> dict[str, float]:
    """Mean decrease in Gini impurity per factor (summed over a category's columns), as ranger's 'impurity'."""
    total = np.zeros(len(forest.features))
    for tree in forest.trees:
        total += tree.impurity_decrease()
    total /= len(forest.trees)
    by_factor: dict[str, float] = {}
    for value, owner in zip(total, owners, strict=True):
        by_factor[owner] = by_factor.get(owner, 0.0) + float(value)
    return dict(sorted(by_factor.items(), key=lambda kv: -kv[1]))


@dataclass
class ClassifierRun:
    forest: Forest
    performance: Performance
    importance: dict[str, float]
    votes: np.ndarray


def run_classifier(
    frame: pl.DataFrame, factors: list[str], categorical: set[str], params: ForestParameters, seed: int | None = None
) -> ClassifierRun:
    """Fit on `frame` (site_id, modality, factors; complete rows) and score out of bag."""
    x, features, owners = encode(frame, factors, categorical)
    y = frame["modality"].to_numpy()
    forest = fit_forest(x, y, factors, features, params, seed)
    forest.site_ids = frame["site_id"].to_list()
    votes = oob_votes(forest, x)
    return ClassifierRun(forest, performance(reweighted_calls(votes, y), y), gini_importance(forest, owners), votes)


def backward_elimination(
    frame: pl.DataFrame,
    factors: list[str],
    categorical: set[str],
    params: ForestParameters,
    start: ClassifierRun | None = None,
) -> tuple[list[str], list[dict[str, object]], ClassifierRun]:
    """Drop the least important factor while out-of-bag bimodal accuracy does not fall. Returns the kept
    factors, the steps and the kept set's run. `start`: the run on all `factors` with `params`, when already
    grown (its forest is the one this would grow first: same rows, labels and seed)."""
    kept = list(factors)
    current = start if start is not None else run_classifier(frame, kept, categorical, params)
    steps: list[dict[str, object]] = [
        {"factors": list(kept), "bimodal_accuracy": current.performance.class_accuracy[BIMODAL], "dropped": None}
    ]
    while len(kept) > 1:
        weakest = list(current.importance)[-1]
        trial_factors = [f for f in kept if f != weakest]
        trial = run_classifier(frame, trial_factors, categorical, params)
        accepted = trial.performance.class_accuracy[BIMODAL] >= current.performance.class_accuracy[BIMODAL]
        steps.append(
            {
                "factors": trial_factors,
                "bimodal_accuracy": trial.performance.class_accuracy[BIMODAL],
                "dropped": weakest,
                "accepted": accepted,
            }
        )
        if not accepted:
            break
        kept, current = trial_factors, trial
    return kept, steps, current


ACCURACIES = ("overall_accuracy", "bimodal_accuracy", "unimodal_accuracy")


def oob_accuracies(x: np.ndarray, y: np.ndarray, factors: list[str], params: ForestParameters, seed: int) -> tuple:
    """The out-of-bag accuracies (overall, bimodal, unimodal) of one forest grown with `seed` on labels `y`."""
    forest = fit_forest(x, y, factors, factors, params, seed)
    return performance(reweighted_calls(oob_votes(forest, x), y), y).accuracies()


def permuted_labels(y: np.ndarray, params: ForestParameters, k: int) -> np.ndarray:
    """The k-th shuffle of the labels for the permutation null (its own stream, whatever the forest seed)."""
    return np.random.default_rng([params.permutation_seed, k]).permutation(y)


def forest_jobs(jobs: list[tuple], n_jobs: int) -> list[tuple]:
    """`oob_accuracies` for every job, `n_jobs` forests at once (0: one per CPU core); the order is kept, and each
    forest's seed is fixed by its job, so the answer does not depend on how many ran at once."""
    if n_jobs == 1 or len(jobs) < 2:
        return [oob_accuracies(*job) for job in jobs]
    from joblib import Parallel, delayed  # heavy: imported only when forests are grown

    return Parallel(n_jobs=n_jobs or -1)(delayed(oob_accuracies)(*job) for job in jobs)


def own_accuracies(run: ClassifierRun, frame: pl.DataFrame, params: ForestParameters, seed: int) -> tuple | None:
    """The run's own out-of-bag accuracies (as `oob_accuracies`) when its forest is the one `seed` grows on
    `frame` with `params` (same sites, factors, parameters and seed), else None: that forest need not be grown
    again for the seed spread."""
    forest = run.forest
    if forest.seed != seed or forest.parameters != params or forest.site_ids != frame["site_id"].to_list():
        return None
    return run.performance.accuracies()


def spread_and_null(
    frame: pl.DataFrame, runs: list[tuple[str, ClassifierRun]], categorical: set[str], params: ForestParameters
) -> pl.DataFrame:
    """Per run (name, run, grown on `frame`): its out-of-bag accuracies over seeds seed .. seed + n_seeds - 1
    (how much one seed's answer is noise; the run's own seed is its own forest, not grown again), and over
    `n_permutations` shuffles of the labels with the forest unchanged (what chance gives), with the run's own
    accuracy set against that null: p = (1 + #{null >= observed}) / (n_permutations + 1). Long format: run,
    metric, value."""
    y = frame["modality"].to_numpy()
    jobs: list[tuple] = []
    slots: list[list[int | tuple]] = []  # per run and forest: the index of its job, or its accuracies when known
    for _, run in runs:
        factors = run.forest.factors
        x, _, _ = encode(frame, factors, categorical)
        own: list[int | tuple] = []
        for seed in range(params.seed, params.seed + params.n_seeds):
            known = own_accuracies(run, frame, params, seed)
            if known is None:
                own.append(len(jobs))
                jobs.append((x, y, factors, params, seed))
            else:
                own.append(known)
        for k in range(params.n_permutations):
            own.append(len(jobs))
            jobs.append((x, permuted_labels(y, params, k), factors, params, params.seed))
        slots.append(own)
    results = forest_jobs(jobs, params.n_jobs)
    rows: list[dict[str, object]] = []
    for index, (name, run) in enumerate(runs):
        part = [results[slot] if isinstance(slot, int) else slot for slot in slots[index]]
        seeds = np.array(part[: params.n_seeds], dtype=float).reshape(-1, 3)
        null = np.array(part[params.n_seeds :], dtype=float).reshape(-1, 3)
        observed = dict(zip(ACCURACIES, run.performance.accuracies(), strict=True))
        rows.append({"run": name, "metric": "n_seeds", "value": float(len(seeds))})
        rows.append({"run": name, "metric": "n_permutations", "value": float(len(null))})
        for i, metric in enumerate(ACCURACIES):
            if len(seeds):
                values = seeds[:, i]
                for stat, value in (
                    ("mean", np.nanmean(values)),
                    ("sd", np.nanstd(values, ddof=1) if len(values) > 1 else float("nan")),
                    ("min", np.nanmin(values)),
                    ("max", np.nanmax(values)),
                ):
                    rows.append({"run": name, "metric": f"{metric}_seed_{stat}", "value": float(value)})
            if len(null):
                values, own = null[:, i], observed[metric]
                p = (1 + np.sum(values >= own - 1e-12)) / (len(values) + 1) if np.isfinite(own) else float("nan")
                rows += [
                    {"run": name, "metric": f"{metric}_null_mean", "value": float(np.nanmean(values))},
                    {"run": name, "metric": f"{metric}_null_q95", "value": float(np.nanquantile(values, 0.95))},
                    {"run": name, "metric": f"{metric}_null_p_value", "value": float(p)},
                ]
    return pl.DataFrame(rows, schema={"run": pl.String, "metric": pl.String, "value": pl.Float64})


NOT_FACTORS = ("site_id", "modality", "release", "total_fine_root_biomass_g_m2", "imputed_factors")


def factor_columns(factors: pl.DataFrame) -> tuple[list[str], set[str]]:
    """The forest's factor columns (the measured biomass aside: the forest compares sites across cutoffs, so it
    takes the 4 mm-equivalent) and which of them are categorical."""
    names = [c for c in factors.columns if c not in NOT_FACTORS]
    return names, {c for c in names if factors.schema[c] == pl.String}


def training_frame(factors: pl.DataFrame) -> tuple[pl.DataFrame, list[str], set[str], list[str]]:
    """Every labelled site with its missing factors filled (`roughfix`), the factor columns, the categorical
    ones, and the sites left out (no label, or a factor no site has)."""
    names, categorical = factor_columns(factors)
    names = [n for n in names if factors[n].drop_nulls().len() > 0]
    labelled = factors.filter(pl.col("modality").is_not_null())
    frame, _ = roughfix(labelled, names, categorical)
    dropped = sorted(set(factors["site_id"]) - set(frame["site_id"]))
    return frame, names, categorical, dropped


@dataclass(frozen=True)
class ClassifierTables:
    """Everything section 5 reports: the runs, the kept set, and the performance and importance tables."""

    frame: pl.DataFrame
    names: list[str]
    categorical: set[str]
    dropped: list[str]
    full: ClassifierRun
    kept: list[str]
    steps: list
    performance: pl.DataFrame
    importance: pl.DataFrame


MIN_SITES_PER_CLASS = 2


class TooFewSitesError(ValueError):
    """The factor table has too few complete sites of each class to grow and judge a forest."""


def classifier_tables(factors: pl.DataFrame, params: ForestParameters) -> ClassifierTables:
    """Section 5 on the site factor table: all factors, backward elimination, the kept set, without total
    biomass and total biomass alone, each with its spread over `params.n_seeds` seeds and its permutation null.
    Refuses (TooFewSitesError) a table with fewer than
    MIN_SITES_PER_CLASS complete sites of either class: no forest is grown on nothing."""
    frame, names, categorical, dropped = training_frame(factors)
    per_class = {label: frame.filter(pl.col("modality") == label).height for label in (BIMODAL, UNIMODAL)}
    if min(per_class.values()) < MIN_SITES_PER_CLASS or not names:
        raise TooFewSitesError(
            f"{frame.height} labelled sites ({per_class[BIMODAL]} bimodal, {per_class[UNIMODAL]} unimodal; "
            f"{len(dropped)} left out, {len(names)} usable factors): at least {MIN_SITES_PER_CLASS} "
            "sites of each class are needed"
        )
    full = run_classifier(frame, names, categorical, params)
    kept, steps, kept_run = backward_elimination(frame, names, categorical, params, start=full)
    biomass = "total_fine_root_biomass_4mm_equiv_g_m2"
    without = [n for n in names if n != biomass]
    no_biomass = run_classifier(frame, without, categorical, params)
    runs = [("all_factors", full), ("kept_factors", kept_run), ("without_total_biomass", no_biomass)]
    if biomass in names:
        runs.append(("total_biomass_alone", run_classifier(frame, [biomass], categorical, params)))
    spread = spread_and_null(frame, runs, categorical, params)

    perf_rows = []
    for run_name, run in runs:
        p = run.performance
        perf_rows += [
            {"run": run_name, "metric": "n_sites", "value": float(frame.height)},
            {"run": run_name, "metric": "n_factors", "value": float(len(run.forest.factors))},
            *(
                {"run": run_name, "metric": metric, "value": value}
                for metric, value in zip(ACCURACIES, p.accuracies(), strict=True)
            ),
        ]
        for actual, predicted_counts in p.confusion.items():
            for predicted, count in predicted_counts.items():
                perf_rows.append(
                    {"run": run_name, "metric": f"confusion_{actual}_predicted_{predicted}", "value": float(count)}
                )
    performance = pl.concat([pl.DataFrame(perf_rows), spread])

    imp_rows = []
    for run_name, run in (("all_factors", full), ("without_total_biomass", no_biomass)):
        for rank, (factor, value) in enumerate(run.importance.items(), start=1):
            imp_rows.append(
                {"run": run_name, "factor": factor, "importance": value, "rank": rank, "kept": factor in kept}
            )
    importance = pl.DataFrame(imp_rows)
    return ClassifierTables(frame, names, categorical, dropped, full, kept, steps, performance, importance)
