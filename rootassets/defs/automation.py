"""NEON releases drive refreshes: a release sensor and a weekly PROVISIONAL schedule."""

import json
from typing import Any

from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInvariantViolationError,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    RunStatusSensorContext,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_status_sensor,
    schedule,
    sensor,
)

from rootassets.defs.jobs import MAIN_JOB, SITES_JOB
from rootassets.defs.partitions import NEON_RELEASE_PARTITIONS, neon_release
from rootassets.defs.resources import NeonSourceResource, WarehouseResource
from rootassets.neon.errors import NeonError
from rootassets.neon.identifiers import RELEASE_PATTERN, InvalidIdentifierError, release_sort_key
from rootassets.refresh import (
    RELEASE_TAG,
    declared_sites,
    site_partition_key,
    split_at_site_partitions,
)
from rootassets.warehouse import Location, connect_read_only
from rootassets.warehouse.staging import REFRESH_TAG, committed_releases

SENSOR_INTERVAL_S = 6 * 3600
RESULT_TABLE = ("analysis", "site_modality")  # a release whose labels are committed needs no refresh run
PROVISIONAL = "PROVISIONAL"
GENERATION_TAG = "rootassets/provisional_generation"


def _offered(neon: NeonSourceResource) -> dict[str, str] | SkipReason:
    try:
        info = neon.source().release_info()
    except (NeonError, InvalidIdentifierError, OSError) as exc:
        return SkipReason(f"NEON source unavailable, will retry next tick: {exc}")
    return {tag: date for tag, date in info.items() if RELEASE_PATTERN.fullmatch(tag)}


@sensor(
    name="neon_release_sensor",
    job_name=MAIN_JOB,
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=DefaultSensorStatus.STOPPED,
    description="Polls NEON (/releases and /products for the platform's products) and, for each new release "
    "whose results are not yet in the database (analysis.site_modality committed), adds its partition and "
    "requests one run of the whole graph (run key = release tag).",
)
def neon_release_sensor(
    context: SensorEvaluationContext, neon: NeonSourceResource, warehouse: WarehouseResource
) -> SensorResult | SkipReason:
    offered = _offered(neon)
    if isinstance(offered, SkipReason):
        return offered
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    unseen = sorted((t for t in offered if t != PROVISIONAL and t not in seen), key=release_sort_key)
    done = _committed(warehouse.location)
    new = [t for t in unseen if t not in done]
    cursor = json.dumps({**seen, **offered}, sort_keys=True)
    if not new:
        already = [t for t in unseen if t in done]
        detail = f"; already committed in {warehouse.database}: {', '.join(already)}" if already else ""
        return SensorResult(
            skip_reason=SkipReason(f"no new NEON release to refresh (offered: {', '.join(sorted(offered))}){detail}"),
            cursor=cursor,
        )
    for tag in new:
        context.log.info(f"requesting a run of {MAIN_JOB} for release {tag} (partition {tag}, run key {tag})")
    existing = set(context.instance.get_dynamic_partitions(NEON_RELEASE_PARTITIONS))
    to_add = [t for t in new if t not in existing]
    before = _before_sites(_repository(context))
    return SensorResult(
        run_requests=[
            RunRequest(run_key=tag, partition_key=tag, tags={RELEASE_TAG: tag}, asset_selection=before) for tag in new
        ],
        dynamic_partitions_requests=[neon_release.build_add_request(to_add)] if to_add else [],
        cursor=cursor,
    )


def _committed(database: Location) -> set[str]:
    """Releases whose results are committed in `database` (none when it does not exist yet)."""
    if not database.exists():
        return set()
    with connect_read_only(database, attempts=600) as con:
        return committed_releases(con, *RESULT_TABLE)


@schedule(
    name="weekly_neon_refresh",
    job_name=MAIN_JOB,
    cron_schedule="0 6 * * 1",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Mondays 06:00 UTC: re-checks NEON's PROVISIONAL data and refreshes it when its generation "
    "date changed.",
)
def weekly_neon_refresh(context: ScheduleEvaluationContext, neon: NeonSourceResource) -> RunRequest | SkipReason:
    offered = _offered(neon)
    if isinstance(offered, SkipReason):
        return offered
    generation = offered.get(PROVISIONAL)
    if generation is None:
        return SkipReason("the NEON source offers no PROVISIONAL data")
    done = context.instance.get_runs(filters=RunsFilter(tags={GENERATION_TAG: generation}), limit=1)
    if done:
        return SkipReason(f"PROVISIONAL generated {generation} was already refreshed (run {done[0].run_id})")
    if not context.instance.has_dynamic_partition(NEON_RELEASE_PARTITIONS, PROVISIONAL):
        context.instance.add_dynamic_partitions(NEON_RELEASE_PARTITIONS, [PROVISIONAL])
    return RunRequest(
        run_key=f"{PROVISIONAL}-{generation}",
        partition_key=PROVISIONAL,
        tags={GENERATION_TAG: generation, RELEASE_TAG: PROVISIONAL},
        asset_selection=_before_sites(_repository(context)),
    )


# --- the refresh's three phases, run by run: the release's assets, its site partitions, what reads them ---------

PHASE_TAG = "rootassets/phase"  # "release" (before the sites), "sites", "after_sites"
PARENT_TAG = "rootassets/after_run"  # the run whose success requested this one


def release_phases(repository: object) -> tuple[list[AssetKey], list[AssetKey], list[AssetKey]]:
    """The main job's assets before the site partitions, the site-partitioned assets, and the main job's assets
    downstream of them (`rootassets.refresh.split_at_site_partitions`)."""
    graph = repository.asset_graph  # type: ignore[attr-defined]
    main = sorted(repository.get_job(MAIN_JOB).asset_layer.selected_asset_keys, key=str)  # type: ignore[attr-defined]
    sites = sorted(repository.get_job(SITES_JOB).asset_layer.selected_asset_keys, key=str)  # type: ignore[attr-defined]
    before, _, after = split_at_site_partitions(graph, [*main, *sites])
    return before, sites, after


def _repository(context: SensorEvaluationContext | ScheduleEvaluationContext) -> object | None:
    """The repository the tick evaluates in; None for a bare context (a test's), which raises on access."""
    try:
        return context.repository_def
    except DagsterInvariantViolationError:
        return None


def _before_sites(repository: object | None) -> list[AssetKey] | None:
    """What a release run requests: the main job's assets before the site partitions (the sensors below chain
    the rest); the whole main job when evaluated without its repository (a bare test context)."""
    return release_phases(repository)[0] if repository is not None else None


def _materialized(context: RunStatusSensorContext, run_id: str) -> set[AssetKey]:
    records = context.instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    return {r.dagster_event.asset_key for r in records if r.dagster_event and r.dagster_event.asset_key}


def build_site_sensors(jobs: list[Any]) -> list[Any]:
    """The run-status sensors that chain a release run, its site partitions and what reads them (`jobs`: the
    main job and the sites job, which they request)."""

    @run_status_sensor(
        run_status=DagsterRunStatus.SUCCESS,
        name="soil_water_sites_after_release_run",
        request_jobs=jobs,
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.STOPPED,
        description="After a run (the main job's, a UI launch) that committed a release's soil-water sensors, "
        "requests one run of soil_water_sites_job per site partition the release declared (side by side), or, "
        "with no site, the main job's assets that read the soil-water tables unless the run did them. Off by "
        "default, like neon_release_sensor: switch both on. `rootassets materialize` runs these phases itself.",
    )
    def soil_water_sites_after_release_run(context: RunStatusSensorContext) -> list[RunRequest] | SkipReason:
        run = context.dagster_run
        if run.job_name == SITES_JOB or REFRESH_TAG in run.tags or run.tags.get(PHASE_TAG) == "after_sites":
            return SkipReason("not a release run that commits itself")
        _, sites, after = release_phases(context.repository_def)
        graph = context.repository_def.asset_graph
        upstream = {p for k in sites for p in graph.get(k).parent_keys}
        materialized = _materialized(context, run.run_id)
        if not (materialized & upstream):
            return SkipReason(f"run {run.run_id} did not refresh the soil-water sites' inputs")
        release = run.tags.get("dagster/partition", "")
        declared = declared_sites(context.instance, graph, sites, release)
        if not declared:
            if set(after) <= materialized:
                return SkipReason(f"no soil-water site in {release}, and run {run.run_id} did what reads them")
            return [_after_sites(run.run_id, release, after)]
        partitions_def = graph.get(sites[0]).partitions_def
        return [
            RunRequest(
                job_name=SITES_JOB,
                run_key=f"{run.run_id}:{site}",
                partition_key=site_partition_key(partitions_def, release, site),
                tags={PARENT_TAG: run.run_id, RELEASE_TAG: release, PHASE_TAG: "sites"},
            )
            for site in declared
        ]

    def after_all_sites_sensor(status: DagsterRunStatus, name: str, description: str) -> Any:
        @run_status_sensor(
            run_status=status,
            name=name,
            request_jobs=jobs,
            minimum_interval_seconds=30,
            default_status=DefaultSensorStatus.STOPPED,
            description=description,
        )
        def _sensor(context: RunStatusSensorContext) -> RunRequest | SkipReason:
            return _after_all_sites(context)

        return _sensor

    return [
        soil_water_sites_after_release_run,
        after_all_sites_sensor(
            DagsterRunStatus.SUCCESS,
            "release_after_soil_water_sites",
            "When the last site partition run requested after a release run has ended (succeeded, or failed: its "
            "site keeps its earlier rows), requests the main job's assets that read the soil-water tables for that "
            "release, once.",
        ),
        after_all_sites_sensor(
            DagsterRunStatus.FAILURE,
            "release_after_failed_soil_water_site",
            "Like release_after_soil_water_sites, when the last site partition run to end failed.",
        ),
    ]


def _after_all_sites(context: RunStatusSensorContext) -> RunRequest | SkipReason:
    run = context.dagster_run
    parent = run.tags.get(PARENT_TAG)
    if run.job_name != SITES_JOB or parent is None:
        return SkipReason("not a site partition run requested after a release run")
    siblings = context.instance.get_runs(filters=RunsFilter(tags={PARENT_TAG: parent}, job_name=SITES_JOB))
    ended = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
    waiting = [r.run_id for r in siblings if r.status not in ended]
    if waiting:
        return SkipReason(f"{len(waiting)} site partition runs after run {parent} still going")
    after = release_phases(context.repository_def)[2]
    return _after_sites(parent, run.tags.get(RELEASE_TAG, ""), after)


def _after_sites(parent: str, release: str, after: list[AssetKey]) -> RunRequest:
    return RunRequest(
        job_name=MAIN_JOB,
        run_key=f"{parent}:after_sites",
        partition_key=release,
        asset_selection=after,
        tags={PARENT_TAG: parent, RELEASE_TAG: release, PHASE_TAG: "after_sites"},
    )
