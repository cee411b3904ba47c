"""Products declared in rootassets.toml: checked declarations, `rootassets products`, raw assets from a portal
zip, a folder of packages or the API (through the mirror), and the column check between two releases.

The mechanics run on a small product written here in NEON's layout (a data-portal zip of per-site-month
packages with a site-date, a site-all and a lab table, a variables file with primary keys, a readme with an
ISSUE LOG, stray `.DS_Store` files). Its code, DP1.99901.001, is not a NEON product: the rows are made up and
say nothing about any site. Real data: neonUtilities' own litterfall download, when its fixture is at hand
(see test_stack_by_table.py).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, materialize

from rootassets.definitions import build_definitions
from rootassets.defs.partitions import NEON_RELEASE_PARTITIONS
from rootassets.neon.declared import DeclarationError, read_declared
from rootassets.neon.mirror import MirrorServer
from rootassets.settings import Settings
from rootassets.warehouse import connect_read_only
from rootassets_tests.conftest import REPO, asset_resources, make_token, settings_on_backend
from rootassets_tests.test_stack_by_table import EXTDATA

PRODUCT = "DP1.99901.001"
GROUP = "neon_DP1_99901_001"
STAMP = "20250101T000000Z"
OLD_STAMP = "20240101T000000Z"
VARIABLES = [
    # table, fieldName, description, dataType, units, downloadPkg, primaryKey
    ("tst_perplot", "uid", "Unique ID within NEON database", "string", "NA", "basic", "N"),
    ("tst_perplot", "domainID", "Unique identifier of the NEON domain", "string", "NA", "basic", "N"),
    ("tst_perplot", "siteID", "NEON site code", "string", "NA", "basic", "N"),
    ("tst_perplot", "plotID", "Plot identifier", "string", "NA", "basic", "Y"),
    ("tst_perplot", "collectDate", "Date of collection", "dateTime", "NA", "basic", "Y"),
    ("tst_perplot", "dryMass", "Dry mass of the sample", "real", "gram", "basic", "N"),
    ("tst_pertrap", "uid", "Unique ID within NEON database", "string", "NA", "basic", "N"),
    ("tst_pertrap", "domainID", "Unique identifier of the NEON domain", "string", "NA", "basic", "N"),
    ("tst_pertrap", "siteID", "NEON site code", "string", "NA", "basic", "N"),
    ("tst_pertrap", "trapID", "Trap identifier", "string", "NA", "basic", "Y"),
    ("tst_pertrap", "trapSize", "Area of the trap", "real", "squareMeter", "basic", "N"),
    ("tst_externalSummary", "uid", "Unique ID within NEON database", "string", "NA", "expanded", "N"),
    ("tst_externalSummary", "laboratoryName", "Name of the laboratory", "string", "NA", "expanded", "Y"),
    ("tst_externalSummary", "analyte", "Analyte measured", "string", "NA", "expanded", "Y"),
    ("tst_externalSummary", "precision", "Precision of the analysis", "real", "percent", "expanded", "N"),
]
README = """This data package was produced by and downloaded from the National Ecological Observatory Network (NEON).
DATA PRODUCT INFORMATION
------------------------
ID: NEON.DOM.SITE.{product}
Name: Synthetic test product in NEON's layout
Date-Time for Data Publication: {stamp}
ISSUE LOG
----------
Issue Date: 2024-05-01
Issue: Trap sizes were recorded in the wrong unit.
Date Range: 2022-01-01 to 2022-06-30
Location(s) Affected: KONZ
Resolution Date: 2024-06-01
Resolution: Corrected in the database.
ADDITIONAL INFORMATION
----------------------
None.
"""
SITES = {"BART": "D01", "KONZ": "D06"}
MONTHS = ("2022-08", "2022-09")


def neon_csv(header: list[str], rows: list[list[object]]) -> bytes:
    lines = [",".join(f'"{h}"' for h in header)]
    lines += [",".join("NA" if v is None else f'"{v}"' if isinstance(v, str) else str(v) for v in r) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def variables_csv(mass_field: str = "dryMass") -> bytes:
    header = ["table", "fieldName", "description", "dataType", "units", "downloadPkg", "pubFormat", "primaryKey"]
    rows = [[t, mass_field if f == "dryMass" else f, d, ty, u, p, "asIs", k] for t, f, d, ty, u, p, k in VARIABLES]
    return neon_csv(header, rows)


def packages(release: str, mass_field: str = "dryMass", bad_rows: bool = False) -> dict[str, bytes]:
    """A data-portal download: `NEON_testproduct/<package>/<file>` -> bytes."""
    files: dict[str, bytes] = {"NEON_testproduct/.DS_Store": b"\x00\x00\x00\x01Bud1"}
    for site, domain in SITES.items():
        for month in MONTHS:
            folder = f"NEON_testproduct/NEON.{domain}.{site}.{PRODUCT}.{month}.expanded.{STAMP}.{release}"
            prefix = f"{folder}/NEON.{domain}.{site}.{PRODUCT}"
            plots = [
                [f"u-{site}-{month}-{i}", domain, site, f"{site}_00{i}", f"{month}-1{i}T15:00Z", 10.0 * i + 0.5]
                for i in range(1, 4)
            ]
            if bad_rows and site == "KONZ" and month == MONTHS[1]:
                plots.append([f"u-{site}-dup", domain, site, f"{site}_001", f"{month}-11T15:00Z", 99.0])
            header = ["uid", "domainID", "siteID", "plotID", "collectDate", mass_field]
            body = neon_csv(header, plots)
            if bad_rows and site == "KONZ" and month == MONTHS[1]:
                body += b'"u-KONZ-short","D06","KONZ"\n'
            files[f"{prefix}.tst_perplot.{month}.expanded.{STAMP}.csv"] = body
            trap_header = ["uid", "domainID", "siteID", "trapID", "trapSize"]
            traps = [[f"t-{site}-{i}", domain, site, f"{site}_T{i}", 0.5] for i in range(1, 3)]
            files[f"{prefix}.tst_pertrap.expanded.{STAMP}.csv"] = neon_csv(trap_header, traps)
            if month == MONTHS[0]:  # an older publication of the site-all table: never stacked
                old = [[f"t-{site}-{i}", domain, site, f"{site}_T{i}", 9.9] for i in range(1, 3)]
                files[f"{prefix}.tst_pertrap.expanded.{OLD_STAMP}.csv"] = neon_csv(trap_header, old)
            lab = [["l-1", "Test Lab", "carbon", 0.5], ["l-2", "Test Lab", "nitrogen", 1.5]]
            lab_name = f"{folder}/NEON.Test_Lab.tst_externalSummary.{STAMP}.csv"
            files[lab_name] = neon_csv(["uid", "laboratoryName", "analyte", "precision"], lab)
            files[f"{prefix}.variables.{STAMP}.csv"] = variables_csv(mass_field)
            files[f"{prefix}.readme.{STAMP}.txt"] = README.format(product=PRODUCT, stamp=STAMP).encode()
            files[f"{folder}/.DS_Store"] = b"\x00\x00\x00\x01Bud1"
    return files


def portal_zip(path: Path, release: str = "RELEASE-2025", **kw: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, body in packages(release, **kw).items():  # type: ignore[arg-type]
            zf.writestr(name, body)
    path.write_bytes(buffer.getvalue())
    return path


def declare(home: Path, text: str) -> Settings:
    home.mkdir(parents=True, exist_ok=True)
    (home / "rootassets.toml").write_text(text)
    return settings_on_backend(home=home, snapshot=None, api_url="http://127.0.0.1:9/api/v0/", site_attributes=None)


def entry(input_path: Path | None = None, **extra: str) -> str:
    lines = [
        "[[products]]",
        f'dpid = "{PRODUCT}"',
        'tables = ["tst_perplot", "tst_pertrap", "tst_externalSummary"]',
        'package = "expanded"',
    ]
    lines += [f"{k} = {v}" for k, v in extra.items()]
    if input_path is not None:
        lines.append(f'input = "{input_path}"')
    return "\n".join(lines) + "\n"


def run_declared(
    settings: Settings,
    release: str,
    instance: DagsterInstance,
    api_url: str | None = None,
    group: str = GROUP,
    documents: bool = True,
):
    """Materialize the declared product's raw assets (and the NEON documents) for `release`."""
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.get_all_asset_keys() if k.path[0] == "raw" and graph.get(k).group_name == group]
    if documents:
        keys.append(AssetKey(["raw", "product_citations"]))
    chosen = list({id(a): a for a in (defs.get_assets_def(k) for k in keys)}.values())
    if not instance.has_dynamic_partition(NEON_RELEASE_PARTITIONS, release):
        instance.add_dynamic_partitions(NEON_RELEASE_PARTITIONS, [release])
    return materialize(
        chosen,
        resources=asset_resources(settings, api_url),
        partition_key=release,
        instance=instance,
        raise_on_error=False,
    )


def query(settings: Settings, sql: str) -> list[tuple]:
    with connect_read_only(settings.database) as con:
        return con.execute(sql).fetchall()


@pytest.fixture()
def snapshot_root(tmp_path: Path) -> Path:
    """A snapshot folder for the platform's own products (empty: only the declared product matters here)."""
    root = tmp_path / "snapshot"
    (root / "RELEASE-2025").mkdir(parents=True)
    return root


# -- declarations --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[products]]\ndpid = "DP1.99901.001"\ntabels = ["x_y"]\n', r"products\[0\].*unknown key\(s\) tabels"),
        ('[[products]]\ndpid = "DP1.10066.001"\ntables = ["x_y"]\n', "built into the platform"),
        ('[[products]]\ndpid = "DP1.99901.001"\ntables = ["mpr_perrootsample"]\n', "already written by the platform"),
        ('[[products]]\ndpid = "DP1.99901.001"\ntables = []\n', "at least one NEON table"),
        ('[[products]]\ndpid = "DP1.99901.001"\ntables = ["a_b"]\nsites = ["konz"]\n', "not a NEON site code"),
        ('[[products]]\ndpid = "DP1.99901.001"\ntables = ["a_b"]\nstart = "2022-13"\n', r"start '2022-13'"),
        ('[[products]]\ndpid = "DP1.99901.001"\ntables = ["a_b"]\nstart = "2023-01"\nend = "2022-01"\n', "after end"),
        ('[[products]]\ndpid = "DP1.99901.001"\ntables = ["a_b"]\npackage = "full"\n', "basic or expanded"),
        ('[[products]]\ndpid = "DP1.9"\ntables = ["a_b"]\n', "not a NEON product code"),
        ('[[products]]\ndpid = "DP1.99901.001"\ntables = ["a_b"]\n' * 2, "declared twice"),
        ("products = 3\n", "array of tables"),
        ("[[products]\n", "not valid TOML"),
    ],
)
def test_a_bad_declaration_is_refused_naming_the_file_and_entry(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rootassets.toml"
    path.write_text(text)
    with pytest.raises(DeclarationError, match=message) as caught:
        read_declared(path)
    assert str(path) in str(caught.value)


def test_no_configuration_declares_nothing(tmp_path: Path) -> None:
    assert read_declared(tmp_path / "rootassets.toml") == []


# -- raw assets from a download ------------------------------------------------------------------------------


def test_a_declared_portal_zip_becomes_raw_tables(tmp_path: Path, snapshot_root: Path) -> None:
    download = portal_zip(tmp_path / "NEON_testproduct.zip")
    settings = declare(tmp_path / "home", entry(download))
    settings = settings_on_backend(settings.home, snapshot_root, settings.api_url, None)
    with DagsterInstance.ephemeral() as instance:
        result = run_declared(settings, "RELEASE-2025", instance)
    assert result.success
    assert query(settings, "select site_id, count(*) from raw.tst_perplot group by 1 order by 1") == [
        ("BART", 6),
        ("KONZ", 6),
    ]
    # the site-all table: the newest publication of each site only (9.9 is the older one)
    assert query(settings, "select count(*), max(trapSize) from raw.tst_pertrap") == [(4, 0.5)]
    # the lab table: one copy (it is in every package), with no site
    assert query(settings, "select count(*), count(site_id) from raw.tst_externalSummary") == [(2, 0)]
    types = dict(query(settings, "select column_name, data_type from duckdb_columns() where table_name='tst_perplot'"))
    assert types["dryMass"] == "DOUBLE" and types["collectDate"] == "TIMESTAMP WITH TIME ZONE"
    comments = dict(
        query(
            settings,
            "select column_name, comment from duckdb_columns() where schema_name='raw' and table_name='tst_perplot'",
        )
    )
    assert comments["dryMass"] == "Dry mass of the sample (gram)"
    assert query(settings, f"select product_name, citation from raw.product_citations where product='{PRODUCT}'") == [
        (PRODUCT, f"NEON (National Ecological Observatory Network). {PRODUCT} ({PRODUCT}), RELEASE-2025.")
    ]
    assert query(settings, f"select count(*), min(origin) from raw.issue_log where product='{PRODUCT}'") == [
        (1, "readme ISSUE LOG")
    ]
    meta = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert meta["raw/tst_perplot"]["primary_key"].value["tst_perplot"] == ["plotID", "collectDate"]
    assert meta["raw/tst_perplot"]["rows_quarantined"].value == 0


def test_bad_rows_of_a_declared_product_are_quarantined_with_their_reason(tmp_path: Path, snapshot_root: Path) -> None:
    download = portal_zip(tmp_path / "NEON_testproduct.zip", bad_rows=True)
    settings = declare(tmp_path / "home", entry(download))
    settings = settings_on_backend(settings.home, snapshot_root, settings.api_url, None)
    with DagsterInstance.ephemeral() as instance:
        assert run_declared(settings, "RELEASE-2025", instance).success
    # raw keeps every parsed row, flagged: the two rows sharing a key are flagged, the short line is not a row
    assert query(settings, "select count(*) filter (not quarantined), count(*) from raw.tst_perplot") == [(11, 13)]
    refused = query(settings, "select rule, column_name from quarantine.tst_perplot order by rule")
    # rows in = kept + quarantined: 14 records (12 good, one repeating a key, one short line)
    assert len(refused) == 3 and {r[0] for r in refused} >= {"conflicting_key"}
    assert 11 + len(refused) == 14


def test_sites_and_months_of_the_declaration_are_the_ones_taken(tmp_path: Path, snapshot_root: Path) -> None:
    download = portal_zip(tmp_path / "NEON_testproduct.zip")
    text = entry(download, sites='["KONZ"]', start='"2022-09"', end='"2022-09"')
    settings = declare(tmp_path / "home", text)
    settings = settings_on_backend(settings.home, snapshot_root, settings.api_url, None)
    with DagsterInstance.ephemeral() as instance:
        assert run_declared(settings, "RELEASE-2025", instance).success
    assert query(settings, "select site_id, count(*), min(collectDate)::date from raw.tst_perplot group by 1") == [
        ("KONZ", 3, date(2022, 9, 11))
    ]
    assert query(settings, "select distinct site_id from raw.tst_pertrap") == [("KONZ",)]


def test_a_missing_download_fails_naming_it_and_writes_nothing(tmp_path: Path, snapshot_root: Path) -> None:
    settings = declare(tmp_path / "home", entry(tmp_path / "nowhere.zip"))
    settings = settings_on_backend(settings.home, snapshot_root, settings.api_url, None)
    with DagsterInstance.ephemeral() as instance:
        result = run_declared(settings, "RELEASE-2025", instance)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "nowhere.zip: the declared download does not exist" in str(failure.event_specific_data)
    if settings.database.exists():
        assert query(settings, "select count(*) from duckdb_tables() where table_name = 'tst_perplot'") == [(0,)]


def test_a_renamed_column_between_two_releases_loads_both_and_is_reported(tmp_path: Path, snapshot_root: Path) -> None:
    folder = tmp_path / "downloads"
    portal_zip(folder / "NEON_testproduct_2024.zip", release="RELEASE-2024")
    portal_zip(folder / "NEON_testproduct_2025.zip", release="RELEASE-2025", mass_field="dryMassGrams")
    (snapshot_root / "RELEASE-2024").mkdir()
    settings = declare(tmp_path / "home", entry(folder))
    settings = settings_on_backend(settings.home, snapshot_root, settings.api_url, None)
    with DagsterInstance.ephemeral() as instance:
        assert run_declared(settings, "RELEASE-2024", instance).success
        result = run_declared(settings, "RELEASE-2025", instance)
    assert result.success
    assert query(settings, "select release, count(*) from raw.tst_perplot group by 1 order by 1") == [
        ("RELEASE-2024", 12),
        ("RELEASE-2025", 12),
    ]
    check = next(
        c
        for c in result.get_asset_check_evaluations()
        if c.asset_key.path == ["raw", "tst_perplot"] and c.check_name == "columns_unchanged_since_previous_release"
    )
    assert not check.passed
    assert check.metadata["compared_with"].value == "RELEASE-2024"
    assert check.metadata["added"].value == ["dryMassGrams"] and check.metadata["removed"].value == ["dryMass"]


def test_the_api_through_the_mirror_gives_the_same_tables_as_the_zip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mirror serves any product folder of NEON packages; the API client downloads only the declared
    sites' packages and stacks them as the zip is stacked."""
    served = tmp_path / "served"
    portal_zip(served / "RELEASE-2025" / PRODUCT / "NEON_testproduct.zip")
    monkeypatch.setenv("NEON_TOKEN", make_token())
    from_zip = settings_on_backend(tmp_path / "zip", served, "http://127.0.0.1:9/api/v0/", None)
    declare(from_zip.home, entry(served / "RELEASE-2025" / PRODUCT / "NEON_testproduct.zip"))
    from_api = settings_on_backend(tmp_path / "api", None, "http://127.0.0.1:9/api/v0/", None)
    declare(from_api.home, entry())
    with MirrorServer(served) as mirror:
        listed = mirror.product_json(PRODUCT, mirror.base_url, None)
        assert listed is not None and listed["productName"] == "Synthetic test product in NEON's layout"
        with DagsterInstance.ephemeral() as instance:
            assert run_declared(from_api, "RELEASE-2025", instance, api_url=mirror.base_url, documents=False).success
    with DagsterInstance.ephemeral() as instance:
        assert run_declared(from_zip, "RELEASE-2025", instance, documents=False).success
    for table in ("tst_perplot", "tst_pertrap", "tst_externalSummary"):
        sql = f"select * exclude (source_file) from raw.{table} order by all"
        assert query(from_api, sql) == query(from_zip, sql), table


# -- the command line ----------------------------------------------------------------------------------------


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ROOTASSETS_HOME": str(home), "NEON_API_URL": "http://127.0.0.1:9/api/v0/"}
    return subprocess.run(
        [sys.executable, "-m", "rootassets.cli", *args], capture_output=True, text=True, env=env, timeout=120, cwd=REPO
    )


def test_products_add_describe_and_remove_on_a_download(tmp_path: Path) -> None:
    download = portal_zip(tmp_path / "NEON_testproduct.zip")
    home = tmp_path / "home"
    described = cli(home, "products", "describe", PRODUCT, "--input", str(download))
    assert described.returncode == 0, described.stderr
    assert "table tst_perplot (site-date, 6 fields)" in described.stdout
    assert "table tst_externalSummary (lab, 4 fields)" in described.stdout
    refused = cli(home, "products", "add", PRODUCT, "--input", str(download), "--table", "tst_nothing")
    assert refused.returncode == 2 and "has no table tst_nothing" in refused.stderr
    assert not (home / "rootassets.toml").exists()
    added = cli(home, "products", "add", PRODUCT, "--input", str(download), "--site", "KONZ")
    assert added.returncode == 0, added.stderr
    assert f"group:{GROUP}" in added.stdout
    (declared,) = read_declared(home / "rootassets.toml")
    assert declared.spec.tables == ("tst_externalSummary", "tst_perplot", "tst_pertrap")
    assert declared.spec.sites == ("KONZ",) and declared.spec.package == "expanded" and declared.input == download
    assert declared.spec.name == "Synthetic test product in NEON's layout"
    removed = cli(home, "products", "remove", PRODUCT)
    assert removed.returncode == 0 and read_declared(home / "rootassets.toml") == []
    again = cli(home, "products", "remove", PRODUCT)
    assert again.returncode == 2 and "is not declared" in again.stderr


@pytest.mark.skipif(
    not (EXTDATA / "NEON_litterfall.zip").is_file(),
    reason=f"neonUtilities' own fixture (inst/extdata of NEONScience/NEON-utilities) is not at {EXTDATA}",
)
def test_neonutilities_litterfall_download_declared_as_a_product(tmp_path: Path, snapshot_root: Path) -> None:
    """NEON's real litterfall download: each raw table has the rows neonUtilities' expected output has."""
    settings = declare(
        tmp_path / "home",
        "[[products]]\n"
        'dpid = "DP1.10033.001"\n'
        'tables = ["ltr_pertrap", "ltr_litterCarbonNitrogen", "ltr_litterLignin", "lig_externalSummary", '
        '"bgc_CNiso_externalSummary"]\n'
        'package = "expanded"\n'
        f'input = "{EXTDATA / "NEON_litterfall.zip"}"\n',
    )
    settings = settings_on_backend(settings.home, snapshot_root, settings.api_url, None)
    expected_dir = EXTDATA / "expected" / "litter"
    with DagsterInstance.ephemeral() as instance:
        assert run_declared(settings, "RELEASE-2025", instance, group="neon_DP1_10033_001").success
    for table in ("ltr_pertrap", "ltr_litterCarbonNitrogen", "ltr_litterLignin", "lig_externalSummary"):
        expected = sum(1 for _ in (expected_dir / f"{table}.csv").open()) - 1
        assert query(settings, f"select count(*) from raw.{table}") == [(expected,)], table
