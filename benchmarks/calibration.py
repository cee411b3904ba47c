"""A fixed workload that uses no rootassets code, timed in every benchmark run: how fast this machine is today.

This 2-core machine's speed varies between sessions by a third or more (code nobody touched ran 30-47% slower
in one run than in the one before), so two runs' walls say little about the code without it. Each part stands
for a kind of work the main job does: the interpreter (Dagster's bookkeeping), FFTs (the KDEs), a matplotlib
page to PDF and PNG (the figures) and a DuckDB aggregate (the warehouse). Prints each part's best of `repeats`
in seconds, then their sum: `python benchmarks/calibration.py [repeats]`.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable


def interpreter() -> None:
    table: dict[str, list[int]] = {}
    for i in range(3_000_000):
        table.setdefault(f"k{i % 997}", []).append(i * 3 % 7)
    sorted(table.items(), key=lambda kv: sum(kv[1]))


def ffts() -> None:
    import numpy as np

    rng = np.random.default_rng(20261205)
    signal = rng.random((8, 2**16))
    for _ in range(60):
        np.fft.irfft(np.fft.rfft(signal, axis=1), n=2**16, axis=1)


def matplotlib_page() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(4, 4, figsize=(8.27, 11.69))
    x = np.linspace(0, 10, 200)
    for k, ax in enumerate(axes.flat):
        ax.plot(np.sin(x + k), x, marker="o", ms=2)
        ax.set_title(f"panel {k}")
    for fmt, dpi in (("pdf", None), ("png", 150)):
        fig.savefig(io.BytesIO(), format=fmt, **({"dpi": dpi} if dpi else {}))
    plt.close(fig)


def duckdb_aggregate() -> None:
    import duckdb

    with duckdb.connect() as con:
        con.execute("SET threads = 1")
        con.sql(
            "SELECT i % 1000 AS g, avg(i * 1.5), count(*) FROM range(12000000) t(i) GROUP BY g ORDER BY g"
        ).fetchall()


PARTS: dict[str, Callable[[], None]] = {
    "interpreter": interpreter,
    "ffts": ffts,
    "matplotlib": matplotlib_page,
    "duckdb": duckdb_aggregate,
}


def measure(repeats: int = 3) -> dict[str, float]:
    """Each part's best of `repeats` (its first call also pays its imports, so it is not counted alone)."""
    best = {}
    for name, part in PARTS.items():
        part()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            part()
            times.append(time.perf_counter() - start)
        best[name] = min(times)
    return best


if __name__ == "__main__":
    parts = measure(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
    print(" ".join(f"{name}={seconds:.3f}" for name, seconds in parts.items()), f"total={sum(parts.values()):.3f}")
