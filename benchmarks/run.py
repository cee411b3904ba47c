"""Benchmarks of rootassets, written to BENCHMARKS.md: `.venv/bin/python benchmarks/run.py`.

Measured here, side by side in one run:
- the offline main job end to end (cold: empty ROOTASSETS_HOME; warm: nothing changed), wall
  seconds and peak memory (max RSS of the `rootassets materialize` process tree);
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


# A fresh wrapper per call, so the peak it reports belongs to that call alone.
_WRAPPER = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
            "print('peak_kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)")


def timed_cli(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one CLI call in its own process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _WRAPPER, sys.executable, "-m", "rootassets.cli", *args],
                          env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    peak_kb = int(done.stderr.strip().splitlines()[-1].split()[-1])
    return wall, peak_kb / 1024


def main_job() -> dict[str, tuple[float, float]]:
    home = Path(tempfile.mkdtemp(prefix="rootassets-bench-"))
    env = {**os.environ, "ROOTASSETS_HOME": str(home), "ROOTASSETS_SNAPSHOT": str(SNAPSHOT)}
    try:
        cold = timed_cli(["materialize", "--release", RELEASE], env)
        warm = timed_cli(["materialize", "--release", RELEASE], env)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return {"cold": cold, "warm": warm}


def ingest(repeats: int = 3) -> dict[str, float]:
    from rootassets.neon.mirror import MirrorCatalogue
    from rootassets.neon.products import PRODUCTS
    from rootassets.neon.snapshot import SnapshotSource

    catalogue = MirrorCatalogue(SNAPSHOT)
    root = Path(tempfile.mkdtemp(prefix="rootassets-ingest-"))
    try:
        for (release, name), f in catalogue.files.items():
            package = root / release / f.product / f"NEON.D00.{f.site}.{f.product}.{f.month}.basic.20200101T000000Z.{release}"
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
                    con.execute(f"CREATE OR REPLACE TABLE t AS SELECT * FROM read_csv('{pattern}', union_by_name=true, "
                                "nullstr='NA', filename=true)")
            theirs.append(time.perf_counter() - start)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"files": len(data_files), "rows": rows, "mb": size_mb, "ours_s": min(ours), "duckdb_s": min(theirs)}


def write(results: dict, path: Path) -> None:
    main, ing = results["main"], results["ingest"]
    ratio = (ing["rows"] / ing["ours_s"]) / (ing["rows"] / ing["duckdb_s"])
    text = f"""# Benchmarks

Command: `.venv/bin/python benchmarks/run.py` (writes this file). Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}
on {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()},
dagster {version('dagster')}, duckdb {version('duckdb')}, polars {version('polars')}.

## Main job, offline on the RELEASE-2021 snapshot (`rootassets materialize --release {RELEASE}`)

| run | wall (s) | peak memory (MB, max RSS of one process) |
|---|---|---|
| cold (empty ROOTASSETS_HOME, every asset) | {main['cold'][0]:.1f} | {main['cold'][1]:.0f} |
| warm (nothing changed: raw re-read, everything else up to date) | {main['warm'][0]:.1f} | {main['warm'][1]:.0f} |

## Ingest throughput (NEON per-site CSVs -> stacked, typed tables)

{ing['files']} NEON-format files, {ing['rows']:,} rows, {ing['mb']:.2f} MB; best of 3.

| reader | seconds | rows/s | MB/s |
|---|---|---|---|
| rootassets (csv checks, typing, stacking, provenance) | {ing['ours_s']:.3f} | {ing['rows'] / ing['ours_s']:,.0f} | {ing['mb'] / ing['ours_s']:.2f} |
| DuckDB `read_csv` of the same files | {ing['duckdb_s']:.3f} | {ing['rows'] / ing['duckdb_s']:,.0f} | {ing['mb'] / ing['duckdb_s']:.2f} |

rootassets reaches {ratio:.2f} of DuckDB's rate (goal: 0.7).

## Not measured yet
The floor (`benchmarks/floor.py`, the same work with no orchestration), the 1x/10x/100x
scaling generator and plot, the continental soil-water benchmark and the bootstrap KDE are
still to be written (issue 8).
"""
    path.write_text(text)
    print(text)


if __name__ == "__main__":
    write({"main": main_job(), "ingest": ingest()}, REPO / "BENCHMARKS.md")
