"""Soil water (DP1.00094.001) assets on a small SYNTHETIC NEON-format set, checked against NumPy."""

from __future__ import annotations

import csv
import dataclasses
import os
import re
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from rootassets.defs.analysis import analysis_assets
from rootassets.defs.harmonized import harmonized_assets
from rootassets.defs.raw import raw_assets
from rootassets.defs.soil_water import soil_water_assets
from rootassets.neon.errors import NeonDataError
from rootassets.neon.soil_water import discover, read_sensor_positions, soil_water_folder
from rootassets.science.soil_water import STATISTICS, choose_sensors, distribution_statistics, statistics_sql
from rootassets.settings import Settings
from rootassets.synthetic.soil_water import generate, month_range
from rootassets.warehouse import connect_read_only
from rootassets_tests.conftest import RELEASE, run_assets, warehouse_of

SITES = [("SRER", "D14"), ("BART", "D01"), ("ZZZZ", "D20")]  # bimodal, unimodal, and a site without roots
MODALITY = [a for a in analysis_assets if any(k.path[-1] in ("site_modality", "phi") for k in a.keys)]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("swc")
    generate(root, RELEASE, SITES, month_range("2020-12", 2), positions=2, seed=7)
    return root


def reference(root: Path, modality: pl.DataFrame) -> pl.DataFrame:
    """phi and surface statistics computed without DuckDB: every file read with polars."""
    files = discover(soil_water_folder(root, RELEASE))
    positions = read_sensor_positions(files)
    rows = []
    for site in files.sites:
        m = modality.filter(pl.col("site_id") == site)
        if m.is_empty():
            continue
        d1, d2 = (m["d1_cm"][0], m["d2_cm"][0]) if m["modality"][0] == "bimodal" else (70.0, 100.0)
        values = {}
        for role, target in (("d1", d1), ("d2", d2), ("surface", 0.0)):
            per_position = []
            for hor, group in positions.filter(pl.col("site_id") == site).group_by("hor"):
                best = group.with_columns((pl.col("depth_cm") - target).abs().alias("dist")).sort("dist", "depth_cm")
                ver = best["ver"][0]
                frames = [pl.read_csv(f.path) for f in files.data if (f.site, f.hor, f.ver) == (site, hor[0], ver)]
                per_position.append(
                    pl.concat(frames)
                    .filter(pl.col("VSWCFinalQF") == 0, pl.col("VSWCMean").is_not_null())
                    .select("startDateTime", "VSWCMean")
                )
            values[role] = pl.concat(per_position).group_by("startDateTime").agg(pl.col("VSWCMean").mean().alias(role))
        joined = (
            values["d1"]
            .join(values["d2"], on="startDateTime", how="full", coalesce=True)
            .join(values["surface"], on="startDateTime", how="full", coalesce=True)
        )
        phi = (joined["d2"] / joined["d1"]).to_numpy()
        for variable, data in (("phi", phi), ("surface_swc", joined["surface"].drop_nulls().to_numpy())):
            rows.append({"site_id": site, "variable": variable, **distribution_statistics(data)})
    return pl.DataFrame(rows).sort("site_id", "variable")


def test_soil_water_phi_and_surface_statistics_match_an_independent_computation(
    snapshot_settings: Settings, generated: Path
) -> None:
    settings = dataclasses.replace(snapshot_settings, soil_water=generated)
    result = run_assets(settings, [*raw_assets, *harmonized_assets, *MODALITY, *soil_water_assets])
    assert result.success
    with connect_read_only(settings.database) as con:
        stats = con.sql("select * from analysis.soil_water_statistics order by site_id, variable").pl()
        modality = con.sql("select site_id, modality, d1_cm, d2_cm from analysis.site_modality").pl()
        series = con.execute("select count(*), count(distinct site_id) from analysis.soil_water_phi_series").fetchall()
        sensors = con.sql("select * from analysis.soil_water_sensors").pl()
        files = con.execute("select count(*) from raw.swc_files").fetchall()
    assert set(stats["site_id"]) == {"SRER", "BART"}  # ZZZZ has no root profile, hence no D1/D2
    assert series == [(2 * (31 + 31) * 48, 2)]
    assert files == [(3 * 2 * 8 * 2,)]
    assert sensors.height == 2 * 2 * 3 and set(sensors["role"]) == {"d1", "d2", "surface"}
    expected = reference(generated, modality)
    assert stats.select("site_id", "variable").equals(expected.select("site_id", "variable"))
    for name in STATISTICS:
        assert np.allclose(stats[name].to_numpy(), expected[name].to_numpy(), rtol=1e-9, atol=1e-12), name
    srer = modality.filter(pl.col("site_id") == "SRER").row(0, named=True)
    assert srer["modality"] == "bimodal"
    assert stats.filter(pl.col("site_id") == "SRER")["d2_cm"][0] == srer["d2_cm"]
    events = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert events["soil_water_sensors"]["sites_without_modality"].value == ["ZZZZ"]
    assert events["soil_water_sensors"]["site_partitions"].value == ["BART", "SRER"]
    assert sorted(site_metadata(result, "soil_water_statistics")) == ["BART", "SRER"]  # one run per site


def test_without_soil_water_files_the_tables_are_empty_and_say_why(snapshot_settings: Settings) -> None:
    result = run_assets(snapshot_settings, [*raw_assets, *harmonized_assets, *MODALITY, *soil_water_assets])
    events = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert events["swc_files"]["available"].value is False
    assert "DP1.00094.001" in events["swc_files"]["note"].value
    with connect_read_only(snapshot_settings.database) as con:
        assert con.execute("select count(*) from analysis.soil_water_statistics").fetchall() == [(0,)]


def test_a_positions_file_without_depths_is_refused_naming_the_file(tmp_path: Path) -> None:
    generate(tmp_path, RELEASE, SITES[:1], ["2021-01"], positions=1)
    path = next((tmp_path / RELEASE / "DP1.00094.001" / "SRER").glob("*sensor_positions*"))
    pl.read_csv(path).drop("zOffset").write_csv(path)
    with pytest.raises(NeonDataError, match=f"{path.name}: missing column.*zOffset"):
        read_sensor_positions(discover(soil_water_folder(tmp_path, RELEASE)))
    pl.DataFrame(
        {
            "HOR.VER": ["001.501"],
            "sensorLocationID": ["x"],
            "positionStartDateTime": ["2021"],
            "positionEndDateTime": [None],
            "zOffset": ["deep"],
        }
    ).write_csv(path)
    with pytest.raises(NeonDataError, match=f"{path.name}: row 2: field HOR.VER or zOffset"):
        read_sensor_positions(discover(soil_water_folder(tmp_path, RELEASE)))


def test_choose_sensors_takes_the_nearest_and_the_shallowest() -> None:
    positions = pl.DataFrame(
        {
            "site_id": ["A"] * 4,
            "hor": ["001"] * 4,
            "ver": ["501", "502", "503", "504"],
            "depth_cm": [6.0, 56.0, 86.0, 116.0],
        }
    )
    chosen = choose_sensors(positions, pl.DataFrame({"site_id": ["A"], "d1_cm": [71.0], "d2_cm": [101.0]}))
    assert dict(zip(chosen["role"], chosen["ver"], strict=True)) == {"d1": "502", "d2": "503", "surface": "501"}


# Values as small as 1e-160 square to below the smallest double, and any variance computed from squares loses
# its digits there (hypothesis found [0, 2.8e-160]); soil water and its ratios are never that small.
REPRESENTABLE = st.floats(-5, 5, allow_nan=False, allow_subnormal=False).filter(lambda x: x == 0 or abs(x) > 1e-100)


@hsettings(max_examples=40, deadline=None)
@given(st.lists(REPRESENTABLE, min_size=2, max_size=60))
def test_statistics_sql_equals_the_numpy_reference(values: list[float]) -> None:
    con = duckdb.connect()
    con.register("v", pl.DataFrame({"site_id": ["A"] * len(values), "phi": values, "swc_surface": values}))
    got = con.sql(f"select * from ({statistics_sql('v')}) where variable = 'phi'").pl().row(0, named=True)
    want = distribution_statistics(np.array(values))
    for name in STATISTICS:
        assert got[name] == pytest.approx(want[name], rel=1e-9, abs=1e-9, nan_ok=True) or (
            name == "cv" and got[name] is None
        ), name


def test_a_30_minute_file_without_its_values_is_refused_naming_the_file(tmp_path: Path) -> None:
    from rootassets.neon.soil_water import read_csv_sql

    generate(tmp_path, RELEASE, SITES[:1], ["2021-01"], positions=1)
    files = discover(soil_water_folder(tmp_path, RELEASE))
    broken = files.data[0].path
    pl.read_csv(broken).drop("VSWCMean").write_csv(broken)
    with pytest.raises(NeonDataError, match=f"{broken.name}: missing column.*VSWCMean"):
        read_csv_sql([f.path for f in files.data])


def test_the_phi_steps_depths_reach_soil_water(snapshot_settings: Settings, generated: Path) -> None:
    # One setting, the unimodal D1 of the phi step, changes analysis.phi and the soil-water tables alike.
    settings = dataclasses.replace(snapshot_settings, soil_water=generated)
    result = run_assets(
        settings,
        [*raw_assets, *harmonized_assets, *MODALITY, *soil_water_assets],
        run_config={"ops": {"analysis_phi": {"config": {"unimodal_d1_cm": 35.0}}}},
    )
    assert result.success
    with connect_read_only(settings.database) as con:
        phi = con.execute("select distinct d1_cm from analysis.phi where site_id = 'BART'").fetchall()
        water = con.execute("select distinct d1_cm from analysis.soil_water_statistics where site_id = 'BART'")
        water = water.fetchall()
    assert phi == water == [(35.0,)]


def test_corrupted_files_of_one_site_are_quarantined_and_every_site_still_computed(
    snapshot_settings: Settings, tmp_path: Path
) -> None:
    """Issue 18: one site's files corrupted (a line that is not a number, a ragged line, a file without its
    values column): those lines and that file go to quarantine naming file, line and reason; every site,
    the damaged one included, is computed from the rows that could be read."""
    root = tmp_path / "swc"
    generate(root, RELEASE, SITES, month_range("2020-12", 2), positions=2, seed=7)
    found = discover(soil_water_folder(root, RELEASE)).data
    surface = {(f.hor, f.month): f.path for f in found if f.site == "BART" and f.ver == "501"}  # top: always read
    damaged, ragged, headless = surface[("001", "2020-12")], surface[("001", "2021-01")], surface[("002", "2020-12")]
    lines = damaged.read_text().splitlines(keepends=True)
    lines[5] = lines[5].replace(lines[5].split(",")[2], "not-a-number", 1)
    # a good record on lines 3-4: a quoted value with a line break, which DuckDB reads as a number, so the
    # bad record (line 7) is DuckDB's record 6
    minimum = next(csv.reader([lines[0]])).index("VSWCMinimum")
    fields = lines[2].rstrip("\n").split(",")
    fields[minimum] = '"' + fields[minimum].strip('"') + '\n"'
    lines[2] = ",".join(fields) + "\n"
    damaged.write_text("".join(lines))
    with ragged.open("a") as fh:
        fh.write('"2021-01-31T23:30:00Z","2021-02-01T00:00:00Z","0.1"\n')
    ragged_line = len(ragged.read_text().splitlines())
    pl.read_csv(headless).drop("VSWCMean").write_csv(headless)
    settings = dataclasses.replace(snapshot_settings, soil_water=root)
    result = run_assets(settings, [*raw_assets, *harmonized_assets, *MODALITY, *soil_water_assets])
    assert result.success
    with connect_read_only(settings.database) as con:
        refused = con.sql("select * from quarantine.soil_water_phi_series order by source_file").pl()
        sites = con.execute("select distinct site_id from analysis.soil_water_statistics order by 1").fetchall()
    assert sites == [("BART",), ("SRER",)]
    by_file = {r["source_file"]: r for r in refused.iter_rows(named=True)}
    assert set(by_file) == {damaged.name, ragged.name, headless.name} and refused.height == 3
    assert site_metadata(result, "soil_water_phi_series")["SRER"]["input_left_out"].value == {}
    assert site_metadata(result, "soil_water_phi_series")["BART"]["input_left_out"].value == {
        damaged.name: 1,
        ragged.name: 1,
        headless.name: 1,
    }
    for name, row in by_file.items():
        assert row["site_id"] == "BART" and row["release"] == RELEASE
        if name == headless.name:
            assert row["rule"] == "missing_column" and row["column_name"] == "VSWCMean"
        elif name == damaged.name:
            assert row["rule"] == "not_a_number" and row["all_reasons"].startswith("line 7: ")
        else:
            assert row["rule"] == "malformed_record" and row["all_reasons"].startswith(f"line {ragged_line}: ")


def site_metadata(result, table: str) -> dict:
    """site -> the metadata of `table`'s materialization in that site's partition."""
    return {
        e.materialization.metadata["site"].value: e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == table
    }


def test_a_site_that_cannot_be_aggregated_keeps_its_earlier_rows_and_the_others_are_written(
    snapshot_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18: sites are aggregated one by one, each in its own DuckDB. One site's files failing as a whole
    (here a file that vanishes between the scan of its header and DuckDB's read, as a concurrent download
    replacing it would do) fails that site alone: it is reported and quarantined naming the site and the
    file, keeps its rows of the previous refresh, and every other site is written."""
    from rootassets.warehouse import soil_water as warehouse_soil_water

    root = tmp_path / "swc"
    generate(root, RELEASE, SITES, month_range("2020-12", 2), positions=2, seed=7)
    settings = dataclasses.replace(snapshot_settings, soil_water=root, soil_water_workers=1)  # in this process
    assets = [*raw_assets, *harmonized_assets, *MODALITY, *soil_water_assets]
    assert run_assets(settings, assets).success
    query = "select site_id, variable, mean from analysis.soil_water_statistics order by all"
    with connect_read_only(settings.database) as con:
        before = con.execute(query).fetchall()
    assert {r[0] for r in before} == {"BART", "SRER"}

    vanishing = next(f.path for f in discover(soil_water_folder(root, RELEASE)).data if f.site == "BART")
    original = warehouse_soil_water.read_csv_sql

    def read_then_lose_a_file(paths, refused=None, rejects_table=None):  # noqa: ANN001, ANN202
        paths = list(paths)
        relation = original(paths, refused, rejects_table)
        if vanishing in paths:
            vanishing.rename(vanishing.with_suffix(".gone"))
        return relation

    monkeypatch.setattr(warehouse_soil_water, "read_csv_sql", read_then_lose_a_file)
    result = run_assets(settings, assets)
    assert result.success
    with connect_read_only(settings.database) as con:
        after = con.execute(query).fetchall()
        refused = con.sql("select * from quarantine.soil_water_phi_series where rule = 'site_not_aggregated'").pl()
    assert [r for r in after if r[0] == "BART"] == [r for r in before if r[0] == "BART"]  # kept as it was
    assert [r for r in after if r[0] == "SRER"] == [r for r in before if r[0] == "SRER"]  # recomputed: the same
    assert refused.height == 1 and refused["site_id"][0] == "BART" and refused["release"][0] == RELEASE
    assert refused["source_file"][0] == vanishing.name and vanishing.name in refused["all_reasons"][0]
    metadata = site_metadata(result, "soil_water_statistics")
    assert metadata["BART"]["aggregated"].value is False and metadata["SRER"]["aggregated"].value is True
    assert vanishing.name in metadata["BART"]["not_aggregated_because"].value
    checks = {e.asset_check_key.name: e for e in result.get_asset_check_evaluations() if not e.passed}
    assert set(checks) == {"site_aggregated"} and checks["site_aggregated"].metadata["site"].value == "BART"


def test_sites_aggregated_in_parallel_processes_equal_one_at_a_time(generated: Path, tmp_path: Path) -> None:
    from rootassets.science.soil_water import SoilWaterQuality, file_roles, sensor_choice
    from rootassets.warehouse.soil_water import aggregate_sites, combined_queries

    files = discover(soil_water_folder(generated, RELEASE))
    depths = pl.DataFrame(
        {
            "site_id": ["SRER", "BART"],
            "modality": ["bimodal", "unimodal"],
            "d1_cm": [40.0, 70.0],
            "d2_cm": [90.0, 100.0],
        }
    )
    sensors = sensor_choice(read_sensor_positions(files), None, depths.drop("modality"))
    roles = file_roles(sensors.join(depths.select("site_id", "modality"), on="site_id"), files.sensor_files())
    tables = []
    for workers in (1, 2):
        aggregates = aggregate_sites(roles, depths, SoilWaterQuality(), tmp_path / f"w{workers}", workers=workers)
        assert [a.error for a in aggregates] == [None, None]
        with duckdb.connect() as con:
            queries, _ = combined_queries(con, aggregates)
            tables.append({k: con.sql(f"{q} ORDER BY ALL").pl() for k, q in queries.items()})
    assert tables[0].keys() == tables[1].keys()
    for key in tables[0]:  # to the last bit: each site's sums add in one order, whatever the workers
        assert_frame_equal(tables[0][key], tables[1][key], check_exact=True)
    assert tables[0][("analysis", "soil_water_statistics")]["site_id"].unique().sort().to_list() == ["BART", "SRER"]


@pytest.mark.slow
def test_the_cli_runs_each_site_partition_in_its_own_run_and_commits_them_with_the_release(
    tmp_path: Path, snapshot: Path, generated: Path
) -> None:
    """Issue 18 item 4 through `rootassets materialize`: the release assets, then one run per release x site
    partition (processes side by side), then the commit; a re-run finds every site partition up to date."""
    from dagster import DagsterInstance, RunsFilter

    from rootassets_tests.test_cli import cli

    env = {
        **os.environ,
        "ROOTASSETS_HOME": str(tmp_path / "home"),
        "ROOTASSETS_SNAPSHOT": str(snapshot),
        "ROOTASSETS_SOIL_WATER": str(generated),
        "ROOTASSETS_SOIL_WATER_WORKERS": "2",
    }
    env.pop("DAGSTER_HOME", None)
    select = "+key:analysis/soil_water_statistics"
    done = cli("materialize", "--release", RELEASE, "--select", select, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"2 site partitions of {RELEASE}, 2 at a time" in done.stdout
    for site in ("BART", "SRER"):
        assert re.search(rf"^  site {site}: 3 assets materialized \(run [0-9a-f-]+\)$", done.stdout, re.M), done.stdout
    with connect_read_only(warehouse_of(env)) as con:
        sites = con.execute("select distinct site_id from analysis.soil_water_statistics order by 1").fetchall()
        committed = con.execute(
            "select count(distinct refresh_id) from meta.commits where table_name = 'soil_water_statistics'"
        ).fetchall()
    assert sites == [("BART",), ("SRER",)]
    assert committed == [(1,)]  # the sites' rows and the release's tables: one refresh, one commit
    with DagsterInstance.from_config(str(tmp_path / "home" / "dagster")) as instance:
        partitions = {
            r.tags.get("dagster/partition") for r in instance.get_runs(RunsFilter(job_name="soil_water_sites_job"))
        }
    assert partitions == {f"{RELEASE}|BART", f"{RELEASE}|SRER"}
    again = cli("materialize", "--release", RELEASE, "--select", select, "--full-check", env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 soil-water site partitions up to date (same code and inputs), not recomputed" in again.stdout
