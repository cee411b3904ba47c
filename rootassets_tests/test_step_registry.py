"""The step registry: a new analysis step is one function in science/ plus one declaration; the factory does
the rest."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
from dagster import AssetKey, DagsterInstance, materialize

from rootassets.defs.partitions import NEON_RELEASE_PARTITIONS
from rootassets.defs.resources import WarehouseResource
from rootassets.defs.steps import config_class, step_asset
from rootassets.science.registry import Check, Read, Step, StepResult
from rootassets.science.steps import STEPS
from rootassets.warehouse import replace_partitions
from rootassets_tests.conftest import RELEASE


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


def profiles(tmp_path: Path) -> Path:
    db = tmp_path / "w.duckdb"
    frame = pl.DataFrame(
        {
            "site_id": ["AAAA", "AAAA", "BBBB"],
            "top_cm": [0.0, 100.0, 0.0],
            "bottom_cm": [10.0, 120.0, 10.0],
            "root_density_g_m3": [5.0, 1.0, 3.0],
            "release": [RELEASE] * 3,
        }
    )
    with duckdb.connect(str(db)) as con:
        replace_partitions(con, {("harmonized", "root_profiles"): frame}, RELEASE)
    return db


def test_a_new_step_is_one_function_and_one_declaration(tmp_path: Path) -> None:
    db = profiles(tmp_path)
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
            resources={"warehouse": WarehouseResource(database=str(db))},
            run_config={"ops": {"analysis_deepest_roots": {"config": {"deep_cm": 50.0}}}},
        )
    assert done.success
    assert [e.passed for e in done.get_asset_check_evaluations()] == [True]
    with duckdb.connect(str(db), read_only=True) as con:
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
