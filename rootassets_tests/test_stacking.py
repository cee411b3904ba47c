"""Stacking per-site files into one table, as neonUtilities' stackByTable does."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rootassets.neon.errors import NeonDataError
from rootassets.neon.products import ProductSpec
from rootassets.neon.stack_by_table import classify_name
from rootassets.neon.stacking import SourceFile, stack_packages, stack_table

HEADER = "uid,siteID,value,publicationDate\n"


def f(tmp: Path, name: str, body: str, **kw: object) -> SourceFile:
    path = tmp / name
    path.write_text(body)
    return SourceFile(path=path, table="t", **kw)  # type: ignore[arg-type]


def test_adds_columns_and_stacks_sites(tmp_path: Path) -> None:
    files = [
        f(
            tmp_path,
            "a.csv",
            HEADER + "1,BART,1.0,20201217T015540Z\n",
            site="BART",
            month="2013-08",
            publication="20201217T015540Z",
        ),
        f(
            tmp_path,
            "b.csv",
            HEADER + "2,HARV,2.0,20201218T000000Z\n3,HARV,NA,20201218T000000Z\n",
            site="HARV",
            month="2013-09",
            publication="20201218T000000Z",
        ),
    ]
    table = stack_table("t", files, "RELEASE-2021")
    frame = table.frame.sort("uid")
    assert frame["site_id"].to_list() == ["BART", "HARV", "HARV"]
    assert frame["release"].unique().to_list() == ["RELEASE-2021"]
    assert frame["source_file"].to_list() == ["a.csv", "b.csv", "b.csv"]
    assert str(frame["publication_date"][0]) == "2020-12-17 01:55:40+00:00"
    assert "publicationDate" not in frame.columns  # one name per column: publication_date carries it
    assert "siteID" not in frame.columns  # and site_id carries NEON's siteID
    assert [s.rows for s in table.sources] == [1, 2]


def test_site_all_keeps_newest_publication_per_site(tmp_path: Path) -> None:
    """Packages go through the generic stacker's choice: the newest publication of a site-all table per site."""
    body = {
        "NEON.D01.BART.DP1.10099.001.abc_pertrap.basic.20200101T000000Z.csv": "uid,siteID,value\n1,BART,1.0\n",
        "NEON.D01.BART.DP1.10099.001.abc_pertrap.basic.20210101T000000Z.csv": "uid,siteID,value\n1,BART,9.0\n",
        "NEON.D01.HARV.DP1.10099.001.abc_pertrap.basic.20190101T000000Z.csv": "uid,siteID,value\n5,HARV,5.0\n",
    }
    files = [replace(classify_name(name, "RELEASE-2021"), read=text.encode) for name, text in body.items()]
    product = ProductSpec("DP1.10099.001", "test product", ("abc_pertrap",))
    stacked = stack_packages(files, product, "RELEASE-2021").tables["abc_pertrap"]
    frame = stacked.frame.sort("site_id")
    assert frame["value"].cast(float).to_list() == [9.0, 5.0]
    assert frame["source_file"].str.slice(0, 40).to_list() == [n[:40] for n in list(body)[1:]]
    assert str(frame["publication_date"][0]) == "2021-01-01 00:00:00+00:00"


def test_site_from_depth_increment_id_when_siteid_is_missing(tmp_path: Path) -> None:
    body = '"","uid","depthIncrementID","incrementRootBiomass"\n"1","u1","BART.3.30",1.2\n"2","u2","OSBS.1.0",3\n'
    frame = stack_table("t", [f(tmp_path, "roots.csv", body)], "RELEASE-2021").frame
    assert frame["site_id"].to_list() == ["BART", "OSBS"]


def test_row_without_a_site_is_refused_with_file_row_field(tmp_path: Path) -> None:
    body = "uid,depthIncrementID\nu1,BART.1.0\nu2,NA\n"
    with pytest.raises(NeonDataError, match=r"roots\.csv: data row 2, field 'depthIncrementID'"):
        stack_table("t", [f(tmp_path, "roots.csv", body)], "RELEASE-2021")


def test_a_siteid_that_contradicts_its_file_is_refused_with_file_row_field(tmp_path: Path) -> None:
    body = HEADER + "1,BART,1.0,NA\n2,HARV,2.0,NA\n"
    with pytest.raises(
        NeonDataError, match=r"a\.csv: data row 2, field 'siteID': value 'HARV' .*site of the file \(BART\)"
    ):
        stack_table("t", [f(tmp_path, "a.csv", body, site="BART")], "RELEASE-2021")


def test_an_empty_siteid_takes_its_files_site_and_a_stacked_file_needs_one_per_row(tmp_path: Path) -> None:
    frame = stack_table("t", [f(tmp_path, "a.csv", HEADER + "1,NA,1.0,NA\n", site="BART")], "RELEASE-2021").frame
    assert frame["site_id"].to_list() == ["BART"] and "siteID" not in frame.columns
    with pytest.raises(NeonDataError, match=r"s\.csv: data row 2, field 'siteID': value 'bart' does not name"):
        stack_table("t", [f(tmp_path, "s.csv", HEADER + "1,HARV,1.0,NA\n2,bart,1.0,NA\n")], "RELEASE-2021")


def test_file_of_another_release_is_refused(tmp_path: Path) -> None:
    body = "uid,siteID,release\nu1,BART,RELEASE-2020\n"
    with pytest.raises(NeonDataError, match=r"x\.csv: data row 1, field 'release'.*RELEASE-2020"):
        stack_table("t", [f(tmp_path, "x.csv", body)], "RELEASE-2021")


def test_no_site_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NeonDataError, match=r"x\.csv: no column names the site"):
        stack_table("t", [f(tmp_path, "x.csv", "uid,value\n1,2\n")], "RELEASE-2021")
