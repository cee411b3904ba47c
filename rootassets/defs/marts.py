"""SQL model assets: each file of dbt_like_sql/ becomes a table or view, with parsed lineage."""

from collections.abc import Iterator, Mapping

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    TableColumnDep,
    TableColumnLineage,
    asset,
)

from rootassets.defs.metadata import column_schema, comment_statement, preview
from rootassets.defs.resources import WarehouseResource
from rootassets.warehouse import qualified, quote_ident
from rootassets.warehouse.sqlmodels import SqlModel, column_lineage, discover_models, error_line


def _warehouse_schema(con, tables: tuple[tuple[str, str], ...]) -> dict[str, dict[str, dict[str, str]]]:
    """{schema: {table: {column: type}}} of `tables`, for sqlglot's lineage."""
    schema: dict[str, dict[str, dict[str, str]]] = {}
    for db, name in tables:
        rows = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
            [db, name],
        ).fetchall()
        schema.setdefault(db, {})[name] = {column: dtype for column, dtype in rows}
    return schema


def _check_specs(model: SqlModel) -> list[AssetCheckSpec]:
    key = AssetKey([model.schema, model.name])
    return [
        AssetCheckSpec(name, asset=key, description=text, blocking=name != "row_count")
        for name, (_, text) in model.tests().items()
    ]


def _run_tests(con, model: SqlModel) -> list[AssetCheckResult]:
    """The model's tests on the rows its commit will leave: unique and not_null block the commit, row_count warns."""
    key = AssetKey([model.schema, model.name])
    results = []
    for name, (sql, _) in model.tests().items():
        value = con.execute(sql).fetchone()[0]
        if name == "row_count":
            results.append(
                AssetCheckResult(
                    asset_key=key,
                    check_name=name,
                    passed=value >= model.min_rows,
                    severity=AssetCheckSeverity.WARN,
                    metadata={"rows": value, "min_rows": model.min_rows},
                )
            )
        else:
            columns = model.unique if name == "unique" else model.not_null
            results.append(
                AssetCheckResult(
                    asset_key=key,
                    check_name=name,
                    passed=value == 0,
                    severity=AssetCheckSeverity.ERROR,
                    metadata={"failing_rows": value, "columns": list(columns)},
                )
            )
    return results


def reads_through_marts(model: SqlModel, models: Mapping[tuple[str, str], SqlModel]) -> set[str]:
    """The tables and views (`schema.table`) `model` reads, and those its upstream marts read, on down."""
    seen: set[tuple[str, str]] = set()
    todo = list(model.upstream)
    while todo:
        table = todo.pop()
        if table not in seen:
            seen.add(table)
            todo += models[table].upstream if table in models else ()
    return {f"{schema}.{name}" for schema, name in seen}


def model_asset(model: SqlModel, models: Mapping[tuple[str, str], SqlModel] | None = None) -> AssetsDefinition:
    """The mart asset of `model`; `models` are the other marts it may read (their staged definitions join its
    preview)."""
    reads = reads_through_marts(model, models or {})

    @asset(
        check_specs=_check_specs(model),
        key=AssetKey([model.schema, model.name]),
        deps=[AssetKey([db, name]) for db, name in model.upstream],
        group_name="marts",
        description=f"`{model.table}` ({model.materialized}): {model.description}",
        kinds={"duckdb", "sql"},
        pool="duckdb",
        code_version=model.version,
        metadata={"sql": MetadataValue.md(f"```sql\n{model.sql}\n```"), "model_file": str(model.path.name)},
    )
    def _model(context: AssetExecutionContext, warehouse: WarehouseResource) -> Iterator:
        if model.parse_error:
            raise Failure(description=f"cannot parse {model.parse_error}")
        kind = "VIEW" if model.materialized == "view" else "TABLE"
        statements = [
            f"CREATE SCHEMA IF NOT EXISTS {quote_ident(model.schema)}",
            # On one line with the file's first line, so DuckDB's line numbers are the file's.
            f"CREATE OR REPLACE {kind} {qualified(model.schema, model.name)} AS {model.sql}",
            *comment_statement(model.schema, model.name, model.description, kind),
        ]
        with warehouse.session():  # the preview and the staged definition: one opening of the file
            with warehouse.preview(only=reads) as con:  # the tables it reads as this run's commit will leave them
                try:
                    for statement in statements:
                        con.execute(statement)
                except Exception as exc:
                    line = error_line(str(exc))
                    where = f"{model.path.parent.name}/{model.path.name}" + (f":{line}" if line else "")
                    raise Failure(description=f"{where}: {str(exc).splitlines()[0]}") from exc
                frame = con.sql(f"SELECT * FROM {qualified(model.schema, model.name)}").pl()
                lineage = column_lineage(model, _warehouse_schema(con, model.upstream))
                checks = _run_tests(con, model)
            broken = [c.check_name for c in checks if not c.passed and c.severity == AssetCheckSeverity.ERROR]
            if broken:
                yield from checks
                raise Failure(
                    description=f"{model.table}: test(s) {', '.join(broken)} failed on the rows it would "
                    "hold; nothing was changed and the previous results stay visible",
                    metadata={c.check_name: str(c.metadata) for c in checks if not c.passed},
                )
            warehouse.define(f"{model.schema}.{model.name}", statements)
        yield MaterializeResult(
            check_results=checks,
            metadata={
                "dagster/row_count": frame.height,
                "dagster/column_schema": column_schema(frame, table=f"{model.schema}.{model.name}"),
                "dagster/column_lineage": TableColumnLineage(
                    deps_by_column={
                        column: [
                            TableColumnDep(asset_key=AssetKey([db, table]), column_name=name)
                            for db, table, name in deps
                        ]
                        for column, deps in lineage.items()
                    }
                ),
                "preview": preview(frame),
                "materialized_as": kind.lower(),
            },
        )

    return _model


_models = {(m.schema, m.name): m for m in discover_models()}
mart_assets = [model_asset(model, _models) for model in _models.values()]
