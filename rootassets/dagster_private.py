"""The one place rootassets uses Dagster's private API: the stale-status resolver behind the UI's "up to date".

Dagster 1.13 has no public call that says whether an asset partition is fresh (same code version and
upstream data versions as its last materialization); the CLI needs exactly that to skip what is up to
date. `rootassets_tests/test_dagster_private.py` checks this adapter against a real instance and fails
loudly, naming this module, when a Dagster upgrade changes it.
"""

from __future__ import annotations

from typing import Any

from dagster import AssetKey, DagsterInstance

SUPPORTED_DAGSTER = "1.13."


class FreshnessResolver:
    """Whether asset partitions are fresh in Dagster's eyes; caches what it read (valid until something is
    materialized)."""

    def __init__(self, instance: DagsterInstance, graph: Any) -> None:
        from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
        from dagster._core.loader import LoadingContext

        class _Loading(LoadingContext):
            def __init__(self) -> None:
                self._loaders: dict = {}

            @property
            def instance(self) -> DagsterInstance:
                return instance

            @property
            def loaders(self) -> dict:
                return self._loaders

        self._fresh = StaleStatus.FRESH
        self._resolver = CachingStaleStatusResolver(instance, graph, _Loading())

    def is_fresh(self, key: AssetKey, partition: str | None) -> bool:
        return self._resolver.get_status(key, partition) == self._fresh
