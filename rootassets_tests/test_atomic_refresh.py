"""Atomic refresh: a run's tables become visible together, only when it succeeds."""

from __future__ import annotations

import uuid
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dagster import AssetKey, asset

from rootassets.defs.harmonized import harmonized_assets
from rootassets.defs.raw import raw_assets
from rootassets.defs.resources import WarehouseResource
from rootassets.neon.identifiers import InvalidIdentifierError
from rootassets.warehouse import replace_partitions
from rootassets.warehouse.staging import (
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


def test_staged_tables_stay_invisible_until_one_commit_swaps_them_all(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
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

    counts = commit_refresh(con, refresh)
    assert counts == {f"{R1}:raw.a": 2, f"{R1}:analysis.b": 1, f"{R1}:analysis.c": 1}
    assert visible(con, "raw.a") == [(R1, 5), (R1, 6), (R2, 2)]  # the other release untouched
    assert visible(con, "analysis.b") == [(R1, 50)]
    assert con.execute("select s from marts.m").fetchall() == [(7,)]
    staging_left = "select table_name from duckdb_tables() where schema_name = 'staging'"
    assert con.execute(staging_left).fetchall() == []  # an emptied staging table is dropped
    assert con.execute("select count(*) from meta.commits where refresh_id = ?", [refresh]).fetchall() == [(3,)]


def test_a_discarded_refresh_leaves_the_visible_tables_as_they_were(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
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


def test_a_quarantine_table_computed_in_sql_comes_into_being_with_its_first_row(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
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


def test_a_commit_that_fails_midway_changes_nothing(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    replace_partitions(con, {("raw", "a"): frame(R1, [1])}, R1)
    refresh = str(uuid.uuid4())
    stage(con, {("raw", "a"): frame(R1, [9])}, R1, refresh)
    stage_statement(con, refresh, "marts.bad:0", "CREATE VIEW marts.bad AS SELECT * FROM no_such_table")
    with pytest.raises(duckdb.Error):
        commit_refresh(con, refresh)
    assert visible(con, "raw.a") == [(R1, 1)]
    assert read_staged(con, refresh, R1, "raw", "a")["v"].to_list() == [9]  # still staged, not lost


def test_refresh_ids_and_release_tags_are_validated_before_reaching_sql(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
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
        with duckdb.connect(str(settings.database)) as reader:  # another reader, mid-run
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
    with duckdb.connect(str(settings.database), read_only=True) as con:
        assert con.execute("select count(*) from meta.staged_tables").fetchall() == [(0,)]  # discarded

    assert run_assets(settings, [*raw_assets, *harmonized_assets]).success
    with duckdb.connect(str(settings.database), read_only=True) as con:
        assert con.execute("select count(distinct site_id) from raw.mpr_perrootsample").fetchall() == [
            (sites_before - 1,)
        ]
        assert con.execute("select count(distinct site_id) from harmonized.root_profiles").fetchall() == [
            (sites_before - 1,)
        ]
