"""SQL model assets: each file of dbt_like_sql/ becomes a table or view, with parsed lineage."""

from dagster import (
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

from rootassets.defs.metadata import column_schema, preview
from rootassets.defs.resources import WarehouseResource
from rootassets.sqlmodels import SqlModel, column_lineage, discover_models, error_line
from rootassets.warehouse import qualified, quote_ident


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


def model_asset(model: SqlModel) -> AssetsDefinition:
    @asset(
        key=AssetKey([model.schema, model.name]),
        deps=[AssetKey([db, name]) for db, name in model.upstream],
        group_name="marts",
        description=f"`{model.table}` ({model.materialized}): {model.description}",
        kinds={"duckdb", "sql"},
        pool="duckdb",
        code_version=model.version,
        metadata={"sql": MetadataValue.md(f"```sql\n{model.sql}\n```"), "model_file": str(model.path.name)},
    )
    def _model(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
        if model.parse_error:
            raise Failure(description=f"cannot parse {model.parse_error}")
        kind = "VIEW" if model.materialized == "view" else "TABLE"
        statements = [f"CREATE SCHEMA IF NOT EXISTS {quote_ident(model.schema)}",
                      # On one line with the file's first line, so DuckDB's line numbers are the file's.
                      f"CREATE OR REPLACE {kind} {qualified(model.schema, model.name)} AS {model.sql}"]
        with warehouse.preview() as con:  # the tables as this run's commit will leave them
            try:
                for statement in statements:
                    con.execute(statement)
            except Exception as exc:
                line = error_line(str(exc))
                where = f"{model.path.parent.name}/{model.path.name}" + (f":{line}" if line else "")
                raise Failure(description=f"{where}: {str(exc).splitlines()[0]}") from exc
            frame = con.sql(f"SELECT * FROM {qualified(model.schema, model.name)}").pl()
            lineage = column_lineage(model, _warehouse_schema(con, model.upstream))
        warehouse.define(f"{model.schema}.{model.name}", statements)
        return MaterializeResult(metadata={
            "dagster/row_count": frame.height,
            "dagster/column_schema": column_schema(frame),
            "dagster/column_lineage": TableColumnLineage(deps_by_column={
                column: [TableColumnDep(asset_key=AssetKey([db, table]), column_name=name) for db, table, name in deps]
                for column, deps in lineage.items()
            }),
            "preview": preview(frame),
            "materialized_as": kind.lower(),
        })

    return _model


mart_assets = [model_asset(model) for model in discover_models()]
