"""How a refresh (`rootassets.refresh.Refresh`) splits its work into runs, on a toy graph shaped as the platform's:
an observable NEON source, a raw table read from it, and a release asset computed from the raw table (one of them
in the worker pool). A phase that is stale as a whole joins the run before it; one that is partly fresh waits for
that run, so an unchanged re-read leaves what follows it fresh."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import (
    AssetIn,
    AssetKey,
    AssetSpec,
    BetaWarning,
    DagsterInstance,
    DataVersion,
    Definitions,
    DynamicPartitionsDefinition,
    ObserveResult,
    Output,
    asset,
    define_asset_job,
    in_process_executor,
    multi_observable_source_asset,
)

import rootassets.refresh as refresh_module
from rootassets.refresh import Refresh, RefreshReport
from rootassets.science.workers import WORKERS_TAG

RELEASE = "RELEASE-2099"
releases = DynamicPartitionsDefinition(name="toy_release")
SOURCE = AssetKey(["neon", "toy"])
RAW = AssetKey(["raw", "toy"])
POOLED = AssetKey(["analysis", "toy_model"])
FIGURE = AssetKey(["reports", "toy_figure"])


class World:
    """What NEON publishes (the source's fingerprint) and what reading it gives (the raw table's content)."""

    published = "v1"
    content = "rows-1"


def toy_definitions() -> Definitions:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)

        @multi_observable_source_asset(specs=[AssetSpec(SOURCE)], partitions_def=releases, can_subset=True)
        def toy_source() -> Iterator[ObserveResult]:
            yield ObserveResult(asset_key=SOURCE, data_version=DataVersion(World.published))

    @asset(key=RAW, deps=[SOURCE], partitions_def=releases, code_version="1")
    def raw_toy() -> Output[str]:
        return Output(World.content, data_version=DataVersion(World.content))

    @asset(key=POOLED, ins={"raw_toy": AssetIn(RAW)}, partitions_def=releases, code_version="1", tags=WORKERS_TAG)
    def toy_model(raw_toy: str) -> str:
        return f"model of {raw_toy}"

    @asset(key=FIGURE, ins={"toy_model": AssetIn(POOLED)}, partitions_def=releases, code_version="1")
    def toy_figure(toy_model: str) -> str:
        return f"figure of {toy_model}"

    job = define_asset_job("toy_job", selection="*", executor_def=in_process_executor)
    return Definitions(assets=[toy_source, raw_toy, toy_model, toy_figure], jobs=[job])


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    World.published, World.content = "v1", "rows-1"
    (tmp_path / "dagster").mkdir()
    with DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster")) as instance:
        instance.add_dynamic_partitions("toy_release", [RELEASE])
        yield instance


@pytest.fixture
def warm_ups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each time the refresh starts the worker pool (recorded, not started)."""
    calls: list[str] = []
    monkeypatch.setattr(refresh_module, "start_workers", lambda: calls.append("start"))
    return calls


def refresh(instance: DagsterInstance, tmp_path: Path) -> RefreshReport:
    defs = toy_definitions()
    return Refresh(
        instance=instance,
        defs=defs,
        job_name="toy_job",
        database=tmp_path / "absent.duckdb",  # no DuckDB file: nothing staged to commit
        release=RELEASE,
        keys=[RAW, POOLED, FIGURE],
        say=lambda line: None,
    ).run()


def materialized_in(instance: DagsterInstance, run_id: str) -> set[str]:
    records = instance.get_records_for_run(run_id).records
    return {
        r.event_log_entry.dagster_event.asset_key.to_user_string()
        for r in records
        if r.event_log_entry.dagster_event is not None
        and r.event_log_entry.dagster_event.is_step_materialization
        and r.event_log_entry.dagster_event.asset_key is not None
    }


def test_a_first_refresh_observes_reads_and_computes_in_one_run(
    instance: DagsterInstance, tmp_path: Path, warm_ups: list[str]
) -> None:
    report = refresh(instance, tmp_path)
    assert len(report.runs) == 1  # every phase was missing, so none could wait on another
    assert report.observed == ["neon/toy"]
    assert sorted(report.materialized) == ["analysis/toy_model", "raw/toy", "reports/toy_figure"]
    assert warm_ups  # a pooled step was ahead (starting the pool is idempotent: asked once per phase)


def test_nothing_changed_nothing_but_the_observation_runs_and_no_pool_starts(
    instance: DagsterInstance, tmp_path: Path, warm_ups: list[str]
) -> None:
    refresh(instance, tmp_path)
    warm_ups.clear()
    again = refresh(instance, tmp_path)
    assert len(again.runs) == 1 and again.materialized == []  # the observation alone
    assert sorted(again.fresh) == ["analysis/toy_model", "raw/toy", "reports/toy_figure"]
    assert warm_ups == []


def test_a_republished_source_with_the_same_content_is_re_read_and_nothing_after_it_recomputed(
    instance: DagsterInstance, tmp_path: Path, warm_ups: list[str]
) -> None:
    refresh(instance, tmp_path)
    warm_ups.clear()
    World.published = "v2"  # NEON republished the files, with the same rows
    report = refresh(instance, tmp_path)
    assert [sorted(materialized_in(instance, r)) for r in report.runs] == [[], ["raw/toy"]]
    assert sorted(report.fresh) == ["analysis/toy_model", "reports/toy_figure"]
    assert warm_ups  # new sources: the pool is started while the raw table is read, in case the rows changed


def test_a_source_with_new_content_recomputes_what_follows_in_a_run_of_its_own(
    instance: DagsterInstance, tmp_path: Path, warm_ups: list[str]
) -> None:
    refresh(instance, tmp_path)
    World.published, World.content = "v2", "rows-2"
    report = refresh(instance, tmp_path)
    assert [sorted(materialized_in(instance, r)) for r in report.runs] == [
        [],
        ["raw/toy"],
        ["analysis/toy_model", "reports/toy_figure"],
    ]
    assert report.fresh == []
