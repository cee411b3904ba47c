"""Metadata every materialization carries: size, schema, preview, provenance."""

from __future__ import annotations

import re
from typing import Any

import polars as pl
from dagster import MetadataValue, TableColumn, TableSchema

from rootassets.neon.stacking import SourceRecord
from rootassets.science.glossary import describe_columns, undescribed_neon_field
from rootassets.warehouse import qualified

PREVIEW_ROWS = 10


def column_schema(
    frame: pl.DataFrame, descriptions: dict[str, str] | None = None, table: str | None = None
) -> TableSchema:
    """The frame's columns and types, with NEON's descriptions (and units) where known, else the platform's
    glossary's for `table` (`schema.table`): the same text as the columns' DuckDB comments."""
    known = describe_columns(*table.split("."), frame.columns) if table else {}
    known.update(descriptions or {})
    if table and table.startswith("raw."):
        name = table.split(".", 1)[1]
        known.update({c: undescribed_neon_field(name, c) for c in frame.columns if c not in known})
    return TableSchema(
        columns=[
            TableColumn(name=name, type=str(dtype), description=known.get(name)) for name, dtype in frame.schema.items()
        ]
    )


def preview(frame: pl.DataFrame, rows: int = PREVIEW_ROWS) -> MetadataValue:
    """The first rows as a markdown table."""
    with pl.Config(
        tbl_formatting="MARKDOWN",
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_cols=-1,
        tbl_width_chars=10_000,
        fmt_str_lengths=40,
    ):
        return MetadataValue.md(str(frame.head(rows)))


def table_metadata(
    frame: pl.DataFrame, release: str, descriptions: dict[str, str] | None = None, table: str | None = None
) -> dict[str, Any]:
    """Row count, sites, column schema (with descriptions) and a preview of a written table."""
    return {
        "dagster/row_count": frame.height,
        "dagster/column_schema": column_schema(frame, descriptions, table),
        "n_sites": frame["site_id"].n_unique() if "site_id" in frame.columns and frame.height else 0,
        "release": release,
        "preview": preview(frame),
    }


def sources_metadata(sources: list[SourceRecord]) -> MetadataValue:
    return MetadataValue.json([{"file": s.file, "md5": s.md5, "rows": s.rows} for s in sources])


def comment_statement(schema: str, table: str, description: str | None, kind: str = "TABLE") -> list[str]:
    """`COMMENT ON TABLE` (or VIEW) with the first paragraph of the asset's description, so that a user of the
    DuckDB file reads what the table holds (a description is data: quoted as a literal). None: nothing."""
    if not description:
        return []
    text = " ".join(description.strip().split("\n\n")[0].split())
    text = re.sub(rf"^`{re.escape(schema)}\.{re.escape(table)}`( \([a-z]+\))?: ", "", text)
    return [f"COMMENT ON {kind} {qualified(schema, table)} IS '{text.replace(chr(39), chr(39) * 2)}'"]
