"""The checks a user sees in the UI: one per raw, harmonized and mart table, and visibility on every asset."""

from __future__ import annotations

from rootassets.definitions import defs
from rootassets.refresh import VISIBLE_CHECK


def test_every_table_has_a_check_of_its_own_and_every_asset_a_visibility_check() -> None:
    graph = defs.resolve_asset_graph()
    checks = graph.asset_check_keys
    materializable = [k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
    own = {c.asset_key for c in checks if c.name != VISIBLE_CHECK}
    tables = [k for k in materializable if k.path[0] in ("raw", "harmonized", "marts")]
    assert tables and [k.to_user_string() for k in tables if k not in own] == []
    assert {c.asset_key for c in checks if c.name == VISIBLE_CHECK} == set(materializable)


def test_the_main_job_leaves_the_visibility_checks_to_the_refresh() -> None:
    # Run inside the job they would report "not yet visible" before the commit; the refresh reports them instead.
    job = defs.resolve_job_def("main_job")
    in_job = {c.name for c in job.asset_layer.asset_graph.asset_check_keys}
    assert "quarantine_share" in in_job and "unique" in in_job
    assert VISIBLE_CHECK not in in_job and VISIBLE_CHECK not in job.graph.node_names()
