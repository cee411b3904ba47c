"""METHOD.md section 6, group tests: bimodal vs unimodal sites."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import polars as pl


@dataclass(frozen=True)
class GroupTestParameters:
    alpha: float = 0.05
    monte_carlo_tables: int = 2000
    seed: int = 123

    def as_metadata(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class GroupTest:
    """One comparison, in the shape of analysis.group_tests."""

    test: str
    statistic: float | None
    p_value: float | None
    n_bimodal: int
    n_unimodal: int
    detail: str


def f_test_equal_variances(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sided F test of var(a) = var(b), as R's var.test."""
    from scipy import stats  # imported where used: loading scipy.stats is slow

    f = float(np.var(a, ddof=1) / np.var(b, ddof=1))
    dist = stats.f(a.size - 1, b.size - 1)
    return f, float(min(1.0, 2.0 * min(dist.cdf(f), dist.sf(f))))


def two_group_test(bimodal: np.ndarray, unimodal: np.ndarray, params: GroupTestParameters) -> GroupTest:
    """log10, F test of equal variances, then Student's t (equal) or Welch's t (unequal).

    Values must be positive to take logs; when some are not, the test runs on
    the untransformed values and `detail` says so.
    """
    from scipy import stats  # imported where used: loading scipy.stats is slow

    a = np.asarray(bimodal, dtype=float)
    b = np.asarray(unimodal, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2:
        return GroupTest("none", None, None, int(a.size), int(b.size), "fewer than 2 values in a group")
    logged = bool((a > 0).all() and (b > 0).all())
    if logged:
        a, b = np.log10(a), np.log10(b)
    f, f_p = f_test_equal_variances(a, b)
    equal = f_p >= params.alpha
    result = stats.ttest_ind(a, b, equal_var=equal)
    if logged:
        means = f"geometric means bimodal {10 ** a.mean():.4g}, unimodal {10 ** b.mean():.4g}"
    else:
        means = f"means bimodal {a.mean():.4g}, unimodal {b.mean():.4g} (not log-transformed: values <= 0)"
    return GroupTest(
        "student_t" if equal else "welch_t",
        float(result.statistic),
        float(result.pvalue),
        int(a.size),
        int(b.size),
        f"{means}; F = {f:.4g}, p(F) = {f_p:.4g}",
    )


def pearson_chi_square(table: np.ndarray) -> float:
    """Pearson's chi-square statistic of independence, without continuity correction."""
    table = np.asarray(table, dtype=float)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(expected > 0, (table - expected) ** 2 / expected, 0.0)
    return float(terms.sum())


def contingency(rows: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, list, list]:
    row_levels, r = np.unique(rows, return_inverse=True)
    col_levels, c = np.unique(columns, return_inverse=True)
    table = np.zeros((row_levels.size, col_levels.size))
    np.add.at(table, (r, c), 1)
    return table, list(row_levels), list(col_levels)


def chi_square_monte_carlo(
    rows: np.ndarray, columns: np.ndarray, params: GroupTestParameters
) -> tuple[float, float, np.ndarray]:
    """Chi-square of independence with a Monte Carlo p over tables with the observed margins.

    Permuting one label vector draws tables from the same (hypergeometric)
    distribution as R's r2dtable; p = (1 + #{simulated >= observed}) / (B + 1).
    """
    table, _, _ = contingency(rows, columns)
    observed = pearson_chi_square(table)
    rng = np.random.default_rng(params.seed)
    almost_one = 1.0 - 64.0 * np.finfo(float).eps
    exceed = 0
    for _ in range(params.monte_carlo_tables):
        simulated, _, _ = contingency(rows, rng.permutation(columns))
        if pearson_chi_square(simulated) >= almost_one * observed:
            exceed += 1
    return observed, (1 + exceed) / (params.monte_carlo_tables + 1), table


def growth_form(land_cover: str | None) -> str | None:
    """Woody (forest, shrubland) or herbaceous (rangeland/grassland, cultivated)."""
    return {
        "forest": "woody",
        "shrubland": "woody",
        "rangeland/grassland": "herbaceous",
        "cultivated": "herbaceous",
    }.get(land_cover or "")


def group_test_table(factors: pl.DataFrame, phi_table: pl.DataFrame, params: GroupTestParameters) -> pl.DataFrame:
    """Section 6 for every continuous factor and phi (two-group tests) and for land cover and growth form
    (chi-square with a Monte Carlo p)."""
    from rootassets.science.classifier import BIMODAL, UNIMODAL
    from rootassets.science.site_factors import NEON_FACTORS

    rows = []
    by_column = {f.column: f.name for f in NEON_FACTORS}
    for column in factors.columns:
        if column in ("site_id", "modality", "release", "land_cover") or factors.schema[column] == pl.String:
            continue
        groups = [
            factors.filter(pl.col("modality") == m)[column].cast(pl.Float64).drop_nulls().to_numpy()
            for m in (BIMODAL, UNIMODAL)
        ]
        rows.append({"name": by_column.get(column, column), **two_group_test(*groups, params).__dict__})
    for (prop, method), g in phi_table.group_by("property", "method", maintain_order=True):
        groups = [g.filter(pl.col("modality") == m)["phi"].drop_nulls().to_numpy() for m in (BIMODAL, UNIMODAL)]
        rows.append({"name": f"phi_{prop}_{method}", **two_group_test(*groups, params).__dict__})
    labelled = factors.filter(pl.col("land_cover").is_not_null())
    for name, categories in (
        ("land_cover", labelled["land_cover"].to_list()),
        ("growth_form", [growth_form(c) for c in labelled["land_cover"].to_list()]),
    ):
        statistic, p, table = chi_square_monte_carlo(labelled["modality"].to_numpy(), np.array(categories), params)
        n = dict(labelled.group_by("modality", maintain_order=True).len().iter_rows())
        rows.append(
            {
                "name": name,
                "test": "chi_square_monte_carlo",
                "statistic": statistic,
                "p_value": p,
                "n_bimodal": n.get(BIMODAL, 0),
                "n_unimodal": n.get(UNIMODAL, 0),
                "detail": f"{params.monte_carlo_tables} simulated tables, seed {params.seed}; "
                f"table (bimodal, unimodal) x categories = {table.astype(int).tolist()}",
            }
        )
    table = pl.DataFrame(rows, schema_overrides={"statistic": pl.Float64, "p_value": pl.Float64})
    return table
