"""The soil-water aggregation inside DuckDB (METHOD.md section 4), one path for the assets and the floor.

The 30-minute rows never enter Python: the chosen sensors' files are read by DuckDB, aggregated per site,
role and step once (`swc_steps`), and the series, the quality accounting and the statistics are SELECTs over
those temporary tables, screened against their contracts inside DuckDB.
"""

from __future__ import annotations

import multiprocessing
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from rootassets.neon.csv_batch import RecordLayout
from rootassets.neon.errors import NeonDataError
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
from rootassets.science.workers import worker_count
from rootassets.warehouse.quarantine import screened_queries
from rootassets.warehouse.staging import EVERY_SITE, SiteScope

SERIES_TABLE = "analysis.soil_water_phi_series"
QUALITY_TABLE = "analysis.soil_water_quality"
STATS_TABLE = "analysis.soil_water_statistics"
TEMPORARY = ("swc_steps", "swc_series", "swc_quality", "swc_input_refused")
REJECTS = "swc_rejects"  # DuckDB's store_rejects tables: the lines of the 30-minute files it could not read
REJECT_LINES = "swc_reject_lines"  # the line each of those records starts on
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
        con.register(REJECT_LINES, _reject_lines(con))
        parts.append(
            # one row per rejected line: the relation can be scanned more than once by the aggregation, and DuckDB
            # records a short line once per missing column (the first says how many fields it found)
            f"SELECT * FROM (SELECT DISTINCT ON (s.file_path, r.line) "
            f"regexp_extract(parse_filename(s.file_path), '{SITE_IN_NAME}', 1) AS site_id, "
            "parse_filename(s.file_path) AS source_file, "
            "CASE WHEN r.error_type = 'CAST' THEN 'not_a_number' ELSE 'malformed_record' END AS rule, "
            "r.column_name AS column_name, NULL::VARCHAR AS offending_value, "
            "'line ' || coalesce(m.start_line, r.line) || ': ' || r.error_message AS all_reasons, "
            "r.csv_line AS record "
            f"FROM {REJECTS} AS r JOIN {REJECTS}_scans AS s USING (scan_id, file_id) "
            f"LEFT JOIN {REJECT_LINES} AS m ON m.file_path = s.file_path AND m.record = r.line "
            "ORDER BY s.file_path, r.line, r.column_idx)"
        )
    for path, missing, message in refused:
        site = re.match(SITE_IN_NAME, path.name)
        values = [site.group(1) if site else None, path.name, "missing_column", missing or None, None, message]
        literal = ", ".join("NULL" if v is None else "'" + v.replace("'", "''") + "'" for v in values)
        parts.append(f"SELECT {literal}, NULL")
    return " UNION ALL ".join(parts)


def _reject_lines(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """file_path, record, start_line: the line each rejected record starts on. DuckDB's `line` counts records,
    and a quoted field spanning lines (a damaged file may hold one) is one record; each file with a rejected
    record is read once more to place them. A file that cannot be read again keeps DuckDB's numbers."""
    found = con.execute(
        f"SELECT DISTINCT s.file_path, r.line FROM {REJECTS} AS r JOIN {REJECTS}_scans AS s USING (scan_id, file_id)"
    ).fetchall()
    numbers: dict[str, set[int]] = {}
    for file_path, number in found:
        numbers.setdefault(file_path, set()).add(number)
    rows = []
    for file_path, records in numbers.items():
        try:
            text = Path(file_path).read_bytes().decode("utf-8", errors="replace")  # bytes DuckDB rejected too
        except OSError:
            continue
        layout = RecordLayout.of(text, records)
        rows += [(file_path, n, layout.line_of_record(n)) for n in records]
    return pl.DataFrame(rows, schema={"file_path": pl.String, "record": pl.Int64, "start_line": pl.Int64}, orient="row")


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
        for view in ("swc_file_roles", "swc_depths", REJECT_LINES):
            con.unregister(view)


# --- one site at a time, in its own DuckDB: sites in parallel, a failure confined to its site ---------------

TABLES = (SERIES_TABLE, QUALITY_TABLE, STATS_TABLE)
QUARANTINED = tuple(f"quarantine.{t.split('.')[1]}" for t in TABLES)
INPUT_REFUSED = "input_refused"  # per site: the lines and files its aggregation left out (in quarantine too)
TOTAL_MEMORY_MB = 2048  # shared by the workers: memory stays bounded whatever the number of rows


@dataclass(frozen=True)
class SiteAggregate:
    """One site's soil-water tables as Parquet files (`schema.table` -> path, kept and quarantined rows, and
    `input_refused`), or why the site could not be aggregated."""

    site_id: str
    files: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def aggregate_site(
    site_id: str,
    roles: pl.DataFrame,
    depths: pl.DataFrame,
    rules: SoilWaterQuality,
    folder: str,
    memory_limit_mb: int = TOTAL_MEMORY_MB,
) -> SiteAggregate:
    """The soil-water tables of one site (`roles` and `depths` of that site only), computed in an in-memory
    DuckDB of its own that spills to `folder` beyond `memory_limit_mb`, written as Parquet under `folder`.
    A failure is returned, not raised: it is that site's alone.

    The DuckDB has one thread: its floating-point sums then always add in the same order, so a site's numbers
    are the same to the last bit whatever the number of workers or cores (parallelism is across sites)."""
    out = Path(folder) / (site_id or "no-site")
    try:
        out.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "memory_limit": f"{memory_limit_mb}MB",
            "temp_directory": str(out / "spill"),
            "preserve_insertion_order": False,
            "threads": 1,
        }
        with duckdb.connect(config=config) as con, soil_water_queries(con, roles, depths, rules) as queries:
            files = {}
            for (schema, table), select in queries.items():
                files[f"{schema}.{table}"] = _copy(con, select, out / f"{schema}.{table}.parquet")
            files[INPUT_REFUSED] = _copy(con, "SELECT * FROM swc_input_refused", out / f"{INPUT_REFUSED}.parquet")
        return SiteAggregate(site_id, files)
    except (duckdb.Error, OSError, NeonDataError, ValueError) as exc:
        return SiteAggregate(site_id, {}, _one_line(exc))


def aggregate_sites(
    roles: pl.DataFrame,
    depths: pl.DataFrame,
    rules: SoilWaterQuality,
    folder: Path,
    workers: int = 0,
    report: Callable[[str], None] | None = None,
) -> list[SiteAggregate]:
    """`aggregate_site` for every site of `roles`, `workers` at a time (0: one per core) in separate processes
    sharing `TOTAL_MEMORY_MB`. With no site, one empty aggregate gives the tables their columns."""
    sites = sorted(set(roles["site_id"].to_list()))
    if not sites:
        return [aggregate_site("", roles, depths, rules, str(folder))]
    workers = worker_count(workers, len(sites))
    memory = max(256, TOTAL_MEMORY_MB // workers)
    jobs = [
        (s, roles.filter(pl.col("site_id") == s), depths.filter(pl.col("site_id") == s), rules, str(folder))
        for s in sites
    ]
    if workers == 1:
        done = [aggregate_site(*job, memory) for job in jobs]
    else:
        # spawned, not forked: the parent (a Dagster run) has threads, which a fork would copy mid-state
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(aggregate_site, *job, memory) for job in jobs]
            done = []
            for site, future in zip(sites, futures, strict=True):
                try:
                    done.append(future.result())
                except Exception as exc:  # noqa: BLE001 - the worker died (killed, out of memory): this site failed
                    done.append(SiteAggregate(site, {}, f"its worker process failed: {_one_line(exc)}"))
    for aggregate in done:
        if report is not None and aggregate.error is not None:
            report(f"soil water at {aggregate.site_id} not aggregated: {aggregate.error}")
    if all(a.error is not None for a in done):  # the tables still get their columns
        done.append(aggregate_site("", roles.clear(), depths.clear(), rules, str(folder)))
    return done


def combined_queries(
    con: duckdb.DuckDBPyConnection, aggregates: list[SiteAggregate]
) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], SiteScope]]:
    """The release's tables from the sites' Parquet files, and the scope each write replaces: a site that
    failed keeps its earlier rows in the analysis tables, and its failure is a quarantine row of the phi
    series naming the site (and the file, when the error names one). Registers `swc_site_failures` on `con`."""
    done = [a for a in aggregates if a.error is None]
    failed = [a for a in aggregates if a.error is not None]
    con.register("swc_site_failures", _failure_rows(failed))
    queries, scopes = {}, {}
    keep = SiteScope(keep=tuple(a.site_id for a in failed))
    for table in (*TABLES, *QUARANTINED):
        key = (table.split(".")[0], table.split(".")[1])
        queries[key] = parquet_select([a.files[table] for a in done])
        scopes[key] = keep if key[0] != "quarantine" else EVERY_SITE
    series_quarantine = ("quarantine", SERIES_TABLE.split(".")[1])
    queries[series_quarantine] += " UNION ALL BY NAME SELECT * FROM swc_site_failures"
    return queries, scopes


def partition_queries(
    con: duckdb.DuckDBPyConnection, site: str, aggregate: SiteAggregate, empty: SiteAggregate | None = None
) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], SiteScope]]:
    """One site partition's tables and the scope each write replaces: that site's rows only. A site that
    failed replaces none of its analysis rows (its earlier ones stay) and has its quarantine row naming it;
    `empty` (an aggregate of no site) then gives the tables their columns."""
    failed = aggregate.error is not None
    queries, _ = combined_queries(con, [aggregate, *([empty] if failed and empty is not None else [])])
    only_site = SiteScope(only=(site,))
    scopes = {key: only_site if key[0] == "quarantine" or not failed else SiteScope(only=()) for key in queries}
    return queries, scopes


def parquet_select(paths: list[str]) -> str:
    quoted = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
    return f"SELECT * FROM read_parquet([{quoted}], union_by_name = true)"


def _failure_rows(failed: list[SiteAggregate]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "site_id": [a.site_id for a in failed],
            "source_file": [_named_file(a.error or "") for a in failed],
            "rule": ["site_not_aggregated"] * len(failed),
            "column_name": [None] * len(failed),
            "offending_value": [None] * len(failed),
            "all_reasons": [a.error for a in failed],
            "record": [None] * len(failed),
        },
        schema=dict.fromkeys(
            ("site_id", "source_file", "rule", "column_name", "offending_value", "all_reasons", "record"), pl.String
        ),
    )


def _named_file(message: str) -> str | None:
    """The NEON file an error message names, if any."""
    found = re.search(r"(NEON\.D[0-9]{2}\.[A-Z][A-Z0-9]{3}\.DP1\.00094\.001\.[^\s'\"]+\.csv)", message)
    return found.group(1) if found else None


def _copy(con: duckdb.DuckDBPyConnection, select: str, path: Path) -> str:
    con.execute(f"COPY ({select}) TO '{str(path).replace(chr(39), chr(39) * 2)}' (FORMAT parquet)")
    return str(path)


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())
