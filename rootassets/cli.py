"""The `rootassets` command line: materialize, sql, mirror, ui."""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

from rootassets.settings import Settings
from rootassets.staging import REFRESH_TAG


class CliError(Exception):
    """A failure to report to the user in one line, with exit code 1."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except CliError as exc:
        print(f"rootassets: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rootassets",
        description="NEON megapit root-bimodality assets: materialize, query, mirror.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("materialize", help="run the main job for one NEON release in the persistent instance")
    p.add_argument("--release", default="latest", help="NEON release tag (RELEASE-2021, PROVISIONAL) or 'latest'")
    p.add_argument("--select", default=None, help="Dagster asset selection, e.g. 'key:raw/*' (default: all)")
    p.add_argument("--force", action="store_true",
                   help="recompute every selected asset, even those up to date (same code and inputs)")
    p.set_defaults(handler=_materialize)

    p = sub.add_parser("releases", help="list NEON's releases and the instance's release partitions; add partitions")
    p.add_argument("--add", action="append", default=[], metavar="TAG",
                   help="add the release partition TAG (e.g. RELEASE-2021) to the persistent instance, so that "
                        "`dg launch --partition TAG` and the UI can run it; repeatable")
    p.set_defaults(handler=_releases)

    p = sub.add_parser("sql", help="run a read-only SQL query against the DuckDB file")
    p.add_argument("query")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="print a header line, then rows, as CSV")
    fmt.add_argument("--json", action="store_true", help="print rows as a JSON array of objects")
    p.set_defaults(handler=_sql)

    p = sub.add_parser("mirror", help="serve snapshot folders as the NEON Data API on 127.0.0.1")
    p.add_argument("--snapshot", required=True,
                   help="snapshot folder(s) (layout of ../shared/neon-snapshot), several joined with ':'")
    p.add_argument("--port", type=int, default=8765, help="port of the API origin")
    p.add_argument("--storage-port", type=int, default=0,
                   help="port of the storage origin serving the signed file URLs (default: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (loopback only)")
    p.add_argument("--no-token-required", action="store_true",
                   help="answer /data* without an API token (NEON requires one since June 2026)")
    p.add_argument("--url-ttl", type=int, default=7 * 24 * 3600, help="validity of signed file URLs, seconds")
    p.add_argument("--fault", action="append", default=[], metavar="KIND=COUNT",
                   help="inject a fault into the next COUNT requests (-1: always); kinds: rate_limit "
                        "(X-RateLimit-Reset 100, RetryAfter 1), server_error, drop, truncate, bad_checksum, slow, "
                        "malformed_json, hostile_ids, expired_url, expired_token")
    p.add_argument("--fault-scope", choices=("all", "json", "files"), default="all",
                   help="json: API answers only; files: storage downloads only")
    p.set_defaults(handler=_mirror)

    p = sub.add_parser("ui", help="start the Dagster UI on the persistent instance (dagster dev)")
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--host", default="127.0.0.1")
    p.set_defaults(handler=_ui)
    return parser


def _materialize(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    from rootassets.neon.api_source import ApiSource
    from rootassets.neon.errors import NeonError
    from rootassets.neon.identifiers import InvalidIdentifierError, validate_release
    from rootassets.neon.open import latest_release, open_source
    from rootassets.neon.tokens import require_token

    try:
        source = open_source(settings.snapshot, settings.api_url, settings.downloads)
        if isinstance(source, ApiSource):
            require_token()  # NEON needs it for every download: refuse before anything is written
        release = latest_release(source) if args.release == "latest" else validate_release(args.release)
    except (NeonError, InvalidIdentifierError, LookupError) as exc:
        raise CliError(str(exc)) from exc
    os.environ["DAGSTER_HOME"] = str(settings.ensure_dagster_home())
    from dagster import AssetSelection, DagsterInstance

    from rootassets.definitions import MAIN_JOB, defs
    from rootassets.defs.partitions import NEON_RELEASE_PARTITIONS
    from rootassets.defs.jobs import OPTIONAL

    graph = defs.resolve_asset_graph()
    selection = AssetSelection.all() - OPTIONAL  # optional assets run only when --select names them
    if args.select:
        try:
            selection = AssetSelection.from_string(args.select)
            selected = selection.resolve(graph)
        except Exception as exc:  # dagster raises several types for a bad selection string
            raise CliError(f"invalid --select {args.select!r}: {exc}") from exc
        if not selected:
            raise CliError(f"--select {args.select!r} matches no asset")
    asset_keys = sorted(selection.resolve(graph), key=str)

    with DagsterInstance.get() as instance:
        for note in reap_dead_runs(instance, settings):
            print(f"rootassets: {note}", file=sys.stderr)
        if not instance.has_dynamic_partition(NEON_RELEASE_PARTITIONS, release):
            instance.add_dynamic_partitions(NEON_RELEASE_PARTITIONS, [release])
        print(f"rootassets: materializing {release} from {source.describe()} into {settings.database}")
        job = defs.resolve_job_def(MAIN_JOB)
        raw = [k for k in asset_keys if k.path[0] == "raw"]
        rest = [k for k in asset_keys if k.path[0] != "raw"]
        phases = [raw, rest] if raw and rest and not args.force else [asset_keys]
        refresh = str(uuid.uuid4())  # every phase stages under it; committed once all succeeded
        resolver = stale_status_resolver(instance, graph)  # valid until something is materialized
        if len(phases) == 2 and raw_unchanged(instance, graph, raw, release, settings, source, refresh, resolver):
            print(f"rootassets: {len(raw)} raw tables up to date (their source files are unchanged), not re-read")
            phases = [[], rest]
        total = 0
        try:
            for index, keys in enumerate(phases):
                if index == 0 and not keys:
                    continue
                if index == 0:
                    resolver = None  # the raw run changes what is stale
                if index == 1:  # raw tables were re-read: run only what their data versions made stale
                    stale = stale_or_missing(instance, graph, keys, release, settings, refresh, resolver)
                    keys = with_unsplittable_siblings(defs, stale)
                    fresh = len(rest) - len(keys)
                    if fresh:
                        print(f"rootassets: {fresh} assets up to date (same code and inputs), not recomputed")
                    if not keys:
                        break
                total += _execute(job, instance, release, keys, settings, refresh)
        except BaseException:
            _finish_refresh(settings, refresh, commit=False)
            raise
        visible = _finish_refresh(settings, refresh, commit=True)
        print(f"rootassets: {release} done: {total} assets materialized; {visible} tables made visible at once")
    return 0


def _releases(args: argparse.Namespace) -> int:
    """List the source's releases beside the instance's partitions; add the partitions asked for."""
    settings = Settings.from_env()
    from rootassets.neon.errors import NeonError
    from rootassets.neon.identifiers import InvalidIdentifierError, validate_release
    from rootassets.neon.open import open_source

    try:
        wanted = [validate_release(tag) for tag in args.add]
        source = open_source(settings.snapshot, settings.api_url, settings.downloads)
        offered = source.release_info()
    except (NeonError, InvalidIdentifierError) as exc:
        raise CliError(str(exc)) from exc
    missing = [tag for tag in wanted if tag not in offered]
    if missing:
        raise CliError(f"{', '.join(missing)} not offered by {source.describe()} (it offers "
                       f"{', '.join(offered) or 'no release with every product'})")
    os.environ["DAGSTER_HOME"] = str(settings.ensure_dagster_home())
    from dagster import DagsterInstance

    from rootassets.defs.partitions import NEON_RELEASE_PARTITIONS

    with DagsterInstance.get() as instance:
        new = [tag for tag in wanted if not instance.has_dynamic_partition(NEON_RELEASE_PARTITIONS, tag)]
        if new:
            instance.add_dynamic_partitions(NEON_RELEASE_PARTITIONS, new)
        partitions = set(instance.get_dynamic_partitions(NEON_RELEASE_PARTITIONS))
    for tag in new:
        print(f"rootassets: added the release partition {tag} to {settings.dagster_home}")
    from tabulate import tabulate

    rows = [(tag, offered.get(tag, "-"), "yes" if tag in offered else "no", "yes" if tag in partitions else "no")
            for tag in sorted(set(offered) | partitions)]
    print(f"releases of {source.describe()} and partitions of {settings.dagster_home}:")
    print(tabulate(rows, headers=["release", "generated", "offered", "partition"], tablefmt="simple"))
    return 0


def _finish_refresh(settings: Settings, refresh: str, commit: bool) -> int:
    """Commit (all staged tables become visible in one transaction) or discard a refresh."""
    from rootassets.staging import commit_refresh, discard_refresh
    from rootassets.warehouse import connect_writable

    if not settings.database.exists():
        return 0
    with connect_writable(settings.database) as con:  # another writer may hold the file for a while
        return len(commit_refresh(con, refresh)) if commit else discard_refresh(con, refresh)


def _execute(job: Any, instance: Any, release: str, keys: list, settings: Settings, refresh: str) -> int:
    result = job.execute_in_process(
        instance=instance,
        partition_key=release,
        asset_selection=keys,
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        tags={PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(), "rootassets/release": release,
              REFRESH_TAG: refresh},
    )
    materialized = [e.asset_key.to_user_string() for e in result.get_asset_materialization_events()]
    for key in materialized:
        print(f"  materialized {key}")
    if not result.success:
        for event in (e for e in result.all_events if e.is_step_failure):
            error = event.step_failure_data.error
            while error is not None and error.cause is not None and "DagsterExecutionStepExecutionError" in error.cls_name:
                error = error.cause
            message = error.message.strip() if error else "unknown error"
            print(f"  FAILED {event.step_key}: {message}", file=sys.stderr)
        raise CliError(f"run {result.run_id} failed; nothing it computed was made visible, and the earlier "
                       f"results in {settings.database} are unchanged")
    print(f"rootassets: run {result.run_id} succeeded: {len(materialized)} assets for {release}")
    return len(materialized)


def with_unsplittable_siblings(defs: Any, keys: list) -> list:
    """Add the other keys of each multi-asset that cannot run a subset of its assets
    (a run killed between two of them leaves only one stale)."""
    wanted = set(keys)
    for key in keys:
        assets_def = defs.resolve_assets_def(key)
        if not assets_def.can_subset:
            wanted |= set(assets_def.keys)
    return sorted(wanted, key=str)


def stale_or_missing(instance: Any, graph: Any, keys: list, release: str, settings: Settings, refresh: str,
                     resolver: Any = None) -> list:
    """The assets among `keys` whose code version or upstream data versions changed, never materialized,
    or last materialized by a refresh that was never committed (a failed or killed run). Pass the same
    `resolver` (from `stale_status_resolver`) to reuse its cache while nothing was materialized between."""
    resolver = resolver or stale_status_resolver(instance, graph)
    partitioned = {k for k in keys if graph.get(k).partitions_def is not None}
    stale = [k for k in keys if not resolver.is_fresh(k, release if k in partitioned else None)]
    uncommitted = uncommitted_assets(instance, [k for k in keys if k not in stale], release, settings, refresh)
    return [k for k in keys if k in stale or k in uncommitted]


def stale_status_resolver(instance: Any, graph: Any) -> Any:
    """Dagster's caching stale-status resolver on `instance` (what the UI uses to show "up to date")."""
    from rootassets.dagster_private import FreshnessResolver

    return FreshnessResolver(instance, graph)


def raw_unchanged(instance: Any, graph: Any, keys: list, release: str, settings: Settings, source: Any,
                  refresh: str, resolver: Any = None) -> bool:
    """True when every raw key is up to date in Dagster's eyes and committed, and its source files'
    fingerprint equals the one its last materialization recorded (so re-reading them changes nothing)."""
    from dagster import AssetRecordsFilter

    from rootassets.neon.fingerprints import raw_fingerprints

    if stale_or_missing(instance, graph, keys, release, settings, refresh, resolver):
        return False
    current = raw_fingerprints(source, settings.site_attributes, settings.soil_water, release)
    for key in keys:
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=[release]), limit=1).records
        if not records or current.get(key.path[-1]) is None:
            return False
        recorded = records[0].asset_materialization.metadata.get("source_fingerprint")
        if recorded is None or recorded.value != current[key.path[-1]]:
            return False
    return True


def uncommitted_assets(instance: Any, keys: list, release: str, settings: Settings, refresh: str) -> set:
    """Keys whose latest materialization came from a refresh other than `refresh` that was never committed.

    Only when some finished run of this release belongs to an uncommitted refresh (a failed or killed
    run) are the keys' latest materializations looked up one by one.
    """
    from dagster import AssetRecordsFilter, DagsterRunStatus, RunsFilter

    from rootassets.staging import committed
    from rootassets.warehouse import connect_read_only

    if not settings.database.exists():
        return set()
    finished = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
    runs = instance.get_runs(filters=RunsFilter(tags={"dagster/partition": release}, statuses=finished))
    refreshes = sorted({run.tags.get(REFRESH_TAG, run.run_id) for run in runs} - {refresh})
    with connect_read_only(settings.database, attempts=600) as con:
        suspect = set(refreshes) - committed(con, refreshes)
    if not suspect:
        return set()
    found = set()
    for key in keys:
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=[release]), limit=1).records
        if not records:
            records = instance.fetch_materializations(AssetRecordsFilter(asset_key=key), limit=1).records
        run = instance.get_run_by_id(records[0].run_id) if records else None
        if run is not None and run.tags.get(REFRESH_TAG, run.run_id) in suspect:
            found.add(key)
    return found


PID_TAG, HOST_TAG = "rootassets/pid", "rootassets/host"


def reap_dead_runs(instance: Any, settings: Settings) -> list[str]:
    """Mark CLI runs whose process is gone (killed) as failed, discard what they staged, and free
    their concurrency slots.

    A run killed mid-step still holds its `duckdb` pool slot in the instance;
    without this the next run would wait for it forever.
    """
    from dagster import DagsterRunStatus, RunsFilter

    notes = []
    active = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.NOT_STARTED]
    for run in instance.get_runs(filters=RunsFilter(statuses=active)):
        pid = run.tags.get(PID_TAG, "")
        if run.tags.get(HOST_TAG) != socket.gethostname() or not pid.isdigit() or _alive(int(pid)):
            continue
        instance.report_run_failed(run, f"the rootassets process {pid} running it is gone (killed?)")
        _finish_refresh(settings, run.tags.get(REFRESH_TAG, run.run_id), commit=False)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        notes.append(f"run {run.run_id} had been killed (process {pid} is gone): marked failed, its slots freed")
    return notes


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sql(args: argparse.Namespace) -> int:
    import duckdb

    from rootassets.warehouse import WarehouseBusyError, connect_read_only

    settings = Settings.from_env()
    try:
        con = connect_read_only(settings.database, on_wait=lambda m: print(f"rootassets: {m}", file=sys.stderr))
    except (FileNotFoundError, WarehouseBusyError) as exc:
        raise CliError(str(exc)) from exc
    try:
        cursor = con.execute(args.query)
        columns = [d[0] for d in cursor.description or []]
        rows = cursor.fetchall()
    except duckdb.Error as exc:
        raise CliError(f"query failed: {exc}") from exc
    finally:
        con.close()
    _print_rows(columns, rows, "csv" if args.csv else "json" if args.json else "table")
    return 0


def _print_rows(columns: list[str], rows: list[tuple[Any, ...]], fmt: str) -> None:
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    elif fmt == "json":
        print(json.dumps([dict(zip(columns, row)) for row in rows], default=str, indent=1))
    else:
        from tabulate import tabulate

        print(tabulate(rows, headers=columns, tablefmt="simple"))


def _mirror(args: argparse.Namespace) -> int:
    from rootassets.neon.errors import NeonError
    from rootassets.neon.mirror import FAULT_KINDS, FaultPlan, MirrorServer

    counts: dict[str, int] = {}
    for spec in args.fault:
        kind, _, count = spec.partition("=")
        if kind not in FAULT_KINDS or not count.lstrip("-").isdigit():
            raise CliError(f"bad --fault {spec!r}: expected KIND=COUNT with KIND in {', '.join(FAULT_KINDS)}")
        counts[kind] = int(count)
    try:
        server = MirrorServer(args.snapshot, host=args.host, port=args.port, storage_port=args.storage_port,
                              faults=FaultPlan(counts=counts, scope=args.fault_scope),
                              require_token=not args.no_token_required, url_ttl_s=args.url_ttl,
                              access_log=lambda line: print(f"mirror: {line}", file=sys.stderr, flush=True))
    except (NeonError, OSError, ValueError) as exc:
        raise CliError(f"cannot start the mirror: {exc}") from exc
    from rootassets.neon.tokens import unsigned_token

    print(f"rootassets: NEON mirror of {args.snapshot} at {server.base_url}, files at {server.storage_url} "
          f"(Ctrl-C to stop)", flush=True)
    if server.require_token:
        print("rootassets: /data* needs a token; this mirror accepts any unexpired JWT-shaped token, e.g.\n"
              f"  export NEON_TOKEN={unsigned_token(time.time() + 30 * 86400)}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _ui(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    env = {**os.environ, "DAGSTER_HOME": str(settings.ensure_dagster_home())}
    command = ["dagster", "dev", "-w", "workspace.yaml", "-h", args.host, "-p", str(args.port)]
    print(f"rootassets: {' '.join(command)} with DAGSTER_HOME={env['DAGSTER_HOME']}", flush=True)
    os.execvpe(command[0], command, env)
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
