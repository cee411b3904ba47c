"""The step registry: a new analysis step is one function in science/ plus one declaration; the factory does
the rest."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from rootassets.defs.partitions import NEON_RELEASE_PARTITIONS
from rootassets.defs.steps import config_class, step_asset
from rootassets.science.registry import Check, Read, Step, StepInputError, StepResult, UserFile
from rootassets.science.steps import STEPS
from rootassets.warehouse import Location, connect_read_only, connect_writable, replace_partitions
from rootassets_tests.conftest import RELEASE, warehouse_resource


@dataclass(frozen=True)
class DeepestParameters:
    """How deep counts as deep."""

    deep_cm: float = 100.0


def compute_deepest_roots(inputs, params: DeepestParameters) -> StepResult:
    """`analysis.deepest_roots`: per site the deepest increment with roots, and whether it is deep."""
    deepest = (
        inputs["root_profiles"]
        .filter(pl.col("root_density_g_m3") > 0)
        .group_by("site_id")
        .agg(pl.col("bottom_cm").max().alias("deepest_cm"))
    )
    return StepResult({"deepest_roots": deepest.with_columns((pl.col("deepest_cm") >= params.deep_cm).alias("deep"))})


def no_site_twice(frame: pl.DataFrame, inputs, params) -> tuple[bool, dict]:
    return frame["site_id"].is_unique().all(), {"sites": frame.height}


DEEPEST = Step(
    "deepest_roots",
    compute_deepest_roots,
    (Read("harmonized.root_profiles"),),
    ("analysis.deepest_roots",),
    DeepestParameters,
    (Check("deepest_roots", "no_site_twice", "One row per site.", no_site_twice),),
)


def profiles(db: Location) -> Location:
    frame = pl.DataFrame(
        {
            "site_id": ["AAAA", "AAAA", "BBBB"],
            "top_cm": [0.0, 100.0, 0.0],
            "bottom_cm": [10.0, 120.0, 10.0],
            "root_density_g_m3": [5.0, 1.0, 3.0],
            "release": [RELEASE] * 3,
        }
    )
    with connect_writable(db) as con:
        replace_partitions(con, {("harmonized", "root_profiles"): frame}, RELEASE)
    return db


def test_a_new_step_is_one_function_and_one_declaration(tmp_path: Path, warehouse: Location) -> None:
    db = profiles(warehouse)
    asset = step_asset(DEEPEST)
    spec = next(iter(asset.specs))
    assert spec.key == AssetKey(["analysis", "deepest_roots"]) and spec.deps[0].asset_key == AssetKey(
        ["harmonized", "root_profiles"]
    )
    assert spec.description.startswith("`analysis.deepest_roots`: per site the deepest increment")
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(NEON_RELEASE_PARTITIONS, [RELEASE])
        done = materialize(
            [asset],
            instance=instance,
            partition_key=RELEASE,
            resources={"warehouse": warehouse_resource(db)},
            run_config={"ops": {"analysis_deepest_roots": {"config": {"deep_cm": 50.0}}}},
        )
    assert done.success
    assert [e.passed for e in done.get_asset_check_evaluations()] == [True]
    with connect_read_only(db) as con:
        rows = con.execute(
            "select site_id, deepest_cm, deep, release from analysis.deepest_roots order by 1"
        ).fetchall()
    assert rows == [("AAAA", 120.0, True, RELEASE), ("BBBB", 10.0, False, RELEASE)]


def test_every_steps_run_config_has_its_dataclass_defaults() -> None:
    for step in STEPS:
        fields = config_class(step).model_fields
        if step.parameters is None:
            assert not fields, step.name
            continue
        for f in dataclasses.fields(step.parameters):
            default = list(f.default) if isinstance(f.default, tuple) else f.default
            assert fields[f.name].default == default, (step.name, f.name)


@dataclass(frozen=True)
class WeightParameters:
    """An optional user CSV of per-site weights."""

    weights_csv: str | None = None


def compute_weighted(inputs, params: WeightParameters) -> StepResult:
    """`analysis.weighted`: root density times the user's site weight (1 without a file); the previous
    release's densities beside them."""
    table = inputs["root_profiles"].select("site_id", "top_cm", "root_density_g_m3")
    if "weights" in inputs:
        table = table.join(inputs["weights"], on="site_id", how="left")
        if table["weight"].is_null().any():
            site = table.filter(pl.col("weight").is_null())["site_id"][0]
            raise StepInputError(f"{params.weights_csv}: no weight for site {site}")
    else:
        table = table.with_columns(pl.lit(1.0).alias("weight"))
    before = inputs["previous_root_profiles"].select("site_id", "top_cm", pl.col("root_density_g_m3").alias("before"))
    return StepResult({"weighted": table.join(before, on=["site_id", "top_cm"], how="left")})


WEIGHTED = Step(
    "weighted",
    compute_weighted,
    (Read("harmonized.root_profiles"), Read("harmonized.root_profiles", previous_release=True)),
    ("analysis.weighted",),
    WeightParameters,
    files=(UserFile("weights", "weights_csv"),),
)


def run_weighted(db: Path, config: dict, release: str = RELEASE):
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(NEON_RELEASE_PARTITIONS, [release])
        return materialize(
            [step_asset(WEIGHTED)],
            instance=instance,
            partition_key=release,
            resources={"warehouse": warehouse_resource(db)},
            run_config={"ops": {"analysis_weighted": {"config": config}}},
            raise_on_error=False,
        )


def test_a_step_reads_a_user_file_and_the_previous_release(tmp_path: Path, warehouse: Location) -> None:
    db = profiles(warehouse)
    later = "RELEASE-2022"
    older = pl.DataFrame({"site_id": ["AAAA"], "top_cm": [0.0], "bottom_cm": [10.0], "root_density_g_m3": [9.0]})
    with connect_writable(db) as con:
        replace_partitions(
            con, {("harmonized", "root_profiles"): older.with_columns(pl.lit(later).alias("release"))}, later
        )
    weights = tmp_path / "weights.csv"
    weights.write_text("site_id,weight\nAAAA,2.0\nBBBB,0.5\n")
    assert run_weighted(db, {"weights_csv": str(weights)}, later).success
    assert run_weighted(db, {}).success  # the first release: no previous rows, no file
    with connect_read_only(db) as con:
        rows = con.execute("select release, site_id, top_cm, weight, before from analysis.weighted order by all")
        assert rows.fetchall() == [
            (RELEASE, "AAAA", 0.0, 1.0, None),
            (RELEASE, "AAAA", 100.0, 1.0, None),
            (RELEASE, "BBBB", 0.0, 1.0, None),
            (later, "AAAA", 0.0, 2.0, 5.0),
        ]


def test_a_bad_user_file_fails_the_step_in_one_line_and_keeps_the_old_rows(tmp_path: Path, warehouse: Location) -> None:
    db = profiles(warehouse)
    assert run_weighted(db, {}).success
    missing = tmp_path / "nope.csv"
    short = tmp_path / "short.csv"
    short.write_text("site_id,weight\nAAAA,2.0\n")
    for path, says in ((missing, "nope.csv"), (short, "no weight for site BBBB")):
        result = run_weighted(db, {"weights_csv": str(path)})
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        assert says in failure.event_specific_data.error.message
    with connect_read_only(db) as con:
        assert con.execute("select count(*), min(weight) from analysis.weighted").fetchall() == [(3, 1.0)]


@pytest.mark.duckdb_file  # the file's lock: a lake has none
def test_a_session_shares_one_connection_and_releases_the_file_after(tmp_path: Path, warehouse: Location) -> None:
    """A step reads all its inputs through one connection (opening the file per read cost seconds per refresh);
    the file's lock is released when the session ends, so a reader gets in."""
    db = profiles(warehouse)
    resource = warehouse_resource(db)
    with resource.session():
        with resource.get_connection() as first, resource.get_connection() as second:
            assert first is second
        frame = resource.read("harmonized", "root_profiles", RELEASE)
        with resource.session(), resource.get_connection() as nested:  # a nested session is the same one
            assert nested is first
        assert not other_process_reads(db)  # held for the block: another process waits for it
    assert frame.height == 3
    assert other_process_reads(db)
    with resource.get_connection() as after:
        assert after is not first


def other_process_reads(db: Path) -> bool:
    """Whether another process can open `db` read-only right now."""
    probe = f"import duckdb; duckdb.connect({str(db)!r}, read_only=True).close()"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60).returncode == 0
