"""Overlap-weighted soil harmonization (METHOD.md section 3): properties that must always hold."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from rootassets.science.soil_profiles import overlap_weighted_average, protocol_root_grid

depths = st.integers(min_value=0, max_value=300)
values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@st.composite
def horizons(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Contiguous, non-overlapping horizons from 0 cm, with values (some missing)."""
    cuts = sorted(set(draw(st.lists(st.integers(1, 300), min_size=1, max_size=8))))
    tops = np.array([0, *cuts[:-1]], dtype=float)
    bottoms = np.array(cuts, dtype=float)
    vals = np.array([draw(st.one_of(values, st.just(np.nan))) for _ in cuts], dtype=float)
    return tops, bottoms, vals


@st.composite
def increments(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    pairs = draw(st.lists(st.tuples(depths, st.integers(1, 60)), min_size=1, max_size=10))
    tops = np.array([t for t, _ in pairs], dtype=float)
    return tops, tops + np.array([w for _, w in pairs], dtype=float)


@given(st.integers(0, 250), st.integers(1, 50), values)
def test_a_horizon_that_matches_an_increment_returns_its_value(top: int, width: int, value: float) -> None:
    t, b = np.array([top], float), np.array([top + width], float)
    result, coverage = overlap_weighted_average(t, b, t, b, np.array([value]))
    assert result[0] == value and coverage[0] == 1.0


@given(horizons(), increments(), values)
def test_a_constant_property_stays_constant(h: tuple, inc: tuple, value: float) -> None:
    h_tops, h_bottoms, _ = h
    result, _ = overlap_weighted_average(*inc, h_tops, h_bottoms, np.full(len(h_tops), value))
    present = ~np.isnan(result)
    assert np.allclose(result[present], value, rtol=1e-12, atol=1e-9 * max(1.0, abs(value)))


@given(horizons(), increments(), st.data())
def test_splitting_a_horizon_in_two_with_the_same_value_changes_nothing(
    h: tuple, inc: tuple, data: st.DataObject
) -> None:
    h_tops, h_bottoms, vals = h
    i = data.draw(st.integers(0, len(h_tops) - 1))
    assume(h_bottoms[i] - h_tops[i] >= 2)
    cut = data.draw(st.integers(int(h_tops[i]) + 1, int(h_bottoms[i]) - 1))
    split_tops = np.insert(h_tops, i + 1, cut)
    split_bottoms = np.insert(h_bottoms, i, cut)
    split_vals = np.insert(vals, i, vals[i])
    before, cov_before = overlap_weighted_average(*inc, h_tops, h_bottoms, vals)
    after, cov_after = overlap_weighted_average(*inc, split_tops, split_bottoms, split_vals)
    np.testing.assert_allclose(after, before, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(cov_after, cov_before, rtol=1e-12)


@given(horizons(), increments())
def test_result_lies_between_min_and_max_of_overlapping_horizons(h: tuple, inc: tuple) -> None:
    h_tops, h_bottoms, vals = h
    tops, bottoms = inc
    result, coverage = overlap_weighted_average(tops, bottoms, h_tops, h_bottoms, vals)
    for k in range(len(tops)):
        overlapping = (np.minimum(bottoms[k], h_bottoms) > np.maximum(tops[k], h_tops)) & ~np.isnan(vals)
        if not overlapping.any():
            assert np.isnan(result[k]) and coverage[k] == 0.0
            continue
        lo, hi = vals[overlapping].min(), vals[overlapping].max()
        slack = 1e-9 * max(1.0, abs(lo), abs(hi))
        assert lo - slack <= result[k] <= hi + slack
        assert 0.0 < coverage[k] <= 1.0 + 1e-12


@given(values)
def test_no_overlap_gives_missing_never_zero(value: float) -> None:
    result, coverage = overlap_weighted_average(
        np.array([100.0]), np.array([120.0]), np.array([0.0, 30.0]), np.array([30.0, 60.0]), np.array([value, value])
    )
    assert np.isnan(result[0]) and coverage[0] == 0.0


def test_missing_horizon_values_do_not_count_but_partial_coverage_is_reported() -> None:
    result, coverage = overlap_weighted_average(
        np.array([0.0]), np.array([20.0]), np.array([0.0, 10.0]), np.array([10.0, 20.0]), np.array([4.0, np.nan])
    )
    assert result[0] == 4.0 and coverage[0] == 0.5


def test_weighting_by_overlap() -> None:
    result, _ = overlap_weighted_average(
        np.array([0.0]), np.array([10.0]), np.array([0.0, 3.0]), np.array([3.0, 40.0]), np.array([1.0, 2.0])
    )
    assert np.isclose(result[0], (1.0 * 3 + 2.0 * 7) / 10)


@settings(max_examples=1)
@given(st.just(None))
def test_protocol_grid(_: None) -> None:
    grid = protocol_root_grid()
    assert (
        grid[0] == (0.0, 10.0)
        and grid[9] == (90.0, 100.0)
        and grid[10] == (100.0, 120.0)
        and grid[-1] == (180.0, 200.0)
    )


def _site_tables(
    sites: list[tuple[tuple, tuple]],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Horizons (every property of SOIL_PROPERTIES, the first one's values drawn, the rest null) and root grid."""
    from rootassets.science.soil_profiles import SOIL_PROPERTIES

    first = SOIL_PROPERTIES[0].column
    horizon_rows, grid_rows = [], []
    for index, ((h_tops, h_bottoms, vals), (tops, bottoms)) in enumerate(sites):
        site = f"S{index:02d}"
        horizon_rows += [
            {"site_id": site, "top_cm": a, "bottom_cm": b, first: None if np.isnan(v) else v}
            for a, b, v in zip(h_tops, h_bottoms, vals, strict=True)
        ]
        grid_rows += [{"site_id": site, "top_cm": a, "bottom_cm": b} for a, b in zip(tops, bottoms, strict=True)]
    schema = {"site_id": pl.String, "top_cm": pl.Float64, "bottom_cm": pl.Float64}
    horizons_frame = pl.DataFrame(horizon_rows, schema={**schema, first: pl.Float64}).with_columns(
        pl.lit(None, dtype=pl.Float64).alias(p.column) for p in SOIL_PROPERTIES[1:]
    )
    return horizons_frame, pl.DataFrame(grid_rows, schema=schema)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(horizons(), increments()), min_size=1, max_size=4))
@example(  # a CI run's case: a row's sum differed in its last bit with the rows in another order
    [
        ((np.array([0.0]), np.array([1.0]), np.array([np.nan])), (np.array([0.0]), np.array([1.0]))),
        (
            (
                np.array([0.0, 1, 2, 3, 224, 225, 246, 259]),
                np.array([1.0, 2, 3, 224, 225, 246, 259, 262]),
                np.array([np.nan, np.nan, np.nan, 179.0, np.nan, np.nan, 0.0, 565148.0]),
            ),
            (np.array([0.0, 0, 0, 223, 0]), np.array([1.0, 1, 1, 262, 1])),
        ),
    ]
)
def test_the_table_of_every_site_is_each_sites_own_weighted_average(sites: list) -> None:
    """soil_on_root_grid reads all properties of a site at once: each site's rows are still the overlap-weighted
    averages of its own horizons, missing (null, never NaN) where none has a value."""
    from rootassets.science.soil_profiles import SOIL_PROPERTIES, soil_on_root_grid, values_outside_horizon_range

    first = SOIL_PROPERTIES[0].column
    horizons_frame, grid = _site_tables(sites)
    table = soil_on_root_grid(horizons_frame, grid)
    for index, ((h_tops, h_bottoms, vals), (tops, bottoms)) in enumerate(sites):
        own = table.filter(pl.col("site_id") == f"S{index:02d}")
        # the site's increments as given, then in the table's order; BLAS may round the last bit of a row's sum
        # differently with the rows in another order, so values agree to 1e-12, not bit for bit
        expected, coverage = overlap_weighted_average(tops, bottoms, h_tops, h_bottoms, vals)
        order = np.lexsort((bottoms, tops))
        expected, coverage = expected[order], coverage[order]
        got = own[first].to_numpy().astype(float)
        assert np.array_equal(np.isnan(got), np.isnan(expected)) and own[first].is_nan().sum() == 0
        assert np.allclose(got[~np.isnan(got)], expected[~np.isnan(expected)], rtol=1e-12, atol=0)
        assert np.allclose(own[f"coverage_{first}"].to_numpy(), coverage, rtol=1e-12, atol=0, equal_nan=True)
        assert own[SOIL_PROPERTIES[1].column].null_count() == own.height  # a property no horizon gives
    assert values_outside_horizon_range(horizons_frame, table).is_empty()


def test_values_outside_their_horizons_range_or_without_a_horizon_are_reported() -> None:
    from rootassets.science.soil_profiles import SOIL_PROPERTIES, soil_on_root_grid, values_outside_horizon_range

    first = SOIL_PROPERTIES[0].column
    site = (
        (np.array([0.0, 30.0]), np.array([30.0, 60.0]), np.array([2.0, 4.0])),
        (np.array([0.0, 20.0, 80.0]), np.array([20.0, 40.0, 90.0])),
    )
    horizons_frame, grid = _site_tables([site, site])
    table = soil_on_root_grid(horizons_frame, grid)
    planted = table.with_columns(
        pl.when((pl.col("site_id") == "S01") & (pl.col("top_cm") == 20.0))
        .then(4.5)  # above the 2 and 4 of the horizons it overlaps
        .when((pl.col("site_id") == "S01") & (pl.col("top_cm") == 80.0))
        .then(3.0)  # no horizon reaches 80 cm
        .otherwise(pl.col(first))
        .alias(first)
    )
    outside = values_outside_horizon_range(horizons_frame, planted)
    assert outside.rows() == [("S01", 20.0, first, 4.5), ("S01", 80.0, first, 3.0)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["AAAA", "BBBB", "CCCC", "DDDD"]), horizons()), min_size=0, max_size=6))
def test_topsoil_means_are_each_sites_own_weighted_average_to_the_bit(sites: list) -> None:
    """The site factors' topsoil means (taken from columns sliced by site) are, bit for bit, the
    overlap-weighted average over [0, 30) cm of each site's own rows in table order, missing where no horizon
    with a value overlaps; a site's rows may come in several runs of the table."""
    from rootassets.science.site_factors import _TOPSOIL, TOPSOIL_CM, topsoil_means

    rows = []
    for index, (site, (tops, bottoms, vals)) in enumerate(sites):
        for a, b, v in zip(tops, bottoms, vals, strict=True):
            # each property gets its own values (shifted), some missing
            rows.append(
                {"site_id": site, "top_cm": a, "bottom_cm": b}
                | {
                    source: None if np.isnan(v) or (k + index) % 3 == 0 else v + k
                    for k, source in enumerate(_TOPSOIL.values())
                }
            )
    schema = {"site_id": pl.String, "top_cm": pl.Float64, "bottom_cm": pl.Float64} | dict.fromkeys(
        _TOPSOIL.values(), pl.Float64
    )
    soil = pl.DataFrame(rows, schema=schema)
    table = topsoil_means(soil)
    assert table["site_id"].to_list() == list(dict.fromkeys(r["site_id"] for r in rows))
    for site_row in table.iter_rows(named=True):
        own = soil.filter(pl.col("site_id") == site_row["site_id"])
        for out, source in _TOPSOIL.items():
            values = own[source].cast(pl.Float64).fill_null(np.nan).to_numpy()
            expected, _ = overlap_weighted_average(
                np.array([0.0]), np.array([TOPSOIL_CM]), own["top_cm"].to_numpy(), own["bottom_cm"].to_numpy(), values
            )
            if np.isnan(expected[0]):
                assert site_row[out] is None
            else:
                assert site_row[out] == float(expected[0])
