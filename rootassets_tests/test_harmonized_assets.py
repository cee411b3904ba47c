"""Harmonized assets in process: real snapshot, corrupted copies, and blocking checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from rootassets.defs.harmonized import harmonized_assets
from rootassets.defs.raw import raw_assets
from rootassets.settings import Settings
from rootassets.warehouse import connect_read_only
from rootassets_tests.conftest import RELEASE, run_assets, settings_on_backend

ALL = [*raw_assets, *harmonized_assets]
HARMONIZED = ["root_increments", "root_profiles", "site_root_biomass", "soil_profiles"]


def query(settings: Settings, sql: str) -> list[tuple]:
    with connect_read_only(settings.database) as con:
        return con.execute(sql).fetchall()


def table_snapshot(settings: Settings) -> dict[str, pl.DataFrame]:
    with connect_read_only(settings.database) as con:
        names = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema in ('raw', 'harmonized', 'quarantine') order by 1"
        ).fetchall()
        return {n: pl.from_arrow(con.execute(f"select * from {n} order by all").to_arrow_table()) for (n,) in names}


@pytest.fixture()
def corrupt_copy(tmp_path: Path, snapshot: Path) -> tuple[Path, Settings]:
    """A writable copy of the snapshot in a temporary folder, and settings that read it."""
    copy = tmp_path / "snapshot"
    shutil.copytree(snapshot / RELEASE, copy / RELEASE)
    shutil.copytree(snapshot / "site-attributes", copy / "site-attributes")
    settings = settings_on_backend(
        home=tmp_path / "home",
        snapshot=copy,
        api_url="http://127.0.0.1:9/api/v0/",
        site_attributes=copy / "site-attributes",
    )
    return copy, settings


def roots_file(copy: Path) -> Path:
    return copy / RELEASE / "DP1.10066.001" / "mpr_perrootsample.csv"


def test_harmonized_tables_on_the_snapshot(snapshot_settings: Settings) -> None:
    result = run_assets(snapshot_settings, ALL)
    assert query(snapshot_settings, "select count(distinct site_id) from harmonized.root_profiles") == [(44,)]
    assert query(snapshot_settings, "select count(distinct site_id) from harmonized.soil_profiles")[0][0] >= 44
    assert query(snapshot_settings, "select count(*) from harmonized.site_root_biomass") == [(44,)]
    assert query(snapshot_settings, "select max(standardized), min(n_profiles) from harmonized.root_profiles") == [
        (1.0, 1)
    ]
    events = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
    for name in HARMONIZED:
        meta = events[name]
        assert meta["rows_in"].value == meta["rows_kept"].value + meta["rows_quarantined"].value
    assert events["mgp_perhorizon"]["rows_quarantined"].value == 1  # OAES horizon with top >= bottom
    assert query(snapshot_settings, "select count(*), sum(quarantined::int) from raw.mgp_perhorizon") == [(346, 1)]
    checks = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    harmonized = [e for e in checks if e.event_specific_data.asset_key.path[0] == "harmonized"]  # 7 invariants
    raw = [e for e in checks if e.event_specific_data.asset_key.path[0] == "raw"]
    assert len(harmonized) == 7 and len(raw) == 2 * 10  # quarantine share and columns, per raw table
    assert all(e.event_specific_data.passed for e in checks)


def test_corrupted_rows_are_quarantined_and_everything_downstream_runs(corrupt_copy: tuple[Path, Settings]) -> None:
    copy, settings = corrupt_copy
    path = roots_file(copy)
    lines = path.read_text().splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    target = next(i for i, line in enumerate(body) if ',"live","<=2mm",' in line)
    fields = body[target].rstrip("\n").split(",")
    negative_uid = fields[1].strip('"')
    fields[-2] = "-" + fields[-2]  # incrementRootDensity
    body[target] = ",".join(fields) + "\n"
    body.insert(5, body[4])  # an exact duplicate record
    body[-1] = body[-1][: len(body[-1]) // 2]  # a truncated last line
    path.write_text(header + "".join(body))

    result = run_assets(settings, ALL)
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {f"harmonized/{t}" for t in HARMONIZED} <= materialized

    rules = dict(query(settings, "select rule, count(*) from quarantine.mpr_perrootsample group by 1"))
    assert rules == {"greater_than_or_equal_to(0)": 1, "duplicate_record": 1, "malformed_record": 1}
    kept = query(settings, "select count(*) from raw.mpr_perrootsample where not quarantined")[0][0]
    assert kept == 2913 - 2  # the negative row and the truncated record are out; the duplicate kept once
    assert query(
        settings, f"select count(*) from raw.mpr_perrootsample where uid = '{negative_uid}' and quarantined"
    ) == [(1,)]
    meta = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert meta["mpr_perrootsample"]["rows_in"].value == 2913 + 1
    assert meta["mpr_perrootsample"]["rows_quarantined"].value == 3
    assert query(settings, "select count(distinct site_id) from harmonized.root_profiles") == [(44,)]


def test_missing_required_column_fails_naming_it_and_keeps_the_last_good_run(
    corrupt_copy: tuple[Path, Settings],
) -> None:
    copy, settings = corrupt_copy
    run_assets(settings, ALL)
    before = table_snapshot(settings)
    frame = pl.read_csv(roots_file(copy), infer_schema=False)
    frame.drop("incrementRootDensity").write_csv(roots_file(copy))

    result = run_assets(settings, ALL, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "'incrementRootDensity'" in message and "mpr_perrootsample.csv" in message
    after = table_snapshot(settings)
    assert before.keys() == after.keys()
    for name in before:
        assert before[name].equals(after[name]), name


def test_failing_blocking_check_stops_downstream_and_writes_nothing(corrupt_copy: tuple[Path, Settings]) -> None:
    copy, settings = corrupt_copy
    run_assets(settings, ALL)
    before = table_snapshot(settings)
    # A published increment table whose BART profile 1 increments overlap (0-15 cm, then 10-20 cm).
    pl.DataFrame(
        {
            "uid": ["a", "b"],
            "siteID": ["BART", "BART"],
            "depthIncrementID": ["BART.1.0", "BART.1.10"],
            "topDepth": [0, 10],
            "bottomDepth": [15, 20],
        }
    ).write_csv(copy / RELEASE / "DP1.10066.001" / "mpr_perdepthincrement.csv")

    result = run_assets(settings, ALL, raise_on_error=False)
    assert not result.success
    evaluations = {
        e.event_specific_data.check_name: e.event_specific_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert evaluations["increments_do_not_overlap"] is False
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert not {f"harmonized/{t}" for t in HARMONIZED} & materialized
    after = table_snapshot(settings)
    for name in before:
        if not name.startswith("raw.mpr_perdepthincrement") and not name.startswith("quarantine.mpr_perdepth"):
            assert before[name].equals(after[name]), name
