"""Issue 18 item 4 on the automation path: a release run that commits itself (the sensor's, the UI's) is
followed by one run per site partition, and, when the last of them has ended, by the release assets that read
the soil-water tables; `rootassets materialize` runs the same phases itself."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, RunRequest, SkipReason, build_run_status_sensor_context

from rootassets.definitions import SITES_JOB, build_definitions
from rootassets.defs.automation import PARENT_TAG, PHASE_TAG, RELEASE_TAG, release_phases
from rootassets.defs.partitions import NEON_RELEASE_PARTITIONS
from rootassets.settings import Settings
from rootassets.synthetic.soil_water import generate, month_range
from rootassets_tests.conftest import RELEASE
from rootassets_tests.test_soil_water import SITES


def sensor_evaluation(defs, name: str, instance: DagsterInstance, result) -> list[RunRequest]:  # noqa: ANN001
    sensor = defs.resolve_sensor_def(name)
    run = instance.get_run_by_id(result.run_id)
    event = next(
        e for e in result.all_events if e.event_type in (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE)
    )
    context = build_run_status_sensor_context(
        sensor_name=name,
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=event,
        repository_def=defs.get_repository_def(),
    )
    found = sensor(context)
    if isinstance(found, RunRequest):
        return [found]
    return [] if isinstance(found, SkipReason) or found is None else list(found)


@pytest.fixture()
def defs_and_settings(snapshot_settings: Settings, tmp_path: Path):  # noqa: ANN201
    root = tmp_path / "swc"
    generate(root, RELEASE, SITES, month_range("2021-01", 1), positions=1, seed=3)
    settings = dataclasses.replace(snapshot_settings, soil_water=root)
    return build_definitions(settings), settings


def test_a_release_run_is_followed_by_its_site_partitions_and_then_by_what_reads_them(defs_and_settings) -> None:  # noqa: ANN001
    defs, _ = defs_and_settings
    _, sites, after = release_phases(defs.get_repository_def())
    graph = defs.resolve_asset_graph()
    upstream = set()
    frontier = [p for k in sites for p in graph.get(k).parent_keys]
    while frontier:
        key = frontier.pop()
        if key not in upstream and key not in sites and not graph.get(key).is_observable:
            upstream.add(key)
            frontier += list(graph.get(key).parent_keys)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(NEON_RELEASE_PARTITIONS, [RELEASE])
        release_run = defs.resolve_job_def("main_job").execute_in_process(
            instance=instance, partition_key=RELEASE, asset_selection=sorted(upstream, key=str)
        )
        assert release_run.success
        requests = sensor_evaluation(defs, "soil_water_sites_after_release_run", instance, release_run)
        assert sorted(r.partition_key for r in requests) == [f"{RELEASE}|BART", f"{RELEASE}|SRER"]
        assert {r.job_name for r in requests} == {SITES_JOB}
        assert all(r.tags[PARENT_TAG] == release_run.run_id and r.tags[PHASE_TAG] == "sites" for r in requests)

        site_runs = []
        for request in requests:
            site_runs.append(
                defs.resolve_job_def(SITES_JOB).execute_in_process(
                    instance=instance, partition_key=request.partition_key, tags=request.tags
                )
            )
            assert site_runs[-1].success
        after_first = sensor_evaluation(defs, "release_after_soil_water_sites", instance, site_runs[-1])
        assert len(after_first) == 1
        request = after_first[0]
        assert request.job_name == "main_job" and request.partition_key == RELEASE
        assert sorted(request.asset_selection, key=str) == sorted(after, key=str)
        assert request.run_key == f"{release_run.run_id}:after_sites" and request.tags[RELEASE_TAG] == RELEASE

        # a release run that did not touch the sites' inputs requests nothing
        other = defs.resolve_job_def("main_job").execute_in_process(
            instance=instance, partition_key=RELEASE, asset_selection=[AssetKey(["raw", "mpr_perpitprofile"])]
        )
        assert other.success
        assert sensor_evaluation(defs, "soil_water_sites_after_release_run", instance, other) == []
