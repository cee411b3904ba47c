"""A real month of NEON soil water (SJER, June 2022) through the soil-water assets, against an independent
polars/NumPy computation from the same rows and NEON's corrected sensor depths (issue 18 items 2 and 6).

`../shared/neon-samples/soil-water/SJER_2022-06_SWS_30_minute_from_rda.csv` is one file for all positions
(its README: exported by an R package that had already re-calibrated `VSWCMean`); the fixture splits it into
NEON's per-position 30-minute files (`NEON.D17.SJER.DP1.00094.001.<HOR>.<VER>.030.SWS_30_minute.2022-06...`),
writes a `sensor_positions` file from its `zOffset`, and puts NEON's real `swc_depthsV2.csv` in the package,
under the release folder of the RELEASE-2021 snapshot whose root profiles give SJER's D1 and D2.
"""

from __future__ import annotations

import dataclasses
import shutil
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from rootassets.defs.harmonized import harmonized_assets
from rootassets.defs.raw import raw_assets
from rootassets.defs.soil_water import soil_water_assets
from rootassets.neon.mirror import MirrorServer
from rootassets.science.soil_water import STATISTICS, distribution_statistics
from rootassets.settings import Settings
from rootassets.warehouse import connect_read_only
from rootassets_tests.conftest import RELEASE, REPO, make_token, run_assets, settings_on_backend
from rootassets_tests.test_soil_water import MODALITY

SAMPLES = (REPO / ".." / "shared" / "neon-samples" / "soil-water").resolve()
PUBLICATION = "20230101T000000Z"
PACKAGE = f"NEON.D17.SJER.DP1.00094.001.2022-06.basic.{PUBLICATION}.{RELEASE}"


def month() -> pl.DataFrame:
    return pl.read_csv(
        SAMPLES / "SJER_2022-06_SWS_30_minute_from_rda.csv",
        schema_overrides={"horizontalPosition": pl.String, "verticalPosition": pl.String},
    ).with_columns(pl.col("horizontalPosition").str.zfill(3), pl.col("startDateTime").str.to_datetime(time_zone="UTC"))


@pytest.fixture(scope="module")
def sjer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sjer")
    package = root / RELEASE / "DP1.00094.001" / PACKAGE
    package.mkdir(parents=True)
    rows = month()
    for (hor, ver), part in rows.group_by("horizontalPosition", "verticalPosition"):
        name = f"NEON.D17.SJER.DP1.00094.001.{hor}.{ver}.030.SWS_30_minute.2022-06.basic.{PUBLICATION}.csv"
        part.sort("startDateTime").select(
            pl.col("startDateTime").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            (pl.col("startDateTime") + timedelta(minutes=30)).dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias("endDateTime"),
            "VSWCMean",
            "VSWCMinimum",
            "VSWCMaximum",
            "VSWCExpUncert",
            "VSWCStdErMean",
            "VSWCFinalQF",
        ).write_csv(package / name)
    positions = rows.group_by("horizontalPosition", "verticalPosition").agg(pl.col("zOffset").first()).sort(pl.all())
    positions.select(
        pl.concat_str("horizontalPosition", pl.lit("."), "verticalPosition").alias("HOR.VER"),
        pl.concat_str(pl.lit("SJER"), "horizontalPosition", "verticalPosition").alias("sensorLocationID"),
        pl.lit("2012-01-01T00:00:00Z").alias("positionStartDateTime"),
        pl.lit(None, pl.String).alias("positionEndDateTime"),
        "zOffset",
    ).write_csv(package / f"NEON.D17.SJER.DP1.00094.001.sensor_positions.{PUBLICATION}.csv")
    (package / "swc_depthsV2.csv").write_bytes((SAMPLES / "swc_depthsV2.csv").read_bytes())
    return root


def independent(d1: float, d2: float) -> dict[str, dict[str, float]]:
    """SJER's phi and surface statistics from the month's rows and swc_depthsV2.csv, without the platform's
    sensor choice or SQL: per position the sensor whose corrected depth is nearest (a sensor NEON gives no depth
    is not a candidate), the mean over positions of the QF = 0 values per step, phi = Y(D2) / Y(D1)."""
    depths = pl.read_csv(SAMPLES / "swc_depthsV2.csv", infer_schema=False, null_values=["NA"]).filter(
        pl.col("siteID") == "SJER"
    )
    assert depths["endDateTime"].null_count() == depths.height  # one open period per sensor at SJER
    depth = {
        (h, v): -100 * float(z)
        for h, v, z in depths.select("horizontalPosition.HOR", "verticalPosition.VER", "sensorDepth").iter_rows()
        if z is not None
    }
    rows = month().filter(pl.col("VSWCFinalQF") == 0, pl.col("VSWCMean").is_not_null())
    per_role = {}
    for role, target in (("d1", d1), ("d2", d2), ("surface", 0.0)):
        chosen = {}
        for (hor, ver), z in sorted(depth.items()):
            best = chosen.get(hor)
            if best is None or (abs(z - target), z) < (abs(best[1] - target), best[1]):
                chosen[hor] = (ver, z)
        picked = rows.filter(
            pl.struct("horizontalPosition", "verticalPosition").is_in(
                [{"horizontalPosition": h, "verticalPosition": v} for h, (v, _) in chosen.items()]
            )
        )
        per_role[role] = picked.group_by("startDateTime").agg(pl.col("VSWCMean").mean().alias(role))
    steps = per_role["d1"].join(per_role["d2"], on="startDateTime", how="full", coalesce=True)
    steps = steps.join(per_role["surface"], on="startDateTime", how="full", coalesce=True)
    phi = (steps["d2"] / steps["d1"]).to_numpy()
    surface = steps["surface"].drop_nulls().to_numpy()
    return {
        "phi": {**distribution_statistics(phi), "n_steps": int(np.isfinite(phi).sum())},
        "surface_swc": {**distribution_statistics(surface), "n_steps": int(surface.size)},
    }


def test_sjer_statistics_equal_an_independent_computation(snapshot_settings: Settings, sjer: Path) -> None:
    settings = dataclasses.replace(snapshot_settings, soil_water=sjer)
    result = run_assets(settings, [*raw_assets, *harmonized_assets, *MODALITY, *soil_water_assets])
    assert result.success
    with connect_read_only(settings.database) as con:
        stats = con.sql("select * from analysis.soil_water_statistics where site_id = 'SJER' order by variable").pl()
        sensors = con.sql("select * from analysis.soil_water_sensors where site_id = 'SJER'").pl()
        positions = con.execute("select count(*) from raw.swc_sensor_positions where site_id = 'SJER'").fetchall()
        quality = con.sql("select * from analysis.soil_water_quality where site_id = 'SJER' order by role").pl()
    assert positions == [(33,)]
    assert set(sensors["depth_source"]) == {"swc_depthsV2.csv"}
    # every observation of the chosen sensors is accounted for: kept, or dropped with its reason
    rows = month()
    for role in quality.iter_rows(named=True):
        chosen = sensors.filter(pl.col("role") == role["role"]).select("hor", "ver").rows()
        theirs = rows.filter(
            pl.struct("horizontalPosition", "verticalPosition").is_in(
                [{"horizontalPosition": h, "verticalPosition": v} for h, v in chosen]
            )
        )
        flagged = theirs.filter(pl.col("VSWCFinalQF") != 0).height
        kept = theirs.filter((pl.col("VSWCFinalQF") == 0) & pl.col("VSWCMean").is_not_null()).height
        assert (role["n_observations"], role["n_dropped_flagged"], role["n_kept"]) == (theirs.height, flagged, kept)
        assert role["n_observations"] == role["n_dropped_flagged"] + role["n_dropped_missing"] + role["n_kept"]
    d1, d2 = stats["d1_cm"][0], stats["d2_cm"][0]
    expected = independent(d1, d2)
    assert stats["variable"].to_list() == ["phi", "surface_swc"]
    assert stats["sufficient_data"].to_list() == [True, True] and stats["data_note"].to_list() == ["", ""]
    for row in stats.iter_rows(named=True):
        for name in STATISTICS:
            assert np.isclose(row[name], expected[row["variable"]][name], rtol=1e-9, atol=1e-12), (
                row["variable"],
                name,
            )
        assert row["n_steps"] == expected[row["variable"]]["n_steps"] > 500  # of 1440 steps (QF = 1 drops about half)


def test_sjer_downloaded_through_the_mirror_gives_the_same_statistics(
    snapshot: Path, sjer: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Acceptance of issue 18 item 1: with the API (the mirror serving the megapit snapshot and SJER's package)
    and a token, the soil-water assets download DP1.00094.001 for the megapit sites within the window, only
    the 30-minute files, sensor positions and corrected depths, and compute what the local files give."""
    served = tmp_path / "served"
    for product in ("DP1.10066.001", "DP1.00096.001"):
        shutil.copytree(snapshot / RELEASE / product, served / RELEASE / product)
    shutil.copytree(sjer / RELEASE / "DP1.00094.001", served / RELEASE / "DP1.00094.001")
    monkeypatch.setenv("NEON_TOKEN", make_token())
    settings = settings_on_backend(
        home=tmp_path / "home",
        snapshot=None,
        api_url="http://127.0.0.1:9/api/v0/",
        site_attributes=snapshot / "site-attributes",
        soil_water=None,
        soil_water_window="2022-06:2022-06",
    )
    with MirrorServer(served) as mirror:
        result = run_assets(settings, [*raw_assets, *harmonized_assets, *MODALITY, *soil_water_assets], mirror.base_url)
        queried = [p for p in mirror.stats.paths if p.endswith("/data/query")]
    assert result.success
    assert len(queried) == 3  # one /data/query per product: the two megapit products and soil water
    downloaded = sorted(p.name for p in (settings.downloads / RELEASE / "DP1.00094.001" / "SJER").iterdir())
    assert len([n for n in downloaded if ".SWS_30_minute." in n]) == 33
    assert "swc_depthsV2.csv" in downloaded and any(".sensor_positions." in n for n in downloaded)
    with connect_read_only(settings.database) as con:
        stats = con.sql("select * from analysis.soil_water_statistics where site_id = 'SJER' order by variable").pl()
        sources = con.execute("select distinct depth_source from analysis.soil_water_sensors").fetchall()
    assert sources == [("swc_depthsV2.csv",)]
    expected = independent(stats["d1_cm"][0], stats["d2_cm"][0])
    for row in stats.iter_rows(named=True):
        for name in STATISTICS:
            assert np.isclose(row[name], expected[row["variable"]][name], rtol=1e-9, atol=1e-12), (row, name)
