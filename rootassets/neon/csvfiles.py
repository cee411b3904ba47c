"""Reading NEON CSV files as published: BOM, quotes, `NA`, R row names.

Without a variables file the column types are inferred from the whole file;
with one, each column is cast to NEON's declared type and a value that does
not fit is refused with the file, row and field.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from rootassets.neon.errors import NeonDataError

NULL_VALUES = ["NA", ""]
# Large enough for any real NEON field; a bigger one is refused with the file named.
FIELD_SIZE_LIMIT = 16 * 1024 * 1024


@contextmanager
def wide_csv_fields() -> Iterator[None]:
    """Python's csv module reads fields up to FIELD_SIZE_LIMIT inside the block (its default is 128 kB)."""
    previous = csv.field_size_limit(FIELD_SIZE_LIMIT)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


@dataclass(frozen=True)
class MalformedRecord:
    """A CSV record that cannot become a row: a wrong number of fields, or (`column`) a value of the wrong type."""

    file: str
    line: int
    reason: str
    text: str
    column: str | None = None
    rule: str = "malformed_record"


# NEON dataType -> polars type; dateTime is handled by _parse_datetimes.
_NEON_TYPES: dict[str, pl.DataType] = {
    "real": pl.Float64(),
    "integer": pl.Int64(),
    "signed integer": pl.Int64(),
    "unsigned integer": pl.Int64(),
    "string": pl.String(),
    "uri": pl.String(),
}
DATE_FORMAT = "%Y-%m-%d"
DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%MZ",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y%m%dT%H%M%SZ",
)


def read_neon_csv(
    path: Path,
    variables: dict[str, str] | None = None,
    malformed: list[MalformedRecord] | None = None,
) -> pl.DataFrame:
    """Read one NEON CSV file into a frame with normalized types.

    `variables` maps column name to NEON dataType; without it types are
    inferred. An unnamed first column (R row names) is dropped. Records with
    the wrong number of fields (a truncated line, say) are appended to
    `malformed` and left out; without that list they make the file fail.
    """
    return read_neon_bytes(read_file_bytes(path), path.name, variables, malformed)


def read_neon_bytes(
    raw: bytes,
    name: str,
    variables: dict[str, str] | None = None,
    malformed: list[MalformedRecord] | None = None,
) -> pl.DataFrame:
    """`read_neon_csv` for a file already in memory (a member of a zip), named `name` in messages."""
    check_utf8(raw, name)
    raw, bad = _split_malformed(raw, name)
    if bad and malformed is None:
        first = bad[0]
        raise NeonDataError(f"{name}: line {first.line}: {first.reason}")
    if malformed is not None:
        malformed.extend(bad)
    try:
        if variables is None:
            frame = _with_inferred_dates(
                pl.read_csv(io.BytesIO(raw), null_values=NULL_VALUES, infer_schema_length=None)
            )
        else:
            frame = pl.read_csv(io.BytesIO(raw), null_values=NULL_VALUES, infer_schema=False)
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        raise NeonDataError(f"{name}: not a readable CSV file ({_first_line(exc)})") from exc
    frame = _drop_row_names(frame)
    if variables is not None:
        frame = _cast_to_variables(frame, variables, name)
    return normalize_types(frame)


# How every date or datetime polars infers begins (a year or a day, maybe after blanks or a sign): a column whose
# first value begins otherwise is never a date to polars.
_MAY_BE_A_DATE = re.compile(r"[\s+-]*[0-9]")


def _with_inferred_dates(frame: pl.DataFrame) -> pl.DataFrame:
    """polars' `try_parse_dates` inference, run on the text columns whose first value is a date or time alone.

    Over a whole file, polars tries every field of every column against its date patterns: 4.8 s against 0.16 s
    without, on a 12 MB table. Each column's type is inferred from its own values (a column is a date column
    only when every value is a date), so inferring the candidates apart (their values written out and read
    back) gives the types and values of one read. A candidate is a column whose first value polars
    itself, reading that value alone, takes for a date or time: NEON's UUIDs and sample codes often begin with
    a digit, and trying all their values was most of reading a large root table (1.6 s of 2.2 s).

    Each candidate's distinct values are read, in order of first appearance, and mapped back onto its rows:
    the type rests on which values the column holds, not how often, and polars parses a date value by value
    (a column of two formats is refused, whatever their order). polars' date inference costs up to 20 us a
    value, and a NEON table repeats its dates thousands of times (8.3 of the 10.5 s of reading a 124 MB table)."""
    maybe = {
        name: first
        for name, dtype in frame.schema.items()
        if dtype == pl.String
        and (first := frame[name].drop_nulls().head(1).to_list())
        and _MAY_BE_A_DATE.match(first[0])
    }
    if not maybe:
        return frame
    firsts = pl.DataFrame(maybe, schema=dict.fromkeys(maybe, pl.String))
    try:
        alone = pl.read_csv(io.BytesIO(firsts.write_csv().encode()), infer_schema_length=None, try_parse_dates=True)
        candidates = [name for name, dtype in zip(maybe, alone.dtypes, strict=True) if dtype.is_temporal()]
    except pl.exceptions.PolarsError:  # a value polars takes for a date but cannot parse: try every column whole
        candidates = list(maybe)
    if not candidates:
        return frame
    distinct = [frame[name].drop_nulls().unique(maintain_order=True) for name in candidates]
    longest = max(len(values) for values in distinct)
    padded = pl.DataFrame([values.extend_constant(None, longest - len(values)) for values in distinct])
    parsed = pl.read_csv(io.BytesIO(padded.write_csv().encode()), infer_schema_length=None, try_parse_dates=True)
    # by position: a name with quotes or delimiters in it need not read back as it was written
    return frame.with_columns(
        frame[name].replace_strict(
            values, parsed.to_series(i).head(len(values)), default=None, return_dtype=parsed.dtypes[i]
        )
        for i, (name, values) in enumerate(zip(candidates, distinct, strict=True))
    )


def read_variables(path: Path) -> dict[str, dict[str, str]]:
    """Read a NEON variables file: {table: {fieldName: dataType}}."""
    frame = read_neon_csv(path)
    missing = {"table", "fieldName", "dataType"} - set(frame.columns)
    if missing:
        raise NeonDataError(f"{path.name}: variables file lacks column(s) {sorted(missing)}")
    out: dict[str, dict[str, str]] = {}
    for table, field, dtype in frame.select("table", "fieldName", "dataType").iter_rows():
        if table and field and dtype:
            out.setdefault(table, {})[field] = dtype
    return out


def normalize_types(frame: pl.DataFrame) -> pl.DataFrame:
    """Put every datetime in UTC (NEON publishes UTC) and give all-null columns a type."""
    exprs = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            col = pl.col(name).dt.cast_time_unit("us")
            col = col.dt.replace_time_zone("UTC") if dtype.time_zone is None else col.dt.convert_time_zone("UTC")
            exprs.append(col)
        elif dtype == pl.Null:
            exprs.append(pl.col(name).cast(pl.String))
    return frame.with_columns(exprs) if exprs else frame


def read_file_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NeonDataError(f"{path}: cannot read file ({exc.strerror})") from exc
    return raw


def check_utf8(raw: bytes, name: str) -> None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        row = raw[: exc.start].count(b"\n") + 1
        raise NeonDataError(f"{name}: line {row} is not valid UTF-8 (byte {exc.start})") from exc


def _split_malformed(raw: bytes, file: str) -> tuple[bytes, list[MalformedRecord]]:
    """Remove records whose field count differs from the header's."""
    text = raw.decode("utf-8")
    lines = text.splitlines(keepends=True)
    with wide_csv_fields():
        try:
            reader = csv.reader(lines)
            header = next(reader, None)
            if header is None:
                raise NeonDataError(f"{file}: empty file (no header line)")
            bad: list[MalformedRecord] = []
            drop: set[int] = set()
            start = reader.line_num
            for record in reader:
                end = reader.line_num
                if record and len(record) != len(header):
                    bad.append(
                        MalformedRecord(
                            file=file,
                            line=start + 1,
                            reason=f"record has {len(record)} fields, the header has {len(header)}",
                            text="".join(lines[start:end]),
                        )
                    )
                    drop.update(range(start, end))
                start = end
        except csv.Error as exc:
            raise NeonDataError(f"{file}: line {reader.line_num}: unreadable CSV ({exc})") from exc
    if not bad:
        return raw, []
    kept = "".join(line for i, line in enumerate(lines) if i not in drop)
    return kept.encode("utf-8"), bad


def _drop_row_names(frame: pl.DataFrame) -> pl.DataFrame:
    if frame.width and frame.columns[0] in ("", "...1", "Unnamed: 0"):
        return frame.drop(frame.columns[0])
    return frame


def _cast_to_variables(frame: pl.DataFrame, variables: dict[str, str], file: str) -> pl.DataFrame:
    numeric = {}
    for name in frame.columns:
        target = _NEON_TYPES.get(variables.get(name, "string"), pl.String())
        if target != pl.String():
            numeric[name] = target
    # every numeric column cast, and its failures found, in one pass over the frame (not one per column)
    casts = frame.select([pl.col(n).cast(t, strict=False) for n, t in numeric.items()]) if numeric else None
    failed = (
        frame.select(
            [(pl.col(n).is_not_null() & pl.col(n).cast(t, strict=False).is_null()).any() for n, t in numeric.items()]
        ).row(0, named=True)
        if casts is not None
        else {}
    )
    exprs = []
    for name in frame.columns:  # in column order, so the first bad field named is the leftmost, as a reader scans
        neon_type = variables.get(name, "string")
        if neon_type == "dateTime":
            exprs.append(_parse_datetimes(frame[name], file))
        elif name in numeric:
            if failed[name]:
                _refuse_failed(frame[name], casts[name], file, neon_type)
            exprs.append(casts[name])
    return frame.with_columns(exprs) if exprs else frame


def datetimes_in_one_format(values: pl.Series) -> pl.Series | None:
    """A dateTime column read in the one format all of it follows: dates when every value looks like a date (one
    that is not a real date left missing), else the first of NEON's formats that reads every value; None when
    no format does."""
    present = values.drop_nulls()
    if present.is_empty():
        return values.cast(pl.Datetime("us", "UTC"))
    if present.str.contains(r"^\d{4}-\d{2}-\d{2}$").all():
        return values.str.to_date(DATE_FORMAT, strict=False)
    for fmt in DATETIME_FORMATS:
        parsed = values.str.to_datetime(fmt, strict=False, time_unit="us")
        if parsed.null_count() == values.null_count():
            return parsed
    return None


def _parse_datetimes(values: pl.Series, file: str) -> pl.Series:
    parsed = datetimes_in_one_format(values)
    if parsed is not None:
        _refuse_failed(values, parsed, file, "dateTime")
        return parsed
    # no format reads every value: name the first value that the format most of them follow cannot read
    attempts = [values.str.to_datetime(fmt, strict=False, time_unit="us") for fmt in DATETIME_FORMATS]
    attempts.append(values.str.to_date(DATE_FORMAT, strict=False))
    _refuse_failed(values, min(attempts, key=lambda parsed: parsed.null_count()), file, "dateTime")
    raise AssertionError("unreachable")  # pragma: no cover


def _refuse_failed(before: pl.Series, after: pl.Series, file: str, neon_type: str) -> None:
    bad = before.is_not_null() & after.is_null()
    if bad.any():
        index = int(bad.arg_true()[0])
        raise NeonDataError(
            f"{file}: row {index + 1}, field {before.name!r}: value {before[index]!r} is not a valid {neon_type}"
        )


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
