"""Benchmarks of rootassets, written to BENCHMARKS.md: `.venv/bin/python benchmarks/run.py`.

Also: the floor (benchmarks/floor.py), scaling on synthetic 1x/10x/100x megapit data (plot in
benchmarks/scaling.png), continental soil water on synthetic NEON-format files, and the KDE
(direct sum vs binned FFT) with the bootstrap over profiles.

Measured here, side by side in one run:
- the offline main job end to end (cold: empty ROOTASSETS_HOME; warm: nothing changed), wall
  seconds, peak memory (max RSS of the `rootassets materialize` process tree) and CPU seconds (every
  process), which bound the wall from below on this machine's cores;
- at the largest scaling size, what the pooled steps ask of the CPU (benchmarks/budget.py: a forest, a
  site's label robustness and a site page, each timed and profiled in one process);
- ingest throughput: the project's NEON CSV reading and stacking (per-site NEON files written by
  the mirror from the snapshot), as rows/s and MB/s, next to DuckDB's own read_csv of the same files.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = (REPO / ".." / "shared" / "neon-snapshot").resolve()
RELEASE = "RELEASE-2021"


# A fresh wrapper per call, so the peak and the CPU it reports belong to that call alone. The CPU is every
# process the call started and waited for (the worker pool's processes are waited for at exit).
_WRAPPER = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
    "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "print('peak_kb', u.ru_maxrss, 'cpu_s', u.ru_utime + u.ru_stime, file=sys.stderr); sys.exit(code)"
)


def timed_cli(args: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds (user + system, every process) of one CLI call in its own
    process."""
    wall, peak, cpu, _ = timed_python(["-m", "rootassets.cli", *args], env)
    return wall, peak, cpu


def timed_tree(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and the peak of the summed RSS (MB) of a CLI call and every process it starts (worker
    processes run at once: the largest single one, as `getrusage` reports, would understate the peak)."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "rootassets.cli", *args], env=env, cwd=REPO, stdout=subprocess.DEVNULL
    )
    peak = 0
    while process.poll() is None:
        peak = max(peak, _tree_rss_kb(process.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"rootassets {' '.join(args)} failed with exit code {process.returncode}")
    return wall, peak / 1024


def _tree_rss_kb(root: int) -> int:
    """Summed resident memory (kB) of `root` and its descendants, from /proc."""
    from ui_run import process_tree_stats  # beside this script (its folder is sys.path[0])

    return sum(rss for _, rss in process_tree_stats(root).values())


# The cold job, the floor and the UI-vs-CLI pair are each measured this many times on fresh homes, and the
# fastest kept: the same cold job on this machine has taken 23-30 s and used 36-47 s of CPU from one run to
# the next (the machine's speed varies; a run that happens to be slowed is not the code's).
REPEATS = 2


def main_job(home: Path, repeats: int = REPEATS) -> dict:
    """The cold `rootassets materialize` `repeats` times on fresh homes, the last into `home` (kept: the floor
    and soil water use it), the fastest's wall, peak, CPU and step durations kept with every cold wall; then
    warm into `home`."""
    colds = []
    for attempt in range(repeats):
        target = home if attempt == repeats - 1 else Path(tempfile.mkdtemp(prefix="rootassets-cold-"))
        try:
            cold = timed_cli(["materialize", "--release", RELEASE], _job_env(target))
            colds.append((cold, step_seconds(target / "dagster")))
        finally:
            if target != home:
                shutil.rmtree(target, ignore_errors=True)
    cold, steps = min(colds, key=lambda measured: measured[0][0])
    warm = timed_cli(["materialize", "--release", RELEASE], _job_env(home))
    return {"cold": cold, "warm": warm, "steps": steps, "cold_walls": [c[0][0] for c in colds]}


def _job_env(home: Path) -> dict[str, str]:
    return {**os.environ, "ROOTASSETS_HOME": str(home), "ROOTASSETS_SNAPSHOT": str(SNAPSHOT)}


def timed_python(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float, str]:
    """Wall seconds, peak RSS (MB), CPU seconds and stdout of one Python process (a fresh wrapper measures it
    alone)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, sys.executable, *args], env=env, cwd=REPO, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    _, peak_kb, _, cpu = done.stderr.strip().splitlines()[-1].split()
    return wall, int(peak_kb) / 1024, float(cpu), done.stdout.strip()


def table_counts(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        names = [
            n
            for (n,) in con.execute(
                "select table_schema || '.' || table_name from information_schema.tables where table_schema in "
                "('raw', 'harmonized', 'analysis', 'quarantine', 'marts') order by 1"
            ).fetchall()
        ]
        return {n: con.execute(f"select count(*) from {n}").fetchall()[0][0] for n in names}


def table_checksums(db: Path) -> dict[str, list[int]]:
    """Per user-facing table: its row count and an order-independent checksum of its rows (the sum of each
    row's hash), so a faster version can be shown to write the same tables."""
    with duckdb.connect(str(db), read_only=True) as con:
        names = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables where table_schema in "
            "('raw', 'harmonized', 'analysis', 'marts') and table_type = 'BASE TABLE' order by 1"
        ).fetchall()
        out = {}
        for (name,) in names:
            schema, table = name.split(".", 1)
            rows, total = con.execute(
                f'select count(*), coalesce(sum(hash(t)::hugeint), 0)::varchar from "{schema}"."{table}" t'
            ).fetchone()
            out[name] = [rows, total]
        return out


def compare_checksums(now: dict[str, list], before: dict[str, list]) -> list[str]:
    """The tables whose rows differ from the previous run's (or that only one run has)."""
    return [
        f"{t} ({'new' if t not in before else 'gone' if t not in now else 'rows differ'})"
        for t in sorted(set(now) | set(before))
        if now.get(t) != before.get(t)
    ]


CHECKSUMS = REPO / "benchmarks" / "table_checksums.json"


def previous_main(path: Path) -> dict[str, float]:
    """The cold, warm and floor wall seconds BENCHMARKS.md reported before this run (for 'next to the previous')."""
    import re

    text = path.read_text() if path.exists() else ""
    found = {}
    for key, pattern in (
        ("cold", r"\| main job cold [^|]*\| ([0-9.]+) \|"),
        ("warm", r"\| main job warm [^|]*\| ([0-9.]+) \|"),
        ("floor", r"\| floor [^|]*\| ([0-9.]+) \|"),
        ("ingest_ratio", r"rootassets reaches \*\*([0-9.]+)\*\* of DuckDB's rate"),
        ("ui_ratio", r"UI / CLI wall = \*\*([0-9.]+)\*\*"),
        ("machine", r"Machine check \(`benchmarks/calibration.py`[^)]*\): \*\*([0-9.]+) s\*\*"),
    ):
        match = re.search(pattern, text)
        if match:
            found[key] = float(match.group(1))
    for factor, wall, peak in re.findall(
        r"^\| ([0-9]+)x \| [0-9,]+ \| [0-9,]+ \| ([0-9.]+) \| ([0-9.]+) \|", text, re.M
    ):
        found[f"scale_{factor}_wall"], found[f"scale_{factor}_peak"] = float(wall), float(peak)
    return found


def earlier(previous: dict[str, float], key: str, digits: int = 1) -> str:
    """A figure of the previous BENCHMARKS.md, for 'next to the previous one' ('-' when it had none)."""
    return f"{previous[key]:.{digits}f}" if key in previous else "-"


def unmeasured_sections(old: str, new: str) -> str:
    """The sections of the previous BENCHMARKS.md that this run does not write (measured by another command,
    which each names), kept as they were."""
    kept = []
    for part in old.split("\n## ")[1:]:
        heading = "## " + part.splitlines()[0]
        if heading not in new:
            kept.append("## " + part.rstrip("\n") + "\n")
    return "\n" + "\n".join(kept) if kept else ""


def main_section(
    main: dict, fl: dict, previous: dict[str, float], differ_from_previous: list[str] | None, machine: list[float]
) -> str:
    """The '## Main job' section: this run's cold, warm and floor next to the previous BENCHMARKS.md's, and how
    fast the machine ran against the previous run (`machine_note`)."""

    def before(key: str) -> str:
        return f"{previous[key]:.1f}" if key in previous else "-"

    differ = ", ".join(f"{t} {a} vs {b}" for t, (a, b) in fl["differ"].items()) or "none"
    if differ_from_previous is None:
        same = "No previous table checksums to compare with (`benchmarks/table_checksums.json` written now)."
    elif differ_from_previous:
        same = "Tables whose rows differ from the previous run's: " + ", ".join(differ_from_previous) + "."
    else:
        same = "Every table's row count and row checksum equal the previous run's (`benchmarks/table_checksums.json`)."
    return f"""## Main job, offline on the RELEASE-2021 snapshot, next to the floor

| run | wall (s) | previous wall (s) | peak memory (MB) |
|---|---|---|---|
| main job cold (`rootassets materialize --release {RELEASE}`, empty ROOTASSETS_HOME) | {main["cold"][0]:.1f} | {before("cold")} | {main["cold"][1]:.0f} |
| main job warm (nothing changed: source files unchanged, so raw not re-read; every asset up to date) | {main["warm"][0]:.1f} | {before("warm")} | {main["warm"][1]:.0f} |
| floor (`benchmarks/floor.py`: same functions and tables, one plain process) | {fl["wall"]:.1f} | {before("floor")} | {fl["peak"]:.0f} |

{repeats_note(main, fl)}Cold main job / floor = **{main["cold"][0] / fl["wall"]:.2f}** (goal: at most 1.5). {cpu_floor(main["cold"][2], 15)} Floor steps (s):
`{fl["steps"]}`. The cold main job's {where_the_time_goes(main["steps"], 0.03)}. The floor wrote {fl["tables"]} tables; tables whose row counts differ from the
main job's: {differ}. Warm re-run: **{main["warm"][0]:.1f} s** (goal: 1.5 s). {same}

{machine_note(machine, previous, {"cold": main["cold"][0], "floor": fl["wall"]})}
"""


def repeats_note(main: dict, fl: dict) -> str:
    """Which of the repeated cold jobs and floors the table shows (the fastest), and all of their walls."""
    if len(main.get("cold_walls", [])) < 2 and len(fl.get("walls", [])) < 2:
        return ""
    shown = ", ".join(f"{w:.1f}" for w in main.get("cold_walls", []))
    floors = ", ".join(f"{w:.1f}" for w in fl.get("walls", []))
    return f"Cold job and floor: the fastest of their runs on fresh homes (cold {shown} s; floor {floors} s). "


def cpu_floor(cpu: float, goal: float) -> str:
    """What a job's CPU seconds (every process) say of its wall on this machine's cores."""
    cores = os.cpu_count() or 1
    return (
        f"The cold job used **{cpu:.1f} s of CPU** (user + system, every process it started and waited for): on "
        f"{cores} cores no schedule of that work takes less than {cpu / cores:.1f} s (goal: {goal:g} s)."
    )


def budget_section(point: dict, goal: float) -> str:
    """The CPU the pooled steps ask for at `point`'s size (`benchmarks/budget.py`), the wall it implies on this
    machine's cores, next to the step walls of the run, and where a unit's time goes."""
    budget, steps, cores = point["budget"], point["steps"], os.cpu_count() or 1
    forests = budget["forests"]
    spread = sum(f["spread_forests"] for f in forests)
    null = sum(f["null_forests"] for f in forests)
    classifier = sum(f["spread_forests"] * f["real_s"] + f["null_forests"] * f["shuffled_s"] for f in forests)
    real = sum(f["spread_forests"] * f["real_s"] for f in forests) / max(spread, 1)
    shuffled = sum(f["null_forests"] * f["shuffled_s"] for f in forests) / max(null, 1)
    sites = budget["sites"]
    robustness, pages = budget["robustness_s_per_site"], budget["pages_s_per_page"]
    rows = [  # step, unit, units, CPU a unit, CPU at this size, the step that runs them in the worker pool
        ("the classifier's pool", "forest: real / shuffled labels", f"{spread} / {null}",
         f"{real:.3f} / {shuffled:.3f}", classifier, "analysis_classifier"),
        ("the label robustness", "site", f"{sites}", f"{robustness:.3f}", robustness * sites,
         "analysis_site_label_robustness"),
        ("the site pages", "page", f"{sites}", f"{pages:.3f}", pages * sites, "reports__site_pages"),
    ]  # fmt: skip
    total = sum(row[4] for row in rows)
    walls = [steps.get(row[5], float("nan")) for row in rows]
    table = "\n".join(
        f"| {name} | {unit} | {count} | {each} | {cpu:.0f} | {cpu / cores:.0f} | {wall:.1f} |"
        for (name, unit, count, each, cpu, _), wall in zip(rows, walls, strict=True)
    )
    profiles = "; ".join(
        f"{label}: "
        + ", ".join(f"{lib} {share:.0%}" for lib, share in budget["shares"][key]["libraries"])
        + " (largest: "
        + ", ".join(f"`{fn}` {share:.0%}" for fn, share in budget["shares"][key]["functions"][:2])
        + ")"
        for key, label in (("forest", "a forest"), ("robustness", "the robustness of a site"), ("pages", "a page"))
    )
    return f"""What the pooled steps ask of the CPU at {point["factor"]}x (`benchmarks/budget.py` on this job's tables: each
step's unit of work timed in one process, without the pool; the per-site steps on {budget["sample"]} of the {sites}
sites, every k-th; the classifier's forests one of each kind per run, counted as its pool grows them):

| step | unit | units | CPU a unit (s) | CPU at this size (s) | so, on {cores} cores (s) | this run's step (s) |
|---|---|---|---|---|---|---|
{table}
| together | | | | {total:.0f} | **{total / cores:.0f}** | {sum(walls):.1f} |

These three steps alone need {total / cores:.0f} s of this machine's {cores} cores, against {goal:g} s for the whole
job (their CPU over the cores: no schedule does better at the speed the units ran at, and the machine's speed
drifts within a run: see its check at the start and the end). Where a unit's own time goes (cProfile, by library, then its largest functions; compiled code
cProfile cannot see on its own, such as scikit-learn's Cython tree builder, counts in the function calling it):
{profiles}.
"""


def checked_tables(home: Path) -> list[str] | None:
    """This run's table checksums against the previous run's file (None: no previous file); the file is then
    rewritten with this run's."""
    import json

    now = table_checksums(home / "rootassets.duckdb")
    before = json.loads(CHECKSUMS.read_text()) if CHECKSUMS.exists() else None
    CHECKSUMS.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    return None if before is None else compare_checksums(now, before)


def floor(main_home: Path, repeats: int = REPEATS) -> dict:
    """benchmarks/floor.py in its own process, `repeats` times on fresh homes (the fastest kept, with every
    wall); its tables must match the main job's."""
    runs = []
    for _ in range(repeats):
        home = Path(tempfile.mkdtemp(prefix="rootassets-floor-"))
        try:
            wall, peak, _, steps = timed_python([str(REPO / "benchmarks" / "floor.py"), str(home), str(SNAPSHOT)])
            ours, theirs = table_counts(main_home / "rootassets.duckdb"), table_counts(home / "rootassets.duckdb")
        finally:
            shutil.rmtree(home, ignore_errors=True)
        runs.append((wall, peak, steps))
    walls = [run[0] for run in runs]
    wall, peak, steps = min(runs, key=lambda run: run[0])
    differ = {t: (ours.get(t), theirs.get(t)) for t in sorted(set(ours) | set(theirs)) if ours.get(t) != theirs.get(t)}
    return {"wall": wall, "peak": peak, "steps": steps, "tables": len(theirs), "differ": differ, "walls": walls}


def machine_check() -> float:
    """Seconds of benchmarks/calibration.py (a fixed workload with no rootassets code) in its own process."""
    _, _, _, out = timed_python([str(REPO / "benchmarks" / "calibration.py")])
    return float(out.split("total=")[-1])


def machine_note(machine: list[float], previous: dict[str, float], walls: dict[str, float]) -> str:
    """How fast this machine ran against the previous run, and this run's walls scaled to that machine."""
    now = sum(machine) / len(machine)
    measured = " and ".join(f"{m:.2f} s" for m in machine)
    text = (
        f"Machine check (`benchmarks/calibration.py`: an interpreter loop, FFTs, a matplotlib page, a DuckDB "
        f"aggregate; no rootassets code, best of 3 each): **{now:.2f} s** ({measured}, at the start and the end of "
        "these measurements)"
    )
    if "machine" not in previous:
        return text + "; the previous run had none, so its walls and these cannot be put on one machine.\n"
    factor = previous["machine"] / now
    scaled = ", ".join(f"{name} {wall * factor:.1f} s" for name, wall in walls.items())
    return (
        text + f", previous run {previous['machine']:.2f} s: this machine ran {1 / factor:.2f}x as long for the same "
        f"work. This run's walls on the previous run's machine (x {factor:.2f}): {scaled}.\n"
    )


def step_seconds(dagster_home: Path) -> dict[str, float]:
    """Each step's duration (s) as Dagster recorded it (its STEP_SUCCESS event), summed over the runs in the
    instance at `dagster_home` (read with Dagster's own API, as `ui_run.cli_step_seconds` reads run times)."""
    from dagster import DagsterEventType, DagsterInstance

    seconds: dict[str, float] = {}
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        for run in instance.get_runs():
            records = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.STEP_SUCCESS).records
            for record in records:
                event = record.event_log_entry.dagster_event
                seconds[event.step_key] = (
                    seconds.get(event.step_key, 0.0) + event.event_specific_data.duration_ms / 1000
                )
    return seconds


def where_the_time_goes(steps: dict[str, float], share: float = 0.05) -> str:
    """The steps that took at least `share` of the summed step time, largest first, and that sum."""
    total = sum(steps.values())
    big = sorted(((s, k) for k, s in steps.items() if total and s >= share * total), reverse=True)
    listed = ", ".join(f"{key} {seconds:.1f}" for seconds, key in big)
    return f"steps summed {total:.1f} s; at least {share:.0%} of it each: {listed or 'none'}"


def scaling(factors: list[int]) -> list[dict]:
    """The cold main job on SYNTHETIC snapshots with `factor` copies of every site; at the largest size, what
    the pooled steps ask of the CPU (`benchmarks/budget.py` on that job's tables)."""
    import json

    from rootassets.synthetic.megapit import scale_snapshot

    out = []
    for factor in factors:
        work = Path(tempfile.mkdtemp(prefix=f"rootassets-scale{factor}-"))
        try:
            rows = scale_snapshot(SNAPSHOT, work / "snapshot", factor, RELEASE)
            env = {**os.environ, "ROOTASSETS_HOME": str(work / "home"), "ROOTASSETS_SNAPSHOT": str(work / "snapshot")}
            wall, peak, cpu = timed_cli(["materialize", "--release", RELEASE], env)
            db = work / "home" / "rootassets.duckdb"
            with duckdb.connect(str(db), read_only=True) as con:
                sites = con.execute("select count(*) from harmonized.site_root_biomass").fetchall()[0][0]
            steps = step_seconds(work / "home" / "dagster")
            point = {"factor": factor, "sites": sites, "root_rows": rows, "wall": wall, "peak": peak, "cpu": cpu}
            point["steps"] = steps
            if factor == max(factors):
                point["budget"] = json.loads(timed_python([str(REPO / "benchmarks" / "budget.py"), str(db)])[3])
            out.append(point)
            print(f"scaling {factor}x: {sites} sites, {wall:.1f} s, {peak:.0f} MB, {cpu:.0f} s CPU", flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return out


def scaling_plot(points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sites = [p["sites"] for p in points]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.loglog(sites, [p["wall"] for p in points], "o-", label="main job (cold)")
    a.loglog(sites, [points[0]["wall"] * s / sites[0] for s in sites], "k:", label="linear from 1x")
    a.set_xlabel("sites (SYNTHETIC copies of the snapshot)")
    a.set_ylabel("wall time (s)")
    a.legend()
    b.loglog(sites, [p["peak"] for p in points], "o-", color="tab:red", label="peak RSS")
    b.set_xlabel("sites")
    b.set_ylabel("peak memory (MB)")
    b.legend()
    fig.suptitle("rootassets main job scaling (synthetic megapit data)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def growth_exponent(points: list[dict], key: str) -> float:
    import math

    first, last = points[-2], points[-1]
    return math.log(last[key] / first[key]) / math.log(last["sites"] / first["sites"])


SOIL_WATER_SELECT = (
    "key:raw/swc_sensor_positions or key:raw/swc_files or key:analysis/soil_water_sensors or "
    "key:analysis/soil_water_phi_series or key:analysis/soil_water_statistics"
)


def soil_water(main_home: Path, years: int = 3, positions: int = 3) -> dict:
    """The soil-water assets on SYNTHETIC NEON-format files for the 47 megapit sites over `years`."""
    import csv

    from rootassets.synthetic.soil_water import generate, month_range

    with (SNAPSHOT / RELEASE / "DP1.00096.001" / "mgp_permegapit.csv").open(encoding="utf-8-sig") as f:
        sites = sorted({(r["siteID"], r["domainID"]) for r in csv.DictReader(f)})
    work = Path(tempfile.mkdtemp(prefix="rootassets-swc-"))
    try:
        start = time.perf_counter()
        made = generate(work, RELEASE, sites, month_range("2018-01", 12 * years), positions=positions, seed=1)
        generated_s = time.perf_counter() - start
        env = {
            **os.environ,
            "ROOTASSETS_HOME": str(main_home),
            "ROOTASSETS_SNAPSHOT": str(SNAPSHOT),
            "ROOTASSETS_SOIL_WATER": str(work),
        }
        command = ["materialize", "--release", RELEASE, "--select", SOIL_WATER_SELECT, "--force"]
        serial = timed_tree(command, {**env, "ROOTASSETS_SOIL_WATER_WORKERS": "1"})
        wall, peak = timed_tree(command, {**env, "ROOTASSETS_SOIL_WATER_WORKERS": "0"})
        with duckdb.connect(str(main_home / "rootassets.duckdb"), read_only=True) as con:
            series = con.execute(
                "select count(*), count(distinct site_id) from analysis.soil_water_phi_series where release = ?",
                [RELEASE],
            ).fetchall()[0]
            files_read = con.execute("select count(*) from raw.swc_files where release = ?", [RELEASE]).fetchall()[0][0]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "sites": len(sites),
        "years": years,
        "positions": positions,
        "files": made.files,
        "rows": made.rows,
        "gb": made.bytes / 1e9,
        "generated_s": generated_s,
        "wall": wall,
        "peak": peak,
        "serial_wall": serial[0],
        "serial_peak": serial[1],
        "cores": os.cpu_count(),
        "series_rows": series[0],
        "series_sites": series[1],
        "files_listed": files_read,
    }


def soil_water_section(swc: dict) -> str:
    """The soil-water section of BENCHMARKS.md."""
    return f"""## Continental soil water content (DP1.00094.001; SYNTHETIC NEON-format files)

{swc["sites"]} megapit sites x {swc["years"]} years x {swc["positions"]} sensor positions x 8 depths, 30-minute
data: {swc["files"]:,} files, **{swc["rows"]:,} rows**, {swc["gb"]:.1f} GB of CSV (generated in
{swc["generated_s"]:.0f} s by `rootassets.synthetic.soil_water`, not timed below).

| `rootassets materialize --select <the 5 soil-water assets> --force` | wall (s) | peak memory, all processes (MB) |
|---|---|---|
| one DuckDB for every site (the previous BENCHMARKS.md, measured 2026-11-24; peak of the largest process) | 33.2 | 2340 |
| site by site in one DuckDB per site and one process per site, several at once (the previous BENCHMARKS.md, measured 2026-12-03) | 22.2 | 912 |
| one run per release x site partition, one at a time (`ROOTASSETS_SOIL_WATER_WORKERS=1`) | {swc["serial_wall"]:.1f} | {swc["serial_peak"]:.0f} |
| one run per release x site partition, {swc["cores"]} at once (the default: one per core) | {swc["wall"]:.1f} | {swc["peak"]:.0f} |

The 30-minute rows never enter Python: each site is a release x site partition, run as a Dagster run of its
own (`soil_water_sites_job`) in a worker process of `rootassets materialize`; its chosen files (`read_csv`, D1,
D2 and the surface sensor of each position) are read and aggregated by a DuckDB of its own with one thread (so
its sums add in one order: the same numbers to the last bit whatever the workers), limited to 2 GB and
spilling to a temporary folder beyond it, so memory stays bounded whatever the number of rows, and a site's
failure is its own. Peak memory is the summed RSS of the CLI and its worker processes, sampled every 0.2 s.
Running {swc["cores"]} site partitions at once took {swc["wall"] / swc["serial_wall"]:.2f}x the wall time of one
at a time. Where the time goes, against the previous in-asset aggregation (22.2 s): each site is now a Dagster
run of its own, and a profile of one small site's run (2026-12-04, by hand: cProfile of
`rootassets.refresh.execute_site_run`) took 1.5 s, of which the asset's own work was 0.3 s and the rest Dagster's
run bookkeeping (creating the run 0.24 s, storing its events in the SQLite instance 0.42 s, resource set-up and
tear-down 0.25 s); x 47 sites, that is ~55 s of one core. And each site's DuckDB has one thread where, one at a time, it had all
of them. The first partitioned measurement (102.7 s) also listed all 40,608 files in every site's run; a site
now lists its own folder. Output:
`analysis.soil_water_phi_series` {swc["series_rows"]:,} rows ({swc["series_sites"]} sites with a root
modality), and `analysis.soil_water_statistics`.

"""


UI_HEADING = "## A run launched from the UI, next to the CLI's"


def ui_versus_cli(repeats: int = REPEATS) -> dict:
    """Goal 5: the CLI's cold main job, then the same partition launched through the UI (benchmarks/ui_run.py),
    one after the other on fresh homes, `repeats` times; each side's fastest is kept. Both homes' tables must be
    equal every time."""
    from ui_run import cli_step_seconds, ui_run  # beside this script (its folder is sys.path[0])

    clis, uis, differ = [], [], []
    for _ in range(repeats):
        cli_home, ui_home = (Path(tempfile.mkdtemp(prefix=f"rootassets-{side}-")) for side in ("cli", "ui"))
        try:
            cli_wall, _, cli_cpu = timed_cli(["materialize", "--release", RELEASE], _job_env(cli_home))
            clis.append({"wall": cli_wall, "cpu": cli_cpu, **cli_step_seconds(cli_home)})
            uis.append(ui_run(ui_home, SNAPSHOT, RELEASE))
            ours = table_checksums(cli_home / "rootassets.duckdb")
            differ += compare_checksums(table_checksums(ui_home / "rootassets.duckdb"), ours)
        finally:
            shutil.rmtree(cli_home, ignore_errors=True)
            shutil.rmtree(ui_home, ignore_errors=True)
    cli, ui = (min(runs, key=lambda run: run["wall"]) for runs in (clis, uis))
    walls = {"cli_walls": [c["wall"] for c in clis], "ui_walls": [u["wall"] for u in uis]}
    return {"cli": cli, "ui": ui, "differ": sorted(set(differ)), **walls}


def ui_section(side: dict, previous: dict[str, float]) -> str:
    cli, ui = side["cli"], side["ui"]
    same = (
        "Every table's row count and row checksum are equal in the two homes."
        if not side["differ"]
        else "Tables that differ between the two homes: " + ", ".join(side["differ"]) + "."
    )
    return f"""{UI_HEADING}

Command: `.venv/bin/python benchmarks/run.py --only ui` (benchmarks/ui_run.py). The CLI's cold
`rootassets materialize --release {RELEASE}`, then, on another fresh home, `rootassets ui` (webserver and
daemon) with one run of `main_job` for {RELEASE} submitted through the webserver's GraphQL API, as the job
page's "Materialize all" does. The UI is started and its code location loaded before the clock starts.

| launched from | wall (s) | runs | run start to end, summed (s) | steps | step seconds, summed |
|---|---|---|---|---|---|
| CLI (whole command) | {cli["wall"]:.1f} | {cli["runs"]} | {cli["run"]:.1f} | {cli["step_count"]} | {cli["steps"]:.1f} |
| UI (submission to success) | {ui["wall"]:.1f} | 1 | {ui["run"]:.1f} | {ui["step_count"]} | {ui["steps"]:.1f} |

UI / CLI wall = **{ui["wall"] / cli["wall"]:.2f}** (goal: at most 1.2; previous: {earlier(previous, "ui_ratio", 2)}). {same}{ui_repeats(side)}
Where the difference goes: the UI's run started {ui["wall"] - ui["run"]:.1f} s after its submission (the webserver's
run launcher starts a run worker process, which loads the definitions) and is then one run of {ui["step_count"]}
steps. The CLI spent {cli["wall"] - cli["run"]:.1f} s outside its runs (starting Python, loading the definitions,
the commit) and ran the same work as {cli["runs"]} runs (a cold refresh: NEON observed, the raw tables and the
release assets in one, then what follows the soil-water site partitions), {cli["step_count"]} steps with the
observations and visibility checks.{ui_cpu(cli, ui)}

"""


def ui_repeats(side: dict) -> str:
    """The walls of every repeat of the pair, when there were several (the table shows each side's fastest)."""
    if len(side.get("cli_walls", [])) < 2:
        return ""
    cli, ui = (", ".join(f"{w:.1f}" for w in side[k]) for k in ("cli_walls", "ui_walls"))
    return (
        f" Each side is the fastest of {len(side['cli_walls'])} pairs run one after the other (CLI {cli} s; UI {ui} s)."
    )


def ui_cpu(cli: dict, ui: dict) -> str:
    """What the two sides' processes used of the CPU, when the run measured it (benchmarks/ui_run.py)."""
    if "run_cpu" not in ui or "cpu" not in cli:
        return ""
    return (
        f" CPU: the CLI's whole command used {cli['cpu']:.1f} s (every process); the UI's run (its worker and the "
        f"worker pool) {ui['run_cpu']:.1f} s, and the UI's services (webserver, daemon, code servers) "
        f"{ui['services_cpu']:.1f} s while it ran, which the run's steps shared the {os.cpu_count() or 1} cores with."
    )


def replace_section(path: Path, heading: str, text: str) -> None:
    """Replace the section of `path` that starts at `heading` (up to the next `## `) with `text`."""
    old = path.read_text()
    if heading not in old:  # a new section goes last
        path.write_text(old.rstrip("\n") + "\n\n" + text)
        return
    start = old.index(heading)
    end = old.find("\n## ", start + len(heading))
    path.write_text(old[:start] + text + (old[end + 1 :] if end >= 0 else ""))


def bootstrap_kde(main_home: Path, resamples: int = 1000) -> dict:
    """KDE per site (direct sum vs binned FFT) and the bootstrap over profiles with each."""
    import numpy as np
    import polars as pl

    from rootassets.science.bootstrap import binned_fft_kde, bootstrap_site
    from rootassets.science.modality import ModalityParameters, depth_sample, gaussian_kde

    with duckdb.connect(str(main_home / "rootassets.duckdb"), read_only=True) as con:
        profiles = con.sql("select * from harmonized.root_profiles where release = 'RELEASE-2021'").pl()
        increments = con.sql("select * from harmonized.root_increments where release = 'RELEASE-2021'").pl()
    params = ModalityParameters()
    samples = [
        depth_sample(g["mid_cm"].to_numpy(), g["root_density_g_m3"].to_numpy())
        for _, g in profiles.sort("site_id", "top_cm").group_by("site_id", maintain_order=True)
    ]  # in site order: the naive sum below times the first three sites, the same three every run
    timings = {}
    for name, kde in (("direct", gaussian_kde), ("fft", binned_fft_kde)):
        start = time.perf_counter()
        for _ in range(5):
            for depths, counts in samples:
                kde(depths, counts, params)
        timings[name] = (time.perf_counter() - start) / 5
    repeated = [(np.repeat(d, c.astype(int)), np.ones(int(c.sum()))) for d, c in samples[:3]]
    start = time.perf_counter()
    for depths, counts in repeated:  # a naive port: one Gaussian per repeated depth, as rep() builds it
        gaussian_kde(depths, counts, params)
    naive_per_site = (time.perf_counter() - start) / len(repeated)
    boot = {}
    for method in ("fft", "direct"):
        rng = np.random.default_rng(123)
        start = time.perf_counter()
        for _, g in increments.sort("site_id").group_by("site_id", maintain_order=True):
            bootstrap_site(
                g.select("profile", "top_cm", "bottom_cm", "root_density_g_m3"), params, resamples, rng, method
            )
        boot[method] = time.perf_counter() - start
    return {
        "sites": len(samples),
        "direct_s": timings["direct"],
        "fft_s": timings["fft"],
        "naive_site_s": naive_per_site,
        "mean_repeated": float(np.mean([c.sum() for _, c in samples])),
        "resamples": resamples,
        "boot_fft_s": boot["fft"],
        "boot_direct_s": boot["direct"],
        "profiles": increments.group_by("site_id").agg(pl.col("profile").n_unique())["profile"].mean(),
    }


def ingest(repeats: int = 3) -> dict[str, float]:
    from rootassets.neon.mirror import MirrorCatalogue
    from rootassets.neon.products import PRODUCTS
    from rootassets.neon.snapshot import SnapshotSource

    catalogue = MirrorCatalogue(SNAPSHOT)
    root = Path(tempfile.mkdtemp(prefix="rootassets-ingest-"))
    try:
        for (release, name), f in catalogue.files.items():
            package = (
                root / release / f.product / f"NEON.D00.{f.site}.{f.product}.{f.month}.basic.20200101T000000Z.{release}"
            )
            package.mkdir(parents=True, exist_ok=True)
            (package / name).write_bytes(f.body)
        data_files = [p for p in root.rglob("*.csv") if ".variables." not in p.name]
        size_mb = sum(p.stat().st_size for p in data_files) / 1e6
        source = SnapshotSource(root)
        ours, rows = [], 0
        for _ in range(repeats):
            start = time.perf_counter()
            rows = 0
            for product in PRODUCTS.values():
                for table in source.load_product(product, RELEASE).tables.values():
                    rows += table.frame.height
            ours.append(time.perf_counter() - start)
        theirs = []
        tables = sorted({p.name.split(".")[6] for p in data_files})
        for _ in range(repeats):
            start = time.perf_counter()
            with duckdb.connect() as con:
                for table in tables:
                    pattern = str(root / "*" / "*" / "*" / f"*.{table}.*.csv")
                    con.execute(
                        f"CREATE OR REPLACE TABLE t AS SELECT * FROM read_csv('{pattern}', union_by_name=true, "
                        "nullstr=['NA', ''], filename=true)"
                    )
            theirs.append(time.perf_counter() - start)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"files": len(data_files), "rows": rows, "mb": size_mb, "ours_s": min(ours), "duckdb_s": min(theirs)}


INGEST_HEADING = "## Ingest throughput (NEON per-site CSVs -> stacked, typed tables)"


def ingest_section(ing: dict, previous: dict[str, float]) -> str:
    ratio = ing["duckdb_s"] / ing["ours_s"]
    return f"""{INGEST_HEADING}

{ing["files"]} NEON-format files, {ing["rows"]:,} rows, {ing["mb"]:.2f} MB; best of 3.

| reader | seconds | rows/s | MB/s |
|---|---|---|---|
| rootassets (csv checks, typing, stacking, provenance) | {ing["ours_s"]:.3f} | {ing["rows"] / ing["ours_s"]:,.0f} | {ing["mb"] / ing["ours_s"]:.2f} |
| DuckDB `read_csv` of the same files | {ing["duckdb_s"]:.3f} | {ing["rows"] / ing["duckdb_s"]:,.0f} | {ing["mb"] / ing["duckdb_s"]:.2f} |

rootassets reaches **{ratio:.2f}** of DuckDB's rate (goal: at least 0.9; previous: {earlier(previous, "ingest_ratio", 2)}).

"""


def write(results: dict, path: Path) -> None:
    main, ing, fl = results["main"], results["ingest"], results["floor"]
    boot, swc, scale = results["bootstrap"], results["soil_water"], results["scaling"]
    previous = results["previous"]
    scale_rows = "\n".join(
        f"| {p['factor']}x | {p['sites']} | {p['root_rows']:,} | {p['wall']:.1f} | {p['peak']:.0f} | "
        + " | ".join(earlier(previous, f"scale_{p['factor']}_{k}", d) for k, d in (("wall", 1), ("peak", 0)))
        + f" | {p['cpu']:.0f} |"
        for p in scale
    )
    time_growth, memory_growth = growth_exponent(scale, "wall"), growth_exponent(scale, "peak")
    scale_steps = "\n".join(f"- {p['factor']}x: {where_the_time_goes(p['steps'])}." for p in scale if "steps" in p)
    text = f"""# Benchmarks

Command: `.venv/bin/python benchmarks/run.py` (writes this file and `benchmarks/scaling.png`; every
figure below comes from that one run). Measured {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
on {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()},
dagster {version("dagster")}, duckdb {version("duckdb")}, polars {version("polars")}, numpy {version("numpy")}.
Peak memory is the max RSS of the measured process (`getrusage` of its children).

{main_section(main, fl, previous, results["checksum_differ"], results["machine"])}{ingest_section(ing, previous)}## Scaling (SYNTHETIC megapit data: `rootassets.synthetic.megapit`, k copies of every snapshot site)

Cold main job per size; copies carry invented site codes and per-sample log-normal noise on root
biomass (see `SYNTHETIC.md` in the generated folder). Plot: `benchmarks/scaling.png`.

| size | sites | root samples | wall (s) | peak memory (MB) | previous wall (s) | previous peak (MB) | CPU (s), every process |
|---|---|---|---|---|---|---|---|
{scale_rows}

Growth between the two largest sizes: time ~ sites^{time_growth:.2f}, memory ~ sites^{memory_growth:.2f}
(1.0 is linear). Below linear: fixed costs (process start, imports, Dagster's runs) dominate the small
sizes; what grows with the sites is reading, screening, the per-site KDEs, the classifier's 280 forests
(each tree on 30% of the sites) and the per-site figure panels.

Where each size's time goes (this run; each step's duration as its Dagster instance recorded it):
{scale_steps}

{budget_section(scale[-1], 120) if "budget" in scale[-1] else ""}
![scaling](benchmarks/scaling.png)

{soil_water_section(swc)}{ui_section(results["ui"], previous)}## KDE: direct sum vs R's binned FFT, and the bootstrap over profiles

| what | seconds |
|---|---|
| KDE of all {boot["sites"]} site profiles, direct sum over the weighted distinct depths | {boot["direct_s"]:.3f} |
| the same, binned FFT (R's `density.default`: 2^16 bins, FFT convolution, interpolation) | {boot["fft_s"]:.3f} |
| one site, naive direct sum over the repeated sample (`rep(mid, round(Y))`, mean {boot["mean_repeated"]:,.0f} points) | {boot["naive_site_s"]:.3f} |
| bootstrap, {boot["resamples"]} resamples x {boot["sites"]} sites, binned FFT batched over resamples | {boot["boot_fft_s"]:.1f} |
| the same bootstrap with the direct sum | {boot["boot_direct_s"]:.1f} |

Speed-up of the binned FFT: {boot["direct_s"] / boot["fft_s"]:.2f}x over the direct sum on the
weighted distinct depths (about {boot["profiles"]:.0f} profiles and 15-20 distinct depths per site,
so the direct sum is only ~20 Gaussians on the grid), {boot["naive_site_s"] * boot["sites"] / boot["fft_s"]:.0f}x over a
naive direct sum of the repeated sample, and {boot["boot_direct_s"] / boot["boot_fft_s"]:.2f}x in the bootstrap.
"""
    text += unmeasured_sections(path.read_text() if path.exists() else "", text)
    path.write_text(text)
    print(text)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,10,100", help="site multipliers for the scaling benchmark")
    parser.add_argument("--soil-water-years", type=int, default=3)
    parser.add_argument(
        "--only",
        choices=["soil_water", "main", "ui", "ingest"],
        help="measure one section and replace only it in BENCHMARKS.md (the main job runs first: soil water "
        "reads its phi)",
    )
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="rootassets-bench-"))
    if args.only == "main":
        try:
            previous = previous_main(REPO / "BENCHMARKS.md")
            machine = [machine_check()]
            main = main_job(home)
            print("main", main, flush=True)
            fl = floor(home)
            print("floor", fl, flush=True)
            machine.append(machine_check())
            print("machine", machine, flush=True)
            differ = checked_tables(home)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        replace_section(
            REPO / "BENCHMARKS.md",
            "## Main job, offline on the RELEASE-2021 snapshot",
            main_section(main, fl, previous, differ, machine),
        )
        raise SystemExit(0)
    if args.only == "ingest":
        shutil.rmtree(home, ignore_errors=True)
        ing = ingest()
        print("ingest", ing, flush=True)
        replace_section(
            REPO / "BENCHMARKS.md", INGEST_HEADING, ingest_section(ing, previous_main(REPO / "BENCHMARKS.md"))
        )
        raise SystemExit(0)
    if args.only == "ui":
        shutil.rmtree(home, ignore_errors=True)
        side = ui_versus_cli()
        print("ui", side, flush=True)
        replace_section(REPO / "BENCHMARKS.md", UI_HEADING, ui_section(side, previous_main(REPO / "BENCHMARKS.md")))
        raise SystemExit(0)
    if args.only == "soil_water":
        try:
            main_job(home)
            swc = soil_water(home, years=args.soil_water_years)
            print("soil water", swc, flush=True)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        replace_section(REPO / "BENCHMARKS.md", "## Continental soil water content", soil_water_section(swc))
        raise SystemExit(0)
    try:
        results = {"previous": previous_main(REPO / "BENCHMARKS.md"), "machine": [machine_check()]}
        results["main"] = main_job(home)
        print("main", results["main"], flush=True)
        results["checksum_differ"] = checked_tables(home)
        results["floor"] = floor(home)
        print("floor", results["floor"], flush=True)
        results["ingest"] = ingest()
        results["bootstrap"] = bootstrap_kde(home)
        print("bootstrap", results["bootstrap"], flush=True)
        results["soil_water"] = soil_water(home, years=args.soil_water_years)
        print("soil water", results["soil_water"], flush=True)
        results["ui"] = ui_versus_cli()
        print("ui", results["ui"], flush=True)
        results["scaling"] = scaling([int(f) for f in args.scales.split(",")])
        scaling_plot(results["scaling"], REPO / "benchmarks" / "scaling.png")
        results["machine"].append(machine_check())
        print("machine", results["machine"], flush=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    write(results, REPO / "BENCHMARKS.md")
