"""Atomic refresh: a run's tables become visible together, only when it succeeds."""

from __future__ import annotations

import uuid
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dagster import AssetKey, asset
from hypothesis import given
from hypothesis import strategies as st

from rootassets.defs.harmonized import harmonized_assets
from rootassets.defs.raw import raw_assets
from rootassets.defs.resources import WarehouseResource
from rootassets.neon.identifiers import InvalidIdentifierError
from rootassets.warehouse import Location, connect_read_only, connect_writable, replace_partitions
from rootassets.warehouse.staging import (
    SiteScope,
    commit_refresh,
    discard_refresh,
    preview_commit,
    read_staged,
    stage,
    stage_statement,
    write_queries,
)
from rootassets_tests.conftest import RELEASE, run_assets
from rootassets_tests.test_harmonized_assets import corrupt_copy, roots_file, table_snapshot  # noqa: F401

R1, R2 = "RELEASE-2021", "RELEASE-2022"


def frame(release: str, values: list[int]) -> pl.DataFrame:
    return pl.DataFrame({"v": values, "release": [release] * len(values)})


def visible(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    return con.execute(f"select release, v from {table} order by all").fetchall()


def test_staged_tables_stay_invisible_until_one_commit_swaps_them_all(tmp_path: Path, warehouse: Location) -> None:
    con = connect_writable(warehouse)
    replace_partitions(con, {("raw", "a"): frame(R1, [1]), ("analysis", "b"): frame(R1, [10])}, R1)
    replace_partitions(con, {("raw", "a"): frame(R2, [2])}, R2)
    refresh = str(uuid.uuid4())
    stage(con, {("raw", "a"): frame(R1, [5, 6])}, R1, refresh)
    stage(con, {("analysis", "b"): frame(R1, [50]), ("analysis", "c"): frame(R1, [7])}, R1, refresh)
    stage_statement(con, refresh, "marts.m:0", "CREATE SCHEMA IF NOT EXISTS marts")
    stage_statement(con, refresh, "marts.m:1", "CREATE OR REPLACE VIEW marts.m AS SELECT sum(v) AS s FROM analysis.c")

    assert visible(con, "raw.a") == [(R1, 1), (R2, 2)]
    assert visible(con, "analysis.b") == [(R1, 10)]
    assert con.execute("select count(*) from information_schema.tables where table_name in ('c', 'm')").fetchall() == [
        (0,)
    ]
    assert read_staged(con, refresh, R1, "raw", "a")["v"].to_list() == [5, 6]
    with preview_commit(con, refresh) as seen:
        assert visible(seen, "raw.a") == [(R1, 5), (R1, 6), (R2, 2)]
        assert seen.execute("select s from marts.m").fetchall() == [(7,)]
    assert visible(con, "raw.a") == [(R1, 1), (R2, 2)]  # the preview was rolled back
    with preview_commit(con, refresh, only={"Analysis.C", "marts.m"}) as seen:  # a mart's: what it reads (any case)
        assert visible(seen, "raw.a") == [(R1, 1), (R2, 2)]  # not asked for: as committed
        assert visible(seen, "analysis.b") == [(R1, 10)]
        assert seen.execute("select s from marts.m").fetchall() == [(7,)]
    assert con.execute("select count(*) from information_schema.tables where table_name in ('c', 'm')").fetchall() == [
        (0,)
    ]

    counts = commit_refresh(con, refresh)
    assert counts == {f"{R1}:raw.a": 2, f"{R1}:analysis.b": 1, f"{R1}:analysis.c": 1}
    assert visible(con, "raw.a") == [(R1, 5), (R1, 6), (R2, 2)]  # the other release untouched
    assert visible(con, "analysis.b") == [(R1, 50)]
    assert con.execute("select s from marts.m").fetchall() == [(7,)]
    staging_left = "select table_name from duckdb_tables() where schema_name = 'staging'"
    assert con.execute(staging_left).fetchall() == []  # an emptied staging table is dropped
    assert con.execute("select count(*) from meta.commits where refresh_id = ?", [refresh]).fetchall() == [(3,)]


def test_a_discarded_refresh_leaves_the_visible_tables_as_they_were(tmp_path: Path, warehouse: Location) -> None:
    con = connect_writable(warehouse)
    replace_partitions(con, {("raw", "a"): frame(R1, [1])}, R1)
    refresh = str(uuid.uuid4())
    stage(con, {("raw", "a"): frame(R1, [9])}, R1, refresh)
    other = str(uuid.uuid4())
    stage(con, {("raw", "a"): frame(R1, [8])}, R1, other)
    assert discard_refresh(con, refresh) == 1
    assert commit_refresh(con, refresh) == {}  # nothing left to commit
    assert visible(con, "raw.a") == [(R1, 1)]
    assert read_staged(con, other, R1, "raw", "a")["v"].to_list() == [8]  # another refresh's rows stay staged
    discard_refresh(con, other)
    assert con.execute("select count(*) from duckdb_tables() where schema_name = 'staging'").fetchall() == [(0,)]


def test_a_quarantine_table_computed_in_sql_comes_into_being_with_its_first_row(
    tmp_path: Path, warehouse: Location
) -> None:
    con = connect_writable(warehouse)
    none, some = "SELECT 1 AS v WHERE false", "SELECT 3 AS v"
    for refresh in (str(uuid.uuid4()), None):  # staged inside a run, direct outside one
        write_queries(con, {("analysis", "t"): "SELECT 1 AS v", ("quarantine", "t"): none}, R1, refresh)
        if refresh:
            commit_refresh(con, refresh)
        assert con.execute("select count(*) from duckdb_tables() where schema_name = 'quarantine'").fetchall() == [(0,)]
    refresh = str(uuid.uuid4())
    write_queries(con, {("quarantine", "t"): some}, R1, refresh)
    commit_refresh(con, refresh)
    assert visible(con, "quarantine.t") == [(R1, 3)]
    refresh = str(uuid.uuid4())
    assert write_queries(con, {("quarantine", "t"): none}, R1, refresh) == {"quarantine.t": 0}
    commit_refresh(con, refresh)
    assert visible(con, "quarantine.t") == []  # once it exists, replaced per release like any other table


def test_a_commit_that_fails_midway_changes_nothing(tmp_path: Path, warehouse: Location) -> None:
    con = connect_writable(warehouse)
    replace_partitions(con, {("raw", "a"): frame(R1, [1])}, R1)
    refresh = str(uuid.uuid4())
    stage(con, {("raw", "a"): frame(R1, [9])}, R1, refresh)
    stage_statement(con, refresh, "marts.bad:0", "CREATE VIEW marts.bad AS SELECT * FROM no_such_table")
    with pytest.raises(duckdb.Error):
        commit_refresh(con, refresh)
    assert visible(con, "raw.a") == [(R1, 1)]
    assert read_staged(con, refresh, R1, "raw", "a")["v"].to_list() == [9]  # still staged, not lost


def test_refresh_ids_and_release_tags_are_validated_before_reaching_sql(tmp_path: Path, warehouse: Location) -> None:
    con = connect_writable(warehouse)
    with pytest.raises(InvalidIdentifierError):
        stage(con, {("raw", "a"): frame(R1, [1])}, R1, "x'; DROP TABLE raw.a; --")
    with pytest.raises(InvalidIdentifierError):
        stage(con, {("raw", "a"): frame(R1, [1])}, "RELEASE-2021'--", str(uuid.uuid4()))


def test_a_run_that_fails_late_leaves_every_earlier_table_as_it_was(corrupt_copy) -> None:  # noqa: F811
    copy, settings = corrupt_copy
    run_assets(settings, [*raw_assets, *harmonized_assets])
    before = table_snapshot(settings)
    sites_before = before["raw.mpr_perrootsample"]["site_id"].n_unique()

    # The next release of the roots table lacks one site; a step after every table is written fails.
    path = roots_file(copy)
    lines = path.read_text().splitlines(keepends=True)
    dropped = lines[1].split(",")[4].strip('"').split(".")[0]  # the site of depthIncrementID
    path.write_text(lines[0] + "".join(line for line in lines[1:] if f',"{dropped}.' not in line))
    seen_during_run: dict[str, int] = {}

    @asset(
        key=AssetKey(["analysis", "doomed"]),
        deps=[AssetKey(["harmonized", "root_profiles"])],
        partitions_def=raw_assets[0].partitions_def,
    )
    def doomed(warehouse: WarehouseResource) -> None:
        staged = warehouse.read("raw", "mpr_perrootsample", RELEASE)
        with connect_writable(settings.database) as reader:  # another reader, mid-run
            seen_during_run["staged"] = staged["site_id"].n_unique()
            seen_during_run["visible"] = reader.execute(
                "select count(distinct site_id) from raw.mpr_perrootsample"
            ).fetchall()[0][0]
        raise RuntimeError("planted failure after every table was written")

    result = run_assets(settings, [*raw_assets, *harmonized_assets, doomed], raise_on_error=False)
    assert not result.success
    assert seen_during_run == {"staged": sites_before - 1, "visible": sites_before}
    after = table_snapshot(settings)
    assert after.keys() == before.keys()
    for name in before:
        assert after[name].equals(before[name]), name
    with connect_read_only(settings.database) as con:
        assert con.execute("select count(*) from meta.staged_tables").fetchall() == [(0,)]  # discarded

    assert run_assets(settings, [*raw_assets, *harmonized_assets]).success
    with connect_read_only(settings.database) as con:
        assert con.execute("select count(distinct site_id) from raw.mpr_perrootsample").fetchall() == [
            (sites_before - 1,)
        ]
        assert con.execute("select count(distinct site_id) from harmonized.root_profiles").fetchall() == [
            (sites_before - 1,)
        ]


def site_rows(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    return con.execute(f"select release, site_id, v from {table} order by all").fetchall()


def sites_frame(release: str, rows: list[tuple[str, int]]) -> pl.DataFrame:
    return pl.DataFrame({"site_id": [s for s, _ in rows], "v": [v for _, v in rows], "release": [release] * len(rows)})


@pytest.mark.parametrize("staged", [True, False])
def test_a_write_scoped_by_site_replaces_only_its_sites_rows(tmp_path: Path, staged: bool, warehouse: Location) -> None:
    """A site that failed keeps its earlier rows (`keep`); one site's partition replaces only its own (`only`);
    a site gone from the input loses its rows with an unscoped or `keep` write, as before."""
    con = connect_writable(warehouse)
    replace_partitions(con, {("analysis", "s"): sites_frame(R1, [("ABBY", 1), ("BART", 2), ("CPER", 3)])}, R1)
    replace_partitions(con, {("analysis", "s"): sites_frame(R2, [("ABBY", 9)])}, R2)

    def write(select: str, scope: SiteScope) -> None:
        refresh = str(uuid.uuid4()) if staged else None
        before = site_rows(con, "analysis.s")
        write_queries(con, {("analysis", "s"): select}, R1, refresh, scope)
        if refresh:
            assert site_rows(con, "analysis.s") == before  # staged: invisible until the commit
            commit_refresh(con, refresh)

    # BART failed this time: its rows stay; ABBY is replaced; CPER, no longer in the input, is gone
    write("SELECT 'ABBY' AS site_id, 10 AS v", SiteScope(keep=("BART",)))
    assert site_rows(con, "analysis.s") == [(R1, "ABBY", 10), (R1, "BART", 2), (R2, "ABBY", 9)]
    # one site's partition: BART only
    write("SELECT 'BART' AS site_id, 20 AS v UNION ALL SELECT 'BART', 21", SiteScope(only=("BART",)))
    assert site_rows(con, "analysis.s") == [(R1, "ABBY", 10), (R1, "BART", 20), (R1, "BART", 21), (R2, "ABBY", 9)]
    with pytest.raises(ValueError, match=r"outside the write's scope: \['ABBY'\]"):
        write("SELECT 'ABBY' AS site_id, 30 AS v", SiteScope(only=("BART",)))
    assert site_rows(con, "analysis.s") == [(R1, "ABBY", 10), (R1, "BART", 20), (R1, "BART", 21), (R2, "ABBY", 9)]
    with pytest.raises(InvalidIdentifierError):
        SiteScope(only=("x') OR true --",))


def test_a_database_staged_before_site_scopes_still_commits(tmp_path: Path, warehouse: Location) -> None:
    con = connect_writable(warehouse)
    replace_partitions(con, {("raw", "a"): frame(R1, [1])}, R1)
    refresh = str(uuid.uuid4())
    con.execute("CREATE SCHEMA meta")
    con.execute(
        "CREATE TABLE meta.staged_tables (refresh_id VARCHAR, release VARCHAR, schema_name VARCHAR, "
        "table_name VARCHAR, staged_at TIMESTAMPTZ DEFAULT now())"
    )
    con.execute(
        "CREATE TABLE meta.commits (refresh_id VARCHAR, release VARCHAR, schema_name VARCHAR, table_name VARCHAR, "
        "row_count BIGINT, committed_at TIMESTAMPTZ DEFAULT now())"
    )
    con.execute("CREATE SCHEMA staging")
    con.execute(f"CREATE TABLE staging.raw__a AS SELECT 5 AS v, '{R1}' AS release, '{refresh}' AS _refresh")
    con.execute(f"INSERT INTO meta.staged_tables VALUES ('{refresh}', '{R1}', 'raw', 'a', now())")
    assert commit_refresh(con, refresh) == {f"{R1}:raw.a": 1}
    assert visible(con, "raw.a") == [(R1, 5)]


def test_a_table_another_refresh_staged_empty_survives_this_refreshs_commit(
    tmp_path: Path, warehouse: Location
) -> None:
    """Two refreshes at once: one staged a table with zero rows; the other's commit empties the staging table
    but must not drop it, or the first one's commit cannot find it."""
    con = connect_writable(warehouse)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    stage(con, {("analysis", "b"): frame(R1, []).cast({"v": pl.Int64, "release": pl.String})}, R1, first)
    stage(con, {("analysis", "b"): frame(R2, [7])}, R2, second)
    commit_refresh(con, second)
    assert commit_refresh(con, first) == {f"{R1}:analysis.b": 0}
    assert visible(con, "analysis.b") == [(R2, 7)]
    assert con.execute("select count(*) from duckdb_tables() where schema_name = 'staging'").fetchall() == [(0,)]


SITE_CODES = st.sampled_from(["ABBY", "BART", "CPER", "DSNY", "HARV"])
SCOPES = st.one_of(
    st.lists(SITE_CODES, max_size=4, unique=True).map(lambda s: SiteScope(only=tuple(sorted(s)))),
    st.lists(SITE_CODES, max_size=4, unique=True).map(lambda s: SiteScope(keep=tuple(sorted(s)))),
)


def covered(scope: SiteScope) -> set[str]:
    """The sites (of the five) whose rows a commit with `scope` replaces."""
    every = {"ABBY", "BART", "CPER", "DSNY", "HARV"}
    return (set(scope.only) if scope.only is not None else every) - set(scope.keep)


@given(SCOPES, SCOPES)
def test_two_writes_scopes_cover_the_union_of_their_sites(first: SiteScope, second: SiteScope) -> None:
    assert covered(first.union(second)) == covered(first) | covered(second)
    assert covered(second.union(first)) == covered(first) | covered(second)


def test_site_partitions_of_one_refresh_stage_side_by_side_and_a_failed_one_is_taken_back(
    tmp_path: Path, warehouse: Location
) -> None:
    """Issue 18: one refresh's site partitions each stage their own site's rows (the second does not replace
    the first's); the refresh's readers see staged sites plus the visible rows of the others; a site taken
    back (its partition failed) keeps its visible rows at the commit; the release-level write that left
    only the current sites removes a site that left the release."""
    from rootassets.warehouse.staging import read_as_committed, unstage_site

    con = connect_writable(warehouse)
    old = [("ABBY", 1), ("BART", 2), ("CPER", 3), ("DSNY", 4)]
    replace_partitions(con, {("analysis", "s"): sites_frame(R1, old)}, R1)
    refresh = str(uuid.uuid4())
    # the release level: the current sites are ABBY, BART and CPER (DSNY left the release); no rows yet
    write_queries(
        con,
        {("analysis", "s"): "SELECT 'x' AS site_id, 0 AS v WHERE false"},
        R1,
        refresh,
        SiteScope(keep=("ABBY", "BART", "CPER")),
    )
    for site, value in (("ABBY", 10), ("BART", 20), ("CPER", 30)):
        write_queries(
            con, {("analysis", "s"): f"SELECT '{site}' AS site_id, {value} AS v"}, R1, refresh, SiteScope(only=(site,))
        )
    seen = read_as_committed(con, refresh, R1, "analysis", "s")
    assert seen.select("site_id", "v").rows() == [("ABBY", 10), ("BART", 20), ("CPER", 30)]
    assert unstage_site(con, refresh, R1, "BART", {("analysis", "s")}) == 1  # BART's partition failed
    seen = read_as_committed(con, refresh, R1, "analysis", "s")
    assert seen.select("site_id", "v").rows() == [("ABBY", 10), ("BART", 2), ("CPER", 30)]
    assert site_rows(con, "analysis.s") == [(R1, s, v) for s, v in old]  # nothing visible yet
    commit_refresh(con, refresh)
    assert site_rows(con, "analysis.s") == [(R1, "ABBY", 10), (R1, "BART", 2), (R1, "CPER", 30)]
