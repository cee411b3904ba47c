"""Screening rows against a contract: every row in is kept or quarantined, with a reason."""

from __future__ import annotations

import json

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rootassets.neon.csvfiles import MalformedRecord
from rootassets.schemas import RAW_CONTRACTS
from rootassets.warehouse.quarantine import StructuralError, screen

CONTRACT = RAW_CONTRACTS["mpr_perrootsample"]


def rows(n: int = 3, **overrides: list) -> pl.DataFrame:
    base = {
        "uid": [f"u{i}" for i in range(n)],
        "depthIncrementID": [f"BART.1.{10 * i}" for i in range(n)],
        "rootStatus": ["live"] * n,
        "sizeCategory": ["<=2mm"] * n,
        "rootDryMass": [0.1] * n,
        "incrementRootBiomass": [1.0] * n,
        "incrementRootDensity": [10.0] * n,
        "site_id": ["BART"] * n,
        "release": ["RELEASE-2021"] * n,
        "source_file": ["f.csv"] * n,
    }
    base.update(overrides)
    return pl.DataFrame(base)


def test_good_rows_are_all_kept() -> None:
    s = screen(rows(), CONTRACT, "t", "RELEASE-2021")
    assert (s.kept.height, s.quarantined.height) == (3, 0)
    assert s.rows["quarantined"].to_list() == [False] * 3


def test_negative_density_is_quarantined_with_rule_column_and_value() -> None:
    s = screen(rows(incrementRootDensity=[10.0, -5.0, 10.0]), CONTRACT, "t", "RELEASE-2021")
    assert s.kept["uid"].to_list() == ["u0", "u2"]
    q = s.quarantined.row(0, named=True)
    assert (q["rule"], q["column_name"], q["offending_value"]) == (
        "greater_than_or_equal_to(0)",
        "incrementRootDensity",
        "-5.0",
    )
    assert json.loads(q["record"])["uid"] == "u1"


def test_exact_duplicates_keep_one_copy_and_conflicts_quarantine_both() -> None:
    frame = pl.concat([rows(2), rows(1), rows(1, rootDryMass=[9.9])])  # u0 three times: two equal, one different
    s = screen(frame, CONTRACT, "t", "RELEASE-2021")
    assert s.rows_in == 4
    assert s.kept["uid"].to_list() == ["u1"]
    assert sorted(s.quarantined["rule"].to_list()) == ["conflicting_key", "conflicting_key", "duplicate_record"]


def test_exact_duplicates_alone_keep_one() -> None:
    s = screen(pl.concat([rows(2), rows(2)]), CONTRACT, "t", "RELEASE-2021")
    assert s.kept["uid"].to_list() == ["u0", "u1"] and s.reasons == {"duplicate_record": 2}


def test_non_numeric_value_is_quarantined_with_the_original_text() -> None:
    frame = rows(incrementRootDensity=["10", "heavy", "3"])
    s = screen(frame, CONTRACT, "t", "RELEASE-2021")
    assert s.kept.schema["incrementRootDensity"] == pl.Float64 and s.kept.height == 2
    q = s.quarantined.row(0, named=True)
    assert q["rule"] == "not_a_float64" and q["offending_value"] == "heavy"
    assert json.loads(q["record"])["incrementRootDensity"] == "heavy"


def test_disallowed_values_and_nulls() -> None:
    s = screen(rows(rootStatus=["live", "alive", None]), CONTRACT, "t", "RELEASE-2021")
    assert s.kept.height == 1 and sorted(s.reasons) == ["isin(['live', 'dead'])", "not_null"]


def test_malformed_records_are_counted_in() -> None:
    bad = [MalformedRecord("f.csv", 9, "record has 2 fields, the header has 13", '"x","y')]
    s = screen(rows(), CONTRACT, "t", "RELEASE-2021", bad)
    assert s.summary()["rows_in"] == 4 and s.summary()["rows_quarantined"] == 1
    assert s.quarantined.filter(pl.col("rule") == "malformed_record")["record"].to_list() == ['"x","y']


def test_missing_required_column_is_structural() -> None:
    with pytest.raises(StructuralError, match=r"raw\.x: required column\(s\) 'incrementRootDensity' missing"):
        screen(rows().drop("incrementRootDensity"), CONTRACT, "raw.x", "RELEASE-2021")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["u0", "u1", "u2", "u3"]),
            st.sampled_from(["live", "dead", "zombie", None]),
            st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=32), st.none()),
        ),
        max_size=25,
    )
)
def test_rows_in_equals_kept_plus_quarantined(records: list) -> None:
    n = len(records)
    frame = rows(
        n,
        uid=[r[0] for r in records],
        rootStatus=[r[1] for r in records],
        incrementRootDensity=[r[2] for r in records],
    )
    s = screen(frame, CONTRACT, "t", "RELEASE-2021")
    assert s.kept.height + s.quarantined.height == n == s.rows.height
    assert s.kept["uid"].is_duplicated().sum() == 0
    assert (s.kept["incrementRootDensity"].drop_nulls() >= 0).all()


def test_a_table_computed_inside_duckdb_is_screened_there_with_nothing_lost() -> None:
    import duckdb

    from rootassets.schemas import SqlContract
    from rootassets.warehouse.quarantine import screened_queries
    from rootassets.warehouse.staging import write_queries

    contract = SqlContract(
        ("site_id", "t"), {"phi_not_negative": ("phi", "phi IS NULL OR phi >= 0"), "t_known": ("t", "t IS NOT NULL")}
    )
    select = (
        "SELECT * FROM (VALUES ('AAAA', 1, 0.5), ('AAAA', 2, -1.0), ('BBBB', 1, 2.0), ('BBBB', 1, 3.0), "
        "('CCCC', NULL, -2.0), ('CCCC', 3, NULL)) AS v(site_id, t, phi)"
    )
    con = duckdb.connect()
    counts = write_queries(con, screened_queries("analysis.series", select, contract), "RELEASE-2021", None)
    assert counts == {"analysis.series": 2, "quarantine.series": 4}
    assert con.execute("select site_id, t, phi from analysis.series order by all").fetchall() == [
        ("AAAA", 1, 0.5),
        ("CCCC", 3, None),
    ]
    rows = con.execute(
        "select site_id, rule, column_name, offending_value, all_reasons, release from quarantine.series order by all"
    ).fetchall()
    assert rows == [
        ("AAAA", "phi_not_negative", "phi", "-1.0", "phi_not_negative", "RELEASE-2021"),
        ("BBBB", "conflicting_key", "site_id, t", None, "conflicting_key", "RELEASE-2021"),
        ("BBBB", "conflicting_key", "site_id, t", None, "conflicting_key", "RELEASE-2021"),
        ("CCCC", "phi_not_negative", "phi", "-2.0", "phi_not_negative; t_known", "RELEASE-2021"),
    ]
    record = con.execute("select record from quarantine.series where site_id = 'AAAA'").fetchone()[0]
    assert '"phi":-1.0' in record and '"t":2' in record
