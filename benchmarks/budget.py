"""What the three pooled steps ask of the CPU at one size: each one's unit of work timed in one process.

`python benchmarks/budget.py DB [SAMPLE]` prints JSON. On the tables of the home whose DuckDB file is DB (a
cold main job's), with no worker pool:
- the classifier: for each run in `analysis.classifier_performance`, one forest on the real labels (the seed
  spread's kind) and one on shuffled labels (the permutation null's: deeper trees), CPU seconds each, counted
  as the pool grows them (n_seeds - 1 spread forests, the run's own being reused, and n_permutations);
- the label robustness: the step itself on SAMPLE sites (every k-th site), CPU seconds a site;
- the site pages: the page document of the same sites, CPU seconds a page.
Their CPU seconds at the size, over the machine's cores, bound those steps' wall from below at the speed the
units ran at: no schedule runs them faster (the machine's own speed drifts, so a run's step can come in
under). A cProfile of each unit gives the share of its time in each library (by the module of the function
that spent it), so BENCHMARKS.md can say where a missed goal's time goes. These are the assets' own functions
(`rootassets.science`), never `rootassets.defs` (an import-linter contract).
"""

from __future__ import annotations

import cProfile
import dataclasses
import json
import pstats
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from rootassets.science.classifier import (
    ForestParameters,
    encode,
    oob_accuracies,
    permuted_labels,
    training_frame,
)
from rootassets.science.figure_specs import SITE_PAGE_READS, site_pages_pdf
from rootassets.science.registry import GOOD_ROWS, Read
from rootassets.science.steps import STEPS
from rootassets.warehouse import read_release

RELEASE = "RELEASE-2021"
BIOMASS = "total_fine_root_biomass_4mm_equiv_g_m2"  # the factor the classifier's last two runs leave out or keep alone


def read(db: Path, reads: tuple[Read, ...], sites: list[str] | None = None) -> dict[str, pl.DataFrame]:
    """The frames `reads` name, as the assets read them; with `sites`, those sites' rows alone."""
    with duckdb.connect(str(db), read_only=True) as con:
        frames = {
            r.input_name: read_release(con, r.schema, r.name, RELEASE, GOOD_ROWS if r.good_rows else "") for r in reads
        }
    if sites is None:
        return frames
    return {k: f.filter(pl.col("site_id").is_in(sites)) if "site_id" in f.columns else f for k, f in frames.items()}


def cpu_seconds(work: Callable[[], object]) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def profile_of(work: Callable[[], object], top: int = 4) -> dict[str, list[tuple[str, float]]]:
    """Where `work`'s own time goes (cProfile's tottime), as shares: by library (the top-level package of the
    function that spent it) and by function, the `top` largest of each (at least 1%). Compiled code that cProfile cannot
    see on its own (Cython methods, such as scikit-learn's tree builder) counts in the function calling it."""
    profile = cProfile.Profile()
    profile.runcall(work)
    libraries: dict[str, float] = {}
    functions: dict[str, float] = {}
    for (filename, _, name), (_, _, tottime, _, _) in pstats.Stats(profile).stats.items():  # type: ignore[attr-defined]
        where = _where(filename)
        library = where.split("/", 1)[0] if where else _compiled_library(name)
        library = "python" if library == "builtins" else library  # the interpreter's own functions
        libraries[library] = libraries.get(library, 0.0) + tottime
        function = f"{where}:{name}" if where else name
        functions[function] = functions.get(function, 0.0) + tottime
    whole = sum(libraries.values()) or 1.0

    def ranked(totals: dict[str, float]) -> list[tuple[str, float]]:
        largest = sorted(totals.items(), key=lambda kv: -kv[1])[:top]
        return [(key, round(value / whole, 3)) for key, value in largest if value >= 0.01 * whole]

    return {"libraries": ranked(libraries), "functions": ranked(functions)}


def _where(filename: str) -> str:
    """A profiled function's file as `package/module.py` (its path below site-packages, or from `rootassets/`),
    or "" for a compiled function."""
    match = re.search(r"site-packages/(.+)$", filename) or re.search(r"/(rootassets/.+)$", filename)
    return match[1] if match else ""


def _compiled_library(name: str) -> str:
    """The package of a compiled function from cProfile's name for it (`<built-in method numpy.fft...>`,
    `<method 'build' of 'sklearn.tree._tree.DepthFirstTreeBuilder' objects>`); "python" for the interpreter's."""
    match = re.search(r"of '([A-Za-z_][A-Za-z0-9_]*)\.", name) or re.search(r"method ([A-Za-z_][A-Za-z0-9_]*)\.", name)
    return match[1] if match else "python"


@dataclass(frozen=True)
class ForestWork:
    """One classifier run's forests as its pool grows them, and one forest of each kind to time."""

    run: str
    spread_forests: int  # n_seeds - 1: the run's own forest is reused
    null_forests: int
    real: Callable[[], object]  # a forest on the real labels (the seed spread's kind)
    shuffled: Callable[[], object]  # a forest on shuffled labels (the permutation null's: deeper trees)


def forest_work(db: Path) -> list[ForestWork]:
    """Per classifier run in `analysis.classifier_performance`: its factors' forests, counted as its pool grows
    them, ready to be grown in this process."""
    reads = (
        Read("analysis.site_factors"),
        Read("analysis.classifier_performance"),
        Read("analysis.classifier_importance"),
    )
    frames = read(db, reads)
    frame, names, categorical, _ = training_frame(frames["site_factors"])
    kept = (
        frames["classifier_importance"]
        .filter((pl.col("run") == "all_factors") & pl.col("kept"))
        .sort("rank")["factor"]
        .to_list()
    )
    factor_sets = {
        "all_factors": names,
        "kept_factors": [n for n in names if n in kept],
        "without_total_biomass": [n for n in names if n != BIOMASS],
        "total_biomass_alone": [BIOMASS],
    }
    params = ForestParameters(n_jobs=1)
    y = frame["modality"].to_numpy()
    shuffled = permuted_labels(y, params, 0)
    out = []
    for run, (n_seeds, n_permutations) in pool_counts(frames["classifier_performance"]).items():
        if run not in factor_sets:
            raise SystemExit(f"benchmarks/budget.py does not know the factors of the classifier run {run!r}")
        factors = factor_sets[run]
        x, _, _ = encode(frame, factors, categorical)
        out.append(
            ForestWork(
                run,
                max(n_seeds - 1, 0),
                n_permutations,
                lambda x=x, f=factors: oob_accuracies(x, y, f, params, params.seed),
                lambda x=x, f=factors: oob_accuracies(x, shuffled, f, params, params.seed),
            )
        )
    return out


def pool_counts(performance: pl.DataFrame) -> dict[str, tuple[int, int]]:
    """Per run, in the table's order: its seed spread's and its permutation null's sizes."""
    sizes = performance.filter(pl.col("metric").is_in(["n_seeds", "n_permutations"]))
    out: dict[str, tuple[int, int]] = {}
    for (run,), rows in sizes.group_by("run", maintain_order=True):
        values = dict(zip(rows["metric"], rows["value"], strict=True))
        out[run] = (int(values.get("n_seeds", 0)), int(values.get("n_permutations", 0)))
    return out


def sample_sites(db: Path, size: int) -> tuple[list[str], int]:
    """Every k-th labelled site (sorted), about `size` of them, and how many sites there are."""
    with duckdb.connect(str(db), read_only=True) as con:
        query = "SELECT site_id FROM analysis.site_modality WHERE release = $1 ORDER BY site_id"
        sites = [s for (s,) in con.execute(query, [RELEASE]).fetchall()]
    step = max(1, len(sites) // size)
    return sites[::step][:size], len(sites)


def robustness(db: Path, sites: list[str]) -> Callable[[], object]:
    """The label robustness step on `sites` alone, in this process."""
    step = next(s for s in STEPS if s.name == "site_label_robustness")
    inputs = read(db, step.reads, sites)
    params = dataclasses.replace(step.default_parameters(), n_jobs=1)
    return lambda: step.run(inputs, params)


def pages(db: Path, sites: list[str]) -> Callable[[], object]:
    """The site page document of `sites` alone, in this process."""
    inputs = read(db, SITE_PAGE_READS, sites)
    return lambda: site_pages_pdf(inputs, n_jobs=1)


def budget(db: Path, size: int) -> dict:
    sample, sites = sample_sites(db, size)
    forests = forest_work(db)
    all_factors = next(work for work in forests if work.run == "all_factors")
    warm = sample[:1]
    robustness(db, warm)(), pages(db, warm)(), all_factors.real()  # imports and caches paid before the clock starts
    forest_rows = [
        {
            "run": work.run,
            "spread_forests": work.spread_forests,
            "null_forests": work.null_forests,
            "real_s": cpu_seconds(work.real),
            "shuffled_s": cpu_seconds(work.shuffled),
        }
        for work in forests
    ]
    run_robustness, draw_pages = robustness(db, sample), pages(db, sample)
    return {
        "sites": sites,
        "sample": len(sample),
        "forests": forest_rows,
        "robustness_s_per_site": cpu_seconds(run_robustness) / len(sample),
        "pages_s_per_page": cpu_seconds(draw_pages) / len(sample),
        "shares": {
            "forest": profile_of(all_factors.real),
            "robustness": profile_of(run_robustness),
            "pages": profile_of(draw_pages),
        },
    }


if __name__ == "__main__":
    print(json.dumps(budget(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 100)))
