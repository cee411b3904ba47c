"""The worker pool started ahead of the parallel steps: the steps get the warmed workers."""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rootassets.science import workers


def _pid_and_modules() -> tuple[int, set[str]]:
    return os.getpid(), set(sys.modules)


def test_the_steps_get_the_workers_that_imported_their_modules_in_the_background(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from joblib import Parallel, delayed

    monkeypatch.setattr(workers, "_warming", [])
    monkeypatch.setattr(workers, "warmed_pids", [])
    workers.start_workers(2)
    workers.start_workers(2)  # once a process
    [collector] = workers._warming
    collector.join(timeout=120)
    warmed = set(workers.warmed_pids)  # the warm-up's own answers: the pids that imported
    assert len(workers.warmed_pids) == 2 and warmed
    seen = Parallel(n_jobs=2)(delayed(_pid_and_modules)() for _ in range(4))
    assert {pid for pid, _ in seen} <= warmed
    assert all(set(workers.WARM_MODULES) <= modules for _, modules in seen)


def test_the_assets_whose_steps_run_in_the_pool_say_so() -> None:
    from rootassets.definitions import defs
    from rootassets.science.figure_specs import FIGURES

    graph = defs.resolve_asset_graph()
    tagged = {
        key.to_user_string()
        for key in graph.get_all_asset_keys()
        if workers.WORKERS_TAG.items() <= graph.get(key).tags.items()
    }
    assert tagged == {
        "analysis/classifier_performance",
        "analysis/classifier_importance",
        "analysis/classifier_model",
        "analysis/site_label_robustness",
        "analysis/site_label_sensitivity",
        "reports/site_pages",
        *(f"reports/{spec.name}" for spec in FIGURES),  # drawn together in the pool
    }


@given(requested=st.integers(0, 64), items=st.one_of(st.none(), st.integers(0, 200)), cores=st.integers(1, 16))
def test_the_worker_count_is_what_was_asked_or_one_per_core_within_the_work(
    requested: int, items: int | None, cores: int
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "cpu_count", lambda: cores)
        count = workers.worker_count(requested, items)
    wanted = requested or cores
    assert count == (max(1, min(wanted, items)) if items is not None else wanted)
    assert count >= 1 and (items is None or items == 0 or count <= items)
