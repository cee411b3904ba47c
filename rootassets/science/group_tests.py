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
    scale: str = "log10"
    n_excluded: int = 0
    excluded_sites: str = ""
    geometric_mean_bimodal: float | None = None
    geometric_mean_unimodal: float | None = None


def f_test_equal_variances(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sided F test of var(a) = var(b), as R's var.test."""
    from scipy import stats  # imported where used: loading scipy.stats is slow

    f = float(np.var(a, ddof=1) / np.var(b, ddof=1))
    dfs = (a.size - 1, b.size - 1)  # not a frozen distribution: freezing one builds its docstring, 0.5 ms a test
    return f, float(min(1.0, 2.0 * min(stats.f.cdf(f, *dfs), stats.f.sf(f, *dfs))))


def two_group_test(
    bimodal: np.ndarray,
    unimodal: np.ndarray,
    params: GroupTestParameters,
    bimodal_sites: list[str] | None = None,
    unimodal_sites: list[str] | None = None,
) -> GroupTest:
    """log10, F test of equal variances, then Student's t (equal) or Welch's t (unequal).

    Always on the log10 scale, as METHOD.md says: a value <= 0 has no logarithm, so it is excluded from
    this test (and only this one), and the test says how many and which sites (`bimodal_sites`,
    `unimodal_sites`: the site of each value, when known).
    """
    from scipy import stats  # imported where used: loading scipy.stats is slow

    a, b = np.asarray(bimodal, dtype=float), np.asarray(unimodal, dtype=float)
    sites_a = np.asarray(bimodal_sites if bimodal_sites is not None else [""] * a.size, dtype=object)
    sites_b = np.asarray(unimodal_sites if unimodal_sites is not None else [""] * b.size, dtype=object)
    finite_a, finite_b = np.isfinite(a), np.isfinite(b)
    a, sites_a, b, sites_b = a[finite_a], sites_a[finite_a], b[finite_b], sites_b[finite_b]
    excluded = sorted(str(s) for s in [*sites_a[a <= 0], *sites_b[b <= 0]])
    n_excluded = int((a <= 0).sum() + (b <= 0).sum())
    a, b = a[a > 0], b[b > 0]
    dropped = f"; {n_excluded} value(s) <= 0 excluded (no log10)" if n_excluded else ""
    common = {"scale": "log10", "n_excluded": n_excluded, "excluded_sites": ",".join(s for s in excluded if s)}
    if a.size < 2 or b.size < 2:
        return GroupTest(
            "none", None, None, int(a.size), int(b.size), f"fewer than 2 positive values in a group{dropped}", **common
        )
    a, b = np.log10(a), np.log10(b)
    f, f_p = f_test_equal_variances(a, b)
    equal = f_p >= params.alpha
    result = stats.ttest_ind(a, b, equal_var=equal)
    return GroupTest(
        "student_t" if equal else "welch_t",
        float(result.statistic),
        float(result.pvalue),
        int(a.size),
        int(b.size),
        f"geometric means bimodal {10 ** a.mean():.4g}, unimodal {10 ** b.mean():.4g}; F = {f:.4g}, "
        f"p(F) = {f_p:.4g}{dropped}",
        **common,
        geometric_mean_bimodal=float(10 ** a.mean()),
        geometric_mean_unimodal=float(10 ** b.mean()),
    )


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (as R's p.adjust(method = "holm")); None stays None."""
    known = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(known):
        running = max(running, min(1.0, (len(known) - rank) * p))
        adjusted[i] = running
    return adjusted


def pearson_chi_square(table: np.ndarray) -> float:
    """Pearson's chi-square statistic of independence, without continuity correction."""
    table = np.asarray(table, dtype=float)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(expected > 0, (table - expected) ** 2 / expected, 0.0)
    return float(terms.sum())


def contingency(rows: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, list, list]:
    """The table of counts of each (row level, column level) pair, and the sorted levels."""
    (row_levels, r), (col_levels, c) = _coded(rows), _coded(columns)
    return _counts(r, c, row_levels.size, col_levels.size), list(row_levels), list(col_levels)


def _coded(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted levels of `labels` and each label's position among them."""
    return np.unique(labels, return_inverse=True)


def _counts(r: np.ndarray, c: np.ndarray, n_rows: int, n_columns: int) -> np.ndarray:
    """The (n_rows, n_columns) table of counts of the code pairs (r, c), as floats."""
    return np.bincount(r * n_columns + c, minlength=n_rows * n_columns).reshape(n_rows, n_columns).astype(float)


def chi_square_monte_carlo(
    rows: np.ndarray, columns: np.ndarray, params: GroupTestParameters
) -> tuple[float, float, np.ndarray]:
    """Chi-square of independence with a Monte Carlo p over tables with the observed margins.

    Permuting one label vector draws tables from the same (hypergeometric)
    distribution as R's r2dtable; p = (1 + #{simulated >= observed}) / (B + 1).
    The levels are coded once and the codes permuted: a permutation moves the same positions whatever the
    array holds, so each simulated table is the one the permuted labels give (test_statistics.py).
    """
    (row_levels, r), (col_levels, c) = _coded(rows), _coded(columns)
    n_rows, n_columns = row_levels.size, col_levels.size
    table = _counts(r, c, n_rows, n_columns)
    observed = pearson_chi_square(table)
    rng = np.random.default_rng(params.seed)
    almost_one = 1.0 - 64.0 * np.finfo(float).eps
    exceed = 0
    for _ in range(params.monte_carlo_tables):
        simulated = _counts(r, rng.permutation(c), n_rows, n_columns)
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


def soil_water_test(statistics: pl.DataFrame | None, params: GroupTestParameters) -> dict[str, object]:
    """Soil-water phi by modality (METHOD.md sections 4 and 6): each site's mean phi over its 30-minute steps,
    bimodal vs unimodal, as the other two-group tests; sites whose statistics rest on too little data
    (`sufficient_data` false) are left out and named."""
    stats = statistics if statistics is not None else pl.DataFrame(schema={"site_id": pl.String})
    if "variable" in stats.columns:
        stats = stats.filter((pl.col("variable") == "phi") & pl.col("modality").is_not_null())
    else:
        stats = stats.with_columns(pl.lit(None, pl.String).alias("modality"), pl.lit(None, pl.Float64).alias("mean"))
    short = stats.filter(~pl.col("sufficient_data")) if "sufficient_data" in stats.columns else stats.clear()
    usable = stats.join(short.select("site_id"), on="site_id", how="anti")
    groups = [usable.filter(pl.col("modality") == m) for m in ("bimodal", "unimodal")]
    test = two_group_test(
        groups[0]["mean"].to_numpy(),
        groups[1]["mean"].to_numpy(),
        params,
        groups[0]["site_id"].to_list(),
        groups[1]["site_id"].to_list(),
    )
    notes = []
    if stats.is_empty():
        notes.append("no soil-water statistics for this release")
    if short.height:
        notes.append(f"left out for too little data: {', '.join(sorted(short['site_id'].to_list()))}")
    detail = "; ".join([test.detail, *notes]) if notes else test.detail
    return {"name": "soil_water_phi_mean", **{**test.__dict__, "detail": detail}}


def group_test_table(
    factors: pl.DataFrame,
    phi_table: pl.DataFrame,
    params: GroupTestParameters,
    soil_water: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Section 6 for every continuous factor, phi (two-group tests) and soil-water phi (`soil_water`: the
    soil-water statistics, when given) and for land cover and growth form (chi-square with a Monte Carlo p)."""
    from rootassets.science.classifier import BIMODAL, UNIMODAL
    from rootassets.science.site_factors import MEASURED_BIOMASS, NEON_FACTORS

    rows = []
    by_column = {f.column: f.name for f in (MEASURED_BIOMASS, *NEON_FACTORS)}

    def groups(frame: pl.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
        split = [frame.filter((pl.col("modality") == m) & pl.col(column).is_not_null()) for m in (BIMODAL, UNIMODAL)]
        values = [g[column].cast(pl.Float64).to_numpy() for g in split]
        return values[0], values[1], split[0]["site_id"].to_list(), split[1]["site_id"].to_list()

    for column in factors.columns:
        if column in ("site_id", "modality", "release", "land_cover") or factors.schema[column] == pl.String:
            continue
        a, b, sites_a, sites_b = groups(factors, column)
        rows.append({"name": by_column.get(column, column), **two_group_test(a, b, params, sites_a, sites_b).__dict__})
    for (prop, method), g in phi_table.group_by("property", "method", maintain_order=True):
        a, b, sites_a, sites_b = groups(g, "phi")
        rows.append({"name": f"phi_{prop}_{method}", **two_group_test(a, b, params, sites_a, sites_b).__dict__})
    if soil_water is not None:
        rows.append(soil_water_test(soil_water, params))
    labelled = factors.filter(pl.col("land_cover").is_not_null())
    for name, categories in (
        ("land_cover", labelled["land_cover"].to_list()),
        ("growth_form", [growth_form(c) for c in labelled["land_cover"].to_list()]),
    ):
        # a site without a label, or whose land cover has no growth form, is left out and named (not a crash)
        known = pl.Series([c is not None for c in categories]) & labelled["modality"].is_not_null()
        left_out = [  # (site, why)
            (site, cover if label is not None else "no modality")
            for site, cover, label, kept in zip(
                labelled["site_id"], labelled["land_cover"], labelled["modality"], known, strict=True
            )
            if not kept
        ]
        tested = labelled.filter(known)
        kept_categories = np.array([c for c, kept in zip(categories, known, strict=True) if kept])
        statistic, p, table = chi_square_monte_carlo(tested["modality"].to_numpy(), kept_categories, params)
        n = dict(tested.group_by("modality", maintain_order=True).len().iter_rows())
        rows.append(
            {
                "name": name,
                "test": "chi_square_monte_carlo",
                "statistic": statistic,
                "p_value": p,
                "n_bimodal": n.get(BIMODAL, 0),
                "n_unimodal": n.get(UNIMODAL, 0),
                "detail": f"{params.monte_carlo_tables} simulated tables, seed {params.seed}; "
                f"table (bimodal, unimodal) x categories = {table.astype(int).tolist()}"
                + (f"; left out: {', '.join(f'{site} ({why})' for site, why in left_out)}" if left_out else ""),
                "scale": "categorical",
                "n_excluded": len(left_out),
                "excluded_sites": ",".join(site for site, _ in left_out),
                "geometric_mean_bimodal": None,
                "geometric_mean_unimodal": None,
            }
        )
    soil = [i for i, r in enumerate(rows) if r["name"].startswith("phi_") and not r["name"].startswith("phi_root")]
    for i, p in zip(soil, holm([rows[i]["p_value"] for i in soil]), strict=True):
        rows[i]["p_value_holm"] = p
        rows[i]["holm_family"] = f"phi of the {len(soil)} soil properties"
    table = pl.DataFrame(
        [{"p_value_holm": None, "holm_family": None, **r} for r in rows],
        schema_overrides={
            "statistic": pl.Float64,
            "p_value": pl.Float64,
            "p_value_holm": pl.Float64,
            "holm_family": pl.String,
            "n_excluded": pl.Int64,
            "geometric_mean_bimodal": pl.Float64,
            "geometric_mean_unimodal": pl.Float64,
        },
    )
    return table
