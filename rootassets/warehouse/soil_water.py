"""The soil-water aggregation inside DuckDB (METHOD.md section 4), one path for the assets and the floor.

The 30-minute rows never enter Python: the chosen sensors' files are read by DuckDB, aggregated per site,
role and step once (`swc_steps`), and the series, the quality accounting and the statistics are SELECTs over
those temporary tables, screened against their contracts inside DuckDB.
"""

from __future__ import annotations

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
TEMPORARY = ("swc_steps", "swc_series", "swc_quality")


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
    try:
        observations = read_csv_sql([Path(p) for p in sorted(set(roles["path"]))])
        con.execute(f"CREATE OR REPLACE TEMP TABLE swc_steps AS {steps_sql(observations, 'swc_file_roles')}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE swc_series AS {series_from_steps_sql('swc_steps')}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE swc_quality AS {quality_sql('swc_steps', 'swc_series')}")
        statistics = labelled_statistics_sql("swc_series", "swc_depths", f"({sufficiency_sql('swc_quality', rules)})")
        yield {
            **screened_queries(SERIES_TABLE, "SELECT * FROM swc_series", SQL_CONTRACTS[SERIES_TABLE]),
            **screened_queries(QUALITY_TABLE, "SELECT * FROM swc_quality", SQL_CONTRACTS[QUALITY_TABLE]),
            **screened_queries(STATS_TABLE, statistics, SQL_CONTRACTS[STATS_TABLE]),
        }
    finally:
        for table in TEMPORARY:
            con.execute(f"DROP TABLE IF EXISTS {table}")
        con.unregister("swc_file_roles")
        con.unregister("swc_depths")
