"""`BySite` and `groups_in_order`: one pass over a table gives each site (or key) exactly the rows a filter or a
group_by gives."""

from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from rootassets.science.by_site import BySite, groups_in_order

SITES = ["ABBY", "BART", "CPER", "DELA"]
rows = st.lists(st.tuples(st.sampled_from(SITES[:3]), st.integers(-5, 5)), max_size=40)


@given(rows)
def test_each_site_gets_its_filtered_rows_in_order_and_an_absent_site_none(data: list[tuple[str, int]]) -> None:
    frame = pl.DataFrame(data, schema={"site_id": pl.String, "value": pl.Int64}, orient="row").with_row_index()
    split = BySite(frame)
    for site in SITES:  # DELA never has rows
        assert split[site].equals(frame.filter(pl.col("site_id") == site))
        assert split[site].schema == frame.schema


keyed_rows = st.lists(
    st.tuples(st.sampled_from([*SITES[:3], None]), st.sampled_from(["N", "P", None]), st.floats(-5, 5)), max_size=40
)


@given(keyed_rows)
def test_groups_in_order_are_the_groups_group_by_iterates(data: list[tuple[str | None, str | None, float]]) -> None:
    """Same keys, same order of groups (first appearance), same rows in the same order; nulls are a key."""
    schema = {"site_id": pl.String, "nutrient": pl.String, "value": pl.Float64}
    frame = pl.DataFrame(data, schema=schema, orient="row")
    expected = [(key, group) for key, group in frame.group_by("site_id", "nutrient", maintain_order=True)]
    found = groups_in_order(frame, ["site_id", "nutrient"])
    assert [key for key, _ in found] == [key for key, _ in expected]
    for (_, rows), (_, group) in zip(found, expected, strict=True):
        assert frame[rows].equals(group)
