"""#21's acceptance run: soil-water site partitions side by side on a DuckLake, against one at a time on the file.

`.venv/bin/python benchmarks/lake_sites.py [--sites 8] [--months 12] [--kill]` starts its own PostgreSQL
(Debian's server, a temporary directory, a free port of 127.0.0.1), writes SYNTHETIC NEON-format soil water
for the first N megapit sites of the snapshot, and then:

1. lake: `rootassets materialize` on a DuckLake in that PostgreSQL, with Dagster's instance there too;
2. file: the same on the DuckDB file (the default backend);
3. each home's N site partitions run again as N independent runs of `soil_water_sites_job` (`dg launch`), each
   committing its own site when it succeeds, as a sensor- or UI-launched run does: on the lake all at once (one process
   each) while a `rootassets sql` reader polls; on the file one at a time (its writers take turns anyway);
   with --kill, one lake run is killed (SIGKILL) at a random point of its run;
4. the soil-water tables of both homes are compared (rows and checksum), and the runs' commits listed.

It prints one JSON document; BENCHMARKS.md's "Soil-water site partitions on a DuckLake" section quotes it.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = (REPO / ".." / "shared" / "neon-snapshot").resolve()
RELEASE = "RELEASE-2021"
SITES_JOB = "soil_water_sites_job"  # rootassets.defs.jobs.SITES_JOB (benchmarks import no Dagster wrapper)
COMPARED = ["analysis.soil_water_phi_series", "analysis.soil_water_quality", "analysis.soil_water_statistics"]


def _cli(env: dict[str, str], *args: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rootassets.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _site_run(env: dict[str, str], partition: str) -> subprocess.Popen:
    """One site partition's run that commits itself, as a user starts it: `dg launch` (README, "The Dagster UI")."""
    command = [str(Path(sys.executable).with_name("dg")), "launch", "--job", SITES_JOB, "--partition", partition]
    return subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _partitions(env: dict[str, str], sites: list[str]) -> dict[str, str]:
    """{site: its release x site partition key}, as the refresh builds it."""
    script = (
        "import json, sys; from rootassets.definitions import defs; from rootassets.refresh import site_partition_key; "
        "from dagster import AssetKey; g = defs.resolve_asset_graph(); "
        "p = g.get(AssetKey(['analysis', 'soil_water_phi_series'])).partitions_def; "
        f"print(json.dumps({{s: site_partition_key(p, {RELEASE!r}, s) for s in {sites!r}}}))"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_sites(env: dict[str, str], partitions: dict[str, str], at_once: bool, kill: str | None = None) -> dict:
    """Each site's run in its own process, all at once or one at a time; `kill`: the site whose run is killed."""
    start = time.perf_counter()
    codes: dict[str, int | None] = {}
    killed_after = None
    if at_once:
        processes = {site: _site_run(env, partition) for site, partition in partitions.items()}
        if kill:  # once its run has staged a table (mid-run: written, not committed), after a random extra wait
            deadline = time.perf_counter() + 300
            while processes[kill].poll() is None and not _staged_by(env, partitions[kill]):
                if time.perf_counter() > deadline:
                    break
                time.sleep(0.5)
            time.sleep(random.uniform(0.0, 1.0))
            killed_after = time.perf_counter() - start
            if processes[kill].poll() is None:
                processes[kill].send_signal(signal.SIGKILL)
        for site, process in processes.items():
            codes[site] = process.wait()
    else:
        for site, partition in partitions.items():
            codes[site] = _site_run(env, partition).wait()
    return {"wall": time.perf_counter() - start, "exit_codes": codes, "killed_after_s": killed_after}


def _staged_by(env: dict[str, str], partition: str) -> int:
    """How many tables the run of `partition` has staged so far (0 before its run exists)."""
    script = (
        "import sys; from dagster import DagsterInstance, RunsFilter; i = DagsterInstance.get(); "
        f"runs = i.get_runs(filters=RunsFilter(tags={{'dagster/partition': {partition!r}}}), limit=1); "
        "print(runs[0].run_id if runs and not runs[0].is_finished else '')"
    )
    run = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True)
    run_id = run.stdout.strip()
    if not run_id:
        return 0
    done = _cli(env, "sql", "--csv", f"select count(*) from meta.staged_tables where refresh_id = '{run_id}'")
    lines = done.stdout.strip().splitlines()
    return int(lines[-1]) if done.returncode == 0 and lines[-1].isdigit() else 0


class Reader(threading.Thread):
    """`rootassets sql` reading the phi series over and over while runs commit: every read must succeed."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.env, self.stop, self.reads = env, threading.Event(), []

    def run(self) -> None:
        while not self.stop.is_set():
            done = _cli(
                self.env,
                "sql",
                "--csv",
                "select count(*) as n, count(distinct site_id) as sites from analysis.soil_water_phi_series",
                timeout=300,
            )
            self.reads.append((done.returncode, done.stdout.strip().splitlines()[-1:], done.stderr[-300:]))


def checksums(env: dict[str, str]) -> dict[str, str]:
    query = " union all ".join(
        f"select '{t}' as name, count(*)::varchar || ' ' || coalesce(sum(hash(x)::hugeint), 0)::varchar as sums "
        f"from {t} x"
        for t in COMPARED
    )
    done = _cli(env, "sql", "--csv", query)
    return dict(line.split(",", 1) for line in done.stdout.strip().splitlines()[1:])


def commits(env: dict[str, str]) -> list[str]:
    done = _cli(env, "sql", "--csv", "select refresh_id, count(*) from meta.commits group by 1 order by 1")
    return done.stdout.strip().splitlines()[1:]


def main() -> None:
    import argparse

    sys.path.insert(0, str(REPO))  # the test suite's PostgreSQL fixture, used here as a plain context manager
    from rootassets.synthetic.soil_water import generate, month_range
    from rootassets_tests.postgres import running_postgres

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=8)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--kill", action="store_true", help="kill one lake site run at a random point")
    args = parser.parse_args()
    with (SNAPSHOT / RELEASE / "DP1.00096.001" / "mgp_permegapit.csv").open(encoding="utf-8-sig") as f:
        sites = sorted({(r["siteID"], r["domainID"]) for r in csv.DictReader(f)})[: args.sites]
    work = Path(tempfile.mkdtemp(prefix="rootassets-lake-sites-"))
    result: dict = {"sites": [s for s, _ in sites], "months": args.months, "cores": os.cpu_count()}
    try:
        made = generate(work / "swc", RELEASE, sites, month_range("2019-01", args.months), positions=3, seed=1)
        result["rows"], result["files"] = made.rows, made.files
        with running_postgres() as pg:
            base = {
                **os.environ,
                "ROOTASSETS_SNAPSHOT": str(SNAPSHOT),
                "ROOTASSETS_SOIL_WATER": str(work / "swc"),
            }
            base.pop("ROOTASSETS_WAREHOUSE", None)
            lake = {
                **base,
                "ROOTASSETS_HOME": str(work / "lake-home"),
                "ROOTASSETS_WAREHOUSE": "ducklake:postgres:" + pg.create_database("lake"),
                "ROOTASSETS_LAKE_DATA": str(work / "lake-data"),
                "ROOTASSETS_INSTANCE_POSTGRES": pg.create_database("dagster"),
            }
            file = {**base, "ROOTASSETS_HOME": str(work / "file-home")}
            for name, env in (("lake", lake), ("file", file)):
                start = time.perf_counter()
                done = _cli(env, "materialize", "--release", RELEASE)
                if done.returncode != 0:
                    raise SystemExit(f"{name}: {done.stdout[-2000:]}{done.stderr[-2000:]}")
                result[f"{name}_materialize_s"] = time.perf_counter() - start
                env["DAGSTER_HOME"] = str(Path(env["ROOTASSETS_HOME"]) / "dagster")
            partitions = _partitions(lake, [s for s, _ in sites])
            before = commits(lake)
            reader = Reader(lake)
            reader.start()
            kill = random.choice(list(partitions)) if args.kill else None
            result["lake_at_once"] = run_sites(lake, partitions, at_once=True, kill=kill)
            reader.stop.set()
            reader.join()
            result["killed_site"] = kill
            result["reads"] = len(reader.reads)
            result["failed_reads"] = [r for r in reader.reads if r[0] != 0]
            result["read_values"] = sorted({tuple(r[1]) for r in reader.reads})
            result["lake_new_commits"] = [c for c in commits(lake) if c not in before]
            result["file_one_at_a_time"] = run_sites(file, partitions, at_once=False)
            staged = _cli(lake, "sql", "--csv", "select count(*) from meta.staged_tables")
            result["lake_staged_after_kill"] = staged.stdout.strip().splitlines()[-1]  # the killed run's, invisible
            result["lake_tables"], result["file_tables"] = checksums(lake), checksums(file)
            result["equal"] = result["lake_tables"] == result["file_tables"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
