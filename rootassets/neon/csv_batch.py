"""Reading a NEON table's many CSV files at once with DuckDB, typed from the variables file.

The generic stacker's reader for typed files (`stacking`). The files are grouped by their header line and each
group is one DuckDB `read_csv` with its columns declared (no sniffing: on hundreds of small files sniffing costs
more than the parse), real fields as DOUBLE, everything else as text. A record DuckDB cannot read (a wrong number
of fields, an unterminated quote, a real field that is not a number) is left out by `store_rejects` and kept, with
its file, line, field and DuckDB's reason, for quarantine. Integer and dateTime fields are then cast from text
as the NEON reader casts them (`csvfiles`): DuckDB would round `1.5` to an integer, and NEON's dateTime formats
vary. A value they cannot read takes its row out in the same way, with the row's values as its record.

Each file is still read once in Python: its bytes must be UTF-8 (a file that is not is refused naming the line),
its header gives its group, and its MD5 is its provenance (the raw tables' data versions). A file that is not
on disk (a member of a zip) is written to a temporary folder for DuckDB.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import polars as pl

from rootassets.neon.csvfiles import (
    DATE_FORMAT,
    DATETIME_FORMATS,
    FIELD_SIZE_LIMIT,
    NULL_VALUES,
    MalformedRecord,
    check_utf8,
    datetimes_in_one_format,
    normalize_types,
    wide_csv_fields,
)
from rootassets.neon.errors import NeonDataError

# NEON dataType -> the type DuckDB parses to; integers are read as text and cast without rounding (_INTEGER).
_DUCKDB_TYPES = {"real": "DOUBLE"}
_INTEGER_TYPES = ("integer", "signed integer", "unsigned integer")
_ROW_NAMES = ("", "...1", "Unnamed: 0")
_FILE = "__file"
_REJECTS = "csv_rejects"
_INTEGER_TEXT = r"^\s*[+-]?[0-9]+\s*$"
_FOUND = re.compile(r"Found: ([0-9]+)")


@dataclass(frozen=True)
class CsvInput:
    """One NEON CSV file: its name (in messages and provenance), its bytes, and its path when it is on disk."""

    name: str
    read: Callable[[], bytes]
    path: Path | None = None


@dataclass(frozen=True)
class FileRead:
    """One file's rows (typed, in file order, without the records left out) and the MD5 of its bytes."""

    frame: pl.DataFrame
    md5: str


def read_typed_files(
    inputs: Sequence[CsvInput], types: dict[str, str], malformed: list[MalformedRecord] | None = None
) -> list[FileRead]:
    """Read `inputs` (one NEON table's files) with DuckDB, each column typed by `types` (field -> NEON dataType).

    Returns one `FileRead` per input, in order. A record that cannot become a row is appended to `malformed`
    (file, line, field, reason, text); without that list, the first one refuses its file. A file that is not
    UTF-8, is empty or repeats a column name is refused naming it.
    """
    if not inputs:
        return []
    names = [item.name for item in inputs]
    with tempfile.TemporaryDirectory(prefix="rootassets-csv-") as spill, duckdb.connect() as con:
        headers, md5s, paths = [], [], []
        for i, item in enumerate(inputs):
            raw = item.read()
            check_utf8(raw, item.name)
            headers.append(_header(raw, item.name))
            md5s.append(hashlib.md5(raw).hexdigest())
            if item.path is None:
                path = Path(spill) / f"{i}.csv"
                path.write_bytes(raw)
            else:
                path = item.path
            paths.append(str(path))
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, header in enumerate(headers):
            groups.setdefault(header, []).append(i)
        read = {
            header: _read_group(con, header, [paths[i] for i in members], types) for header, members in groups.items()
        }
        rejected = _rejected(con, dict(zip(paths, names, strict=True)), dict(zip(paths, headers, strict=True)), types)
    frames: dict[int, pl.DataFrame] = {}
    cast_failures: list[_CastFailure] = []
    for header, members in groups.items():
        group_names = [names[i] for i in members]
        typed, failed = _cast_from_text(read[header], types, [paths[i] for i in members], group_names)
        cast_failures += failed
        frames.update(_by_file(normalize_types(typed), [paths[i] for i in members], members))
    order = {name: i for i, name in reversed(list(enumerate(names)))}
    left_out = _on_file_lines(rejected, cast_failures, {name: inputs[i] for name, i in order.items()})
    left_out.sort(key=lambda r: (order[r.file], r.line))
    if left_out and malformed is None:
        first = left_out[0]
        raise NeonDataError(f"{first.file}: line {first.line}: {first.reason}")
    if malformed is not None:
        malformed.extend(left_out)
    return [FileRead(frames[i], md5s[i]) for i in range(len(inputs))]


def _header(raw: bytes, name: str) -> tuple[str, ...]:
    first = raw.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8").lstrip("\ufeff")
    if not first.strip():
        raise NeonDataError(f"{name}: empty file (no header line)")
    try:
        with wide_csv_fields():
            header = tuple(next(csv.reader([first])))
    except csv.Error as exc:
        raise NeonDataError(f"{name}: line 1: unreadable CSV header ({exc})") from exc
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise NeonDataError(f"{name}: not a readable CSV file (column name(s) {repeated} repeated in the header)")
    return header


def _declared(header: tuple[str, ...], types: dict[str, str]) -> str:
    """DuckDB's `columns` for a header: positional names (c0, c1, ...) so any NEON name is safe in SQL."""
    sql_types = [_DUCKDB_TYPES.get(types.get(name, "string"), "VARCHAR") for name in header]
    return ", ".join(f"'c{i}': '{sql_type}'" for i, sql_type in enumerate(sql_types))


def _read_group(
    con: duckdb.DuckDBPyConnection, header: tuple[str, ...], paths: list[str], types: dict[str, str]
) -> pl.DataFrame:
    """The rows of the files sharing `header`, with a column naming each row's file; R's row names dropped."""
    quoted = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
    nulls = ", ".join(f"'{v}'" for v in NULL_VALUES)
    columns = _declared(header, types)
    frame = con.sql(
        f"SELECT * FROM read_csv([{quoted}], header = true, auto_detect = false, columns = {{{columns}}}, "
        f"delim = ',', quote = '\"', escape = '\"', nullstr = [{nulls}], filename = '{_FILE}', "
        f"max_line_size = {FIELD_SIZE_LIMIT}, store_rejects = true, rejects_table = '{_REJECTS}', "
        f"rejects_scan = '{_REJECTS}_scans')"
    ).pl()
    frame = frame.rename({f"c{i}": name for i, name in enumerate(header)})
    return frame.drop(frame.columns[0]) if header and header[0] in _ROW_NAMES else frame


def _by_file(frame: pl.DataFrame, paths: list[str], members: list[int]) -> dict[int, pl.DataFrame]:
    by_file = frame.partition_by(_FILE, as_dict=True, include_key=False, maintain_order=True)
    empty = frame.clear().drop(_FILE)
    return {i: by_file.get((path,), empty) for path, i in zip(paths, members, strict=True)}


def _rejected(
    con: duckdb.DuckDBPyConnection, names: dict[str, str], header_of: dict[str, tuple[str, ...]], types: dict[str, str]
) -> list[MalformedRecord]:
    """DuckDB's rejected records, one per line (a short line is rejected once per missing field)."""
    present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
    if _REJECTS not in present:
        return []
    rows = con.execute(
        "SELECT DISTINCT ON (s.file_path, r.line) s.file_path, r.line, r.column_idx, r.error_type, r.csv_line, "
        f"r.error_message FROM {_REJECTS} AS r JOIN {_REJECTS}_scans AS s USING (scan_id, file_id) "
        "ORDER BY s.file_path, r.line, r.column_idx"
    ).fetchall()
    out = []
    for path, line, column_idx, error_type, csv_line, message in rows:
        text = csv_line.strip("\r\n")  # DuckDB keeps the \n of a CRLF line ending at the start of the next line
        header = header_of[path]
        fields = _fields(text)
        column = header[column_idx - 1] if error_type == "CAST" and column_idx else None
        if column is not None:
            value = fields[column_idx - 1] if fields and len(fields) >= column_idx else None
            neon_type = types.get(column, "string")
            reason = f"field {column!r}: value {value!r} is not a valid {neon_type}"
            out.append(MalformedRecord(names[path], int(line), reason, text, column, "not_a_number"))
        elif error_type in ("MISSING COLUMNS", "TOO MANY COLUMNS"):
            found = len(fields) if fields is not None else _found(message)
            reason = f"record has {found} fields, the header has {len(header)}"
            out.append(MalformedRecord(names[path], int(line), reason, text))
        else:
            out.append(MalformedRecord(names[path], int(line), f"{error_type.lower()}: {message}", text))
    return out


def _fields(text: str) -> list[str] | None:
    try:
        with wide_csv_fields():
            return next(csv.reader([text]), [])
    except csv.Error:
        return None


def _found(message: str) -> str:
    match = _FOUND.search(message)
    return match.group(1) if match else "a different number of"


@dataclass(frozen=True)
class _CastFailure:
    """A row DuckDB read whose integer or dateTime value does not cast: its index among its file's rows."""

    row: int
    record: MalformedRecord


def _cast_from_text(
    frame: pl.DataFrame, types: dict[str, str], paths: list[str], names: list[str]
) -> tuple[pl.DataFrame, list[_CastFailure]]:
    """Integer and dateTime fields cast from text; a row with a value neither can read is taken out and kept
    as a record (the field, the value, and the row's values as read; its line is found later)."""
    failed = pl.repeat(False, frame.height, eager=True)
    first: pl.Series | None = None
    exprs = []
    for name in frame.columns:
        neon_type = types.get(name, "string")
        values = frame[name]
        if neon_type in _INTEGER_TYPES:
            text = pl.col(name)
            cast = frame.select(
                pl.when(text.str.contains(_INTEGER_TEXT)).then(text.str.strip_chars().cast(pl.Int64, strict=False))
            ).to_series()
        elif neon_type == "dateTime":
            cast = _datetimes(values)
        else:
            continue
        exprs.append(cast)
        bad = values.is_not_null() & cast.is_null()
        if bad.any():
            first = pl.select(pl.when(failed).then(first).otherwise(pl.when(bad).then(pl.lit(name)))).to_series()
            failed = failed | bad
    original = frame
    frame = frame.with_columns(exprs) if exprs else frame
    if first is None:
        return frame, []
    name_of = dict(zip(paths, names, strict=True))
    numbered = original.with_columns(pl.int_range(pl.len()).over(_FILE).alias("__index"), first.alias("__failed"))
    records = []
    for row in numbered.filter(failed).iter_rows(named=True):
        column = row["__failed"]
        values = {k: v for k, v in row.items() if k not in (_FILE, "__index", "__failed")}
        neon_type = types.get(column, "string")
        rule = "not_a_datetime" if neon_type == "dateTime" else "not_a_number"
        reason = f"field {column!r}: value {values[column]!r} is not a valid {neon_type}"
        text = json.dumps(values, default=str)
        record = MalformedRecord(name_of[row[_FILE]], 0, reason, text, column, rule)
        records.append(_CastFailure(row["__index"], record))
    return frame.filter(~failed), records


def _on_file_lines(
    rejected: list[MalformedRecord], cast_failures: list[_CastFailure], inputs: dict[str, CsvInput]
) -> list[MalformedRecord]:
    """Every record left out, with the file line it starts on. DuckDB numbers a rejected record by records (a
    blank line counts as one), not by lines, and a quoted field may span lines; a row that failed its cast is
    known by its index among the file's rows. Each is placed by reading the file's record layout once."""
    layouts: dict[str, RecordLayout] = {}

    def layout(file: str) -> RecordLayout:
        if file not in layouts:
            numbers = {r.line for r in rejected if r.file == file}
            layouts[file] = RecordLayout.of(inputs[file].read().decode("utf-8"), numbers)
        return layouts[file]

    out = [replace(r, line=layout(r.file).line_of_record(r.line)) for r in rejected]
    out += [replace(f.record, line=layout(f.record.file).line_of_row(f.row)) for f in cast_failures]
    return out


@dataclass(frozen=True)
class RecordLayout:
    """Where a CSV file's records start: `starts[n - 1]` is the line of DuckDB's record n (the header is 1), and
    `rows` the record numbers that became rows (neither blank nor rejected), in order. DuckDB's `store_rejects`
    numbers records, and a quoted field may span lines: this places them on the file's lines."""

    starts: list[int]
    rows: list[int]

    @classmethod
    def of(cls, text: str, rejected: set[int]) -> RecordLayout:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        starts, blank, line = [], [], 0
        try:
            with wide_csv_fields():
                for record in reader:
                    starts.append(line + 1)
                    blank.append(not record)
                    line = reader.line_num
        except csv.Error:
            pass  # an unterminated quote: the records from there on keep DuckDB's numbers
        rows = [n for n in range(2, len(starts) + 1) if not blank[n - 1] and n not in rejected]
        return cls(starts, rows)

    def line_of_record(self, number: int) -> int:
        return self.starts[number - 1] if number <= len(self.starts) else number

    def line_of_row(self, index: int) -> int:
        return self.starts[self.rows[index] - 1] if index < len(self.rows) else index + 2


def _datetimes(values: pl.Series) -> pl.Series:
    """A dateTime column: in the one format all of it follows, else each value in the first of NEON's formats
    that reads it (the files of one table may follow different ones; a date alone counts as its midnight)."""
    parsed = datetimes_in_one_format(values)
    if parsed is not None:
        return parsed
    text = pl.col(values.name)
    readings = [text.str.to_datetime(fmt, strict=False, time_unit="us") for fmt in DATETIME_FORMATS]
    readings.append(text.str.to_date(DATE_FORMAT, strict=False).cast(pl.Datetime("us")))
    return values.to_frame().select(pl.coalesce(readings)).to_series()
