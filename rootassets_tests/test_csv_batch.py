"""The generic stacker's DuckDB reader (`neon/csv_batch.py`): the same frames as the per-file NEON reader on real
files, and every record of a damaged file either kept exactly or kept aside with its file, line, field and value."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from rootassets.neon.csv_batch import CsvInput, read_typed_files
from rootassets.neon.csvfiles import MalformedRecord, read_neon_bytes, read_variables
from rootassets.neon.errors import NeonDataError
from rootassets.neon.mirror import MirrorCatalogue
from rootassets.neon.stacking import SourceFile, stack_table
from rootassets.schemas import RAW_CONTRACTS
from rootassets.warehouse.quarantine import screen

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "neon-samples" / "RELEASE-2022-seven-sites" / "DP1.10066.001"
TYPES = {"n": "integer", "mass": "real", "collectDate": "dateTime", "note": "string"}


def on_disk(path: Path) -> CsvInput:
    return CsvInput(path.name, path.read_bytes, path)


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


@pytest.mark.parametrize(
    "table", ["mpr_carbonNitrogen", "mpr_perdepthincrement", "mpr_perpitprofile", "mpr_perrootsample"]
)
def test_real_stacked_tables_read_as_the_per_file_reader_reads_them(table: str) -> None:
    """NEON's RELEASE-2022 tables (neon-samples), typed from their own variables file."""
    types = read_variables(SAMPLES / "variables_10066.csv")[table]
    path = SAMPLES / f"{table}.csv"
    malformed: list[MalformedRecord] = []
    [read] = read_typed_files([on_disk(path)], types, malformed)
    assert malformed == []
    assert_frame_equal(read.frame, read_neon_bytes(path.read_bytes(), path.name, types))
    dated = [c for c in read.frame.columns if types.get(c) == "dateTime"]
    assert dated and all(read.frame.schema[c] in (pl.Date, pl.Datetime("us", "UTC")) for c in dated)


def test_every_per_site_file_of_the_snapshot_reads_as_the_per_file_reader_reads_it(
    tmp_path: Path, catalogue: MirrorCatalogue
) -> None:
    """The per-site files and variables files NEON's API serves (the mirror's, from the snapshot), one table's
    files in one read, in and out of zips."""
    by_table: dict[tuple[str, str], list[CsvInput]] = {}
    variables: dict[str, dict[str, dict[str, str]]] = {}
    for (_, name), f in sorted(catalogue.files.items()):
        table = name.split(".")[6]
        if table == "variables":
            variables.setdefault(f.product, read_variables(write(tmp_path / name, f.body)))
            continue
        body = f.body
        by_table.setdefault((f.product, table), []).append(CsvInput(name, lambda body=body: body))
    assert sum(len(inputs) for inputs in by_table.values()) > 200
    for (product, table), inputs in by_table.items():
        types = variables[product].get(table, {})
        reads = read_typed_files(inputs, types, [])
        for item, read in zip(inputs, reads, strict=True):
            assert_frame_equal(read.frame, read_neon_bytes(item.read(), item.name, types))


DAMAGED = (
    '\ufeff"","n","mass","collectDate","note"\r\n'
    '"1",1,0.5,2013-08-19T16:00Z,"kept"\r\n'  # line 2
    '"2",2,light,2013-08-19T16:00Z,"a real that is not a number"\r\n'  # line 3
    '"3",1.5,0.5,2013-08-19T16:00Z,"an integer with a fraction, never rounded"\r\n'  # line 4
    '"4",4,0.5,yesterday,"a dateTime no format reads"\r\n'  # line 5
    '"5",5,0.5\r\n'  # line 6: short
    '"6",6,0.5,2013-08-19T16:00Z,"long","x"\r\n'  # line 7: long
    '"7",NA, 2.5 ,2013-08-19T16:00:30Z,"a, quoted ""note"""\r\n'  # line 8: kept (another format, spaces)
    '"8",8,0.25,2013-08-20,"kept: a date alone is its midnight"\r\n'  # line 9
)


def test_a_damaged_file_keeps_every_good_row_and_sets_each_bad_record_aside(tmp_path: Path) -> None:
    path = write(tmp_path / "NEON.D01.BART.DP1.10066.001.t.2013-08.basic.20201217T015540Z.csv", DAMAGED)
    malformed: list[MalformedRecord] = []
    [read] = read_typed_files([on_disk(path)], TYPES, malformed)
    frame = read.frame
    assert frame.columns == ["n", "mass", "collectDate", "note"]  # R's row names dropped
    assert frame.schema["n"] == pl.Int64 and frame.schema["mass"] == pl.Float64
    assert frame["n"].to_list() == [1, None, 8]
    assert frame["mass"].to_list() == [0.5, 2.5, 0.25]
    assert frame["note"].to_list()[1] == 'a, quoted "note"'
    assert [str(v) for v in frame["collectDate"].to_list()] == [
        "2013-08-19 16:00:00+00:00",
        "2013-08-19 16:00:30+00:00",
        "2013-08-20 00:00:00+00:00",
    ]
    assert all(r.file == path.name for r in malformed)
    assert [(r.line, r.rule, r.column) for r in malformed] == [
        (3, "not_a_number", "mass"),
        (4, "not_a_number", "n"),
        (5, "not_a_datetime", "collectDate"),
        (6, "malformed_record", None),
        (7, "malformed_record", None),
    ]
    reasons = [r.reason for r in malformed]
    assert reasons[0] == "field 'mass': value 'light' is not a valid real"
    assert reasons[1] == "field 'n': value '1.5' is not a valid integer"
    assert reasons[2] == "field 'collectDate': value 'yesterday' is not a valid dateTime"
    assert reasons[3:] == ["record has 3 fields, the header has 5", "record has 6 fields, the header has 5"]
    assert malformed[0].text.startswith('"2",2,light,')  # DuckDB's record, as published
    assert json.loads(malformed[1].text)["n"] == "1.5"  # a row cast after DuckDB's read: its values, as read
    assert frame.height + len(malformed) == 8


NOTES = st.text(alphabet='ab ,"\n', max_size=8)
RECORDS = st.one_of(
    st.tuples(st.just("good"), NOTES),
    st.tuples(st.just("short"), NOTES),
    st.tuples(st.just("long"), NOTES),
    st.tuples(st.just("not_a_number"), NOTES),  # mass: a word, refused by DuckDB's parse
    st.tuples(st.just("fraction"), NOTES),  # n: 1.5, refused by the integer cast after it
    st.tuples(st.just("blank"), st.just("")),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(RECORDS, min_size=1, max_size=12), newline=st.sampled_from(["\n", "\r\n"]))
def test_a_bad_record_is_named_by_the_file_line_it_starts_on_though_quoted_fields_span_lines(
    tmp_path: Path, records: list[tuple[str, str]], newline: str
) -> None:
    """DuckDB numbers records, not lines: a note spanning lines, or a blank line, before a bad record must not
    shift the line the quarantine names. The per-file reader names the same lines."""
    lines, expected, good = ['"n","note","mass"'], [], 0
    for kind, note in records:
        quoted = '"' + note.replace('"', '""').replace("\n", newline) + '"'
        record = {
            "good": f"1,{quoted},0.5",
            "short": f"2,{quoted}",
            "long": f"3,{quoted},0.5,x",
            "not_a_number": f"4,{quoted},heavy",
            "fraction": f"1.5,{quoted},0.5",
            "blank": "",
        }[kind]
        start = sum(line.count("\n") + 1 for line in lines) + 1
        if kind == "good":
            good += 1
        elif kind != "blank":
            expected.append((start, kind))
        lines.append(record.replace("\r\n", "\n"))
    text = newline.join(lines) + newline
    path = write(tmp_path / "t.csv", text.replace("\r\n", "\n").replace("\n", newline))
    malformed: list[MalformedRecord] = []
    [read] = read_typed_files([on_disk(path)], {"n": "integer", "mass": "real"}, malformed)
    assert read.frame.height == good
    assert [r.line for r in malformed] == [line for line, _ in expected]
    physical = path.read_bytes().decode().split(newline)
    for record, (line, kind) in zip(malformed, expected, strict=True):
        first_line = json.loads(record.text)["n"] if kind == "fraction" else record.text.split(newline)[0]
        assert physical[line - 1].startswith(first_line)
    per_file: list[MalformedRecord] = []
    read_neon_bytes(path.read_bytes(), path.name, None, per_file)
    assert [r.line for r in per_file] == [line for line, kind in expected if kind in ("short", "long")]


def test_without_a_list_for_bad_records_the_first_one_refuses_its_file(tmp_path: Path) -> None:
    good = write(tmp_path / "good.csv", '"n","mass"\n1,0.5\n')
    bad = write(tmp_path / "bad.csv", '"n","mass"\n1,0.5\n2,0.5\n3,heavy\n')
    with pytest.raises(NeonDataError, match=r"^bad\.csv: line 4: field 'mass': value 'heavy' is not a valid real$"):
        read_typed_files([on_disk(good), on_disk(bad)], TYPES)


def test_a_zip_member_reads_as_the_same_file_on_disk(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", DAMAGED)
    on_file, in_memory = [], []
    [a] = read_typed_files([on_disk(path)], TYPES, on_file)
    [b] = read_typed_files([CsvInput(path.name, lambda: DAMAGED.encode())], TYPES, in_memory)
    assert_frame_equal(a.frame, b.frame)
    assert on_file == in_memory and a.md5 == b.md5


def test_files_with_different_headers_each_keep_their_own_columns_and_order(tmp_path: Path) -> None:
    one = write(tmp_path / "one.csv", '"n","mass"\n1,0.5\n2,0.75\n')
    two = write(tmp_path / "two.csv", '"mass","note","n"\n0.1,"x",3\n')
    three = write(tmp_path / "three.csv", '"n","mass"\n')  # a header alone: no rows
    reads = read_typed_files([on_disk(one), on_disk(two), on_disk(three)], TYPES, [])
    assert [r.frame.columns for r in reads] == [["n", "mass"], ["mass", "note", "n"], ["n", "mass"]]
    assert [r.frame.height for r in reads] == [2, 1, 0]
    assert reads[1].frame.row(0) == (0.1, "x", 3)
    assert reads[2].frame.schema == reads[0].frame.schema


def test_a_bad_value_in_a_later_header_group_names_its_own_file_and_line(tmp_path: Path) -> None:
    one = write(tmp_path / "one.csv", '"n","mass"\n1,0.5\n')
    two = write(tmp_path / "two.csv", '"mass","n"\n0.1,3\n0.2,3.5\n')
    three = write(tmp_path / "three.csv", '"mass","n"\n0.3,4\n')
    malformed: list[MalformedRecord] = []
    reads = read_typed_files([on_disk(one), on_disk(two), on_disk(three)], TYPES, malformed)
    assert [(r.file, r.line, r.column) for r in malformed] == [("two.csv", 3, "n")]
    assert [r.frame.height for r in reads] == [1, 1, 1]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'"n","mass"\n1,0.5\n2,\xe9\n', r"t\.csv: line 3 is not valid UTF-8"),
        (b"", r"t\.csv: empty file \(no header line\)"),
        (b'"n","n"\n1,2\n', r"t\.csv: not a readable CSV file \(column name\(s\) \['n'\] repeated"),
    ],
    ids=["not-utf8", "empty", "repeated-column"],
)
def test_a_file_that_cannot_be_read_at_all_is_refused_naming_it(tmp_path: Path, content: bytes, message: str) -> None:
    with pytest.raises(NeonDataError, match=message):
        read_typed_files([on_disk(write(tmp_path / "t.csv", content))], TYPES, [])


def test_bad_records_reach_the_quarantine_with_their_field_and_rows_in_equal_kept_plus_quarantined(
    tmp_path: Path,
) -> None:
    """Through the stacker and the raw contract, as a raw asset screens a typed table."""
    header = '"uid","depthIncrementID","rootStatus","sizeCategory","rootDryMass","incrementRootBiomass",'
    header += '"incrementRootDensity"\n'
    rows = '"u1","BART.1.10","live","<=2mm",0.1,1.5,15\n"u2","BART.1.20","live","<=2mm",0.1,heavy,15\n'
    rows += '"u3","BART.1.30","live"\n'
    name = "NEON.D01.BART.DP1.10066.001.mpr_perrootsample.2013-08.basic.20201217T015540Z.csv"
    path = write(tmp_path / name, header + rows)
    types = {"rootDryMass": "real", "incrementRootBiomass": "real", "incrementRootDensity": "real"}
    source = SourceFile(path, "mpr_perrootsample", "BART", "2013-08", "20201217T015540Z")
    stacked = stack_table("mpr_perrootsample", [source], "RELEASE-2021", types)
    screened = screen(
        stacked.frame, RAW_CONTRACTS["mpr_perrootsample"], "raw.mpr_perrootsample", "RELEASE-2021", stacked.malformed
    )
    assert screened.rows_in == 3 == screened.kept.height + screened.quarantined.height
    quarantined = screened.quarantined.sort("rule").select("source_file", "rule", "column_name", "all_reasons")
    assert quarantined.rows() == [
        (name, "malformed_record", None, "record has 3 fields, the header has 7"),
        (
            name,
            "not_a_number",
            "incrementRootBiomass",
            "field 'incrementRootBiomass': value 'heavy' is not a valid real",
        ),
    ]
    assert [s.rows for s in stacked.sources] == [1]
