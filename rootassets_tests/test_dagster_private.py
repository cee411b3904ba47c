"""The private-API adapters against a real instance: they must fail here, loudly, when Dagster changes."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import threading
from pathlib import Path
from typing import Any

import dagster
import pytest
import sqlalchemy
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DataVersion,
    Definitions,
    DynamicPartitionsDefinition,
    MaterializeResult,
    asset,
    materialize,
)
from sqlalchemy.engine import Engine

from rootassets.dagster_private import SUPPORTED_DAGSTER, EventLogLocationError, FreshnessResolver

PARTS = DynamicPartitionsDefinition(name="releases_under_test")
CONTENT = ["v1"]


@asset(partitions_def=PARTS, code_version="1")
def upstream() -> MaterializeResult:
    """A partitioned asset whose data version is its content's."""
    return MaterializeResult(data_version=DataVersion(CONTENT[0]))


@asset(partitions_def=PARTS, code_version="1", deps=[upstream])
def downstream() -> None:
    """Downstream of it."""


def test_the_dagster_version_is_the_one_the_adapter_was_written_for() -> None:
    assert dagster.__version__.startswith(SUPPORTED_DAGSTER), (
        f"Dagster {dagster.__version__}: re-check rootassets/dagster_private.py (written for {SUPPORTED_DAGSTER}x), "
        "then update SUPPORTED_DAGSTER"
    )


def test_fresh_after_materialization_and_stale_after_upstream_changes() -> None:
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("releases_under_test", ["A", "B"])
    graph = Definitions(assets=[upstream, downstream]).resolve_asset_graph()
    assert not FreshnessResolver(instance, graph).is_fresh(AssetKey("downstream"), "A")  # never materialized
    materialize([upstream, downstream], instance=instance, partition_key="A")
    resolver = FreshnessResolver(instance, graph)
    assert resolver.is_fresh(AssetKey("upstream"), "A") and resolver.is_fresh(AssetKey("downstream"), "A")
    assert not resolver.is_fresh(AssetKey("downstream"), "B")
    materialize([upstream], instance=instance, partition_key="A")  # same content: still fresh
    assert FreshnessResolver(instance, graph).is_fresh(AssetKey("downstream"), "A")
    CONTENT[0] = "v2"
    materialize([upstream], instance=instance, partition_key="A")  # new content: downstream is stale
    assert not FreshnessResolver(instance, graph).is_fresh(AssetKey("downstream"), "A")


# The pooled SQLite event log: the same files as Dagster's own class, fewer connections.

POOLED_YAML = """\
event_log_storage:
  module: rootassets.dagster_private
  class: PooledSqliteEventLogStorage
  config:
    base_dir: {base_dir}
"""


@asset
def counted() -> MaterializeResult:
    """An asset with a materialization to store and read back."""
    return MaterializeResult(metadata={"rows": 3})


def _home(path: Path, pooled: bool) -> Path:
    """A Dagster home with rootassets' pooled event log, or with Dagster's defaults, on the same files."""
    path.mkdir(parents=True, exist_ok=True)
    text = POOLED_YAML.format(base_dir=json.dumps(str(path / "history" / "runs"))) if pooled else ""
    (path / "dagster.yaml").write_text(text)
    return path


def _materializations(instance: DagsterInstance) -> list[str]:
    result = instance.fetch_materializations(AssetKey("counted"), limit=100)
    return sorted(record.run_id for record in result.records)


def _connections_opened(folder: Path) -> tuple[list[int], object]:
    """A counter of new SQLite connections to the files in `folder` (SQLAlchemy's "connect" event, every engine)."""
    opened = [0]

    def count(dbapi_connection: Any, _: object) -> None:
        name = dbapi_connection.execute("PRAGMA database_list").fetchone()[2]
        opened[0] += Path(name).parent == folder

    sqlalchemy.event.listen(Engine, "connect", count)
    return opened, count


def test_the_pooled_event_log_uses_dagsters_own_files_both_ways(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = tmp_path / "dagster"
    with DagsterInstance.from_config(str(_home(home, pooled=False))) as instance:
        before = materialize([counted], instance=instance).run_id  # Dagster's own class writes
    with DagsterInstance.from_config(str(_home(home, pooled=True))) as instance:
        assert type(instance.event_log_storage).__name__ == "PooledSqliteEventLogStorage"
        assert _materializations(instance) == [before]  # an existing home's history is read
        after = materialize([counted], instance=instance).run_id
        assert instance.get_run_by_id(after).is_success
        assert len(instance.all_logs(after)) > 5
    with DagsterInstance.from_config(str(_home(home, pooled=False))) as instance:
        assert _materializations(instance) == sorted([before, after])  # and Dagster's class reads what it wrote
        assert {event.dagster_event_type for event in instance.all_logs(after) if event.dagster_event} >= {
            DagsterEventType.RUN_SUCCESS,
            DagsterEventType.ASSET_MATERIALIZATION,
        }


def test_events_reuse_the_open_connections_instead_of_one_each(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    opened_by = {}
    for pooled in (False, True):
        with DagsterInstance.from_config(str(_home(tmp_path / str(pooled), pooled))) as instance:
            run_id = materialize([counted], instance=instance).run_id  # the run's file exists and is open
            opened, listener = _connections_opened(tmp_path / str(pooled) / "history" / "runs")
            try:
                for i in range(50):
                    instance.report_engine_event(f"message {i}", job_name="__ASSET_JOB", run_id=run_id)
                    instance.has_dynamic_partition("releases_under_test", "A")  # asks has_table first
                materialize([counted], instance=instance)  # a new run: its file is created once
            finally:
                sqlalchemy.event.remove(Engine, "connect", listener)
            opened_by[pooled] = opened[0]
    assert opened_by[False] >= 2 * 50 + 12  # Dagster's own class: a connection for every event and lookup
    assert opened_by[True] <= 8, opened_by  # the new run's file created and migrated by Dagster's code, then one


def test_only_the_most_recent_run_files_stay_open_and_the_others_reopen(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with DagsterInstance.from_config(str(_home(tmp_path, pooled=True))) as instance:
        storage = instance.event_log_storage
        runs = [materialize([counted], instance=instance).run_id for _ in range(storage.RECENT_RUNS + 3)]
        open_runs = [shard for shard in storage._engines if shard != "index"]
        assert open_runs == runs[-storage.RECENT_RUNS :]
        assert all(len(instance.all_logs(run_id)) > 5 for run_id in runs)  # the closed ones reopen
        assert _materializations(instance) == sorted(runs)


def test_wipe_closes_the_connections_before_deleting_the_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with DagsterInstance.from_config(str(_home(tmp_path, pooled=True))) as instance:
        first = materialize([counted], instance=instance).run_id
        instance.event_log_storage.wipe()
        assert instance.all_logs(first) == []
        second = materialize([counted], instance=instance).run_id
    with DagsterInstance.from_config(str(_home(tmp_path, pooled=False))) as instance:
        assert (tmp_path / "history" / "runs" / f"{second}.db").is_file()
        assert _materializations(instance) == [second]  # written to the new file, not the deleted one


def test_threads_and_a_forked_child_each_store_their_events(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with DagsterInstance.from_config(str(_home(tmp_path, pooled=True))) as instance:
        run_id = materialize([counted], instance=instance).run_id
        base = len(instance.all_logs(run_id))

        def log(n: int) -> None:
            for i in range(n):
                instance.report_engine_event(f"thread message {i}", job_name="__ASSET_JOB", run_id=run_id)

        threads = [threading.Thread(target=log, args=(25,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(instance.all_logs(run_id)) == base + 100
        child = multiprocessing.get_context("fork").Process(target=log, args=(10,))
        child.start()
        child.join(60)
        assert child.exitcode == 0
        log(1)  # the parent's own connections still work
        assert len(instance.all_logs(run_id)) == base + 111


def test_an_event_log_outside_its_home_is_refused_naming_the_file(tmp_path: Path, monkeypatch) -> None:
    old = _home(tmp_path / "old", pooled=True)
    with DagsterInstance.from_config(str(old)) as instance:
        materialize([counted], instance=instance)
    runs_before = sorted((old / "history" / "runs").glob("*.db"))
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "dagster.yaml").write_text((old / "dagster.yaml").read_text())  # copied by hand, not rewritten
    monkeypatch.setenv("DAGSTER_HOME", str(moved))
    with pytest.raises(EventLogLocationError, match=r"moved/dagster\.yaml: event_log_storage's base_dir .*/old/"):
        DagsterInstance.get()
    monkeypatch.setenv("DAGSTER_HOME", str(old))  # a home's own file, while DAGSTER_HOME names another: fine
    with DagsterInstance.from_config(str(_home(tmp_path / "other", pooled=True))) as instance:
        materialize([counted], instance=instance)
    assert sorted((old / "history" / "runs").glob("*.db")) == runs_before  # no run wrote into the old home


def test_a_table_found_is_remembered_and_a_missing_one_asked_again(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with DagsterInstance.from_config(str(_home(tmp_path, pooled=True))) as instance:
        storage = instance.event_log_storage
        assert storage.has_table("event_logs") and not storage.has_table("added_by_a_migration")
        with sqlite3.connect(tmp_path / "history" / "runs" / "index.db") as database:
            database.execute("CREATE TABLE added_by_a_migration (id INTEGER)")
        assert storage.has_table("added_by_a_migration")
        opened, listener = _connections_opened(tmp_path / "history" / "runs")
        try:
            assert storage.has_table("event_logs") and storage.has_table("added_by_a_migration")
        finally:
            sqlalchemy.event.remove(Engine, "connect", listener)
        assert opened[0] == 0


def test_the_pooled_connections_flush_at_checkpoints_only_in_wal_files(tmp_path: Path, monkeypatch) -> None:
    """WAL files (Dagster creates its event log so) commit at synchronous=NORMAL; a file in another journal mode
    keeps SQLite's FULL, where NORMAL could corrupt it on a power loss. Events still land, and Dagster's own
    class reads them."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = tmp_path / "dagster"
    with DagsterInstance.from_config(str(_home(home, pooled=True))) as instance:
        run_id = materialize([counted], instance=instance).run_id
        storage = instance.event_log_storage
        with storage._pooled("index") as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        with storage._pooled(run_id) as connection:
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1
        storage._close_all()
    run_file = home / "history" / "runs" / f"{run_id}.db"
    with sqlite3.connect(run_file) as plain:
        plain.execute("PRAGMA journal_mode=DELETE")
    with DagsterInstance.from_config(str(_home(home, pooled=True))) as instance:
        with instance.event_log_storage._pooled(run_id) as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL, SQLite's default
        assert len(instance.all_logs(run_id)) > 5
    with DagsterInstance.from_config(str(_home(home, pooled=False))) as instance:
        assert _materializations(instance) == [run_id]
