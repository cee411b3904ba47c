"""The worker processes the parallel steps share (joblib's loky pool), started ahead of them.

The classifier's forests, the label robustness's sites and the pages of the site document and of the paged
figures run in one pool of worker processes. A cold main job's first parallel step paid for starting that pool
and for each worker importing what the steps run (~2.5 s a worker: scikit-learn's trees, matplotlib,
polars). `start_workers` starts the pool and has those imports done in the background while the job does its
single-process work (reading NEON files, harmonizing), so the steps find the workers ready. The steps' work
and results are unchanged.
"""

from __future__ import annotations

import importlib
import os
import threading

WORKERS_TAG = {"rootassets/workers": "processes"}  # on the assets whose steps run in the pool
WARM_MODULES = (
    "numpy",
    "polars",
    "scipy.stats",
    "sklearn.tree._tree",
    "matplotlib.pyplot",
    "pypdf",
    "rootassets.science.classifier",
    "rootassets.science.label_robustness",
    "rootassets.science.figure_specs",
    "rootassets.science.figures",
)

_warming: list[threading.Thread] = []  # the thread collecting the warm-up's answers (once a process)
warmed_pids: list[int] = []  # the workers that have imported `WARM_MODULES`, as they answer


def _import_warm_modules() -> int:
    for name in WARM_MODULES:
        importlib.import_module(name)
    return os.getpid()


def worker_count(requested: int = 0, items: int | None = None) -> int:
    """How many worker processes to use: `requested`, or one per CPU core when it is 0; never more than
    `items` (the work to share) and never fewer than one."""
    workers = requested or os.cpu_count() or 1
    return max(1, min(workers, items) if items is not None else workers)


def start_workers(n_jobs: int = 0) -> None:
    """Start the pool the steps use (`n_jobs` workers; 0: one per CPU core) and import `WARM_MODULES` in each,
    in the background: this returns at once. Once a process; nothing to do on one core."""
    workers = worker_count(n_jobs)
    if workers < 2 or _warming:
        return
    from joblib import Parallel, delayed

    answers = Parallel(n_jobs=workers, return_as="generator_unordered")(
        delayed(_import_warm_modules)() for _ in range(workers)
    )
    # read in a thread of its own: the tasks run meanwhile, and answers never read make joblib warn at exit
    collector = threading.Thread(
        target=warmed_pids.extend, args=(answers,), name="rootassets-warm-workers", daemon=True
    )
    collector.start()
    _warming.append(collector)
