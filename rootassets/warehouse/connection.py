"""The DuckDB contract: schemas by stage, one `release` column, replace by partition.

Every write replaces exactly one release's rows of one table inside one
transaction, so a failed write leaves the previous rows as they were.
Readers use short read-only connections that retry while a writer holds the
file lock.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

import duckdb
import polars as pl

from rootassets.neon.identifiers import TABLE_PATTERN, InvalidIdentifierError, validate_release
from rootassets.warehouse.lake import LakeLocation, connect_lake

P = ParamSpec("P")
T = TypeVar("T")

# Where the warehouse is: the DuckDB file, or a DuckLake catalog (rootassets.warehouse.lake).
Location = Path | LakeLocation

SCHEMAS = ("raw", "harmonized", "analysis", "marts", "quarantine")
INTERNAL_SCHEMAS = ("staging", "meta")  # see rootassets.warehouse.staging


class WarehouseBusyError(RuntimeError):
    """The database stayed locked by a writer for longer than the reader waits."""


class WarehouseVersionError(RuntimeError):
    """The database file was written by a DuckDB newer than the one installed (its storage format is newer)."""


def _refuse_newer_format(path: Path | str, exc: duckdb.Error) -> None:
    if "database file with version number" in str(exc):
        raise WarehouseVersionError(
            f"{path} was written by a newer DuckDB than this install's {duckdb.__version__} (rootassets pins DuckDB; "
            "see the README): move it aside and run `rootassets materialize`, which rebuilds it from NEON's files"
        ) from exc


def quote_ident(name: str) -> str:
    """Quote an identifier for DuckDB (names come from NEON headers, so quote them all)."""
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    if schema not in SCHEMAS + INTERNAL_SCHEMAS:
        raise InvalidIdentifierError(f"unknown schema {schema!r}: expected one of {SCHEMAS}")
    if not TABLE_PATTERN.fullmatch(table):
        raise InvalidIdentifierError(f"invalid table name {table!r}")
    return f"{quote_ident(schema)}.{quote_ident(table)}"


CONFLICT_ATTEMPTS = 12


def retry_on_conflict(write: Callable[P, T]) -> Callable[P, T]:
    """Run `write` (one transaction) again when it lost a write-write conflict to another committer: on a
    DuckLake, runs of different partitions commit side by side, and DuckLake refuses the second of two
    transactions that delete from and insert into one table at once (it rolls it back whole). Waits grow
    from ~50 ms to 2 s, jittered, so that committers spread out."""

    @functools.wraps(write)
    def attempt(*args: P.args, **kwargs: P.kwargs) -> T:
        delay = 0.05
        for tries in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                return write(*args, **kwargs)
            except duckdb.TransactionException as exc:
                if "conflict" not in str(exc).lower() or tries == CONFLICT_ATTEMPTS:
                    raise
                time.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    return attempt


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN, then COMMIT when the block succeeds or ROLLBACK when it raises (anything, even a kill signal)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


@retry_on_conflict
def replace_partitions(
    con: duckdb.DuckDBPyConnection, frames: dict[tuple[str, str], pl.DataFrame], release: str
) -> dict[str, int]:
    """Replace the rows of `release` in each `(schema, table)` with its frame, in one transaction.

    Tables are created on first write and columns new in this release are
    added. Either every table is replaced or, on any error, none is.
    Returns the number of rows written per `schema.table`.
    """
    check_frames(frames, release)
    with transaction(con):
        for (schema, table), frame in frames.items():
            replace_rows(con, schema, table, frame, f"release = '{release}'", release)
    return {f"{schema}.{table}": frame.height for (schema, table), frame in frames.items()}


def check_frames(frames: dict[tuple[str, str], pl.DataFrame], release: str) -> None:
    """Refuse a write whose names are not valid or whose rows are not all of `release`."""
    validate_release(release)
    for (schema, table), frame in frames.items():
        qualified(schema, table)
        if "release" not in frame.columns:
            raise ValueError(f"{schema}.{table}: frame has no 'release' column")
        if frame.height and frame["release"].ne(release).any():
            raise ValueError(f"{schema}.{table}: frame holds rows of a release other than {release}")


def read_release(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, release: str, where: str = ""
) -> pl.DataFrame:
    """The rows of `release` in `schema.table` as a polars frame (`where` is a fixed SQL condition).

    Rows come in one canonical order (ORDER BY ALL): DuckDB's parallel scan returns them in any
    order, and a float sum over them would then differ in its last bits from run to run.

    Run with `execute`, not `sql`: a relation made with parameters is materialized at once, and turning that
    relation into a frame renders it back into a query (duckdb/duckdb#22599), ten times slower on a million
    rows than fetching the executed query's result."""
    validate_release(release)
    condition = f" AND ({where})" if where else ""
    query = f"SELECT * FROM {qualified(schema, table)} WHERE release = $1{condition} ORDER BY ALL"
    return con.execute(query, [release]).pl()


# Columns renamed because their old names misled (README, "Renamed columns"): a table written before the rename
# has its column renamed in place on its next write, so one quantity never has two names in one table.
COLUMN_RENAMES: dict[tuple[str, str], dict[str, str]] = {
    ("analysis", "site_modality"): {
        "primary_density": "d0_kde_density",
        "secondary_density": "d2_kde_density",
        "n_depths": "kde_sample_size",
    },
}


# A raw table used to carry the source's site column beside `site_id`, the same values under two names (README,
# "Renamed columns"); `site_id` is the one left. On the table's next write, a row's site moves into `site_id`
# where it had none there (a lab's table), and the former column is dropped.
FORMER_SITE_COLUMNS = ("siteID", "field_site_id")


def _rename_former_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str, target: str) -> None:
    logical = (schema, table)
    if schema == "staging" and "__" in table:
        logical = tuple(table.split("__", 1))  # the staging copy of a table
    existing = table_columns(con, schema, table) or {}
    for former, current in COLUMN_RENAMES.get(logical, {}).items():
        if former in existing and current not in existing:
            con.execute(f"ALTER TABLE {target} RENAME COLUMN {quote_ident(former)} TO {quote_ident(current)}")
    if logical[0] == "raw" and "site_id" in existing:
        for former in (c for c in FORMER_SITE_COLUMNS if c in existing):
            # An ALTER, not an UPDATE: DuckDB refuses to commit a table altered after its rows changed.
            con.execute(
                f"ALTER TABLE {target} ALTER COLUMN site_id SET DATA TYPE VARCHAR "
                f"USING coalesce(site_id, CAST({quote_ident(former)} AS VARCHAR))"
            )
            con.execute(f"ALTER TABLE {target} DROP COLUMN {quote_ident(former)}")


def replace_rows(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, frame: pl.DataFrame | None, condition: str, release: str
) -> None:
    """Inside the caller's transaction: delete the rows of `schema.table` matching `condition` (fixed SQL,
    never user input) and insert `frame`, or the relation `incoming_rows` the caller defined when
    `frame` is None. The table is created on first write; new columns are added."""
    validate_release(release)
    target = qualified(schema, table)
    if frame is not None:
        con.register("incoming_rows", frame)
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        if table_columns(con, schema, table) is None:
            con.execute(f"CREATE TABLE {target} AS SELECT * FROM incoming_rows LIMIT 0")
        else:
            _rename_former_columns(con, schema, table, target)
            _add_missing_columns(con, schema, table, target)
        con.execute(f"DELETE FROM {target} WHERE {condition}")
        con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM incoming_rows")
    finally:
        if frame is not None:
            con.unregister("incoming_rows")


def table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> dict[str, str] | None:
    """{column: type} of `schema.table` (a table or a view), or None if it does not exist.

    `pragma_table_info` looks up the one table (0.2 ms); `duckdb_columns()` lists every column of the database
    first (2 ms, ~800 calls in a cold main job). A missing table is a binder error, which leaves an open
    transaction usable."""
    try:
        rows = con.execute(f"SELECT name, type FROM pragma_table_info('{qualified(schema, table)}')").fetchall()
    except duckdb.CatalogException:
        return None
    return {name: dtype for name, dtype in rows} if rows else None


def _add_missing_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str, target: str) -> None:
    existing = {c.lower() for c in table_columns(con, schema, table) or {}}
    incoming = con.execute("DESCRIBE incoming_rows").fetchall()
    for name, dtype, *_ in incoming:
        if name.lower() not in existing:
            con.execute(f"ALTER TABLE {target} ADD COLUMN {quote_ident(name)} {dtype}")


def _locked(exc: duckdb.IOException) -> bool:
    """Whether DuckDB could not open the file because another process holds its lock ('Could not set lock on
    file "...": Conflicting lock is held in ...'). Not any message with "lock" in it: the file's path may have."""
    message = str(exc).lower()
    return "could not set lock on file" in message or "conflicting lock is held" in message


def connect_writable(path: Location | str, wait_s: float = 600.0) -> duckdb.DuckDBPyConnection:
    """Open the database for writing, waiting (up to `wait_s`) while another process holds its lock (a lake
    has no such lock: its writers commit independently)."""
    if isinstance(path, LakeLocation):
        return connect_lake(path)
    deadline = time.monotonic() + wait_s
    delay = 0.1
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as exc:
            _refuse_newer_format(path, exc)
            if not _locked(exc):
                raise  # not another writer (a missing folder, a file it may not write): DuckDB names the file
            if time.monotonic() > deadline:
                raise WarehouseBusyError(f"{path} stayed locked by another writer for {wait_s:.0f} s ({exc})") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def connect_read_only(
    path: Location | str,
    attempts: int = 20,
    wait_s: float = 0.25,
    on_wait: Callable[[str], None] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the database read-only, retrying while a writer holds the lock (a lake's readers never wait: they
    see its latest committed snapshot)."""
    if isinstance(path, LakeLocation):
        return connect_lake(path, read_only=True)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no database at {path}: run `rootassets materialize` first (or set ROOTASSETS_HOME)")
    last: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.IOException as exc:
            _refuse_newer_format(path, exc)
            if not _locked(exc):
                raise  # not a writer's lock (a file it may not read): DuckDB names the file
            last = exc
            if on_wait and attempt == 1:
                on_wait(f"{path} is locked by a running materialization; waiting for it")
            time.sleep(min(wait_s * attempt, 2.0))
    raise WarehouseBusyError(
        f"{path} stayed locked by a writer for {attempts} attempts; try again when the run finishes ({last})"
    )
