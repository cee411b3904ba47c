"""dbt-like SQL models: plain DuckDB SQL files whose path names the table they build.

`dbt_like_sql/marts/site_summary.sql` builds `marts.site_summary`. A header
comment may set `-- materialized: table|view` and `-- description: ...`.
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
from rootassets.warehouse import SCHEMAS

MODELS_DIR = Path(__file__).resolve().parents[1] / "dbt_like_sql"
_HEADER = re.compile(r"^\s*--\s*(materialized|description)\s*:\s*(.+?)\s*$", re.IGNORECASE)


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
        return SqlModel(path, schema, name, sql, materialized, settings.get("description", ""),
                        parse_error=f"{where}:{first.get('line', '?')}: {first.get('description', exc)}")
    return SqlModel(path, schema, name, sql, materialized, settings.get("description", ""),
                    upstream=tuple(sorted(referenced_tables(tree))),
                    columns=tuple(s.alias_or_name for s in tree.selects) if isinstance(tree, exp.Query) else ())


def referenced_tables(tree: exp.Expr) -> set[tuple[str, str]]:
    """(schema, table) of every table the query reads, CTE names left out."""
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    return {(t.db, t.name) for t in tree.find_all(exp.Table) if t.db and (t.db or t.name not in ctes)}


def column_lineage(model: SqlModel, schema: dict[str, dict[str, dict[str, str]]]) -> dict[str, list[tuple[str, str, str]]]:
    """{output column: [(schema, table, column), ...]} traced through CTEs with sqlglot."""
    result: dict[str, list[tuple[str, str, str]]] = {}
    for column in model.columns:
        try:
            node = lineage(column, model.sql, schema=schema, dialect="duckdb")
        except (sqlglot.errors.SqlglotError, KeyError, ValueError):
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
