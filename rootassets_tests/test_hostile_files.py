"""Hostile NEON files: mangled CSVs through reading, stacking and validation (hypothesis fuzzing).

Every case must end in one of two ways: the file is refused with an error that
names it, or every input record is accounted for as kept or quarantined.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rootassets.neon.errors import NeonDataError
from rootassets.neon.stacking import SourceFile, stack_table
from rootassets.schemas import RAW_CONTRACTS
from rootassets.warehouse.quarantine import StructuralError, screen

pytestmark = pytest.mark.slow
HEADER = [
    "",
    "uid",
    "depthIncrementID",
    "rootStatus",
    "sizeCategory",
    "rootDryMass",
    "incrementRootBiomass",
    "incrementRootDensity",
    "publicationDate",
]
GOOD = ['"1"', '"u1"', '"BART.1.0"', '"live"', '"<=2mm"', "0.1", "1.5", "15", '"20201217T015540Z"']
CONTRACT = RAW_CONTRACTS["mpr_perrootsample"]
FILE = "NEON.D01.BART.DP1.10066.001.mpr_perrootsample.2013-08.basic.20201217T015540Z.csv"


def good_rows(n: int) -> list[list[str]]:
    rows = []
    for i in range(n):
        row = list(GOOD)
        row[0], row[1], row[2] = f'"{i + 1}"', f'"u{i}"', f'"BART.1.{10 * i}"'
        rows.append(row)
    return rows


@st.composite
def mangled_csv(draw: st.DrawFn) -> tuple[bytes, int]:
    """A root-sample CSV with some of: a dropped/extra column, bad numbers, odd delimiters, broken
    quotes, bad bytes, huge fields, truncation. Returns the bytes and the number of data records."""
    header = list(HEADER)
    rows = good_rows(draw(st.integers(0, 12)))
    if draw(st.booleans()) and rows:
        i = draw(st.integers(0, len(rows) - 1))
        j = draw(st.integers(5, 7))
        rows[i][j] = draw(st.sampled_from(['"heavy"', "-3", "1e400", '""', "NA", "1,5", "0x10"]))
    if draw(st.booleans()):
        drop = draw(st.integers(1, len(header) - 1))
        header.pop(drop)
        if draw(st.booleans()):
            for r in rows:
                r.pop(drop)
    if draw(st.booleans()):
        header.append('"extra"')
        for r in rows:
            if draw(st.booleans()):
                r.append('"x"')
    if draw(st.booleans()) and rows:
        rows[draw(st.integers(0, len(rows) - 1))][3] = '"' + "x" * draw(st.sampled_from([10, 100_000])) + '"'
    if draw(st.booleans()) and rows:
        rows[draw(st.integers(0, len(rows) - 1))][4] = '"unterminated'
    delimiter = draw(st.sampled_from([",", ",", ";", "\t"]))
    text = delimiter.join(f'"{h}"' if not h.startswith('"') else h for h in header) + "\n"
    text += "".join(delimiter.join(r) + "\n" for r in rows)
    data = text.encode("utf-8")
    if draw(st.booleans()):
        data = draw(st.sampled_from([b"\xef\xbb\xbf", b""])) + data
    if draw(st.booleans()) and len(data) > 10:
        data = data[: draw(st.integers(1, len(data) - 1))]
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff\xfe", b"\x00", b"\xe9"])) + data[at:]
    return data, len(rows)


# NEON's declared types of the fuzzed columns: typed files go through DuckDB's reader (csv_batch), others are
# read file by file with the types inferred (csvfiles).
DECLARED = {
    "rootDryMass": "real",
    "incrementRootBiomass": "real",
    "incrementRootDensity": "real",
    "uid": "string",
    "publicationDate": "dateTime",
}


@pytest.mark.parametrize("types", [None, DECLARED], ids=["inferred", "declared"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=mangled_csv())
def test_mangled_files_are_refused_by_name_or_fully_accounted(
    tmp_path_factory, types: dict[str, str] | None, case: tuple[bytes, int]
) -> None:
    data, _ = case
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / FILE
    path.write_bytes(data)
    source = SourceFile(
        path=path, table="mpr_perrootsample", site="BART", month="2013-08", publication="20201217T015540Z"
    )
    try:
        stacked = stack_table("mpr_perrootsample", [source], "RELEASE-2021", types)
        screened = screen(
            stacked.frame, CONTRACT, f"raw.mpr_perrootsample from {FILE}", "RELEASE-2021", stacked.malformed
        )
    except (NeonDataError, StructuralError) as exc:
        assert FILE in str(exc) or "raw.mpr_perrootsample" in str(exc), str(exc)
        return
    records_in = stacked.frame.height + len(stacked.malformed)
    assert screened.rows_in == records_in == screened.kept.height + screened.quarantined.height
    assert (screened.kept["incrementRootDensity"].drop_nulls() >= 0).all()
    assert screened.kept["uid"].is_duplicated().sum() == 0


def test_huge_field_is_read_not_crashed(tmp_path: Path) -> None:
    row = list(GOOD)
    row[3] = '"' + "y" * 5_000_000 + '"'
    path = tmp_path / FILE
    path.write_text(",".join(f'"{h}"' for h in HEADER) + "\n" + ",".join(row) + "\n")
    stacked = stack_table(
        "mpr_perrootsample", [SourceFile(path=path, table="mpr_perrootsample", site="BART")], "RELEASE-2021"
    )
    screened = screen(stacked.frame, CONTRACT, "raw.mpr_perrootsample", "RELEASE-2021", stacked.malformed)
    assert screened.quarantined.height == 1 and screened.kept.height == 0
    assert screened.quarantined["rule"][0].startswith("isin")


def test_semicolon_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / FILE
    path.write_text(";".join(HEADER) + "\n" + ";".join(GOOD) + "\n")
    stacked = stack_table(
        "mpr_perrootsample", [SourceFile(path=path, table="mpr_perrootsample", site="BART")], "RELEASE-2021"
    )
    try:
        screen(stacked.frame, CONTRACT, f"raw.mpr_perrootsample from {FILE}", "RELEASE-2021")
    except StructuralError as exc:
        assert FILE in str(exc) and "missing" in str(exc)
    else:
        raise AssertionError("a semicolon-delimited file must not pass as NEON CSV")
