"""NEON releases drive refreshes: a release sensor and a weekly PROVISIONAL schedule."""

import json
from pathlib import Path

from dagster import (
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    schedule,
    sensor,
)

from rootassets.defs.jobs import MAIN_JOB
from rootassets.defs.partitions import NEON_RELEASE_PARTITIONS, neon_release
from rootassets.defs.resources import NeonSourceResource, WarehouseResource
from rootassets.neon.errors import NeonError
from rootassets.neon.identifiers import RELEASE_PATTERN, InvalidIdentifierError, release_sort_key
from rootassets.warehouse import connect_read_only
from rootassets.warehouse.staging import committed_releases

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
    done = _committed(Path(warehouse.database))
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
    return SensorResult(
        run_requests=[RunRequest(run_key=tag, partition_key=tag, tags={"rootassets/release": tag}) for tag in new],
        dynamic_partitions_requests=[neon_release.build_add_request(to_add)] if to_add else [],
        cursor=cursor,
    )


def _committed(database: Path) -> set[str]:
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
        tags={GENERATION_TAG: generation, "rootassets/release": PROVISIONAL},
    )
