"""The soil-water aggregation inside DuckDB (METHOD.md section 4), one path for the assets and the floor.

The 30-minute rows never enter Python: the chosen sensors' files are read by DuckDB, aggregated per site,
role and step once (`swc_steps`), and the series, the quality accounting and the statistics are SELECTs over
those temporary tables, screened against their contracts inside DuckDB.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from rootassets.neon.soil_water import read_csv_sql
from rootassets.schemas import SQL_CONTRACTS
from rootassets.science.soil_water import (
    SoilWaterQuality,
    labelled_statistics_sql,
    quality_sql,
    series_from_steps_sql,
    steps_sql,
    sufficiency_sql,
)
from rootassets.warehouse.quarantine import screened_queries

SERIES_TABLE = "analysis.soil_water_phi_series"
QUALITY_TABLE = "analysis.soil_water_quality"
STATS_TABLE = "analysis.soil_water_statistics"
TEMPORARY = ("swc_steps", "swc_series", "swc_quality", "swc_input_refused")
REJECTS = "swc_rejects"  # DuckDB's store_rejects tables: the lines of the 30-minute files it could not read
SITE_IN_NAME = r"^NEON\.D[0-9]{2}\.([A-Z][A-Z0-9]{3})\."


def _input_refused_sql(con: duckdb.DuckDBPyConnection, refused: list[tuple[Path, str, str]]) -> str:
    """The input the aggregation left out, as quarantine rows of the phi series: each line DuckDB could not read
    (its file, line, column and DuckDB's reason) and each file refused whole (a missing column)."""
    parts = [
        "SELECT NULL::VARCHAR AS site_id, NULL::VARCHAR AS source_file, NULL::VARCHAR AS rule, "
        "NULL::VARCHAR AS column_name, NULL::VARCHAR AS offending_value, NULL::VARCHAR AS all_reasons, "
        "NULL::VARCHAR AS record WHERE false"
    ]
    present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
    if REJECTS in present and f"{REJECTS}_scans" in present:
        parts.append(
            # one row per rejected line: the relation can be scanned more than once by the aggregation, and DuckDB
            # records a short line once per missing column (the first says how many fields it found)
            f"SELECT * FROM (SELECT DISTINCT ON (s.file_path, r.line) "
            f"regexp_extract(parse_filename(s.file_path), '{SITE_IN_NAME}', 1) AS site_id, "
            "parse_filename(s.file_path) AS source_file, "
            "CASE WHEN r.error_type = 'CAST' THEN 'not_a_number' ELSE 'malformed_record' END AS rule, "
            "r.column_name AS column_name, NULL::VARCHAR AS offending_value, "
            "'line ' || r.line || ': ' || r.error_message AS all_reasons, r.csv_line AS record "
            f"FROM {REJECTS} AS r JOIN {REJECTS}_scans AS s USING (scan_id, file_id) "
            "ORDER BY s.file_path, r.line, r.column_idx)"
        )
    for path, missing, message in refused:
        site = re.match(SITE_IN_NAME, path.name)
        values = [site.group(1) if site else None, path.name, "missing_column", missing or None, None, message]
        literal = ", ".join("NULL" if v is None else "'" + v.replace("'", "''") + "'" for v in values)
        parts.append(f"SELECT {literal}, NULL")
    return " UNION ALL ".join(parts)


@contextmanager
def soil_water_queries(
    con: duckdb.DuckDBPyConnection, roles: pl.DataFrame, depths: pl.DataFrame, rules: SoilWaterQuality
) -> Iterator[dict[tuple[str, str], str]]:
    """Stage the per-step aggregate, the series and the quality accounting as temporary tables on `con`, and
    yield the screened queries of the three tables (kept and quarantined rows); drop everything after.
    `roles`: `file_roles` (site_id, role, path, valid_from, valid_to); `depths`: site_id, modality, d1_cm,
    d2_cm."""
    con.register("swc_file_roles", roles)
    con.register("swc_depths", depths)
    refused: list[tuple[Path, str, str]] = []
    try:
        for table in (REJECTS, f"{REJECTS}_scans"):
            con.execute(f"DROP TABLE IF EXISTS {table}")
        observations = read_csv_sql([Path(p) for p in sorted(set(roles["path"]))], refused, REJECTS)
        con.execute(f"CREATE OR REPLACE TEMP TABLE swc_steps AS {steps_sql(observations, 'swc_file_roles')}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE swc_series AS {series_from_steps_sql('swc_steps')}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE swc_quality AS {quality_sql('swc_steps', 'swc_series')}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE swc_input_refused AS {_input_refused_sql(con, refused)}")
        statistics = labelled_statistics_sql("swc_series", "swc_depths", f"({sufficiency_sql('swc_quality', rules)})")
        queries = {
            **screened_queries(SERIES_TABLE, "SELECT * FROM swc_series", SQL_CONTRACTS[SERIES_TABLE]),
            **screened_queries(QUALITY_TABLE, "SELECT * FROM swc_quality", SQL_CONTRACTS[QUALITY_TABLE]),
            **screened_queries(STATS_TABLE, statistics, SQL_CONTRACTS[STATS_TABLE]),
        }
        series_quarantine = ("quarantine", SERIES_TABLE.split(".")[1])
        queries[series_quarantine] = f"{queries[series_quarantine]} UNION ALL SELECT * FROM swc_input_refused"
        yield queries
    finally:
        for table in (*TEMPORARY, REJECTS, f"{REJECTS}_scans"):
            con.execute(f"DROP TABLE IF EXISTS {table}")
        con.unregister("swc_file_roles")
        con.unregister("swc_depths")
