"""The private-API adapter against a real instance: it must fail here, loudly, when Dagster changes."""

from __future__ import annotations

import dagster
from dagster import (
    AssetKey,
    DagsterInstance,
    DataVersion,
    Definitions,
    DynamicPartitionsDefinition,
    MaterializeResult,
    asset,
    materialize,
)

from rootassets.dagster_private import SUPPORTED_DAGSTER, FreshnessResolver

PARTS = DynamicPartitionsDefinition(name="releases_under_test")
CONTENT = ["v1"]


@asset(partitions_def=PARTS, code_version="1")
def upstream() -> MaterializeResult:
    """A partitioned asset whose data version is its content's."""
    return MaterializeResult(data_version=DataVersion(CONTENT[0]))


@asset(partitions_def=PARTS, code_version="1", deps=[upstream])
def downstream() -> None:
    """Downstream of it."""


def test_the_dagster_version_is_the_one_the_adapter_was_written_for() -> None:
    assert dagster.__version__.startswith(SUPPORTED_DAGSTER), (
        f"Dagster {dagster.__version__}: re-check rootassets/dagster_private.py (written for {SUPPORTED_DAGSTER}x), "
        "then update SUPPORTED_DAGSTER"
    )


def test_fresh_after_materialization_and_stale_after_upstream_changes() -> None:
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("releases_under_test", ["A", "B"])
    graph = Definitions(assets=[upstream, downstream]).resolve_asset_graph()
    assert not FreshnessResolver(instance, graph).is_fresh(AssetKey("downstream"), "A")  # never materialized
    materialize([upstream, downstream], instance=instance, partition_key="A")
    resolver = FreshnessResolver(instance, graph)
    assert resolver.is_fresh(AssetKey("upstream"), "A") and resolver.is_fresh(AssetKey("downstream"), "A")
    assert not resolver.is_fresh(AssetKey("downstream"), "B")
    materialize([upstream], instance=instance, partition_key="A")  # same content: still fresh
    assert FreshnessResolver(instance, graph).is_fresh(AssetKey("downstream"), "A")
    CONTENT[0] = "v2"
    materialize([upstream], instance=instance, partition_key="A")  # new content: downstream is stale
    assert not FreshnessResolver(instance, graph).is_fresh(AssetKey("downstream"), "A")
