"""The one place rootassets uses Dagster's private API.

- The stale-status resolver behind the UI's "up to date": Dagster 1.13 has no public call that says whether
  an asset partition is fresh (same code version and upstream data versions as its last materialization);
  the CLI needs exactly that to skip what is up to date.
- The SQLite event log's connections: Dagster's own class opens an engine, a connection and a transaction
  for every event it stores; `PooledSqliteEventLogStorage` keeps them open, and commits without waiting for
  the disk in its write-ahead-log files (the instance's dagster.yaml names it; see its docstring).

`rootassets_tests/test_dagster_private.py` checks both against a real instance and fails loudly, naming this
module, when a Dagster upgrade changes them.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster import AssetKey, DagsterInstance
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

SUPPORTED_DAGSTER = "1.13."


class FreshnessResolver:
    """Whether asset partitions are fresh in Dagster's eyes; caches what it read (valid until something is
    materialized)."""

    def __init__(self, instance: DagsterInstance, graph: Any) -> None:
        from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
        from dagster._core.loader import LoadingContext

        class _Loading(LoadingContext):
            def __init__(self) -> None:
                self._loaders: dict = {}

            @property
            def instance(self) -> DagsterInstance:
                return instance

            @property
            def loaders(self) -> dict:
                return self._loaders

        self._fresh = StaleStatus.FRESH
        self._resolver = CachingStaleStatusResolver(instance, graph, _Loading())

    def is_fresh(self, key: AssetKey, partition: str | None) -> bool:
        return self._resolver.get_status(key, partition) == self._fresh


class EventLogLocationError(ValueError):
    """dagster.yaml's event log is not in the home Dagster was pointed at (the message says which and why)."""


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log (the same files, tables and transactions), with a connection kept open per
    database file instead of an engine opened and closed for every event.

    Dagster's class stores each event through a new engine, connection and transaction (SQLAlchemy's
    NullPool): ~4 ms an event on this machine, ~1,000 events in a cold main job. Here the index and the
    `RECENT_RUNS` most recently used run files each keep one connection, reused under a lock (as Dagster's
    class serializes its own); a file is created and migrated by Dagster's own code the first time it is
    opened; the index's tables, once found, are not looked up again. The webserver, the daemon and
    Dagster's own class read and write the same files alongside it: SQLite's locking and write-ahead log
    are unchanged, and an idle connection holds no lock; its connections to WAL files commit at
    `synchronous=NORMAL` (`_sync_at_checkpoints_in_wal`). The overrides are `SqlEventLogStorage`'s abstract
    connection and table methods, as Dagster's MySQL and PostgreSQL storages do.
    """

    RECENT_RUNS = 8

    def __init__(self, base_dir: str, inst_data: Any = None) -> None:
        self._pool_lock = threading.Lock()  # set first: Dagster's __init__ may index a new file's events
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._pid = os.getpid()
        self._tables: set[str] = set()
        super().__init__(base_dir, inst_data)

    def register_instance(self, instance: Any) -> None:
        super().register_instance(instance)
        _check_in_home(self._base_dir, instance.root_directory)

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def run_connection(self, run_id: str | None = None) -> Any:
        if not isinstance(run_id, str):
            raise TypeError(f"run_connection: a run id is needed, got {run_id!r}")
        return self._pooled(run_id)

    def index_connection(self) -> Any:
        return self._pooled(INDEX_SHARD_NAME)

    def has_table(self, table_name: str) -> bool:
        """Whether the index has the table, remembered once it has: Dagster asks before most writes and every
        partition lookup (~640 times in a cold main job), each time through a new engine. A table is only
        ever added (by a migration), so only its absence is asked again."""
        if table_name not in self._tables:
            if not super().has_table(table_name):  # its own engine: callers may hold the index's connection
                return False
            self._tables.add(table_name)
        return True

    @contextmanager
    def _pooled(self, shard: str) -> Iterator[Connection]:
        with self._pool_lock:
            engine = self._engine(shard)
            with engine.connect() as connection, connection.begin():
                yield connection

    def _engine(self, shard: str) -> Engine:
        """The shard's engine (most recently used last), created on first use; the least recently used run
        file's is closed past RECENT_RUNS."""
        if os.getpid() != self._pid:  # a forked child: the parent's connections are not its to use or close
            for inherited in self._engines.values():
                inherited.dispose(close=False)
            self._engines.clear()
            self._pid = os.getpid()
        engine = self._engines.pop(shard, None)
        if engine is None:
            with super().run_connection(shard):  # Dagster's own code creates and migrates a new file
                pass
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=StaticPool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            event.listen(engine, "connect", _sync_at_checkpoints_in_wal)
        self._engines[shard] = engine
        runs = [name for name in self._engines if name != INDEX_SHARD_NAME]
        for oldest in runs[: max(0, len(runs) - self.RECENT_RUNS)]:
            self._engines.pop(oldest).dispose()
        return engine

    def _close_all(self) -> None:
        self._tables.clear()
        with self._pool_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def wipe(self) -> None:
        self._close_all()  # before the run files are deleted under open connections
        super().wipe()

    def upgrade(self) -> None:
        self._close_all()
        super().upgrade()

    def dispose(self) -> None:
        self._close_all()
        super().dispose()


def _sync_at_checkpoints_in_wal(connection: Any, _record: Any) -> None:
    """`PRAGMA synchronous=NORMAL` on a file in write-ahead-log mode (Dagster creates its event log files so):
    a commit no longer waits for the disk to flush the log, only a checkpoint does. SQLite's documentation: in
    WAL mode this stays consistent, and durable across an application crash; only a power loss or an
    operating-system crash may roll back the last commits, after which the assets of the lost events are
    recomputed (never the other way round). A cold main job commits ~3,000 times; at FULL each commit waits
    for a flush (0.16 ms on the benchmark machine's disk, several ms on many laptops'). A file in another
    journal mode keeps Dagster's FULL."""
    cursor = connection.cursor()
    try:
        (mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
        if str(mode).lower() == "wal":
            cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _check_in_home(base_dir: str, home: str) -> None:
    """Refuse an event log outside the instance's own home: a home moved or copied with its dagster.yaml (which
    names the folder by its absolute path) would otherwise write its events into the old home's files while
    its runs go to the new one."""
    home_path, base = os.path.realpath(home), os.path.realpath(base_dir)
    if os.path.commonpath([home_path, base]) != home_path:
        raise EventLogLocationError(
            f"{os.path.join(home, 'dagster.yaml')}: event_log_storage's base_dir {base_dir} is not under this "
            f"Dagster home, {home} (was the home moved or copied?). Any rootassets command rewrites the file "
            "rootassets wrote; a file you wrote needs its base_dir corrected."
        )
