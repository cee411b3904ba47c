"""Apply a table contract: keep good rows, quarantine bad ones with their reason.

Rows in = rows kept + rows quarantined, always. Exact duplicate records keep
one copy (the others are quarantined as `duplicate_record`); records that
share a key but differ are all quarantined as `conflicting_key`. A missing
required column, or a column-level failure, is structural: it raises.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

from rootassets.neon.csvfiles import MalformedRecord
from rootassets.neon.stacking import ADDED_COLUMNS, StackedTable
from rootassets.schemas import SqlContract, TableContract

QUARANTINE_SCHEMA = {
    "site_id": pl.String,
    "release": pl.String,
    "source_file": pl.String,
    "rule": pl.String,
    "column_name": pl.String,
    "offending_value": pl.String,
    "all_reasons": pl.String,
    "record": pl.String,
}
_ROW = "__row"


class StructuralError(ValueError):
    """A table cannot be screened row by row: a required column is missing or unusable."""


@dataclass
class Screened:
    """The outcome of screening one table against its contract.

    `rows` holds every parsed row, typed as the contract says, with a boolean
    `quarantined` column; `kept` the rows that meet the contract;
    `quarantined` one row per refused record with its reason.
    """

    rows: pl.DataFrame
    kept: pl.DataFrame
    quarantined: pl.DataFrame
    rows_in: int
    reasons: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        return {
            "rows_in": self.rows_in,
            "rows_kept": self.kept.height,
            "rows_quarantined": self.quarantined.height,
            "quarantine_reasons": dict(sorted(self.reasons.items())),
        }


def empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


def screen(
    frame: pl.DataFrame,
    contract: TableContract,
    table: str,
    release: str,
    rejected: list[MalformedRecord] | tuple[MalformedRecord, ...] = (),
) -> Screened:
    """Split `frame` into rows that meet `contract` and quarantined rows with reasons."""
    check_columns(frame.columns, contract, table)
    rows_in = frame.height + len(rejected)
    work = frame.with_row_index(_ROW)
    reasons: dict[int, list[tuple[str, str | None, str | None]]] = {}

    work = _coerce_numbers(work, contract, reasons)
    _mark_duplicates(work, contract, reasons)
    _mark_schema_failures(work.filter(~pl.col(_ROW).is_in(list(reasons))), contract, table, reasons)

    bad_rows = sorted(reasons)
    rows = work.with_columns(pl.col(_ROW).is_in(bad_rows).alias("quarantined")).drop(_ROW)
    kept = rows.filter(~pl.col("quarantined")).drop("quarantined")
    original = frame.with_row_index(_ROW)
    quarantined = pl.concat(
        [
            _quarantine_rows(original.filter(pl.col(_ROW).is_in(bad_rows)), reasons, release),
            _rejected_rows(rejected, release),
        ],
        how="vertical",
    )
    counts = Counter(quarantined["rule"].to_list())
    assert kept.height + quarantined.height == rows_in
    return Screened(rows=rows, kept=kept, quarantined=quarantined, rows_in=rows_in, reasons=dict(counts))


def check_columns(columns: list[str], contract: TableContract, where: str) -> None:
    """Raise StructuralError naming `where` and each required column that is missing."""
    missing = [c for c in contract.required_columns if c not in columns]
    if missing:
        raise StructuralError(f"{where}: required column(s) {', '.join(repr(c) for c in missing)} missing")


def _schema_columns(contract: TableContract) -> dict[str, pa.Column]:
    return dict(contract.schema.to_schema().columns)


def _coerce_numbers(
    work: pl.DataFrame, contract: TableContract, reasons: dict[int, list[tuple[str, str | None, str | None]]]
) -> pl.DataFrame:
    """Cast numeric contract columns; a value that is not a number quarantines its row."""
    casts = []
    for name, column in _schema_columns(contract).items():
        target = column.dtype.type
        current = work.schema[name]
        if current == pl.Null:
            casts.append(work[name].cast(target))
            continue
        if current == target or not (target.is_numeric() or target == pl.Boolean):
            continue
        cast = work[name].cast(target, strict=False)
        failed = work[name].is_not_null() & cast.is_null()
        for row, value in work.filter(failed).select(_ROW, name).iter_rows():
            reasons.setdefault(row, []).append((f"not_a_{target}".lower(), name, str(value)))
        casts.append(cast)
    return work.with_columns(casts) if casts else work


def _mark_duplicates(
    work: pl.DataFrame, contract: TableContract, reasons: dict[int, list[tuple[str, str | None, str | None]]]
) -> None:
    content = [c for c in work.columns if c not in (_ROW, "source_file", "quarantined")]
    duplicate_copy = work.select(_ROW, pl.struct(content).is_first_distinct().not_().alias("dup"))
    for row in duplicate_copy.filter("dup")[_ROW].to_list():
        reasons.setdefault(row, []).append(("duplicate_record", None, None))
    distinct = work.filter(~pl.col(_ROW).is_in(duplicate_copy.filter("dup")[_ROW].to_list()))
    key = list(contract.key)
    if not key:
        return
    conflicts = distinct.filter(pl.struct(key).is_duplicated() & pl.all_horizontal(pl.col(key).is_not_null()))
    for row in conflicts[_ROW].to_list():
        value = ", ".join(str(v) for v in conflicts.filter(pl.col(_ROW) == row).select(key).row(0))
        reasons.setdefault(row, []).append(("conflicting_key", ",".join(key), value))


def _mark_schema_failures(
    work: pl.DataFrame,
    contract: TableContract,
    table: str,
    reasons: dict[int, list[tuple[str, str | None, str | None]]],
) -> None:
    try:
        contract.schema.validate(work, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        structural = cases.filter(pl.col("index").is_null())
        if structural.height:
            first = structural.row(0, named=True)
            raise StructuralError(
                f"{table}: column {first['column']!r} fails {first['check']} ({first['failure_case']})"
            ) from None
        rows = work[_ROW]
        for index, check, column, value in cases.select("index", "check", "column", "failure_case").iter_rows():
            rule = "not_null" if check == "not_nullable" else str(check)
            if column not in work.columns:  # a row-wise check over several columns
                column, value = None, None
            reasons.setdefault(int(rows[int(index)]), []).append((rule, column, None if value is None else str(value)))


def _quarantine_rows(
    bad: pl.DataFrame, reasons: dict[int, list[tuple[str, str | None, str | None]]], release: str
) -> pl.DataFrame:
    if bad.is_empty():
        return empty_quarantine()
    records = bad.drop(_ROW).with_columns(pl.all().cast(pl.String)).to_dicts()
    rows = []
    for row_id, record in zip(bad[_ROW].to_list(), records, strict=True):
        rule, column, value = reasons[row_id][0]
        rows.append(
            {
                "site_id": record.get("site_id"),
                "release": release,
                "source_file": record.get("source_file"),
                "rule": rule,
                "column_name": column,
                "offending_value": value,
                "all_reasons": "; ".join(f"{r}({c}={v})" if c else r for r, c, v in reasons[row_id]),
                "record": json.dumps(record, default=str),
            }
        )
    return pl.DataFrame(rows, schema=QUARANTINE_SCHEMA)


def _rejected_rows(rejected: list[MalformedRecord] | tuple[MalformedRecord, ...], release: str) -> pl.DataFrame:
    if not rejected:
        return empty_quarantine()
    return pl.DataFrame(
        [
            {
                "site_id": None,
                "release": release,
                "source_file": r.file,
                "rule": r.rule,
                "column_name": r.column,
                "offending_value": f"line {r.line}: {r.reason}",
                "all_reasons": r.reason,
                "record": r.text,
            }
            for r in rejected
        ],
        schema=QUARANTINE_SCHEMA,
    )


def screen_stacked(
    table: str, stacked: StackedTable, release: str, contract: TableContract, published: bool = True
) -> Screened:
    """Check each source file's columns, then screen a stacked NEON table's rows against its contract.

    A table the source does not publish is kept empty. A file that lacks a required column raises
    `StructuralError` (naming the file and the column) before anything is written.
    """
    if not published:
        rows = stacked.frame.with_columns(quarantined=False)
        return Screened(rows=rows, kept=rows, quarantined=empty_quarantine(), rows_in=0)
    for source in stacked.sources:
        check_columns([*source.columns, *ADDED_COLUMNS], contract, f"raw.{table} from {source.file}")
    return screen(stacked.frame, contract, f"raw.{table}", release, stacked.malformed)


def screened_frames(screened: dict[str, Screened]) -> dict[tuple[str, str], pl.DataFrame]:
    """The raw and quarantine frames to write for each screened raw table."""
    frames: dict[tuple[str, str], pl.DataFrame] = {}
    for table, s in screened.items():
        frames[("raw", table)] = s.rows
        frames[("quarantine", table)] = s.quarantined
    return frames


def screened_queries(table: str, select: str, contract: SqlContract) -> dict[tuple[str, str], str]:
    """The kept rows of `select` and its quarantined rows (in `QUARANTINE_SCHEMA`, `release` added by the
    writer) as two SELECTs run inside DuckDB: rows never pass through Python. `table` is `schema.name`.

    A row whose key repeats is quarantined as `conflicting_key`; one that fails rules as its first rule,
    with its column and value, and every failed rule in `all_reasons`."""
    schema, name = table.split(".", 1)
    failed = ", ".join(
        f"CASE WHEN coalesce(({predicate}), false) THEN NULL ELSE '{rule}' END"
        for rule, (_, predicate) in contract.rules.items()
    )
    keys = ", ".join(contract.key)
    judged = (
        f"SELECT q.*, count(*) OVER (PARTITION BY {keys}) AS __key_rows, "
        f"list_filter([{failed}]::VARCHAR[], lambda x: x IS NOT NULL) AS __failed, to_json(q)::VARCHAR AS __record "
        f"FROM ({select}) AS q"
    )
    column = " ".join(f"WHEN '{rule}' THEN '{col}'" for rule, (col, _) in contract.rules.items())
    value = " ".join(f"WHEN '{rule}' THEN CAST({col} AS VARCHAR)" for rule, (col, _) in contract.rules.items())
    rule = "CASE WHEN __key_rows > 1 THEN 'conflicting_key' ELSE __failed[1] END"
    kept = (
        f"SELECT * EXCLUDE (__key_rows, __failed, __record) FROM ({judged}) WHERE __key_rows = 1 AND len(__failed) = 0"
    )
    quarantined = (
        f"SELECT CAST(site_id AS VARCHAR) AS site_id, NULL::VARCHAR AS source_file, {rule} AS rule, "
        f"CASE WHEN __key_rows > 1 THEN '{keys}' ELSE CASE __failed[1] {column} END END AS column_name, "
        f"CASE WHEN __key_rows > 1 THEN NULL ELSE CASE __failed[1] {value} END END AS offending_value, "
        f"array_to_string(list_concat(CASE WHEN __key_rows > 1 THEN ['conflicting_key'] ELSE [] END, __failed), "
        f"'; ') AS all_reasons, __record AS record "
        f"FROM ({judged}) WHERE __key_rows > 1 OR len(__failed) > 0"
    )
    return {(schema, name): kept, ("quarantine", name): quarantined}
