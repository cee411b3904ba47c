"""Every multi-asset runs any subset of its assets, so a refresh re-runs exactly what is stale."""

from __future__ import annotations

from dagster import AssetsDefinition

from rootassets.definitions import defs


def test_every_multi_asset_can_run_a_subset_of_its_assets() -> None:
    graph = defs.resolve_asset_graph()
    multi = {graph.get(key).assets_def for key in graph.get_all_asset_keys()}
    unsplittable = [
        a.node_def.name for a in multi if isinstance(a, AssetsDefinition) and len(a.keys) > 1 and not a.can_subset
    ]
    assert unsplittable == []
