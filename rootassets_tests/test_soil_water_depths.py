"""True soil-water sensor depths (issue 18 item 2): NEON's corrected installation depths win over
sensor_positions, each depth holds only over its own period, and a moved sensor changes the answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from rootassets.neon.errors import NeonDataError
from rootassets.neon.soil_water import discover, read_corrected_depths, read_sensor_positions
from rootassets.science.soil_water import (
    SoilWaterQuality,
    choose_sensors,
    depth_periods,
    file_roles,
    series_sql,
    sufficiency_sql,
)
from rootassets_tests.conftest import REPO

SAMPLES = (REPO / ".." / "shared" / "neon-samples" / "soil-water").resolve()
MOVE = datetime(2022, 6, 16, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def moved_sensor_periods() -> pl.DataFrame:
    """One position: 501 at 6 cm, 503 at 56 cm, and 502 at 16 cm until 15 June 23:59:59, then at 90 cm."""
    return pl.DataFrame(
        {
            "site_id": ["SITE"] * 4,
            "hor": ["001"] * 4,
            "ver": ["501", "502", "502", "503"],
            "depth_cm": [6.0, 16.0, 90.0, 56.0],
            "valid_from": [at("2010-01-01"), at("2010-01-01"), MOVE, at("2010-01-01")],
            "valid_to": [None, MOVE - timedelta(seconds=1), None, None],
            "depth_source": ["swc_depthsV2.csv"] * 4,
        }
    )


def series(sensors: pl.DataFrame) -> pl.DataFrame:
    """The per-step series of METHOD.md section 4 through the platform's own SQL, on four steps around the move
    (each sensor reads its VER number / 1000, so which sensor answered is visible in the value)."""
    steps = [MOVE - timedelta(days=1), MOVE - timedelta(minutes=30), MOVE, MOVE + timedelta(days=1)]
    observations = pl.DataFrame(
        [
            {"startDateTime": t, "VSWCMean": int(ver) / 1000, "VSWCFinalQF": 0, "filename": f"{ver}.csv"}
            for ver in ("501", "502", "503")
            for t in steps
        ]
    )
    files = pl.DataFrame({"site_id": ["SITE"] * 3, "hor": ["001"] * 3, "ver": ["501", "502", "503"]}).with_columns(
        (pl.col("ver") + ".csv").alias("path")
    )
    con = duckdb.connect()
    con.register("observations", observations)
    con.register("roles", file_roles(sensors, files))
    return con.sql(series_sql("observations", "roles") + " ORDER BY start_time").pl()


DEPTHS = pl.DataFrame({"site_id": ["SITE"], "d1_cm": [15.0], "d2_cm": [85.0]})


def test_a_moved_sensor_uses_each_depth_only_for_its_own_period() -> None:
    sensors = choose_sensors(moved_sensor_periods(), DEPTHS)
    d1 = sensors.filter(pl.col("role") == "d1").sort("valid_from")
    assert d1.select("ver", "depth_cm").rows() == [("502", 16.0), ("501", 6.0)]
    assert d1["valid_to"][0] == MOVE - timedelta(seconds=1) and d1["valid_from"][1] == MOVE
    d2 = sensors.filter(pl.col("role") == "d2").sort("valid_from")
    assert d2.select("ver", "depth_cm").rows() == [("503", 56.0), ("502", 90.0)]
    assert sensors.filter(pl.col("role") == "surface").height == 1  # 501 throughout: one period

    now = series(sensors)
    assert now["swc_d1"].to_list() == [0.502, 0.502, 0.501, 0.501]
    assert now["swc_d2"].to_list() == [0.503, 0.503, 0.502, 0.502]

    # The old answer: every sensor at its current (last) depth for its whole history.
    current = moved_sensor_periods().sort("valid_from").unique(["hor", "ver"], keep="last")
    old = series(choose_sensors(current.drop("valid_from", "valid_to", "depth_source"), DEPTHS))
    assert old["swc_d1"].to_list() == [0.501] * 4 and old["swc_d2"].to_list() == [0.502] * 4
    assert now["phi"].to_list()[:2] != old["phi"].to_list()[:2]  # before the move, the old code read other sensors
    assert now["phi"].to_list()[2:] == old["phi"].to_list()[2:]


def test_a_sensor_without_a_depth_in_a_period_is_not_chosen_then() -> None:
    periods = moved_sensor_periods().with_columns(
        pl.when(pl.col("valid_from") == MOVE).then(None).otherwise(pl.col("depth_cm")).alias("depth_cm")
    )
    d2 = choose_sensors(periods, DEPTHS).filter(pl.col("role") == "d2").sort("valid_from")
    assert d2.select("ver").to_series().to_list() == ["503"]  # 502 has no depth after the move: 503 throughout
    assert d2["valid_from"][0] == at("2010-01-01") and d2["valid_to"][0] is None


def positions(site: str, depth: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "site_id": [site],
            "hor": ["001"],
            "ver": ["501"],
            "depth_cm": [depth],
            "position_start": ["2012-01-01T00:00:00Z"],
            "position_end": [None],
            "file_name": [f"NEON.D01.{site}.DP1.00094.001.sensor_positions.20230101T000000Z.csv"],
        },
        schema_overrides={"position_end": pl.String},
    )


def test_corrected_depths_win_for_the_sites_they_cover_and_say_so() -> None:
    corrected = read_corrected_depths(SAMPLES / "swc_depthsV2.csv")
    periods = depth_periods(pl.concat([positions("BART", 99.0), positions("ZZZZ", 7.0)]), corrected)
    bart = periods.filter((pl.col("site_id") == "BART") & (pl.col("hor") == "001") & (pl.col("ver") == "501"))
    assert bart["depth_cm"].to_list() == [pytest.approx(6.0)] and bart["depth_source"].to_list() == ["swc_depthsV2.csv"]
    zzzz = periods.filter(pl.col("site_id") == "ZZZZ")  # no corrected depths for this site: sensor_positions
    assert zzzz["depth_cm"].to_list() == [7.0] and zzzz["depth_source"][0].startswith("sensor_positions (NEON.D01")
    assert zzzz["valid_from"][0] == at("2012-01-01") and zzzz["valid_to"][0] is None


def test_neons_real_corrected_depths_keep_every_period() -> None:
    depths = read_corrected_depths(SAMPLES / "swc_depthsV2.csv")
    assert depths.height == 2121  # every row of the file
    moved = depths.filter((pl.col("site_id") == "DEJU") & (pl.col("hor") == "003") & (pl.col("ver") == "507"))
    assert moved.sort("valid_from")["valid_to"].to_list() == [
        at("2020-10-15T23:59:59"),
        at("2021-06-03T23:59:59"),
        None,
    ]
    sjer = depths.filter((pl.col("site_id") == "SJER") & (pl.col("hor") == "002") & (pl.col("ver") == "502"))
    assert sjer["depth_cm"].to_list() == [pytest.approx(16.5)]  # -0.165 m


def test_the_download_package_corrected_file_is_found_v2_first(tmp_path: Path) -> None:
    folder = tmp_path / "RELEASE-2023" / "DP1.00094.001" / "pkg"
    folder.mkdir(parents=True)
    for name in ("swc_depths.csv", "swc_depthsV2.csv"):
        (folder / name).write_bytes((SAMPLES / name).read_bytes())
    found = discover(tmp_path / "RELEASE-2023" / "DP1.00094.001")
    assert found.corrected_depths is not None and found.corrected_depths.name == "swc_depthsV2.csv"
    assert "swc_depths.csv" not in found.ignored


def test_a_sensor_positions_file_with_neons_former_column_names_gives_the_same_depths(tmp_path: Path) -> None:
    folder = tmp_path / "RELEASE-2021" / "DP1.00094.001" / "NEON.D17.SJER.DP1.00094.001.2019-06.basic.20200101T000000Z"
    folder.mkdir(parents=True)
    prefix = "NEON.D17.SJER.DP1.00094.001"
    (folder / f"{prefix}.sensor_positions.20200101T000000Z.csv").write_text(
        "HOR.VER,name,description,start,end,referenceName,zOffset\n"
        "001.501,CFGLOC1,Soil Pit 1,2016-01-01T00:00:00Z,2018-01-01T00:00:00Z,SOILPL1,-0.06\n"
        "001.501,CFGLOC1,Soil Pit 1,2018-01-01T00:00:00Z,,SOILPL1,-0.08\n"
    )
    (folder / f"{prefix}.001.501.030.SWS_30_minute.2019-06.basic.20200101T000000Z.csv").write_text(
        "startDateTime,endDateTime,VSWCMean,VSWCFinalQF\n2019-06-01T00:00:00Z,2019-06-01T00:30:00Z,0.1,0\n"
    )
    positions = read_sensor_positions(discover(tmp_path / "RELEASE-2021" / "DP1.00094.001"))
    assert positions.select("sensor_location_id", "position_start", "position_end", "depth_cm").rows() == [
        ("CFGLOC1", "2016-01-01T00:00:00Z", "2018-01-01T00:00:00Z", 6.0),
        ("CFGLOC1", "2018-01-01T00:00:00Z", None, 8.0),
    ]


def test_a_bad_corrected_depths_row_is_refused_naming_row_and_field(tmp_path: Path) -> None:
    lines = (SAMPLES / "swc_depthsV2.csv").read_text().splitlines()
    fields = lines[3].split(",")
    fields[5] = "yesterday"  # startDateTime
    lines[3] = ",".join(fields)
    bad = tmp_path / "swc_depthsV2.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(NeonDataError, match=r"swc_depthsV2.csv: row 4, field startDateTime"):
        read_corrected_depths(bad)
    (tmp_path / "swc_depths.csv").write_text("siteID,sensorDepth\nBART,-0.06\n")
    with pytest.raises(NeonDataError, match="swc_depths.csv: missing column"):
        read_corrected_depths(tmp_path / "swc_depths.csv")


def test_a_site_with_too_little_data_is_reported_not_averaged_silently() -> None:
    quality = pl.DataFrame(
        {
            "site_id": ["GOOD", "GOOD", "FEWW", "GAPS"],
            "role": ["d1", "d2", "d1", "d1"],
            "n_steps_reported": [1440, 1440, 200, 1440],
            "n_steps_with_phi": [1000, 1000, 150, 400],
        }
    )
    con = duckdb.connect()
    con.register("quality", quality)
    rules = SoilWaterQuality(min_steps=336, min_step_share=0.5)
    verdict = dict(
        (site, (ok, note))
        for site, ok, note in con.sql(sufficiency_sql("quality", rules))
        .pl()
        .select("site_id", "sufficient_data", "data_note")
        .iter_rows()
    )
    assert verdict["GOOD"] == (True, "")
    assert verdict["FEWW"] == (False, "150 steps with phi, fewer than 336")
    assert verdict["GAPS"] == (False, "phi at 400 of 1440 reported steps, under 0.5")


def test_soil_water_phi_is_a_group_test_without_the_sites_with_too_little_data() -> None:
    from rootassets.science.group_tests import GroupTestParameters, group_test_table, soil_water_test, two_group_test

    stats = pl.DataFrame(
        {
            "site_id": ["AAAA", "BBBB", "CCCC", "DDDD", "EEEE", "FFFF"],
            "variable": ["phi"] * 6,
            "mean": [2.0, 2.5, 0.5, 0.6, 0.7, 0.1],
            "modality": ["bimodal", "bimodal", "unimodal", "unimodal", "unimodal", "unimodal"],
            "sufficient_data": [True, True, True, True, True, False],
        }
    )
    params = GroupTestParameters()
    row = soil_water_test(stats, params)
    same = two_group_test([2.0, 2.5], [0.5, 0.6, 0.7], params, ["AAAA", "BBBB"], ["CCCC", "DDDD", "EEEE"])
    assert (row["test"], row["p_value"], row["n_unimodal"]) == (same.test, same.p_value, 3)
    assert row["detail"].endswith("left out for too little data: FFFF")
    empty = soil_water_test(stats.clear(), params)
    assert empty["test"] == "none" and "no soil-water statistics for this release" in empty["detail"]
    factors = pl.DataFrame({"site_id": ["AAAA"], "modality": ["bimodal"], "land_cover": ["forest"]})
    phi = pl.DataFrame(schema={"site_id": pl.String, "property": pl.String, "method": pl.String, "phi": pl.Float64})
    table = group_test_table(factors, phi.with_columns(pl.lit(None, pl.String).alias("modality")), params, stats)
    assert table.filter(pl.col("name") == "soil_water_phi_mean")["p_value"].item() == same.p_value


def test_the_soil_water_figure_draws_the_data_or_says_there_is_none() -> None:
    from matplotlib.figure import Figure

    from rootassets.science.figures import soil_water_figure

    empty = soil_water_figure(
        pl.DataFrame(schema={"site_id": pl.String, "variable": pl.String}),
        pl.DataFrame(schema={"site_id": pl.String, "phi": pl.Float64}),
    )
    texts = [t.get_text() for ax in empty.axes for t in ax.texts]
    assert any("no soil-water data" in t for t in texts)
    steps = [MOVE + timedelta(minutes=30 * i) for i in range(10)]
    series = pl.DataFrame(
        {
            "site_id": ["AAAA"] * 10 + ["BBBB"] * 10,
            "start_time": steps * 2,
            "swc_d1": [0.1] * 10 + [0.3] * 10,
            "swc_d2": [0.2] * 10 + [0.1] * 10,
        }
    ).with_columns((pl.col("swc_d2") / pl.col("swc_d1")).alias("phi"))
    stats = pl.DataFrame(
        {
            "site_id": ["AAAA", "BBBB"],
            "variable": ["phi", "phi"],
            "mean": [2.0, 1 / 3],
            "modality": ["bimodal", "unimodal"],
            "sufficient_data": [True, True],
        }
    )
    drawn = soil_water_figure(stats, series)
    assert isinstance(drawn, Figure)
    lines = [line.get_label() for line in drawn.axes[1].get_lines()]
    assert lines == ["AAAA (bimodal), D1", "AAAA (bimodal), D2", "BBBB (unimodal), D1", "BBBB (unimodal), D2"]
