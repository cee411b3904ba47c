"""The refresh: plan, run, commit, discard and reap, whoever started it (the CLI, the UI, a sensor, the schedule).

A refresh is one Dagster run, or the runs of one `rootassets materialize`
tagged with the same `rootassets/refresh` id. Its tables are staged
(`rootassets.warehouse.staging`) and become visible together when it succeeds:
- a run started from the UI, a sensor or the schedule commits itself as its
  resources are torn down (`WarehouseResource`), or discards its staging when
  a step failed;
- a run that never got that far (killed, terminated) is discarded by the
  run-status sensors (`defs/visibility.py`) once Dagster marks it failed
  or canceled, and by `reap_dead_runs` when its process is gone;
- `rootassets materialize` runs `Refresh.run` and commits once every phase
  succeeded.

Every commit and discard is also told to Dagster: each asset the refresh
materialized gets a `visible_in_warehouse` check evaluation, passed when its
rows became visible, failed (with what the table still holds) when they were
discarded. So the UI never presents a materialization whose rows nobody can
see as the asset's good latest state, and the CLI treats such an asset as stale.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    RunsFilter,
)

from rootassets.science.workers import WORKERS_TAG, start_workers, worker_count
from rootassets.warehouse import Location, connect_read_only, connect_writable
from rootassets.warehouse.staging import (
    REFRESH_TAG,
    commit_refresh,
    committed,
    discard_refresh,
    staged_refreshes,
    unstage_site,
    validate_refresh,
)

PID_TAG, HOST_TAG, RELEASE_TAG = "rootassets/pid", "rootassets/host", "rootassets/release"
VISIBLE_CHECK = "visible_in_warehouse"
PROGRESS_POLL_S = 1.0  # how often `rootassets materialize` reads a run's events to say its progress
VISIBLE_CHECK_DESCRIPTION = (
    "Passes when the rows of this asset's latest materialization became visible in the DuckDB file (its "
    "refresh was committed); fails when they were discarded (a failed or killed run), saying what the "
    "table still holds. Reported by the refresh itself, at commit or discard."
)


class RefreshFailed(Exception):
    """A run of the refresh failed; nothing it staged was made visible."""

    def __init__(self, run_id: str, failures: list[tuple[str, str]]) -> None:
        super().__init__(f"run {run_id} failed")
        self.run_id, self.failures = run_id, failures


def refresh_of(run: DagsterRun) -> str:
    """The refresh a run belongs to: its `rootassets/refresh` tag, else the run itself."""
    return validate_refresh(run.tags.get(REFRESH_TAG, run.run_id))


def run_outcome(instance: DagsterInstance, run: DagsterRun) -> str:
    """ "succeeded" when every planned step succeeded, "failed" when one failed, else "unfinished"."""
    plan = (
        instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id) if run.execution_plan_snapshot_id else None
    )
    planned = set(plan.step_keys_to_execute) if plan is not None else set()
    records = instance.all_logs(run.run_id, of_type={DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE})
    succeeded = {r.dagster_event.step_key for r in records if r.dagster_event and r.dagster_event.is_step_success}
    if any(r.dagster_event and r.dagster_event.is_step_failure for r in records):
        return "failed"
    return "succeeded" if planned and planned <= succeeded else "unfinished"


def mark_worker(instance: DagsterInstance, run: DagsterRun) -> None:
    """Record on the run which process executes it, so that `reap_dead_runs` can tell when it was killed."""
    if run.tags.get(PID_TAG) != str(os.getpid()):
        instance.add_run_tags(run.run_id, {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()})


# --- commit and discard: the one path, whatever started the run -------------------------------------------


def commit(instance: DagsterInstance, database: Location, refresh_id: str) -> dict[str, int]:
    """Make everything `refresh_id` staged visible in one transaction, and report it on each asset."""
    if not database.exists():
        return {}
    with connect_writable(database) as con:  # another writer may hold the file for a while
        counts = commit_refresh(con, refresh_id)
    _report_visibility(instance, refresh_id, passed=True, counts=counts)
    return counts


def discard(instance: DagsterInstance, database: Location, refresh_id: str, reason: str) -> int:
    """Forget what `refresh_id` staged (the visible tables are untouched), and report it on each asset.

    Idempotent: a second discard of the same refresh (the CLI, then a sensor) finds nothing and reports nothing.
    """
    if not database.exists():
        return 0
    with connect_writable(database) as con:
        dropped = discard_refresh(con, refresh_id)
    if dropped:
        _report_visibility(instance, refresh_id, passed=False, reason=reason)
    return dropped


def finish_run(instance: DagsterInstance, run: DagsterRun, database: Location) -> str | None:
    """At the end of a run that commits itself: commit when every step succeeded, discard when one failed."""
    outcome = run_outcome(instance, run)
    refresh_id = refresh_of(run)
    if outcome == "succeeded":
        counts = commit(instance, database, refresh_id)
        return f"run succeeded: {len(counts)} staged tables made visible in one transaction"
    if outcome == "failed":
        dropped = discard(instance, database, refresh_id, f"run {run.run_id} failed")
        return f"run failed: {dropped} staged tables discarded; the visible tables are unchanged"
    return None


def discard_finished_run(instance: DagsterInstance, run: DagsterRun, database: Location) -> str:
    """A run Dagster marked failed or canceled: discard its refresh, unless its launcher (the CLI) is still
    running other runs of it, and free the concurrency slots a killed worker could not."""
    refresh_id = refresh_of(run)
    if REFRESH_TAG in run.tags and _launcher_alive(run):
        return f"run {run.run_id} belongs to refresh {refresh_id}, whose launcher is still running: left to it"
    what = "was canceled" if run.status == DagsterRunStatus.CANCELED else "failed"
    dropped = discard(instance, database, refresh_id, f"run {run.run_id} {what}")
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    return f"run {run.run_id} {what}: {dropped} staged tables discarded"


def reap_dead_runs(instance: DagsterInstance, database: Location) -> list[str]:
    """Mark runs whose process on this host is gone (killed) as failed, discard what they staged, and free
    their concurrency slots (a run killed mid-step still holds its `duckdb` pool slot)."""
    notes = []
    active = [
        DagsterRunStatus.STARTED,
        DagsterRunStatus.STARTING,
        DagsterRunStatus.NOT_STARTED,
        DagsterRunStatus.CANCELING,
    ]
    for run in instance.get_runs(filters=RunsFilter(statuses=active)):
        pid = run.tags.get(PID_TAG, "")
        if run.tags.get(HOST_TAG) != socket.gethostname() or not pid.isdigit() or _alive(int(pid)):
            continue
        instance.report_run_failed(run, f"the process {pid} running it is gone (killed?)")
        discard(instance, database, refresh_of(run), f"run {run.run_id} was killed (process {pid} is gone)")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        notes.append(
            f"run {run.run_id} had been killed (process {pid} is gone): marked failed, its staging "
            "discarded, its slots freed"
        )
    notes += _reap_orphaned_staging(instance, database, active)
    return notes


def _reap_orphaned_staging(instance: DagsterInstance, database: Location, active: list[DagsterRunStatus]) -> list[str]:
    """Discard the staging of refreshes nobody will commit: every run of theirs is over and the processes
    that ran them on this host are gone (e.g. `rootassets materialize` killed between two of its runs, after
    one run had staged its tables and before the commit)."""
    if not database.exists():
        return []
    with connect_read_only(database) as con:
        staged = staged_refreshes(con)
    notes = []
    for refresh_id in staged:
        runs = _runs_of(instance, refresh_id)
        own = instance.get_run_by_id(refresh_id)
        runs = runs + ([own] if own is not None and own not in runs else [])
        if not runs or any(r.status in active for r in runs) or any(_launcher_alive(r) for r in runs):
            continue
        if any(r.tags.get(HOST_TAG) != socket.gethostname() for r in runs):
            continue  # its processes ran on another machine: not ours to judge
        discard(instance, database, refresh_id, "its runs are over and their processes are gone (killed?)")
        notes.append(f"refresh {refresh_id} had been left staged by a killed process: its staging discarded")
    return notes


def _launcher_alive(run: DagsterRun) -> bool:
    pid = run.tags.get(PID_TAG, "")
    return run.tags.get(HOST_TAG) == socket.gethostname() and pid.isdigit() and _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _runs_of(instance: DagsterInstance, refresh_id: str) -> list[DagsterRun]:
    runs = list(instance.get_runs(filters=RunsFilter(tags={REFRESH_TAG: refresh_id})))
    own = instance.get_run_by_id(refresh_id)
    return runs + ([own] if own is not None and own not in runs else [])


def _materialized(instance: DagsterInstance, runs: Iterable[DagsterRun]) -> dict[AssetKey, tuple[str, str | None]]:
    """{asset: (run id, partition)} of every materialization of `runs` (the last one per asset)."""
    found: dict[AssetKey, tuple[str, str | None]] = {}
    for run in runs:
        for record in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
            event = record.dagster_event
            if event is not None and event.asset_key is not None:
                found[event.asset_key] = (run.run_id, event.partition)
    return found


def _report_visibility(
    instance: DagsterInstance, refresh_id: str, passed: bool, counts: dict[str, int] | None = None, reason: str = ""
) -> None:
    for key, (run_id, partition) in _materialized(instance, _runs_of(instance, refresh_id)).items():
        metadata: dict[str, Any] = {"refresh": refresh_id, "run": run_id, "release": partition or "none"}
        table = ".".join(key.path) if len(key.path) == 2 else None
        if passed:
            rows = (counts or {}).get(f"{partition}:{table}") if table else None
            metadata["visible_rows"] = rows if rows is not None else "no table of its own"
            description = "its rows are visible in the DuckDB file"
        else:
            metadata["reason"] = reason
            description = (
                f"its rows were never made visible ({reason}); the DuckDB file still holds the rows of "
                "the last committed refresh"
            )
        instance.report_runless_asset_event(
            AssetCheckEvaluation(
                asset_key=key,
                check_name=VISIBLE_CHECK,
                passed=passed,
                severity=AssetCheckSeverity.ERROR,
                description=description,
                metadata=metadata,
            )
        )


# --- planning: what is stale ----------------------------------------------------------------------------------


def freshness(instance: DagsterInstance, graph: Any) -> Any:
    """Dagster's stale-status resolver on `instance` (what the UI shows as "up to date")."""
    from rootassets.dagster_private import FreshnessResolver

    return FreshnessResolver(instance, graph)


def stale_or_missing(
    instance: DagsterInstance,
    graph: Any,
    keys: Sequence[AssetKey],
    release: str,
    database: Location,
    refresh_id: str,
    resolver: Any = None,
) -> list[AssetKey]:
    """The assets among `keys` whose code version or upstream data versions changed, never materialized,
    or last materialized by a refresh that was never committed (a failed or killed run). Pass the same
    `resolver` (from `freshness`) to reuse its cache while nothing was materialized between."""
    resolver = resolver or freshness(instance, graph)
    partitioned = {k for k in keys if graph.get(k).partitions_def is not None}
    stale = [k for k in keys if not resolver.is_fresh(k, release if k in partitioned else None)]
    uncommitted = uncommitted_assets(instance, [k for k in keys if k not in stale], release, database, refresh_id)
    return [k for k in keys if k in stale or k in uncommitted]


def with_downstream(graph: Any, stale: Sequence[AssetKey], among: Sequence[AssetKey]) -> list[AssetKey]:
    """`stale` and everything downstream of it among `among`, in `among`'s order: Dagster calls an asset stale
    only once its upstream was re-materialized, but one refresh must recompute the whole chain."""
    wanted, frontier = set(stale), list(stale)
    allowed = set(among)
    while frontier:
        for child in graph.get(frontier.pop()).child_keys:
            if child in allowed and child not in wanted:
                wanted.add(child)
                frontier.append(child)
    return [k for k in among if k in wanted]


def uncommitted_assets(
    instance: DagsterInstance, keys: Sequence[AssetKey], release: str, database: Location, refresh_id: str
) -> set[AssetKey]:
    """Keys whose latest materialization came from a refresh other than `refresh_id` that was never committed.

    Only when some finished run of this release belongs to an uncommitted refresh (a failed or killed
    run) are the keys' latest materializations looked up one by one.
    """
    if not database.exists() or not keys:
        return set()
    finished = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
    runs = instance.get_runs(filters=RunsFilter(tags={"dagster/partition": release}, statuses=finished))
    refreshes = sorted({refresh_of(run) for run in runs} - {refresh_id})
    with connect_read_only(database, attempts=600) as con:
        suspect = set(refreshes) - committed(con, refreshes)
    if not suspect:
        return set()
    found = set()
    for key in keys:
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=[release]), limit=1
        ).records
        if not records:
            records = instance.fetch_materializations(AssetRecordsFilter(asset_key=key), limit=1).records
        run = instance.get_run_by_id(records[0].run_id) if records else None
        if run is not None and refresh_of(run) in suspect:
            found.add(key)
    return found


# --- running a refresh from the CLI ---------------------------------------------------------------------------


@dataclass
class RefreshReport:
    """What a refresh did, for its launcher to print."""

    refresh_id: str
    materialized: list[str] = field(default_factory=list)
    observed: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    visible_tables: int = 0
    runs: list[str] = field(default_factory=list)
    failed_sites: dict[str, str] = field(default_factory=dict)  # site -> why its partition's run failed


@dataclass
class Refresh:
    """One refresh of `release`, run in this process: observe NEON, re-read what changed, recompute what
    became stale, commit once at the end.

    `keys` are the assets asked for; NEON's source assets upstream of them are observed first, so an
    unchanged source leaves its raw tables (and so everything downstream) up to date. `force` runs all
    of `keys` in one run. `say` receives one line per event worth printing.
    """

    instance: DagsterInstance
    defs: Any
    job_name: str
    database: Location
    release: str
    keys: list[AssetKey]
    force: bool = False
    say: Callable[[str], None] = print
    refresh_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    sites_job_name: str | None = None  # the job of the release x site partitions
    defs_module: str = "rootassets.definitions"  # where the site runs' processes find `defs`
    site_workers: int = 0  # site partitions run at once (0: one per core)

    def run(self) -> RefreshReport:
        report = RefreshReport(self.refresh_id)
        try:
            self._run_phases(report)
        except BaseException:
            discard(self.instance, self.database, self.refresh_id, "the rootassets materialize run failed")
            raise
        report.visible_tables = len(commit(self.instance, self.database, self.refresh_id))
        return report

    def _run_phases(self, report: RefreshReport) -> None:
        graph = self.defs.resolve_asset_graph()
        sources = sorted(
            {parent for key in self.keys for parent in graph.get(key).parent_keys if graph.get(parent).is_observable},
            key=str,
        )
        before, sites, after = split_at_site_partitions(graph, self.keys)
        pooled = {k for k in self.keys if WORKERS_TAG.items() <= graph.get(k).tags.items()}  # steps in worker processes
        if self.force:
            if pooled:
                start_workers()
            self._execute([*sources, *before], report)
            self._execute_sites(sites, report, force=True)
            if after:
                self._execute(after, report)
            return
        raw = [k for k in before if k.path[0] == "raw"]
        rest = [k for k in before if k.path[0] != "raw"]
        pending = list(sources)  # observed first: whether a raw table is stale depends on its source's observation
        for phase in (raw, rest, sites, after):  # each run changes what is stale downstream: resolve after it
            if phase is sites:
                self._execute(pending, report)
                pending = []
                self._execute_sites(sites, report)
                continue
            stale = self._stale(graph, phase)
            if pending and len(stale) < len(phase):  # the pending run may make more of this phase stale: run it
                self._execute(pending, report)
                pending = []
                stale = self._stale(graph, phase)
            if stale and (pooled & set(stale) or (phase is raw and pooled)):  # new sources: the pooled steps follow
                start_workers()  # in the background, while this phase's single-process steps run
            fresh = [k for k in phase if k not in stale]
            report.fresh += [k.to_user_string() for k in fresh]
            if fresh:
                self.say(
                    f"{len(fresh)} raw tables up to date (their NEON source is unchanged), not re-read"
                    if phase is raw
                    else f"{len(fresh)} assets up to date (same code and inputs), not recomputed"
                )
            pending += stale  # a phase stale as a whole cannot become staler: it joins the run before it
        self._execute(pending, report)

    def _stale(self, graph: Any, phase: list[AssetKey]) -> list[AssetKey]:
        """The assets of `phase` to recompute: stale or missing, and everything downstream of them in it."""
        return with_downstream(
            graph, stale_or_missing(self.instance, graph, phase, self.release, self.database, self.refresh_id), phase
        )

    def _execute_sites(self, keys: list[AssetKey], report: RefreshReport, force: bool = False) -> None:
        """Each site partition of the release (as the sites' upstream asset declared them) whose assets are
        stale or missing, in runs side by side (`site_workers` processes). A failed site is taken back out of
        the refresh: its earlier rows stay visible, the other sites are committed, and the report names it."""
        if not keys or self.sites_job_name is None:
            return
        graph = self.defs.resolve_asset_graph()
        partitions_def = graph.get(keys[0]).partitions_def
        resolver = None if force else freshness(self.instance, graph)
        declared = declared_sites(self.instance, graph, keys, self.release)
        wanted = []
        for site in declared:
            partition = site_partition_key(partitions_def, self.release, site)
            if resolver is None or not all(resolver.is_fresh(k, partition) for k in keys):
                wanted.append((site, partition))
        fresh = len(declared) - len(wanted)
        if fresh:
            self.say(f"{fresh} soil-water site partitions up to date (same code and inputs), not recomputed")
        if not wanted:
            return
        self.say(f"{len(wanted)} site partitions of {self.release}, {self.site_workers or 'one per core'} at a time")
        jobs = [
            SiteRun(self.defs_module, self.sites_job_name, partition, site, [k.path for k in keys], self._tags())
            for site, partition in wanted
        ]
        for done in run_site_partitions(jobs, self.site_workers):
            report.runs.append(done.run_id)
            report.materialized += done.materialized
            if done.failures:
                report.failed_sites[done.site] = "; ".join(f"{step}: {message}" for step, message in done.failures)
                tables = {(k.path[0], k.path[1]) for k in keys} | {("quarantine", k.path[1]) for k in keys}
                with connect_writable(self.database) as con:
                    unstage_site(con, self.refresh_id, self.release, done.site, tables)
                self.say(f"  site {done.site} FAILED (run {done.run_id}); its earlier rows stay visible")
            else:
                self.say(f"  site {done.site}: {len(done.materialized)} assets materialized (run {done.run_id})")

    def _tags(self) -> dict[str, str]:
        return {
            PID_TAG: str(os.getpid()),
            HOST_TAG: socket.gethostname(),
            RELEASE_TAG: self.release,
            REFRESH_TAG: self.refresh_id,
        }

    def _execute(self, keys: list[AssetKey], report: RefreshReport) -> None:
        """One run of `keys` (none: no run)."""
        if not keys:
            return
        job = self.defs.resolve_job_def(self.job_name)
        run_id = str(uuid.uuid4())  # known before the run starts, so its progress can be followed
        graph = self.defs.resolve_asset_graph()
        progress = RunProgress(self.instance, run_id, sum(1 for k in keys if not graph.get(k).is_observable), self.say)
        progress.start()
        try:
            result = job.execute_in_process(
                instance=self.instance,
                partition_key=self.release,
                asset_selection=keys,
                raise_on_error=False,
                run_id=run_id,
                run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
                tags=self._tags(),
            )
        finally:
            progress.finish()
        report.runs.append(result.run_id)
        materialized = [e.asset_key.to_user_string() for e in result.get_asset_materialization_events()]
        observed = [
            e.asset_key.to_user_string()
            for e in result.all_events
            if e.event_type == DagsterEventType.ASSET_OBSERVATION and e.asset_key is not None
        ]
        report.materialized += materialized
        report.observed += observed
        if not result.success:
            raise RefreshFailed(result.run_id, _failures(result))
        self.say(f"run {result.run_id} succeeded: {len(materialized)} assets for {self.release}")


class RunProgress(threading.Thread):
    """Says each asset a run observes or materializes as it happens (`[done/total] materialized <key>`), read
    from the run's events in the Dagster instance while the run executes in the foreground."""

    def __init__(self, instance: DagsterInstance, run_id: str, total: int, say: Callable[[str], None]) -> None:
        super().__init__(name=f"rootassets-progress-{run_id}", daemon=True)
        self.instance, self.run_id, self.total, self.say = instance, run_id, total, say
        self.done, self._cursor, self._finished = 0, None, threading.Event()

    def run(self) -> None:
        while not self._finished.wait(PROGRESS_POLL_S):
            self.poll()

    def finish(self) -> None:
        """Stop polling and say what the last poll has not said yet."""
        self._finished.set()
        self.join()
        self.poll()

    def poll(self) -> None:
        try:
            found = self.instance.get_records_for_run(
                self.run_id,
                cursor=self._cursor,
                of_type={DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.ASSET_OBSERVATION},
            )
        except Exception:  # noqa: BLE001 - the run is not in the instance yet; progress is best effort
            return
        for record in found.records:
            event = record.event_log_entry.dagster_event
            if event is None or event.asset_key is None:
                continue
            if event.event_type == DagsterEventType.ASSET_OBSERVATION:
                self.say(f"  observed {event.asset_key.to_user_string()}")
            else:
                self.done += 1
                self.say(f"  [{self.done}/{self.total}] materialized {event.asset_key.to_user_string()}")
        self._cursor = found.cursor


def _failures(result: Any) -> list[tuple[str, str]]:
    """(step, message) of each failed step, the user's exception rather than Dagster's wrapper."""
    out = []
    for event in (e for e in result.all_events if e.is_step_failure):
        error = event.step_failure_data.error
        while error is not None and error.cause is not None and "DagsterExecutionStepExecutionError" in error.cls_name:
            error = error.cause
        out.append((event.step_key, error.message.strip() if error else "unknown error"))
    return out


# --- release x site partitions ----------------------------------------------------------------------------------

SITE_PARTITIONS_METADATA = "site_partitions"  # metadata by which an asset declares its release's site partitions
RELEASE_PARTITIONS = "neon_release"  # the release dimension's partitions (rootassets.defs.partitions, a layer up)


def split_at_site_partitions(
    graph: Any, keys: Sequence[AssetKey]
) -> tuple[list[AssetKey], list[AssetKey], list[AssetKey]]:
    """`keys` in three phases: release assets the site partitions do not feed, the site-partitioned assets
    (multi-partitioned: release x site), and the release assets downstream of them."""
    sites = [k for k in keys if isinstance(graph.get(k).partitions_def, MultiPartitionsDefinition)]
    downstream: set[AssetKey] = set()
    frontier = list(sites)
    while frontier:
        for child in graph.get(frontier.pop()).child_keys:
            if child not in downstream:
                downstream.add(child)
                frontier.append(child)
    before = [k for k in keys if k not in sites and k not in downstream]
    after = [k for k in keys if k not in sites and k in downstream]
    return before, sites, after


def declared_sites(instance: DagsterInstance, graph: Any, keys: Sequence[AssetKey], release: str) -> list[str]:
    """The sites of `release` that the site assets' upstream declared (metadata `site_partitions` of its latest
    materialization of the release)."""
    sites: set[str] = set()
    for parent in sorted({p for k in keys for p in graph.get(k).parent_keys if p not in keys}, key=str):
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=parent, asset_partitions=[release]), limit=1
        ).records
        materialization = records[0].asset_materialization if records else None
        value = materialization.metadata.get(SITE_PARTITIONS_METADATA) if materialization else None
        if value is not None:
            sites |= set(value.value)
    return sorted(sites)


def site_partition_key(partitions_def: MultiPartitionsDefinition, release: str, site: str) -> str:
    """The partition key of `site` in `release`: the release dimension is the one of release partitions."""
    dimensions = {}
    for dimension in partitions_def.partitions_defs:
        is_release = getattr(dimension.partitions_def, "name", None) == RELEASE_PARTITIONS
        dimensions[dimension.name] = release if is_release else site
    return str(MultiPartitionKey(dimensions))


@dataclass(frozen=True)
class SiteRun:
    """One site partition's run, as a separate process executes it."""

    defs_module: str
    job_name: str
    partition: str
    site: str
    keys: list[list[str]]
    tags: dict[str, str]


@dataclass
class SiteRunResult:
    site: str
    run_id: str
    materialized: list[str]
    failures: list[tuple[str, str]]


def run_site_partitions(runs: list[SiteRun], workers: int = 0) -> Iterator[SiteRunResult]:
    """Execute `runs` in `workers` spawned processes (0: one per core), each run in process there; yield each
    result as it ends. A process that dies fails its site alone."""
    workers = worker_count(workers, len(runs))
    context = multiprocessing.get_context("spawn")  # the caller has threads, which a fork would copy mid-state
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {pool.submit(execute_site_run, run): run for run in runs}
        for future in as_completed(futures):
            run = futures[future]
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001 - the worker process died (killed, out of memory)
                yield SiteRunResult(run.site, "none", [], [(run.partition, f"its process failed: {exc}")])


def execute_site_run(run: SiteRun) -> SiteRunResult:
    """In a worker process: one site partition's run on the instance of DAGSTER_HOME."""
    defs = importlib.import_module(run.defs_module).defs
    job = defs.resolve_job_def(run.job_name)
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            partition_key=run.partition,
            asset_selection=[AssetKey(k) for k in run.keys],
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            tags=run.tags,  # the launcher's pid: it commits or takes back this run's rows
        )
    materialized = [e.asset_key.to_user_string() for e in result.get_asset_materialization_events()]
    return SiteRunResult(run.site, result.run_id, materialized, [] if result.success else _failures(result))
