"""phi (METHOD.md section 4) read for every site at once equals reading each site and depth one at a time."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from rootassets.science.phi import (
    PhiParameters,
    SiteRows,
    phi,
    phi_depths,
    phi_table,
    sums_as_numpy_sums,
    value_in_increment,
)
from rootassets.science.soil_profiles import SOIL_PROPERTIES

finite = st.floats(-1e6, 1e6, allow_nan=False).map(
    lambda v: v * 10.0 ** np.random.default_rng(int(abs(v))).integers(-8, 8)
)
a_value = st.one_of(finite, st.just(-0.0), st.just(0.0), st.just(float("nan")))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.one_of(finite, st.just(-0.0), st.just(0.0)), max_size=12), max_size=20))
def test_run_sums_are_numpys_own_sums_to_the_bit(runs: list[list[float]]) -> None:
    """Runs of up to 7 values added in order from 0.0, longer ones by numpy: each sum is `run.sum()`, zeros'
    signs included."""
    values = np.array([v for run in runs for v in run], dtype=float)
    counts = np.array([len(run) for run in runs], dtype=np.int64)
    sums = sums_as_numpy_sums(values, counts)
    for run, got in zip(runs, sums, strict=True):
        expected = np.array(run, dtype=float).sum()
        assert got == expected and np.signbit(got) == np.signbit(expected)


increment = st.tuples(st.sampled_from(["AAAA", "BBBB", "CCCC"]), st.integers(0, 150), st.integers(1, 60), a_value)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(increment, max_size=40),
    st.lists(st.tuples(st.sampled_from(["AAAA", "BBBB", "CCCC", "DDDD"]), st.integers(-5, 220)), max_size=12),
)
def test_readings_of_every_site_at_once_equal_value_in_increment(
    rows: list[tuple[str, int, int, float]], asked: list[tuple[str, int]]
) -> None:
    """Overlapping increments (so a depth may fall in several, whose mean is taken), missing values, a site
    with no rows and depths outside every increment: each reading is the one `value_in_increment` gives on the
    site's own rows, to the bit, and missing where it gives None."""
    frame = pl.DataFrame(
        [(s, float(t), float(t + w), v) for s, t, w, v in rows],
        schema={"site_id": pl.String, "top_cm": pl.Float64, "bottom_cm": pl.Float64, "value": pl.Float64},
        orient="row",
    )
    by_site = SiteRows(frame, ["top_cm", "bottom_cm", "value"])
    values, found = by_site.readings(["value"], [s for s, _ in asked], np.array([d for _, d in asked], float))["value"]
    for (site, depth), value, was_found in zip(asked, values, found, strict=True):
        own = by_site.of(site)
        expected = value_in_increment(own["top_cm"], own["bottom_cm"], own["value"], float(depth))
        assert was_found == (expected is not None)
        if expected is not None:
            assert value == expected and np.signbit(value) == np.signbit(expected)


def _phi_table_one_site_at_a_time(
    modality: pl.DataFrame, profiles: pl.DataFrame, soil: pl.DataFrame, kde: pl.DataFrame, params: PhiParameters
) -> pl.DataFrame:
    """The first implementation, kept as the definition: a loop over sites, reading each depth alone."""
    root, soil_rows = (
        SiteRows(profiles, ["top_cm", "bottom_cm", "root_density_g_m3"]),
        SiteRows(soil, ["top_cm", "bottom_cm", *(p.column for p in SOIL_PROPERTIES)]),
    )
    curves = SiteRows(kde, ["depth_cm", "density"], sort="depth_cm")
    rows = []
    for site, label, d1_site, d2_site in modality.select("site_id", "modality", "d1_cm", "d2_cm").iter_rows():
        d1, d2 = phi_depths(label, d1_site, d2_site, params)
        series = [(root.of(site), "root_density_g_m3", "root_biomass")]
        series += [(soil_rows.of(site), p.column, p.column) for p in SOIL_PROPERTIES]
        for arrays, column, name in series:
            y1, y2 = (value_in_increment(arrays["top_cm"], arrays["bottom_cm"], arrays[column], d) for d in (d1, d2))
            rows.append((site, name, "increment", phi(y2, y1), d1, d2, y1, y2, label))
        curve = curves.of(site)
        depths, density = curve["depth_cm"], curve["density"]
        k1, k2 = (float(np.interp(d, depths, density, left=0.0, right=0.0)) if depths.size else None for d in (d1, d2))
        rows.append((site, "root_biomass", "kde", phi(k2, k1), d1, d2, k1, k2, label))
    schema = dict.fromkeys(("site_id", "property", "method"), pl.String)
    schema |= dict.fromkeys(("phi", "d1_cm", "d2_cm", "y_d1", "y_d2"), pl.Float64) | {"modality": pl.String}
    return pl.DataFrame(rows, schema=schema, orient="row")


site_codes = st.sampled_from(["AAAA", "BBBB", "CCCC", "DDDD"])


@settings(max_examples=60, deadline=None)
@given(
    labels=st.dictionaries(
        site_codes,
        st.one_of(
            st.tuples(st.just("bimodal"), st.integers(10, 100), st.integers(101, 200)),
            st.tuples(st.sampled_from(["unimodal", None]), st.none(), st.none()),
        ),
        min_size=1,
    ),
    profiles=st.lists(increment, max_size=30),
    soil=st.lists(st.tuples(increment, st.lists(a_value, min_size=2, max_size=2)), max_size=20),
    curve_sites=st.sets(site_codes),
    unimodal=st.tuples(st.integers(20, 90), st.integers(91, 160)),
)
def test_phi_table_equals_reading_one_site_at_a_time(
    labels: dict, profiles: list, soil: list, curve_sites: set, unimodal: tuple[int, int]
) -> None:
    """The phi table (every site, property and method at once) equals the site-by-site loop to the bit: the
    same rows in the same order, nulls where a depth has no value or Y(D1) is 0, KDE readings included."""
    modality = pl.DataFrame(
        [
            (s, m, None if d1 is None else float(d1), None if d2 is None else float(d2))
            for s, (m, d1, d2) in labels.items()
        ],
        schema={"site_id": pl.String, "modality": pl.String, "d1_cm": pl.Float64, "d2_cm": pl.Float64},
        orient="row",
    )
    increments = {"site_id": pl.String, "top_cm": pl.Float64, "bottom_cm": pl.Float64}
    root = pl.DataFrame(
        [(s, float(t), float(t + w), v) for s, t, w, v in profiles],
        schema={**increments, "root_density_g_m3": pl.Float64},
        orient="row",
    )
    n_soil = len(SOIL_PROPERTIES)
    soil_frame = pl.DataFrame(
        [(s, float(t), float(t + w), v, *extra, *([None] * (n_soil - 3))) for (s, t, w, v), extra in soil],
        schema={**increments, **{p.column: pl.Float64 for p in SOIL_PROPERTIES}},
        orient="row",
    )
    depths = np.arange(0.0, 250.0, 7.0)
    kde = pl.DataFrame(
        [(s, d, float(np.exp(-(((d - 60) / 40) ** 2)))) for s in sorted(curve_sites) for d in depths[::-1]],
        schema={"site_id": pl.String, "depth_cm": pl.Float64, "density": pl.Float64},
        orient="row",
    )
    params = PhiParameters(float(unimodal[0]), float(unimodal[1]))
    expected = _phi_table_one_site_at_a_time(modality, root, soil_frame, kde, params)
    assert_frame_equal(phi_table(modality, root, soil_frame, kde, params), expected, check_exact=True)
