"""dbt-like SQL models: plain DuckDB SQL files whose path names the table they build.

`dbt_like_sql/marts/site_summary.sql` builds `marts.site_summary`. A header
comment may set `-- materialized: table|view` and `-- description: ...`, and
declare the model's tests, as dbt's schema tests: `-- unique: a, b` (no two
rows share those columns), `-- not_null: a, b` and `-- min_rows: N` (default 1).
Dependencies and column lineage come from parsing the SQL with sqlglot, so
the lineage graph is never written twice. No Dagster here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError
from sqlglot.lineage import lineage

from rootassets.neon.identifiers import TABLE_PATTERN
from rootassets.warehouse.connection import SCHEMAS

MODELS_DIR = Path(__file__).resolve().parents[2] / "dbt_like_sql"
_HEADER = re.compile(r"^\s*--\s*(materialized|description|unique|not_null|min_rows)\s*:\s*(.+?)\s*$", re.IGNORECASE)


class SqlModelError(ValueError):
    """A model file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class SqlModel:
    path: Path
    schema: str
    name: str
    sql: str
    materialized: str = "table"
    description: str = ""
    upstream: tuple[tuple[str, str], ...] = ()
    parse_error: str | None = None
    columns: tuple[str, ...] = field(default=())
    unique: tuple[str, ...] = ()
    not_null: tuple[str, ...] = ()
    min_rows: int = 1

    def tests(self) -> dict[str, tuple[str, str]]:
        """{test name: (SQL counting the rows that break it, or the row count for min_rows; description)}."""
        target = f'"{self.schema}"."{self.name}"'
        found: dict[str, tuple[str, str]] = {}
        if self.unique:
            columns = ", ".join(f'"{c}"' for c in self.unique)
            found["unique"] = (
                f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {target} "
                f"GROUP BY {columns}) WHERE n > 1",
                f"No two rows share ({', '.join(self.unique)}).",
            )
        if self.not_null:
            condition = " OR ".join(f'"{c}" IS NULL' for c in self.not_null)
            found["not_null"] = (
                f"SELECT count(*) FROM {target} WHERE {condition}",
                f"{', '.join(self.not_null)} are never null.",
            )
        found["row_count"] = (f"SELECT count(*) FROM {target}", f"At least {self.min_rows} row(s) (warns otherwise).")
        return found

    @property
    def table(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def version(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:12]


def discover_models(root: Path = MODELS_DIR) -> list[SqlModel]:
    """Every `<schema>/<name>.sql` under `root`, parsed."""
    models = []
    for path in sorted(root.glob("*/*.sql")):
        models.append(parse_model(path, root))
    return models


def parse_model(path: Path, root: Path = MODELS_DIR) -> SqlModel:
    schema, name = path.parent.name, path.stem
    where = path.relative_to(root.parent) if path.is_relative_to(root.parent) else path
    if schema not in SCHEMAS or not TABLE_PATTERN.fullmatch(name):
        raise SqlModelError(f"{where}: a model lives at <schema>/<name>.sql with schema in {SCHEMAS}")
    sql = path.read_text()
    settings = {m.group(1).lower(): m.group(2) for line in sql.splitlines() if (m := _HEADER.match(line))}
    materialized = settings.get("materialized", "table").lower()
    if materialized not in ("table", "view"):
        raise SqlModelError(f"{where}:1: materialized must be 'table' or 'view', not {materialized!r}")
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        return SqlModel(
            path,
            schema,
            name,
            sql,
            materialized,
            settings.get("description", ""),
            parse_error=f"{where}:{first.get('line', '?')}: {first.get('description', exc)}",
        )
    columns = tuple(s.alias_or_name for s in tree.selects) if isinstance(tree, exp.Query) else ()
    tested = {
        kind: tuple(c.strip() for c in settings.get(kind, "").split(",") if c.strip())
        for kind in ("unique", "not_null")
    }
    for kind, names in tested.items():
        unknown = [c for c in names if columns and "*" not in columns and c not in columns]
        if unknown:
            raise SqlModelError(
                f"{where}: {kind} names {', '.join(unknown)}, not columns of the model ({', '.join(columns)})"
            )
    min_rows = settings.get("min_rows", "1")
    if not min_rows.isdigit():
        raise SqlModelError(f"{where}: min_rows must be a whole number, not {min_rows!r}")
    return SqlModel(
        path,
        schema,
        name,
        sql,
        materialized,
        settings.get("description", ""),
        upstream=tuple(sorted(referenced_tables(tree))),
        columns=columns,
        unique=tested["unique"],
        not_null=tested["not_null"],
        min_rows=int(min_rows),
    )


def referenced_tables(tree: exp.Expr) -> set[tuple[str, str]]:
    """(schema, table) of every table the query reads, CTE names left out."""
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    return {(t.db, t.name) for t in tree.find_all(exp.Table) if t.db and (t.db or t.name not in ctes)}


def column_lineage(
    model: SqlModel, schema: dict[str, dict[str, dict[str, str]]]
) -> dict[str, list[tuple[str, str, str]]]:
    """{output column: [(schema, table, column), ...]} traced through CTEs with sqlglot: every column from one
    qualification of the query (a column at a time qualified it once per column, 7x slower on site_summary),
    or, when that fails, column by column, leaving out the columns sqlglot cannot trace."""
    errors = (sqlglot.errors.SqlglotError, KeyError, ValueError)
    try:
        nodes = lineage(None, model.sql, schema=schema, dialect="duckdb")
    except errors:
        nodes = None
    result: dict[str, list[tuple[str, str, str]]] = {}
    for column in model.columns:
        try:
            node = nodes[column] if nodes is not None else lineage(column, model.sql, schema=schema, dialect="duckdb")
        except errors:
            continue
        deps = {
            (leaf.source.db, leaf.source.name, leaf.name.split(".")[-1])
            for leaf in node.walk()
            if not leaf.downstream and isinstance(leaf.source, exp.Table) and leaf.source.db
        }
        result[column] = sorted(deps)
    return result


def error_line(message: str) -> int | None:
    """The line DuckDB names in an error ('LINE 7:'), if it does."""
    match = re.search(r"LINE (\d+):", message)
    return int(match.group(1)) if match else None
