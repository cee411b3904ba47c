"""Atomic refresh: a run's tables are staged, and become visible all at once when it succeeds.

A refresh (one Dagster run, or the runs of one `rootassets materialize`)
writes every table into the `staging` schema under its refresh id. Its own
later steps read those staged rows; everybody else (the UI, `rootassets
sql`, other runs) keeps seeing the committed tables. `commit_refresh` then
swaps every staged partition into place and runs the staged mart
statements, all in one DuckDB transaction, so readers see the old rows or
the new rows, never a mix. A failed refresh is discarded; a killed one
leaves only invisible staging rows, which the next commit or discard of that
refresh removes.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import polars as pl

from rootassets.neon.identifiers import InvalidIdentifierError, validate_release, validate_site
from rootassets.science.glossary import USER_SCHEMAS, describe_column, undescribed_neon_field
from rootassets.warehouse.connection import (
    check_frames,
    qualified,
    quote_ident,
    read_release,
    replace_rows,
    retry_on_conflict,
    table_columns,
    transaction,
)
from rootassets.warehouse.lake import LAKE_ALIAS, label_commit, on_lake

STAGING, META, QUARANTINE = "staging", "meta", "quarantine"
REFRESH_TAG = "rootassets/refresh"  # a run tagged with it belongs to a refresh its launcher commits
REFRESH_COLUMN = "_refresh"
REFRESH_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

_META_TABLES = {
    "staged_tables": "refresh_id VARCHAR, release VARCHAR, schema_name VARCHAR, table_name VARCHAR, "
    "staged_at TIMESTAMPTZ DEFAULT now(), only_sites VARCHAR[], keep_sites VARCHAR[]",
    "staged_statements": "refresh_id VARCHAR, name VARCHAR, statement VARCHAR, staged_at TIMESTAMPTZ DEFAULT now()",
    "commits": "refresh_id VARCHAR, release VARCHAR, schema_name VARCHAR, table_name VARCHAR, row_count BIGINT, "
    "committed_at TIMESTAMPTZ DEFAULT now()",
}


def validate_refresh(refresh_id: object) -> str:
    """Return `refresh_id` if it is a run id (a lowercase UUID); it is inlined into SQL."""
    if not isinstance(refresh_id, str) or not REFRESH_PATTERN.fullmatch(refresh_id):
        raise InvalidIdentifierError(f"invalid refresh id {refresh_id!r}: expected a run id (UUID)")
    return refresh_id


@dataclass(frozen=True)
class SiteScope:
    """Which of a release's rows a write replaces, by site: every row (the default), only `only` sites' rows
    (one site's partition), or every row but the `keep` sites' (a refresh in which those sites failed: their
    earlier rows stay as they were)."""

    only: tuple[str, ...] | None = None
    keep: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for site in (*(self.only or ()), *self.keep):
            validate_site(site)  # inlined into SQL

    def condition(self) -> str:
        """The SQL condition on `site_id` (TRUE for every row)."""
        parts = []
        if self.only is not None:
            parts.append(f"site_id IN ({_site_list(self.only)})" if self.only else "false")
        if self.keep:
            parts.append(f"(site_id IS NULL OR site_id NOT IN ({_site_list(self.keep)}))")
        return " AND ".join(parts) or "true"

    def union(self, other: SiteScope) -> SiteScope:
        """The sites either scope covers: two writes of one refresh (two site partitions) replace both's rows."""
        if self.only is not None and other.only is not None:
            return SiteScope(only=tuple(sorted(set(self.only) | set(other.only))))
        if self.only is None and other.only is None:
            return SiteScope(keep=tuple(sorted(set(self.keep) & set(other.keep))))
        listed, kept = (self, other) if self.only is not None else (other, self)
        return SiteScope(keep=tuple(sorted(set(kept.keep) - set(listed.only or ()))))

    def covers(self, site: str) -> bool:
        return (self.only is None or site in self.only) and site not in self.keep

    def without(self, site: str) -> SiteScope:
        """This scope less one site (whose rows then stay as they are)."""
        if self.only is not None:
            return SiteScope(only=tuple(s for s in self.only if s != site), keep=self.keep)
        return SiteScope(keep=tuple(sorted({*self.keep, site})))


EVERY_SITE = SiteScope()


def _site_list(sites: tuple[str, ...]) -> str:
    return ", ".join(f"'{validate_site(s)}'" for s in sites)


def staging_name(schema: str, table: str) -> str:
    qualified(schema, table)  # validates both parts
    return f"{quote_ident(STAGING)}.{quote_ident(f'{schema}__{table}')}"


@retry_on_conflict
def stage(
    con: duckdb.DuckDBPyConnection, frames: dict[tuple[str, str], pl.DataFrame], release: str, refresh_id: str
) -> dict[str, int]:
    """Stage each `(schema, table)` frame as `release`'s rows for `refresh_id`, in one transaction."""
    check_frames(frames, release)
    validate_refresh(refresh_id)
    with transaction(con):
        _ensure_meta(con)
        for (schema, table), frame in frames.items():
            tagged = frame.with_columns(pl.lit(refresh_id).alias(REFRESH_COLUMN))
            replace_rows(con, STAGING, f"{schema}__{table}", tagged, _staged_rows(release, refresh_id), release)
            _record_staged(con, refresh_id, release, schema, table)
    return {f"{schema}.{table}": frame.height for (schema, table), frame in frames.items()}


@retry_on_conflict
def write_queries(
    con: duckdb.DuckDBPyConnection,
    queries: dict[tuple[str, str], str],
    release: str,
    refresh_id: str | None,
    scope: SiteScope | Mapping[tuple[str, str], SiteScope] = EVERY_SITE,
) -> dict[str, int]:
    """Replace `release`'s rows of each table (those `scope` names: one for all tables, or per table) with the
    rows of a SELECT run inside DuckDB, in one transaction: staged under `refresh_id`, or directly visible
    when it is None. The SELECTs must give rows of the scope's sites only."""
    validate_release(release)
    if refresh_id is not None:
        validate_refresh(refresh_id)
    counts = {}
    with transaction(con):
        if refresh_id is not None:
            _ensure_meta(con)
        for key, select in queries.items():
            schema, table = key
            table_scope = scope if isinstance(scope, SiteScope) else scope.get(key, EVERY_SITE)
            tag = f", '{refresh_id}' AS {REFRESH_COLUMN}" if refresh_id else ""
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW incoming_rows AS "
                f"SELECT q.*, '{release}' AS release{tag} FROM ({select}) AS q"
            )
            try:
                if schema == QUARANTINE and not _has_incoming_rows(con) and not exists(con, refresh_id, release, *key):
                    counts[f"{schema}.{table}"] = 0  # a quarantine table comes into being with its first row
                    continue
                _check_scope(con, f"{schema}.{table}", table_scope)
                if refresh_id is None:
                    target, condition = qualified(schema, table), f"release = '{release}' AND {table_scope.condition()}"
                    replace_rows(con, schema, table, None, condition, release)
                else:  # replaces the scope's staged rows only: the refresh's other site partitions stay
                    target = staging_name(schema, table)
                    condition = f"{_staged_rows(release, refresh_id)} AND {table_scope.condition()}"
                    replace_rows(con, STAGING, f"{schema}__{table}", None, condition, release)
                    _record_staged(con, refresh_id, release, schema, table, table_scope)
            finally:
                con.execute("DROP VIEW IF EXISTS incoming_rows")
            counts[f"{schema}.{table}"] = con.execute(f"SELECT count(*) FROM {target} WHERE {condition}").fetchall()[0][
                0
            ]
    return counts


@retry_on_conflict
def stage_statement(con: duckdb.DuckDBPyConnection, refresh_id: str, name: str, statement: str) -> None:
    """Stage a DDL statement (a mart) to run, after the table swaps, in the commit's transaction."""
    validate_refresh(refresh_id)
    with transaction(con):
        _ensure_meta(con)
        con.execute("DELETE FROM meta.staged_statements WHERE refresh_id = ? AND name = ?", [refresh_id, name])
        con.execute(
            "INSERT INTO meta.staged_statements (refresh_id, name, statement) VALUES (?, ?, ?)",
            [refresh_id, name, statement],
        )


def exists(con: duckdb.DuckDBPyConnection, refresh_id: str | None, release: str, schema: str, table: str) -> bool:
    """Whether `schema.table` exists: visible, or staged by `refresh_id` for `release`."""
    if table_columns(con, schema, table) is not None:
        return True
    return refresh_id is not None and is_staged(con, refresh_id, release, schema, table)


def _has_incoming_rows(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute("SELECT EXISTS (SELECT 1 FROM incoming_rows)").fetchall()[0][0])


def is_staged(con: duckdb.DuckDBPyConnection, refresh_id: str, release: str, schema: str, table: str) -> bool:
    if table_columns(con, META, "staged_tables") is None:
        return False
    return (
        con.execute(
            "SELECT count(*) FROM meta.staged_tables WHERE refresh_id = ? AND release = ? AND schema_name = ? "
            "AND table_name = ?",
            [refresh_id, release, schema, table],
        ).fetchall()[0][0]
        > 0
    )


def read_staged(
    con: duckdb.DuckDBPyConnection, refresh_id: str, release: str, schema: str, table: str, where: str = ""
) -> pl.DataFrame:
    """The staged rows of `release` in `schema.table` for `refresh_id`, without the refresh column, in
    the same canonical order as `read_release` (and, as it, executed rather than made a relation)."""
    validate_refresh(refresh_id)
    condition = f" AND ({where})" if where else ""
    return con.execute(
        f"SELECT * EXCLUDE ({REFRESH_COLUMN}) FROM {staging_name(schema, table)} "
        f"WHERE release = $1 AND {REFRESH_COLUMN} = $2{condition} ORDER BY ALL",
        [validate_release(release), refresh_id],
    ).pl()


def read_as_committed(
    con: duckdb.DuckDBPyConnection, refresh_id: str, release: str, schema: str, table: str, where: str = ""
) -> pl.DataFrame:
    """The rows of `release` in `schema.table` as `refresh_id`'s commit would leave them: its staged rows,
    and the visible rows of the sites outside what it staged (site partitions not refreshed, or kept after a
    failure). Canonical order, as `read_release`."""
    scope = staged_scope(con, refresh_id, release, schema, table)
    staged = read_staged(con, refresh_id, release, schema, table, where)
    if scope is None or scope == EVERY_SITE or table_columns(con, schema, table) is None:
        return staged
    outside = f"NOT ({scope.condition()})" + (f" AND ({where})" if where else "")
    visible = read_release(con, schema, table, release, outside)
    if not visible.height:
        return staged
    return pl.concat([staged, visible.select(staged.columns)], how="vertical_relaxed").sort(staged.columns)


def staged_scope(
    con: duckdb.DuckDBPyConnection, refresh_id: str, release: str, schema: str, table: str
) -> SiteScope | None:
    """Which sites' rows `refresh_id` staged for `release` in the table (None: it staged none)."""
    for staged_release, staged_schema, staged_table, scope in _staged_scopes(con, refresh_id):
        if (staged_release, staged_schema, staged_table) == (release, schema, table):
            return scope
    return None


@retry_on_conflict
def unstage_site(
    con: duckdb.DuckDBPyConnection,
    refresh_id: str,
    release: str,
    site: str,
    tables: Collection[tuple[str, str]],
) -> int:
    """Take back what `refresh_id` staged for one site of `release` in the site partition's `tables` (its
    partition failed): its rows leave the staging and the site leaves each table's scope, so the commit keeps
    the site's visible rows. Returns the number of tables whose scope covered the site."""
    site = validate_site(site)
    touched = 0
    with transaction(con):
        for staged_release, schema, table, scope in _staged_scopes(con, refresh_id):
            if staged_release != release or (schema, table) not in tables or not scope.covers(site):
                continue
            con.execute(
                f"DELETE FROM {staging_name(schema, table)} WHERE {_staged_rows(release, refresh_id)} "
                f"AND site_id = '{site}'"
            )
            narrower = scope.without(site)
            con.execute(
                "UPDATE meta.staged_tables SET only_sites = ?, keep_sites = ? "
                "WHERE refresh_id = ? AND release = ? AND schema_name = ? AND table_name = ?",
                [
                    list(narrower.only) if narrower.only is not None else None,
                    list(narrower.keep),
                    refresh_id,
                    release,
                    schema,
                    table,
                ],
            )
            touched += 1
    return touched


@retry_on_conflict
def commit_refresh(con: duckdb.DuckDBPyConnection, refresh_id: str) -> dict[str, int]:
    """Make every table and statement staged by `refresh_id` visible, in one transaction.

    Returns the rows now visible per `release:schema.table` (empty when nothing was staged).
    """
    with transaction(con):
        counts = _apply(con, refresh_id)
        _drop_staged(con, refresh_id)
        if on_lake(con):  # one lake snapshot, named after the refresh: the lake as it left it stays readable
            label_commit(con, refresh_id, sorted({key.split(":", 1)[0] for key in counts}))
        for key, rows in counts.items():
            release, name = key.split(":", 1)
            schema, table = name.split(".", 1)
            con.execute(
                "INSERT INTO meta.commits (refresh_id, release, schema_name, table_name, row_count) "
                "VALUES (?, ?, ?, ?, ?)",
                [refresh_id, release, schema, table, rows],
            )
    return counts


@contextmanager
def preview_commit(
    con: duckdb.DuckDBPyConnection, refresh_id: str, only: Collection[str] | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Inside the block, `con` sees the database as `commit_refresh` would leave it; then it is rolled back.
    With `only` ("schema.table" names), just those tables and views are swapped in, the rest stay as committed: a
    mart's preview needs its upstream tables, not every table of the refresh."""
    con.execute("BEGIN TRANSACTION")
    try:
        _apply(con, refresh_id, describe=False, only=only)
        yield con
    finally:
        con.execute("ROLLBACK")


@retry_on_conflict
def discard_refresh(con: duckdb.DuckDBPyConnection, refresh_id: str) -> int:
    """Forget everything `refresh_id` staged (a failed or killed run); returns the number of tables dropped."""
    with transaction(con):
        dropped = len(_staged(con, refresh_id))
        _drop_staged(con, refresh_id)
    return dropped


def staged_refreshes(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every refresh that has staged rows not yet committed or discarded."""
    if table_columns(con, META, "staged_tables") is None:
        return []
    rows = con.execute(
        "SELECT refresh_id FROM meta.staged_tables UNION SELECT refresh_id FROM meta.staged_statements ORDER BY 1"
    ).fetchall()
    return [r for (r,) in rows]


def committed(con: duckdb.DuckDBPyConnection, refresh_ids: list[str]) -> set[str]:
    """Which of `refresh_ids` have been committed."""
    if not refresh_ids or table_columns(con, META, "commits") is None:
        return set()
    rows = con.execute(
        "SELECT DISTINCT refresh_id FROM meta.commits WHERE list_contains(?, refresh_id)", [refresh_ids]
    ).fetchall()
    return {r for (r,) in rows}


def committed_releases(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    """The releases for which some refresh committed `schema.table`."""
    if table_columns(con, META, "commits") is None:
        return set()
    rows = con.execute(
        "SELECT DISTINCT release FROM meta.commits WHERE schema_name = ? AND table_name = ?", [schema, table]
    ).fetchall()
    return {r for (r,) in rows}


def _check_scope(con: duckdb.DuckDBPyConnection, table: str, scope: SiteScope) -> None:
    """Refuse rows outside the scope: they would be added without replacing their earlier copies."""
    if scope == EVERY_SITE:
        return
    outside = con.execute(f"SELECT DISTINCT site_id FROM incoming_rows WHERE NOT ({scope.condition()})").fetchall()
    if outside:
        raise ValueError(f"{table}: rows of sites outside the write's scope: {sorted(str(s) for (s,) in outside)}")


def _apply(
    con: duckdb.DuckDBPyConnection, refresh_id: str, describe: bool = True, only: Collection[str] | None = None
) -> dict[str, int]:
    """Swap in `refresh_id`'s staged rows and run its staged statements (with `only`, those of the tables and
    views named there); with `describe`, comment the columns too (a preview, rolled back, needs no comments:
    that was 3,900 COMMENT statements a cold main job)."""
    counts: dict[str, int] = {}
    wanted = None if only is None else {name.lower() for name in only}  # DuckDB's names ignore case
    for release, schema, table, scope in _staged_scopes(con, refresh_id):
        if wanted is not None and f"{schema}.{table}".lower() not in wanted:
            continue
        staged = staging_name(schema, table)
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW incoming_rows AS SELECT * EXCLUDE ({REFRESH_COLUMN}) "
            f"FROM {staged} WHERE release = '{validate_release(release)}' AND {REFRESH_COLUMN} = '{refresh_id}'"
        )
        try:
            replace_rows(con, schema, table, None, f"release = '{release}' AND {scope.condition()}", release)
        finally:
            con.execute("DROP VIEW IF EXISTS incoming_rows")
        counts[f"{release}:{schema}.{table}"] = con.execute(
            f"SELECT count(*) FROM {qualified(schema, table)} WHERE release = ?", [release]
        ).fetchall()[0][0]
    if table_columns(con, META, "staged_statements") is not None:
        for name, statement in con.execute(
            "SELECT name, statement FROM meta.staged_statements WHERE refresh_id = ? ORDER BY staged_at, name",
            [refresh_id],
        ).fetchall():
            if wanted is None or name.rsplit(":", 1)[0].lower() in wanted:  # "<schema.table>:<index>" of a mart
                con.execute(statement)
    if describe:
        _describe_columns(con)
    return counts


def _describe_columns(con: duckdb.DuckDBPyConnection) -> None:
    """Every column of the user-facing tables and views that the glossary knows gets its description as its
    DuckDB comment (after the marts' statements, which re-create their views and tables). NEON's own raw
    fields keep the descriptions of NEON's variables file; without one, they say where NEON describes them."""
    views = (  # DuckLake keeps no comments on a view's columns: a lake's views are described by their tables'
        f"AND (database_name <> '{LAKE_ALIAS}' OR (schema_name, table_name) NOT IN "
        f"(SELECT (schema_name, view_name) FROM duckdb_views() WHERE database_name = '{LAKE_ALIAS}'))"
    )
    rows = con.execute(
        "SELECT schema_name, table_name, column_name, comment FROM duckdb_columns() "
        f"WHERE list_contains(?, schema_name) AND database_name = current_database() {views}",
        [list(USER_SCHEMAS)],
    ).fetchall()
    for schema, table, column, comment in rows:
        text = describe_column(schema, table, column)
        if text is None and schema == "raw" and comment is None:
            text = undescribed_neon_field(table, column)
        if text and text != comment:
            literal = text.replace("'", "''")
            con.execute(f"COMMENT ON COLUMN {qualified(schema, table)}.{quote_ident(column)} IS '{literal}'")


def _staged(con: duckdb.DuckDBPyConnection, refresh_id: str) -> list[tuple[str, str, str]]:
    """(release, schema, table) of each table `refresh_id` staged."""
    return [(release, schema, table) for release, schema, table, _ in _staged_scopes(con, refresh_id)]


def _staged_scopes(con: duckdb.DuckDBPyConnection, refresh_id: str) -> list[tuple[str, str, str, SiteScope]]:
    """(release, schema, table, the scope of the rows the commit replaces) of each table `refresh_id` staged."""
    validate_refresh(refresh_id)
    if table_columns(con, META, "staged_tables") is None:
        return []
    _ensure_scope_columns(con)
    rows = con.execute(
        "SELECT release, schema_name, table_name, only_sites, keep_sites FROM meta.staged_tables "
        "WHERE refresh_id = ? ORDER BY release, schema_name, table_name",
        [refresh_id],
    ).fetchall()
    return [
        (release, schema, table, SiteScope(tuple(only) if only is not None else None, tuple(keep or ())))
        for release, schema, table, only, keep in rows
    ]


def _drop_staged(con: duckdb.DuckDBPyConnection, refresh_id: str) -> None:
    """Delete `refresh_id`'s staged rows; a staging table no refresh has staged rows in any more (none recorded
    in meta, not even zero rows) is dropped: no empty twin of every table in the file."""
    tables = sorted({(schema, table) for _, schema, table in _staged(con, refresh_id)})
    for schema, table in tables:
        con.execute(f"DELETE FROM {staging_name(schema, table)} WHERE {REFRESH_COLUMN} = ?", [refresh_id])
    for name in ("staged_tables", "staged_statements"):
        if table_columns(con, META, name) is not None:
            con.execute(f"DELETE FROM meta.{name} WHERE refresh_id = ?", [refresh_id])
    for schema, table in tables:
        name = staging_name(schema, table)
        others = con.execute(
            "SELECT count(*) FROM meta.staged_tables WHERE schema_name = ? AND table_name = ?", [schema, table]
        ).fetchall()[0][0]
        if not others and not con.execute(f"SELECT EXISTS (SELECT 1 FROM {name})").fetchall()[0][0]:
            con.execute(f"DROP TABLE {name}")


def _staged_rows(release: str, refresh_id: str) -> str:
    """The SQL condition selecting one release's rows of one refresh in a staging table."""
    return f"release = '{validate_release(release)}' AND {REFRESH_COLUMN} = '{validate_refresh(refresh_id)}'"


def _record_staged(
    con: duckdb.DuckDBPyConnection,
    refresh_id: str,
    release: str,
    schema: str,
    table: str,
    scope: SiteScope = EVERY_SITE,
) -> None:
    """Record that `refresh_id` staged `release`'s rows of the table; a second write of the same table (another
    site partition of the refresh) widens the scope to both writes' sites."""
    earlier = staged_scope(con, refresh_id, release, schema, table)
    if earlier is not None:
        scope = earlier.union(scope)
    con.execute(
        "DELETE FROM meta.staged_tables WHERE refresh_id = ? AND release = ? AND schema_name = ? AND table_name = ?",
        [refresh_id, release, schema, table],
    )
    con.execute(
        "INSERT INTO meta.staged_tables (refresh_id, release, schema_name, table_name, only_sites, keep_sites) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [refresh_id, release, schema, table, list(scope.only) if scope.only is not None else None, list(scope.keep)],
    )


def _ensure_scope_columns(con: duckdb.DuckDBPyConnection) -> None:
    """A database staged by an earlier version has no scope columns: its staged tables replace every site."""
    columns = table_columns(con, META, "staged_tables") or {}
    for name in ("only_sites", "keep_sites"):
        if name not in columns:
            con.execute(f"ALTER TABLE meta.staged_tables ADD COLUMN {name} VARCHAR[]")


def _ensure_meta(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(META)}")
    for name, columns in _META_TABLES.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS meta.{name} ({columns})")
    _ensure_scope_columns(con)
