"""What the UI shows is what the tables hold: a visibility check on every asset, and the sensors that discard
the staging of failed and canceled runs (see `rootassets.refresh`)."""

from collections.abc import Iterable, Iterator

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    AssetsDefinition,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunStatusSensorContext,
    multi_asset_check,
    run_status_sensor,
)

from rootassets.defs.resources import WarehouseResource
from rootassets.refresh import VISIBLE_CHECK, VISIBLE_CHECK_DESCRIPTION, discard_finished_run, refresh_of
from rootassets.warehouse import Location, connect_read_only
from rootassets.warehouse.staging import committed

SENSOR_INTERVAL_S = 10


def visibility_check_keys(assets: Iterable[AssetsDefinition]) -> list[AssetCheckKey]:
    return sorted(
        (
            AssetCheckKey(key, VISIBLE_CHECK)
            for a in assets
            if isinstance(a, AssetsDefinition) and a.is_materializable
            for key in a.keys
        ),
        key=str,
    )


def visibility_checks(assets: Iterable[AssetsDefinition]):
    """One `visible_in_warehouse` check per materializable asset. The refresh reports its evaluations at
    commit and discard; executing it from the UI re-derives it from the instance and `meta.commits`."""
    keys = visibility_check_keys(assets)

    @multi_asset_check(
        name="visible_in_warehouse",
        specs=[AssetCheckSpec(VISIBLE_CHECK, asset=k.asset_key, description=VISIBLE_CHECK_DESCRIPTION) for k in keys],
        can_subset=True,
    )
    def _visible(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> Iterator[AssetCheckResult]:
        latest = {}  # asset -> (its latest materialization, the refresh that made it)
        refreshes: dict[str, str | None] = {}  # run -> its refresh: most assets share a run
        for check_key in context.selected_asset_check_keys:
            records = context.instance.fetch_materializations(
                AssetRecordsFilter(asset_key=check_key.asset_key), limit=1
            ).records
            if records and records[0].run_id not in refreshes:
                run = context.instance.get_run_by_id(records[0].run_id)
                refreshes[records[0].run_id] = refresh_of(run) if run else None
            latest[check_key.asset_key] = (records[0], refreshes[records[0].run_id]) if records else (None, None)
        visible = _committed(warehouse.location, sorted({r for _, r in latest.values() if r}))
        for key, (record, refresh) in latest.items():
            yield _evaluate(key, record, refresh, refresh in visible, warehouse.refresh_id)

    return _visible


def _committed(database: Location, refreshes: list[str]) -> set[str]:
    """Which of `refreshes` were committed, in one read of `meta.commits`."""
    if not refreshes or not database.exists():
        return set()
    with connect_read_only(database, attempts=600) as con:
        return committed(con, refreshes)


def _evaluate(
    key: AssetKey, record: object, refresh: str | None, visible: bool, own_refresh: str | None
) -> AssetCheckResult:
    if record is None:
        return AssetCheckResult(
            asset_key=key,
            check_name=VISIBLE_CHECK,
            passed=False,
            severity=AssetCheckSeverity.WARN,
            description="never materialized",
        )
    metadata = {"run": record.run_id, "refresh": refresh or "none", "release": record.partition_key or "none"}
    if refresh is not None and refresh == own_refresh:
        return AssetCheckResult(
            asset_key=key,
            check_name=VISIBLE_CHECK,
            passed=False,
            metadata=metadata,
            severity=AssetCheckSeverity.WARN,
            description="staged by this run: visible when the run succeeds",
        )
    return AssetCheckResult(
        asset_key=key,
        check_name=VISIBLE_CHECK,
        passed=visible,
        metadata=metadata,
        severity=AssetCheckSeverity.ERROR,
        description="its rows are visible in the DuckDB file"
        if visible
        else "its refresh was never committed: the DuckDB file holds earlier rows",
    )


def _discard(context: RunStatusSensorContext, warehouse: WarehouseResource) -> None:
    context.log.info(discard_finished_run(context.instance, context.dagster_run, warehouse.location))


@run_status_sensor(
    run_status=DagsterRunStatus.FAILURE,
    name="discard_failed_runs",
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description="Discards what a failed run staged (also a killed one, once Dagster marks it failed), frees its "
    "concurrency slots, and fails the visible_in_warehouse check of each asset it materialized.",
)
def discard_failed_runs(context: RunStatusSensorContext, warehouse: WarehouseResource) -> None:
    _discard(context, warehouse)


@run_status_sensor(
    run_status=DagsterRunStatus.CANCELED,
    name="discard_canceled_runs",
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description="Discards what a canceled (terminated) run staged, like discard_failed_runs.",
)
def discard_canceled_runs(context: RunStatusSensorContext, warehouse: WarehouseResource) -> None:
    _discard(context, warehouse)


refresh_sensors = [discard_failed_runs, discard_canceled_runs]
