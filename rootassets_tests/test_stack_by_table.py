"""The generic stacker (`rootassets stack`) against what neonUtilities' stackByTable wrote.

Conformance: `../shared/neon-samples/RELEASE-2022-seven-sites/DP1.10066.001/` is neonUtilities' own stacked
output of seven sites (its README gives the provenance). The test lays its rows back out as NEON's per-site,
per-month files in download packages inside a data-portal zip (folders or zips, with stray `.DS_Store`
files), stacks them, and compares every table with neonUtilities' output, row for row and column for column.
Value normalization: every value is compared as the text it is published as (`NA` and empty are both
missing); the `domainID` and `siteID` columns that the current stackByTable adds to an observational table
without a `siteID` (here `mpr_perdepthincrement`, `mpr_perrootsample`) are left out of the comparison,
because the sample was stacked by an earlier neonUtilities that did not add them.

A second conformance case, neonUtilities' own test fixture (`inst/extdata/NEON_litterfall.zip` and the
expected tables beside it, in the NEON-utilities repository), runs when those files are present under
`../shared/neon-utilities-extdata/` (or `$ROOTASSETS_NEONUTILITIES_EXTDATA`): they are not in the project,
whose data fixtures come only from `../shared`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import polars as pl
import pytest

from rootassets.neon.errors import NeonDataError
from rootassets.neon.stack_by_table import package_files, stack_by_table, write_stacked
from rootassets_tests.conftest import REPO

SAMPLE = (REPO / ".." / "shared" / "neon-samples" / "RELEASE-2022-seven-sites" / "DP1.10066.001").resolve()
EXTDATA = Path(
    os.environ.get("ROOTASSETS_NEONUTILITIES_EXTDATA", REPO / ".." / "shared" / "neon-utilities-extdata")
).resolve()
PRODUCT = "DP1.10066.001"
TABLES = ("mpr_perpitprofile", "mpr_perdepthincrement", "mpr_perrootsample", "mpr_carbonNitrogen")


def read(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False, null_values=["NA", ""])


def neon_csv(frame: pl.DataFrame) -> bytes:
    return frame.write_csv(null_value="", quote_style="non_numeric").encode()


def packages_from_stacked(sample: Path) -> dict[str, dict[str, bytes]]:
    """neonUtilities' stacked tables laid back out as NEON's download packages: package name -> files."""
    pits = read(sample / "mpr_perpitprofile.csv")
    where = {pit: (dom, site) for pit, dom, site in pits.select("pitNamedLocation", "domainID", "siteID").iter_rows()}
    month = dict(pits.group_by("siteID").agg(pl.col("endDate").min().str.slice(0, 7)).iter_rows())
    variables = read(sample / "variables_10066.csv").filter(pl.col("downloadPkg") != "appended by stackByTable")
    packages: dict[tuple[str, str], dict[str, bytes]] = {}
    for table in TABLES:
        frame = read(sample / f"{table}.csv")
        if "siteID" not in frame.columns:
            frame = frame.with_columns(
                pl.col("pitNamedLocation").replace_strict({k: v[0] for k, v in where.items()}).alias("_domain"),
                pl.col("pitNamedLocation").replace_strict({k: v[1] for k, v in where.items()}).alias("_site"),
            )
        else:
            frame = frame.with_columns(pl.col("domainID").alias("_domain"), pl.col("siteID").alias("_site"))
        for (domain, site, publication), rows in frame.group_by("_domain", "_site", "publicationDate"):
            name = f"NEON.{domain}.{site}.{PRODUCT}.{table}.{month[site]}.basic.{publication}.csv"
            body = neon_csv(rows.drop("_domain", "_site", "publicationDate", "release"))
            packages.setdefault((domain, site), {})[name] = body
    out = {}
    for (domain, site), files in packages.items():
        stamp = max(name.split(".")[-2] for name in files)
        prefix = f"NEON.{domain}.{site}.{PRODUCT}"
        files[f"{prefix}.variables.{stamp}.csv"] = neon_csv(variables)
        files[f"{prefix}.validation.{stamp}.csv"] = (sample / "validation_10066.csv").read_bytes()
        files[f"{prefix}.categoricalCodes.{stamp}.csv"] = (sample / "categoricalCodes_10066.csv").read_bytes()
        files[f"{prefix}.readme.{stamp}.txt"] = (sample / "readme_10066.txt").read_bytes()
        files[".DS_Store"] = b"\x00\x00\x00\x01Bud1"
        out[f"{prefix}.{month[site]}.basic.{stamp}.RELEASE-2022"] = files
    return out


def portal_zip(packages: dict[str, dict[str, bytes]], path: Path, nested: bool) -> Path:
    """A data-portal download: `NEON_<name>.zip` holding a folder of package folders (or of package zips)."""
    with zipfile.ZipFile(path, "w") as portal:
        portal.writestr("NEON_rootsmegapit/.DS_Store", b"\x00")
        portal.writestr("__MACOSX/NEON_rootsmegapit/._x", b"\x00")
        for package, files in packages.items():
            if nested:
                inner = path.with_name(package + ".zip")
                with zipfile.ZipFile(inner, "w") as zf:
                    for name, body in files.items():
                        zf.writestr(name, body)
                portal.write(inner, f"NEON_rootsmegapit/{package}.zip")
            else:
                for name, body in files.items():
                    portal.writestr(f"NEON_rootsmegapit/{package}/{name}", body)
    return path


@pytest.fixture(scope="module")
def packages() -> dict[str, dict[str, bytes]]:
    if not SAMPLE.is_dir():
        pytest.fail(f"the RELEASE-2022 sample is expected at {SAMPLE}")
    return packages_from_stacked(SAMPLE)


@pytest.mark.parametrize("nested", [False, True], ids=["folders", "zips"])
def test_every_table_equals_neonutilities_output(tmp_path: Path, packages: dict, nested: bool) -> None:
    stacked = stack_by_table(package_files(portal_zip(packages, tmp_path / "NEON_rootsmegapit.zip", nested)))
    for table in TABLES:
        expected = read(SAMPLE / f"{table}.csv")
        ours = stacked.tables[table]
        assert ours.height == expected.height, table
        compared = ours.drop([c for c in ("domainID", "siteID") if c not in expected.columns])
        assert compared.columns == expected.columns, table
        key = ["uid"]
        assert compared.sort(key).equals(expected.sort(key)), table
    variables = stacked.tables["variables_10066"]
    expected_variables = read(SAMPLE / "variables_10066.csv")
    ours_without_added = variables.filter(
        ~pl.col("fieldName").is_in(["domainID", "siteID"])
        | pl.col("table").is_in(["mpr_perpitprofile", "mpr_carbonNitrogen"])
    )
    assert ours_without_added.equals(expected_variables)
    for name in ("validation_10066", "categoricalCodes_10066"):
        assert stacked.tables[name].equals(read(SAMPLE / f"{name}.csv")), name
    readme = stacked.texts["readme_10066.txt"]
    assert readme.startswith("###################################\n########### Disclaimer")
    assert "Date-Time" not in readme


def test_site_all_and_lab_tables_keep_the_newest_publication_only(tmp_path: Path) -> None:
    def package(site: str, stamp: str, files: dict[str, bytes]) -> tuple[str, dict[str, bytes]]:
        return f"NEON.D01.{site}.DP1.10033.001.2022-09.basic.{stamp}.RELEASE-2025", files

    trap = b'uid,siteID,trapID\n"a","BART","T1"\n'
    trap_new = b'uid,siteID,trapID\n"b","BART","T1-new"\n'
    lab_old = b'uid,analyte\n"l1","lignin"\n'
    lab_new = b'uid,analyte\n"l2","lignin"\n"l3","cellulose"\n'
    monthly = b'uid,siteID,collectDate\n"m1","BART","2022-09-26"\n'
    packages = dict(
        [
            package(
                "BART",
                "20240101T000000Z",
                {
                    "NEON.D01.BART.DP1.10033.001.ltr_pertrap.basic.20240101T000000Z.csv": trap,
                    "NEON.A_and_L_Great_Lakes.lig_externalSummary.20240101T000000Z.csv": lab_old,
                    "NEON.D01.BART.DP1.10033.001.ltr_litterLignin.2022-09.basic.20240101T000000Z.csv": monthly,
                },
            ),
            package(
                "BART",
                "20250101T000000Z",
                {
                    "NEON.D01.BART.DP1.10033.001.ltr_pertrap.basic.20250101T000000Z.csv": trap_new,
                    "NEON.A_and_L_Great_Lakes.lig_externalSummary.20250101T000000Z.csv": lab_new,
                },
            ),
        ]
    )
    stacked = stack_by_table(package_files(portal_zip(packages, tmp_path / "NEON_litter.zip", nested=False)))
    assert stacked.tables["ltr_pertrap"]["trapID"].to_list() == ["T1-new"]
    assert stacked.tables["lig_externalSummary"]["uid"].to_list() == ["l2", "l3"]
    assert stacked.tables["lig_externalSummary"]["publicationDate"].unique().to_list() == ["20250101T000000Z"]
    assert "siteID" not in stacked.tables["lig_externalSummary"].columns  # a lab table gains no site
    assert stacked.tables["ltr_litterLignin"]["release"].to_list() == ["RELEASE-2025"]


def test_instrumented_files_gain_their_position_and_sort_by_it(tmp_path: Path) -> None:
    files = {}
    for hor, ver in (("002", "502"), ("001", "501")):
        name = f"NEON.D17.SJER.DP1.00094.001.{hor}.{ver}.030.SWS_30_minute.2022-06.basic.20230101T000000Z.csv"
        files[name] = b"startDateTime,endDateTime,VSWCMean\n2022-06-01T00:00:00Z,2022-06-01T00:30:00Z,0.1\n"
    stacked = stack_by_table(
        package_files(
            portal_zip(
                {"NEON.D17.SJER.DP1.00094.001.2022-06.basic.20230101T000000Z.RELEASE-2023": files},
                tmp_path / "NEON_swc.zip",
                nested=True,
            )
        )
    )
    table = stacked.tables["SWS_30_minute"]
    assert table.columns[:4] == ["domainID", "siteID", "horizontalPosition", "verticalPosition"]
    assert table["horizontalPosition"].to_list() == ["001", "002"]  # strings, as in the file name
    assert table.columns[-2:] == ["publicationDate", "release"]


def test_a_real_instrumented_month_stacks_back_to_its_rows(tmp_path: Path) -> None:
    """The real SJER month of 30-minute soil water (`../shared/neon-samples/soil-water/`, stacked by another
    tool) laid out as NEON's per-position files (`...<HOR>.<VER>.030.SWS_30_minute...`, without the columns
    the stacker adds): stacking gives every row back, with the domain, site and positions that tool wrote,
    as strings, in neonUtilities' column order and row order (site, positions, time)."""
    real = read(REPO / ".." / "shared" / "neon-samples" / "soil-water" / "SJER_2022-06_SWS_30_minute_from_rda.csv")
    files = {}
    for (hor, ver), rows in real.group_by("horizontalPosition", "verticalPosition"):
        name = f"NEON.D17.SJER.DP1.00094.001.{hor}.{ver}.030.SWS_30_minute.2022-06.basic.20221201T000000Z.csv"
        files[name] = neon_csv(rows.drop("horizontalPosition", "verticalPosition", "domainID", "siteID"))
    package = "NEON.D17.SJER.DP1.00094.001.2022-06.basic.20221201T000000Z.RELEASE-2023"
    stacked = stack_by_table(package_files(portal_zip({package: files}, tmp_path / "NEON_swc.zip", nested=True)))
    table = stacked.tables["SWS_30_minute"]
    assert table.columns[:4] == ["domainID", "siteID", "horizontalPosition", "verticalPosition"]
    assert table.columns[-2:] == ["publicationDate", "release"]
    keys = ["horizontalPosition", "verticalPosition", "startDateTime"]
    assert table.select(keys).equals(table.select(keys).sort(keys))
    assert table.height == real.height == 47_520
    got = table.select(real.columns).sort(keys)
    assert got.equals(real.sort(keys))


def test_sensor_positions_of_old_and_new_publications_align_to_the_current_names(tmp_path: Path) -> None:
    """One site's newest sensor_positions predates NEON's 2024 renaming (`name`, `start`, `end`, ...), the
    other's follows it: one table under the current names, nothing lost, no former column left."""
    old = (
        b"HOR.VER,name,description,start,end,referenceName,zOffset\n"
        b"001.501,CFGLOC1,Soil Pit 1,2016-01-01T00:00:00Z,,SOILPL1,-0.06\n"
    )
    new = (
        b"HOR.VER,sensorLocationID,sensorLocationDescription,positionStartDateTime,positionEndDateTime,"
        b"referenceLocationID,zOffset,eastOffset\n"
        b"001.501,CFGLOC2,Soil Pit 1,2017-01-01T00:00:00Z,2020-01-01T00:00:00Z,SOILPL2,-0.02,1.5\n"
    )
    packages = {
        "NEON.D17.SJER.DP1.00094.001.2019-06.basic.20200101T000000Z.RELEASE-2023": {
            "NEON.D17.SJER.DP1.00094.001.sensor_positions.20200101T000000Z.csv": old
        },
        "NEON.D16.WREF.DP1.00094.001.2022-06.basic.20230101T000000Z.RELEASE-2023": {
            "NEON.D16.WREF.DP1.00094.001.sensor_positions.20230101T000000Z.csv": new
        },
    }
    table = stack_by_table(package_files(portal_zip(packages, tmp_path / "NEON_swc.zip", nested=False))).tables[
        "sensor_positions_00094"
    ]
    assert not {"name", "description", "start", "end", "referenceName"} & set(table.columns)
    assert table.columns[:4] == ["domainID", "siteID", "HOR.VER", "sensorLocationID"]
    rows = table.sort("siteID").select(
        "siteID", "sensorLocationID", "positionStartDateTime", "positionEndDateTime", "referenceLocationID", "zOffset"
    )
    assert rows.rows() == [
        ("SJER", "CFGLOC1", "2016-01-01T00:00:00Z", None, "SOILPL1", "-0.06"),
        ("WREF", "CFGLOC2", "2017-01-01T00:00:00Z", "2020-01-01T00:00:00Z", "SOILPL2", "-0.02"),
    ]
    assert table.filter(pl.col("siteID") == "WREF")["eastOffset"].to_list() == ["1.5"]


def test_science_review_flags_keep_the_latest_update_of_each_flag() -> None:
    from rootassets.neon.stack_by_table import remove_srf_duplicates

    flags = pl.DataFrame(
        {
            "srfID": ["1", "1", "2"],
            "lastUpdateDateTime": ["2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z", "2024-06-01T00:00:00Z"],
            "note": ["old", "new", "only"],
        }
    )
    assert remove_srf_duplicates(flags)["note"].to_list() == ["new", "only"]


def test_bad_input_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(NeonDataError, match="no such file"):
        package_files(tmp_path / "missing.zip")
    broken = tmp_path / "NEON_broken.zip"
    broken.write_bytes(b"PK not really")
    with pytest.raises(NeonDataError, match="NEON_broken.zip: not a readable zip"):
        package_files(broken)
    two_releases = {
        "NEON.D01.BART.DP1.10033.001.2022-09.basic.20240101T000000Z.RELEASE-2024": {
            "NEON.D01.BART.DP1.10033.001.ltr_litterLignin.2022-09.basic.20240101T000000Z.csv": b"uid\n1\n"
        },
        "NEON.D01.HARV.DP1.10033.001.2022-09.basic.20250101T000000Z.RELEASE-2025": {
            "NEON.D01.HARV.DP1.10033.001.ltr_litterLignin.2022-09.basic.20250101T000000Z.csv": b"uid\n2\n"
        },
    }
    with pytest.raises(NeonDataError, match="several releases"):
        stack_by_table(package_files(portal_zip(two_releases, tmp_path / "NEON_two.zip", nested=False)))
    ragged = {
        "NEON.D01.BART.DP1.10033.001.2022-09.basic.20240101T000000Z.RELEASE-2024": {
            "NEON.D01.BART.DP1.10033.001.ltr_litterLignin.2022-09.basic.20240101T000000Z.csv": b'uid,a\n"1,2\n'
        }
    }
    with pytest.raises(NeonDataError, match=r"ltr_litterLignin\.2022-09\.basic\.20240101T000000Z\.csv: cannot be read"):
        stack_by_table(package_files(portal_zip(ragged, tmp_path / "NEON_ragged.zip", nested=False)))
    only_metadata = {
        "NEON.D01.BART.DP1.10033.001.2022-09.basic.20240101T000000Z.RELEASE-2024": {
            "NEON.D01.BART.DP1.10033.001.variables.20240101T000000Z.csv": b"table,fieldName\n"
        }
    }
    with pytest.raises(NeonDataError, match="no NEON data tables"):
        stack_by_table(package_files(portal_zip(only_metadata, tmp_path / "NEON_meta.zip", nested=False)))


def test_a_failed_write_leaves_no_partial_stack(tmp_path: Path, packages: dict) -> None:
    stacked = stack_by_table(package_files(portal_zip(packages, tmp_path / "NEON_rootsmegapit.zip", nested=False)))
    stacked.tables["broken"] = pl.DataFrame({"x": [object()]}, schema={"x": pl.Object})  # cannot be written
    out = tmp_path / "out"
    with pytest.raises(Exception):  # noqa: B017 - whatever the writer raises, nothing may be left behind
        write_stacked(stacked, out)
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


@pytest.mark.slow
def test_the_command_line_stacks_a_portal_zip(tmp_path: Path, packages: dict) -> None:
    zipped = portal_zip(packages, tmp_path / "NEON_rootsmegapit.zip", nested=True)
    out = tmp_path / "stacked"
    done = subprocess.run(
        [sys.executable, "-m", "rootassets.cli", "stack", str(zipped), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "rootassets: mpr_perrootsample: 513 rows, 7 sites, 7 months (2012-07..2015-06)" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{t}.csv" for t in TABLES]
        + ["variables_10066.csv", "validation_10066.csv", "categoricalCodes_10066.csv", "readme_10066.txt"]
    )
    assert read(out / "mpr_perrootsample.csv").height == 513
    again = subprocess.run(
        [sys.executable, "-m", "rootassets.cli", "stack", str(zipped), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "not an empty folder" in again.stderr


def test_the_issue_log_comes_from_the_api_changelogs_when_asked(tmp_path: Path, packages: dict) -> None:
    """With --issue-log-from-api, issueLog_<number>.csv holds the product's changeLogs (here the mirror's, which
    it takes from the sample's readme), in the API's field order, as neonUtilities writes it."""
    from rootassets.neon.documents import ISSUE_LOG_COLUMNS, issue_log_from_readme
    from rootassets.neon.mirror import MirrorServer
    from rootassets_tests.conftest import make_token

    zipped = portal_zip(packages, tmp_path / "NEON_rootsmegapit.zip", nested=False)
    expected = issue_log_from_readme((SAMPLE / "readme_10066.txt").read_text())
    with MirrorServer(SAMPLE.parent.parent) as mirror:
        env = {**os.environ, "NEON_API_URL": mirror.base_url, "NEON_TOKEN": make_token()}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "rootassets.cli",
                "stack",
                str(zipped),
                "--out",
                str(tmp_path / "out"),
                "--issue-log-from-api",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
    assert done.returncode == 0, done.stderr
    log = read(tmp_path / "out" / "issueLog_10066.csv")
    assert log.columns == list(ISSUE_LOG_COLUMNS) and log.height == len(expected) > 0
    assert log["issue"].to_list() == [e.get("issue") for e in expected]
    assert "issueLog_10066: text" not in done.stdout and "not written offline" not in done.stdout


@pytest.mark.skipif(
    not (EXTDATA / "NEON_litterfall.zip").is_file(),
    reason=f"neonUtilities' own fixture (inst/extdata of NEONScience/NEON-utilities) is not at {EXTDATA}",
)
def test_neonutilities_own_litterfall_fixture() -> None:
    """neonUtilities' test data: every table equals its expected output; numbers compare as numbers (R reformats
    them, e.g. 0.470 -> 0.47), everything else as published text."""
    stacked = stack_by_table(package_files(EXTDATA / "NEON_litterfall.zip"))
    expected_dir = EXTDATA / "expected" / "litter"
    variables = read(expected_dir / "variables_10033.csv")
    numeric = set(
        variables.filter(pl.col("dataType").is_in(["real", "integer", "signed integer", "unsigned integer"]))
        .select(pl.concat_str("table", pl.lit("."), "fieldName"))
        .to_series()
        .to_list()
    )
    compared = 0
    for path in sorted(expected_dir.glob("*.csv")):
        if path.stem.startswith("issueLog"):
            continue  # from the API's changeLogs: not available offline
        expected, ours = read(path), stacked.tables[path.stem]
        assert ours.columns == expected.columns and ours.height == expected.height, path.stem
        for column in ours.columns:
            a, b = ours[column], expected[column]
            if f"{path.stem}.{column}" in numeric:
                a, b = a.cast(pl.Float64), b.cast(pl.Float64)
            assert a.to_list() == b.to_list(), f"{path.stem}.{column}"
        compared += 1
    assert compared == 6
