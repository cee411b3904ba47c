"""Reading NEON CSVs with the quirks of the real files, and refusing bad ones."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rootassets.neon.csvfiles import MalformedRecord, read_neon_csv
from rootassets.neon.errors import NeonDataError
from rootassets_tests.conftest import SNAPSHOT


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_bom_row_names_na_and_quotes(tmp_path: Path) -> None:
    f = write(tmp_path / "t.csv", '\ufeff"","siteID","note","value"\n"1","BART","a, quoted",1.5\n"2","HARV",NA,NA\n')
    frame = read_neon_csv(f)
    assert frame.columns == ["siteID", "note", "value"]
    assert frame["note"].to_list() == ["a, quoted", None]
    assert frame["value"].dtype == pl.Float64 and frame["value"].to_list() == [1.5, None]


def test_variables_types_columns(tmp_path: Path) -> None:
    f = write(tmp_path / "t.csv", "siteID,mass,n,collectDate,day\nBART,0.5,3,2013-08-19T16:00Z,2013-08-19\n")
    frame = read_neon_csv(f, {"mass": "real", "n": "integer", "collectDate": "dateTime", "day": "dateTime"})
    assert frame.schema["mass"] == pl.Float64 and frame.schema["n"] == pl.Int64
    assert frame.schema["collectDate"] == pl.Datetime("us", "UTC")
    assert frame.schema["day"] == pl.Date


def test_non_numeric_value_names_file_row_field(tmp_path: Path) -> None:
    f = write(tmp_path / "bad.csv", "siteID,mass\nBART,0.5\nHARV,heavy\n")
    with pytest.raises(NeonDataError, match=r"bad\.csv: row 2, field 'mass': value 'heavy'"):
        read_neon_csv(f, {"mass": "real"})


def test_of_several_bad_fields_the_leftmost_is_named_at_its_first_bad_row(tmp_path: Path) -> None:
    """All numeric columns are cast in one pass; the refusal still names what a reader scanning left to right,
    top to bottom, meets first among the bad fields' columns."""
    text = "siteID,n,when,mass\nBART,1,2013-08-19,0.5\nHARV,2,2013-08-19,light\nCPER,x,yesterday,heavy\n"
    declared = {"n": "integer", "when": "dateTime", "mass": "real"}
    with pytest.raises(NeonDataError, match=r"many\.csv: row 3, field 'n': value 'x' is not a valid integer"):
        read_neon_csv(write(tmp_path / "many.csv", text), declared)
    text = "siteID,n,when,mass\nBART,1,2013-08-19,0.5\nHARV,2,2013-08-19,light\nCPER,3,yesterday,heavy\n"
    with pytest.raises(
        NeonDataError, match=r"many\.csv: row 3, field 'when': value 'yesterday' is not a valid dateTime"
    ):
        read_neon_csv(write(tmp_path / "many.csv", text), declared)
    text = "siteID,n,when,mass\nBART,1,2013-08-19,0.5\nHARV,2,2013-08-19,light\nCPER,3,2013-08-20,heavy\n"
    with pytest.raises(NeonDataError, match=r"many\.csv: row 2, field 'mass': value 'light' is not a valid real"):
        read_neon_csv(write(tmp_path / "many.csv", text), declared)


def test_bad_encoding_names_file_and_line(tmp_path: Path) -> None:
    f = write(tmp_path / "latin.csv", b"siteID,name\nBART,ok\nHARV,caf\xe9\n")
    with pytest.raises(NeonDataError, match=r"latin\.csv: line 3 is not valid UTF-8"):
        read_neon_csv(f)


def test_ragged_rows_are_refused_without_a_malformed_list(tmp_path: Path) -> None:
    f = write(tmp_path / "ragged.csv", "siteID,a\nBART,1,2,3\n")
    with pytest.raises(NeonDataError, match=r"ragged\.csv: line 2: record has 4 fields, the header has 2"):
        read_neon_csv(f)


def test_truncated_last_line_is_set_aside_and_the_rest_kept(tmp_path: Path) -> None:
    body = '"siteID","note","value"\n"BART","multi\nline",1\n"HARV","x",2\n"KONZ","unterminated'
    f = write(tmp_path / "cut.csv", body)
    malformed: list[MalformedRecord] = []
    frame = read_neon_csv(f, malformed=malformed)
    assert frame["siteID"].to_list() == ["BART", "HARV"]
    assert frame["note"][0] == "multi\nline"
    assert [(m.file, m.line) for m in malformed] == [("cut.csv", 5)]
    assert malformed[0].text == '"KONZ","unterminated'


def test_header_only_and_empty_files(tmp_path: Path) -> None:
    assert read_neon_csv(write(tmp_path / "h.csv", "siteID,a\n")).height == 0
    with pytest.raises(NeonDataError, match="e.csv: empty file"):
        read_neon_csv(write(tmp_path / "e.csv", ""))


def test_unreadable_file_named(tmp_path: Path) -> None:
    with pytest.raises(NeonDataError, match="missing.csv: cannot read file"):
        read_neon_csv(tmp_path / "missing.csv")


def _one_polars_read(raw: bytes) -> pl.DataFrame:
    """The reference: polars inferring every column's type, dates included, in one read of the whole file."""
    import io

    from rootassets.neon.csvfiles import NULL_VALUES, normalize_types

    frame = pl.read_csv(io.BytesIO(raw), null_values=NULL_VALUES, infer_schema_length=None, try_parse_dates=True)
    return normalize_types(frame)


DATE_LIKE_VALUES = [
    "2016-10-24",
    "2016/10/24",
    "24/10/2016",
    "24.10.2016",
    "2013-08-19 16:00:00",
    "2013-08-19T16:00",
    "2020-12-17T01:55:40Z",
    "2020-12-17T01:55:40.250Z",
    "2020-12-17T01:55:40+01:00",
    "20201217T015540Z",
    "2016-10-24T16:00:00z",
    "2016-10-24t16:00:00",
    "2016-10-24 16:00:00 UTC",
    " 2016-10-24",
    "+2016-10-24",
    "0a1b2c3d-uid",
    "5e33c0cb-072d-4b64-b27b-1d2c3e4f5a6b",
    "1_BARTLETT_PIT1",
    "010 EA-IRMS organic",
    "20201217",
    "2016-13-45",
    "16:00",
    "later",
    "NA",
    "",
    "1.5",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.sampled_from(DATE_LIKE_VALUES), min_size=3, max_size=3), min_size=1, max_size=12))
def test_untyped_columns_get_the_types_one_polars_read_infers_dates_included(rows: list[list[str]]) -> None:
    """Dates are inferred on the date-like columns alone (a whole-file attempt was 30x slower), on each column's
    distinct values (values repeat in most columns of 12 rows): every column still gets the type and values of
    polars' one read of the file."""
    from polars.testing import assert_frame_equal

    from rootassets.neon.csvfiles import read_neon_bytes

    raw = ("a,b,c\n" + "".join(",".join(row) + "\n" for row in rows)).encode()
    try:
        expected = _one_polars_read(raw)
    except pl.exceptions.PolarsError:  # polars cannot read it at all (two date formats in one column)
        with pytest.raises(NeonDataError, match="dates.csv: not a readable CSV file"):
            read_neon_bytes(raw, "dates.csv", None, [])
        return
    assert_frame_equal(read_neon_bytes(raw, "dates.csv", None, []), expected)


@pytest.mark.parametrize("folder", ["neon-snapshot", "neon-samples"])
def test_neons_real_files_read_as_one_polars_read_infers_them(folder: str) -> None:
    from polars.testing import assert_frame_equal

    from rootassets.neon.csvfiles import read_neon_bytes

    root = SNAPSHOT.parent / folder
    files = sorted(root.rglob("*.csv"))
    assert files, f"no CSV files under {root}"
    for path in files:
        raw = path.read_bytes()
        try:
            expected = _one_polars_read(raw)
        except pl.exceptions.PolarsError:
            continue  # not one polars read can take (ragged records): the malformed-record tests cover those
        if expected.columns and expected.columns[0] in ("", "_duplicated_0"):
            continue  # R row names, dropped by the reader
        assert_frame_equal(read_neon_bytes(raw, path.name, None, []), expected, check_dtypes=True)
