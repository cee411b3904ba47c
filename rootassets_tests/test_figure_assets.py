"""The figures' step in process: one figure that cannot be drawn fails the step, naming it, and the figures
drawn beside it are written and materialized all the same."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, materialize

from rootassets.defs import reports
from rootassets.defs.partitions import NEON_RELEASE_PARTITIONS
from rootassets.defs.resources import ArtifactStore
from rootassets.settings import Settings
from rootassets.warehouse import connect_writable, replace_partitions
from rootassets_tests.conftest import RELEASE, warehouse_resource
from rootassets_tests.test_figures import failing_draw, group_tests, phi_table

PHI, FACTORS = AssetKey(["reports", "figure_3_phi"]), AssetKey(["reports", "figure_2_factors"])


def seeded_tables() -> dict[tuple[str, str], pl.DataFrame]:
    """The tables figures 2 and 3 read, for seven invented sites (test_figures' phi and group tests)."""
    phi = phi_table()
    sites = phi["site_id"].unique(maintain_order=True).to_list()
    return {
        ("analysis", "phi"): phi,
        ("analysis", "group_tests"): group_tests(),
        ("analysis", "classifier_importance"): pl.DataFrame({"run": ["all_factors"], "factor": ["x"]}),
        ("analysis", "site_factors"): pl.DataFrame({"site_id": sites, "modality": ["bimodal"] * 3 + ["unimodal"] * 4}),
    }


def test_a_figure_that_cannot_be_drawn_fails_the_step_naming_it_and_the_others_are_written(
    snapshot_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path(snapshot_settings.database).parent.mkdir(parents=True, exist_ok=True)
    with connect_writable(snapshot_settings.database) as con:
        tables = {key: frame.with_columns(release=pl.lit(RELEASE)) for key, frame in seeded_tables().items()}
        replace_partitions(con, tables, RELEASE)
    planted = tuple(
        dataclasses.replace(spec, draw=failing_draw) if spec.name == "figure_2_factors" else spec
        for spec in reports.FIGURES
    )
    monkeypatch.setattr(reports, "FIGURES", planted)
    home = tmp_path / "artifacts"
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(NEON_RELEASE_PARTITIONS, [RELEASE])
        result = materialize(
            [reports.figures],
            selection=[PHI, FACTORS],
            resources={
                "warehouse": warehouse_resource(snapshot_settings.database),
                "artifacts": ArtifactStore(home=str(home)),
            },
            partition_key=RELEASE,
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    assert [m.asset_key for m in result.asset_materializations_for_node("reports__figures")] == [PHI]
    assert (home / "figures" / RELEASE / "figure_3_phi.png").stat().st_size > 0
    assert not (home / "figures" / RELEASE / "figure_2_factors.png").exists()
    [failure] = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    error = failure.step_failure_data.user_failure_data
    assert failure.step_failure_data.error.cls_name == "Failure"
    assert error.description == f"1 of 2 figures could not be drawn for {RELEASE}: figure_2_factors"
    assert "figure_2_factors" in error.metadata["errors"].value and "planted" in error.metadata["errors"].value
