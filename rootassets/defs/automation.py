"""NEON releases drive refreshes: a release sensor and a weekly PROVISIONAL schedule."""

import json

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
from rootassets.defs.resources import NeonSourceResource
from rootassets.neon.errors import NeonError
from rootassets.neon.identifiers import RELEASE_PATTERN, InvalidIdentifierError, release_sort_key

SENSOR_INTERVAL_S = 6 * 3600
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
    description="Polls NEON (/releases and /products for the platform's products) and, for each new release, "
    "adds its partition and requests one run of the whole graph (run key = release tag).",
)
def neon_release_sensor(context: SensorEvaluationContext, neon: NeonSourceResource) -> SensorResult | SkipReason:
    offered = _offered(neon)
    if isinstance(offered, SkipReason):
        return offered
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    new = sorted((t for t in offered if t != PROVISIONAL and t not in seen), key=release_sort_key)
    cursor = json.dumps({**seen, **offered}, sort_keys=True)
    if not new:
        return SensorResult(
            skip_reason=SkipReason(f"no new NEON release (seen: {', '.join(sorted(offered))})"), cursor=cursor
        )
    existing = set(context.instance.get_dynamic_partitions(NEON_RELEASE_PARTITIONS))
    to_add = [t for t in new if t not in existing]
    return SensorResult(
        run_requests=[RunRequest(run_key=tag, partition_key=tag, tags={"rootassets/release": tag}) for tag in new],
        dynamic_partitions_requests=[neon_release.build_add_request(to_add)] if to_add else [],
        cursor=cursor,
    )


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
