"""NEON's documentation files and tokens: real readme, real variables file, JWT expiry, BibTeX."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rootassets.neon.citations import bibtex
from rootassets.neon.documents import issue_log_frame, issue_log_from_readme, read_variables_table
from rootassets.neon.errors import NeonDataError, NeonTokenError
from rootassets.neon.snapshot import SnapshotSource
from rootassets.neon.tokens import require_token, token_expiry, unsigned_token
from rootassets_tests.conftest import REPO

SAMPLE = (REPO / ".." / "shared" / "neon-samples" / "RELEASE-2022-seven-sites" / "DP1.10066.001").resolve()


def test_the_real_readme_issue_log_has_its_three_entries() -> None:
    entries = issue_log_from_readme((SAMPLE / "readme_10066.txt").read_text())
    assert [e["issueDate"] for e in entries] == ["2020-12-01", "2020-10-02", "2020-01-21"]
    first = entries[0]
    assert (first["dateRangeStart"], first["dateRangeEnd"], first["resolvedDate"]) == (
        "2012-01-01",
        "2019-01-01",
        "2020-11-10",
    )
    assert first["resolution"].endswith("in the `mpr_carbonNitrogen` table.")
    assert issue_log_frame(entries).height == 3


def test_a_readme_without_an_issue_log_has_none() -> None:
    assert issue_log_from_readme("DATA PRODUCT INFORMATION\n\nNo issues here.\n") == []


def test_the_real_variables_file_keeps_neons_columns() -> None:
    frame = read_variables_table(SAMPLE / "variables_10066.csv")
    assert {"table", "fieldName", "description", "dataType", "units", "downloadPkg", "pubFormat"} <= set(frame.columns)
    row = frame.filter((frame["table"] == "mpr_perdepthincrement") & (frame["fieldName"] == "topDepth")).row(
        0, named=True
    )
    assert (row["dataType"], row["units"]) == ("real", "centimeter")


def test_a_variables_file_without_neons_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "variables_10066.csv"
    path.write_text("table,fieldName\nmpr_perrootsample,uid\n")
    with pytest.raises(NeonDataError, match=r"variables_10066\.csv: variables file lacks column\(s\) \['description'"):
        read_variables_table(path)


def test_a_labelled_release_folder_and_two_roots(tmp_path: Path) -> None:
    source = SnapshotSource(f"{REPO / '..' / 'shared' / 'neon-snapshot'}:{SAMPLE.parent.parent}")
    assert source.releases() == ["RELEASE-2021", "RELEASE-2022", "RELEASE-2025"]
    twice = tmp_path / "again" / "RELEASE-2022-copy"
    twice.mkdir(parents=True)
    with pytest.raises(NeonDataError, match="release RELEASE-2022 is in two snapshot folders"):
        SnapshotSource(f"{SAMPLE.parent.parent}:{twice.parent}")


def test_token_expiry_is_read_from_the_jwt() -> None:
    assert token_expiry(unsigned_token(1_900_000_000)) == 1_900_000_000
    assert token_expiry("not-a-jwt") is None
    assert token_expiry("a.%%%.c") is None


@given(st.text(max_size=200))
def test_token_expiry_never_raises(text: str) -> None:
    assert token_expiry(text) is None or isinstance(token_expiry(text), float)


def test_require_token_messages_name_the_variable_never_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEON_TOKEN", raising=False)
    with pytest.raises(NeonTokenError, match=r"^NEON_TOKEN is not set"):
        require_token()
    expired = unsigned_token(time.time() - 10, subject="SECRET-VALUE")
    monkeypatch.setenv("NEON_TOKEN", expired)
    with pytest.raises(NeonTokenError, match=r"^NEON_TOKEN has expired \(expiry \d{4}-\d{2}-\d{2}") as info:
        require_token()
    assert expired not in str(info.value)
    monkeypatch.setenv("NEON_TOKEN", "opaque-token-without-expiry")
    assert require_token() == "opaque-token-without-expiry"


def test_bibtex_has_every_product_the_paper_and_rootassets() -> None:
    rows = [
        {"product": "DP1.10066.001", "product_name": "Root biomass and chemistry, Megapit", "doi": "10.5072/x"},
        {"product": "DP1.00096.001", "product_name": "Soil physical and chemical properties, Megapit", "doi": None},
    ]
    text = bibtex(rows, "RELEASE-2021", "0.1.0")
    assert (
        text.count("@misc{") == 2 and "@article{lu2025rootbimodality" in text and "@software{rootassets_0_1_0" in text
    )
    assert "doi = {10.5072/x}" in text and "no DOI announced by the data source" in text
    assert "year = {2021}" in text
