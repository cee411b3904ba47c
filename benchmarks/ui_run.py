"""Goal 5 of BENCHMARKS.md: a run launched from the UI against the CLI's, for the same work.

The UI side is what a user gets from `rootassets ui`: the webserver and daemon (`dg dev`) on a
fresh ROOTASSETS_HOME, the release partition added as the README says (`rootassets releases
--add`), then one run of `main_job` for that partition submitted through the webserver's GraphQL
API (what the "Materialize all" button of the job's page sends). The webserver's run launcher
starts it in a run worker process of its own, which loads the definitions, runs the steps and
commits the run's tables when it succeeds. Timed: from the submission to the run's success as the
API reports it (its tables are visible by then), and the run's own start-to-end time from the
instance, which excludes the launcher's queueing and the worker's start. While it runs, the CPU of
every process under `rootassets ui` is sampled (/proc): the processes started after the submission
are the run's (its worker, the worker pool), the others the UI's services (webserver, daemon, code
servers), whose work competes with the run's for the machine's cores.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
LOCATION = "rootassets"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_location(base: str, timeout_s: float = 300) -> None:
    """Until the webserver answers and has loaded the code location (or fail with what it said)."""
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name locationOrLoadError { __typename } } } } }"
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            answer = httpx.post(f"{base}/graphql", json={"query": query}, timeout=5).json()
            entries = answer["data"]["workspaceOrError"]["locationEntries"]
            kinds = {e["name"]: (e["locationOrLoadError"] or {}).get("__typename") for e in entries}
            if kinds.get(LOCATION) == "RepositoryLocation":
                return
            last = str(kinds)
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            last = repr(exc)
        time.sleep(1)
    raise SystemExit(f"the UI did not load the {LOCATION} code location in {timeout_s:.0f} s: {last}")


def process_tree_stats(root: int) -> dict[int, tuple[float, int]]:
    """CPU seconds so far (user + system) and resident memory (kB) of `root` and every process below it, by pid
    (/proc/<pid>/stat; its resident pages are what /proc/<pid>/status calls VmRSS)."""
    parent_of: dict[int, int] = {}
    stats: dict[int, tuple[float, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        pid = int(entry.name)
        parent_of[pid] = int(fields[1])
        stats[pid] = ((int(fields[11]) + int(fields[12])) / CLOCK_TICKS, int(fields[21]) * PAGE_KB)  # utime, stime; rss
    tree, frontier = {root}, {root}
    while frontier:
        frontier = {pid for pid, parent in parent_of.items() if parent in frontier} - tree
        tree |= frontier
    return {pid: stats[pid] for pid in tree if pid in stats}


def process_cpu(root: int) -> dict[int, float]:
    """CPU seconds so far (user + system) of `root` and every process below it, by pid."""
    return {pid: cpu for pid, (cpu, _) in process_tree_stats(root).items()}


def split_cpu(at_submission: dict[int, float], last_seen: dict[int, float]) -> tuple[float, float]:
    """CPU seconds since the submission: of the processes started after it (the run's), and of those already
    running (the UI's services)."""
    run = sum(cpu for pid, cpu in last_seen.items() if pid not in at_submission)
    services = sum(last_seen.get(pid, cpu) - cpu for pid, cpu in at_submission.items())
    return run, services


def ui_run(home: Path, snapshot: Path, release: str) -> dict[str, float]:
    """Start `rootassets ui` on `home`, launch main_job for `release` through its GraphQL API, time it."""
    from dagster import DagsterInstance
    from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

    env = {
        **os.environ,
        "ROOTASSETS_HOME": str(home),
        "ROOTASSETS_SNAPSHOT": str(snapshot),
        "DAGSTER_HOME": str(home / "dagster"),
    }
    cli = [sys.executable, "-m", "rootassets.cli"]
    subprocess.run([*cli, "releases", "--add", release], env=env, cwd=REPO, check=True, capture_output=True)
    port, files_port = _free_port(), _free_port()
    log = (home / "ui.log").open("w")
    server = subprocess.Popen(
        [*cli, "ui", "--port", str(port), "--files-port", str(files_port)],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_for_location(f"http://127.0.0.1:{port}")
        client = DagsterGraphQLClient("127.0.0.1", port_number=port)
        at_submission = process_cpu(server.pid)
        last_seen = dict(at_submission)
        start = time.perf_counter()
        run_id = client.submit_job_execution("main_job", LOCATION, tags={"dagster/partition": release})
        while True:
            last_seen.update(process_cpu(server.pid))  # every 0.5 s: a process that ends keeps its last sample
            try:
                status = client.get_run_status(run_id).value
            except DagsterGraphQLClientError:
                status = "UNKNOWN"
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                break
            time.sleep(0.5)
        wall = time.perf_counter() - start
        run_cpu, services_cpu = split_cpu(at_submission, last_seen)
        if status != "SUCCESS":
            raise SystemExit(f"the UI's run {run_id} ended {status}; see {home / 'ui.log'}")
        os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
        instance = DagsterInstance.get()
        stats = instance.get_run_stats(run_id)
        steps = instance.get_run_step_stats(run_id)
        return {
            "wall": wall,
            "run": (stats.end_time or 0) - (stats.start_time or 0),
            "steps": sum((s.end_time or 0) - (s.start_time or 0) for s in steps),
            "step_count": len(steps),
            "run_cpu": run_cpu,
            "services_cpu": services_cpu,
        }
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def cli_step_seconds(home: Path) -> dict[str, float]:
    """The CLI refresh's runs in `home`'s instance: their summed start-to-end and step seconds."""
    from dagster import DagsterInstance

    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    instance = DagsterInstance.get()
    runs = instance.get_runs()
    run_s = step_s = 0.0
    steps = 0
    for run in runs:
        stats = instance.get_run_stats(run.run_id)
        run_s += (stats.end_time or 0) - (stats.start_time or 0)
        for s in instance.get_run_step_stats(run.run_id):
            step_s += (s.end_time or 0) - (s.start_time or 0)
            steps += 1
    return {"runs": len(runs), "run": run_s, "steps": step_s, "step_count": steps}
