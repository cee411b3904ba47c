"""`BySite`: one pass over a table gives each site exactly the rows a filter on that site gives."""

from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from rootassets.science.by_site import BySite

SITES = ["ABBY", "BART", "CPER", "DELA"]
rows = st.lists(st.tuples(st.sampled_from(SITES[:3]), st.integers(-5, 5)), max_size=40)


@given(rows)
def test_each_site_gets_its_filtered_rows_in_order_and_an_absent_site_none(data: list[tuple[str, int]]) -> None:
    frame = pl.DataFrame(data, schema={"site_id": pl.String, "value": pl.Int64}, orient="row").with_row_index()
    split = BySite(frame)
    for site in SITES:  # DELA never has rows
        assert split[site].equals(frame.filter(pl.col("site_id") == site))
        assert split[site].schema == frame.schema
