"""New NEON releases drive refreshes: the sensor, the schedule, release diffs, and killed runs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from dagster import (
    DagsterInstance,
    SensorResult,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
)

from rootassets.definitions import MAIN_JOB, build_definitions
from rootassets.defs.automation import neon_release_sensor, weekly_neon_refresh
from rootassets.defs.partitions import NEON_RELEASE_PARTITIONS
from rootassets.defs.resources import NeonSourceResource
from rootassets.neon.mirror import MirrorServer
from rootassets.settings import Settings
from rootassets.warehouse import Location, connect_read_only
from rootassets_tests.conftest import (
    REPO,
    random_kill_point,
    settings_on_backend,
    staged_refreshes,
    warehouse_digest,
    warehouse_of,
    warehouse_resource,
)
from rootassets_tests.planted import copy_release, plant_release

pytestmark = pytest.mark.slow
FAST = {"ops": {"analysis_classifier": {"config": {"n_trees": 100, "n_seeds": 2, "n_permutations": 2}}}}
OLD, NEW = "RELEASE-2021", "RELEASE-2022"
DROPPED, FLIPPED = "ABBY", "DELA"


def tick(
    instance: DagsterInstance, neon: NeonSourceResource, cursor: str | None, database: Location | None = None
) -> SensorResult | SkipReason:
    warehouse = warehouse_resource(database or Path("/nonexistent/rootassets.duckdb"))
    resources = {"neon": neon, "warehouse": warehouse}
    with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        return neon_release_sensor(context)


def run_release(settings: Settings, instance: DagsterInstance, release: str) -> None:
    job = build_definitions(settings).resolve_job_def(MAIN_JOB)
    result = job.execute_in_process(instance=instance, partition_key=release, run_config=FAST)
    assert result.success


def test_new_release_is_detected_run_and_diffed(tmp_path: Path, snapshot: Path, neon_token: str) -> None:
    root = tmp_path / "snapshot"
    copy_release(snapshot, root, OLD)
    with MirrorServer(root) as mirror:
        settings = settings_on_backend(
            home=tmp_path / "home", snapshot=None, api_url=mirror.base_url, site_attributes=root / "site-attributes"
        )
        neon = NeonSourceResource(api_url=mirror.base_url, download_dir=str(settings.downloads))
        instance = DagsterInstance.ephemeral()

        first = tick(instance, neon, None)
        assert [r.partition_key for r in first.run_requests] == [OLD]
        assert [r.run_key for r in first.run_requests] == [OLD]
        instance.add_dynamic_partitions(NEON_RELEASE_PARTITIONS, first.dynamic_partitions_requests[0].partition_keys)
        run_release(settings, instance, OLD)
        assert not tick(instance, neon, first.cursor).run_requests
        fresh = tick(instance, neon, None, settings.database)  # a sensor turned on afresh: OLD is committed
        assert not fresh.run_requests
        assert f"already committed in {settings.database_setting}: {OLD}" in fresh.skip_reason.skip_message

        plant_release(root, OLD, NEW, drop_site=DROPPED, flatten_site=FLIPPED, flatten_below_cm=50)
        mirror.reload()
        second = tick(instance, neon, first.cursor)
        assert [r.partition_key for r in second.run_requests] == [NEW]
        assert second.dynamic_partitions_requests[0].partition_keys == [NEW]
        third = tick(instance, neon, second.cursor)
        assert not third.run_requests
        instance.add_dynamic_partitions(NEON_RELEASE_PARTITIONS, [NEW])
        run_release(settings, instance, NEW)

    with connect_read_only(settings.database) as con:
        side_by_side = dict(
            con.execute("select release, count(*) from analysis.site_modality group by 1 order by 1").fetchall()
        )
        assert side_by_side == {OLD: 44, NEW: 43}
        labels = dict(
            con.execute("select release, modality from analysis.site_modality where site_id = ?", [FLIPPED]).fetchall()
        )
        assert labels == {OLD: "bimodal", NEW: "unimodal"}
        changes = con.execute(
            "select site_id, change, quantity, old_value, new_value, previous_release from analysis.release_changes "
            "where release = ?",
            [NEW],
        ).fetchall()
    assert {c[0] for c in changes} == {DROPPED, FLIPPED}
    assert (DROPPED, "site_removed", "site", DROPPED, None, OLD) in changes
    assert (FLIPPED, "modality_changed", "modality", "bimodal", "unimodal", OLD) in changes


def test_source_outage_skips_the_tick_with_a_message(tmp_path: Path) -> None:
    neon = NeonSourceResource(api_url="http://127.0.0.1:9/api/v0/", download_dir=str(tmp_path), http_attempts=1)
    result = tick(DagsterInstance.ephemeral(), neon, None)
    assert isinstance(result, SkipReason) and "NEON source unavailable" in result.skip_message


def test_schedule_refreshes_provisional_only_when_its_generation_changes(tmp_path: Path, snapshot: Path) -> None:
    root = tmp_path / "snapshot"
    copy_release(snapshot, root, OLD)
    neon = NeonSourceResource(snapshot_dir=str(root), download_dir=str(tmp_path))
    with instance_for_test() as instance:
        skipped = weekly_neon_refresh(build_schedule_context(instance=instance, resources={"neon": neon}))
        assert isinstance(skipped, SkipReason) and "no PROVISIONAL" in skipped.skip_message
        plant_release(root, OLD, "PROVISIONAL", drop_site=DROPPED, flatten_site=FLIPPED, flatten_below_cm=50)
        request = weekly_neon_refresh(build_schedule_context(instance=instance, resources={"neon": neon}))
        assert request.partition_key == "PROVISIONAL" and request.tags["rootassets/provisional_generation"]
        assert instance.has_dynamic_partition(NEON_RELEASE_PARTITIONS, "PROVISIONAL")
        job = build_definitions(
            settings_on_backend(
                home=tmp_path / "home",
                snapshot=root,
                api_url="http://127.0.0.1:9/",
                site_attributes=root / "site-attributes",
            )
        ).resolve_job_def(MAIN_JOB)
        job.execute_in_process(
            instance=instance,
            partition_key="PROVISIONAL",
            tags=request.tags,
            run_config=FAST,
            asset_selection=[__import__("dagster").AssetKey(["raw", "site_land_cover"])],
        )
        again = weekly_neon_refresh(build_schedule_context(instance=instance, resources={"neon": neon}))
        assert isinstance(again, SkipReason) and "already refreshed" in again.skip_message


def counts(db: Location, release: str) -> dict[str, int]:
    with connect_read_only(db) as con:
        tables = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_catalog = current_database() and table_schema in ('raw', 'harmonized', 'analysis')"
        ).fetchall()
        return {
            t: con.execute(f"select count(*) from {t} where release = ?", [release]).fetchone()[0] for (t,) in tables
        }


MATERIALIZE = [sys.executable, "-m", "rootassets.cli", "materialize", "--release"]


@pytest.fixture(scope="module")
def old_release_committed(tmp_path_factory: pytest.TempPathFactory, snapshot: Path) -> tuple[Path, dict[str, str]]:
    """A snapshot with OLD and a planted NEW, and a ROOTASSETS_HOME where `rootassets materialize` committed OLD:
    the same starting point for every kill attempt, computed once (each attempt works on its own copy)."""
    base = tmp_path_factory.mktemp("old-release")
    root, home = base / "snapshot", base / "home"
    copy_release(snapshot, root, OLD)
    env = {**os.environ, "ROOTASSETS_HOME": str(home), "ROOTASSETS_SNAPSHOT": str(root)}
    done = subprocess.run([*MATERIALIZE, OLD], env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    plant_release(root, OLD, NEW, drop_site=DROPPED, flatten_site=FLIPPED, flatten_below_cm=50)
    return root, env


# Two attempts, each at a random moment of its half of the refresh (from its first observation to its last
# figure): together they cover early and late kills, at two cold refreshes' cost instead of three.
@pytest.mark.parametrize("window", [(1.0, 28.0), (28.0, 55.0)], ids=["kill-early", "kill-late"])
def test_killed_refresh_leaves_the_earlier_release_intact_and_rerun_completes(
    tmp_path: Path,
    old_release_committed: tuple[Path, dict[str, str]],
    window: tuple[float, float],
    clone_warehouse: Callable[[dict], dict],
) -> None:
    kill_after_s, seed = random_kill_point(*window)
    replay = f"killed after {kill_after_s}s (replay: ROOTASSETS_KILL_SEED={seed})"
    root, committed = old_release_committed
    shutil.copytree(committed["ROOTASSETS_HOME"], tmp_path / "home")
    env = {
        **os.environ,
        "ROOTASSETS_HOME": str(tmp_path / "home"),
        "ROOTASSETS_SNAPSHOT": str(root),
        **clone_warehouse(committed),
    }
    command = MATERIALIZE
    db = warehouse_of(env)
    before = counts(db, OLD)
    earlier = warehouse_digest(db)

    process = subprocess.Popen(
        [*command, NEW], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    time.sleep(kill_after_s)
    os.killpg(process.pid, signal.SIGKILL)
    finished_before_kill = process.wait() == 0

    committed_before_kill = None
    if not finished_before_kill and not committed_release(db, NEW):
        # killed before the commit: the database opens and shows exactly what it showed before the refresh
        assert warehouse_digest(db) == earlier, replay
        assert not any(counts(db, NEW).values()), replay  # nothing of the killed refresh, not even raw tables
    elif not finished_before_kill:  # killed after the commit, before the process ended: all of the release shows
        committed_before_kill = counts(db, NEW)
    rerun = subprocess.run([*command, NEW], env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, f"{replay}: {rerun.stderr[-2000:]}"
    assert counts(db, OLD) == before, replay
    assert staged_refreshes(db) == [], replay
    after = counts(db, NEW)
    assert after["analysis.site_modality"] == 43 and after["raw.mpr_perrootsample"] > 0
    if committed_before_kill is not None:  # what the killed process committed was the whole release already
        assert committed_before_kill == after, replay


def committed_release(db: Location, release: str) -> bool:
    """Whether a refresh of `release` has committed (`meta.commits`)."""
    with connect_read_only(db, attempts=600) as con:
        has_commits = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'meta' and table_name = 'commits'"
        ).fetchone()[0]
        return (
            bool(has_commits)
            and con.execute("select count(*) > 0 from meta.commits where release = ?", [release]).fetchone()[0]
        )
