"""Shared fixtures: the real snapshot, temporary homes, a NEON mirror on 127.0.0.1."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetKey, AssetsDefinition, DagsterInstance, ExecuteInProcessResult, materialize
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph

from rootassets.defs.partitions import NEON_RELEASE_PARTITIONS
from rootassets.defs.resources import NeonSourceResource, WarehouseResource
from rootassets.neon.client import NeonClient, RetryPolicy
from rootassets.neon.mirror import FaultPlan, MirrorCatalogue, MirrorServer
from rootassets.neon.tokens import unsigned_token
from rootassets.refresh import declared_sites, site_partition_key, split_at_site_partitions
from rootassets.settings import Settings
from rootassets_tests.postgres import postgres  # noqa: F401 - a real PostgreSQL server, for any test that asks

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = (REPO / ".." / "shared" / "neon-snapshot").resolve()
RELEASE = "RELEASE-2021"
MATERIALIZED = re.compile(r"^  (\[\d+/\d+\] )?materialized \S+$")  # an asset `rootassets materialize` says it did
# Fast retries for tests: same logic, shorter waits.
FAST_RETRIES = RetryPolicy(attempts=6, backoff_base_s=0.01, backoff_max_s=0.05, read_timeout_s=5.0)


@pytest.fixture(scope="session")
def snapshot() -> Path:
    if not (SNAPSHOT / RELEASE).is_dir():
        pytest.fail(f"the NEON snapshot is expected at {SNAPSHOT} (../shared/neon-snapshot from the repo root)")
    return SNAPSHOT


@pytest.fixture(scope="session")
def catalogue(snapshot: Path) -> MirrorCatalogue:
    return MirrorCatalogue(snapshot)


def make_token(days: float = 30.0) -> str:
    """A JWT-shaped NEON token that the mirror accepts until it expires (in `days`)."""
    return unsigned_token(time.time() + days * 86400)


@pytest.fixture()
def neon_token(monkeypatch: pytest.MonkeyPatch) -> str:
    token = make_token()
    monkeypatch.setenv("NEON_TOKEN", token)
    return token


@pytest.fixture()
def mirror(catalogue: MirrorCatalogue, neon_token: str) -> Iterator[MirrorServer]:
    """The mirror with token enforcement on, and a valid NEON_TOKEN in the environment."""
    with MirrorServer(catalogue, faults=FaultPlan()) as server:
        yield server


@pytest.fixture()
def client(mirror: MirrorServer) -> Iterator[NeonClient]:
    with NeonClient(mirror.base_url, policy=FAST_RETRIES) as c:
        yield c


@pytest.fixture()
def snapshot_settings(tmp_path: Path, snapshot: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        snapshot=snapshot,
        api_url="http://127.0.0.1:9/api/v0/",
        site_attributes=snapshot / "site-attributes",
    )


def asset_resources(settings: Settings, api_url: str | None = None) -> dict[str, object]:
    """The project's resources on `settings`; with `api_url`, read through that (mirror) API."""
    return {
        "warehouse": WarehouseResource(database=str(settings.database)),
        "neon": NeonSourceResource(
            snapshot_dir=None if api_url else str(settings.snapshot),
            api_url=api_url or settings.api_url,
            download_dir=str(settings.downloads),
            site_attributes_dir=str(settings.site_attributes),
            soil_water_dir=str(settings.soil_water) if settings.soil_water else None,
            soil_water_window=settings.soil_water_window,
            soil_water_workers=settings.soil_water_workers,
            http_attempts=3,
            http_backoff_s=0.01,
            http_timeout_s=5.0,
        ),
    }


def run_assets(
    settings: Settings,
    assets: list[AssetsDefinition],
    api_url: str | None = None,
    release: str = RELEASE,
    raise_on_error: bool = True,
    run_config: dict | None = None,
) -> PhasedResult:
    """Materialize `assets` in process for one release on a temporary DuckDB, as a refresh orders them: the
    release assets, then each site partition the release declared (one run each), then the release assets
    downstream of the sites. Each run commits itself. `run_config` is the first run's (the release assets')."""
    # Entered, the instance is the current one for Dagster's definitions-state lookups during the run; a
    # pointer left by an earlier test's instance (already deleted) would otherwise be used.
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(NEON_RELEASE_PARTITIONS, [release])
        graph = AssetGraph.from_assets(assets)
        keys = [k for a in assets for k in a.keys]
        before, site_keys, after = split_at_site_partitions(graph, keys)
        by_key = {k: a for a in assets for k in a.keys}
        resources = asset_resources(settings, api_url)
        results: list[ExecuteInProcessResult] = []

        def run(selected: list[AssetKey], partition: str, config: dict | None = None) -> bool:
            chosen = list({id(by_key[k]): by_key[k] for k in selected}.values())
            results.append(
                materialize(
                    chosen,
                    selection=selected,
                    resources=resources,
                    partition_key=partition,
                    instance=instance,
                    raise_on_error=raise_on_error,
                    run_config=config,
                )
            )
            return results[-1].success

        if before and not run(before, release, run_config):
            return PhasedResult(results)
        if site_keys:
            partitions_def = graph.get(site_keys[0]).partitions_def
            for site in declared_sites(instance, graph, site_keys, release):
                run(site_keys, site_partition_key(partitions_def, release, site))
        if after:
            run(after, release)
        return PhasedResult(results)


class PhasedResult:
    """The runs of one `run_assets` call, read as one result."""

    def __init__(self, results: list[ExecuteInProcessResult]) -> None:
        self.results = results

    @property
    def success(self) -> bool:
        return all(r.success for r in self.results)

    @property
    def all_events(self) -> list:
        return [e for r in self.results for e in r.all_events]

    def get_asset_materialization_events(self) -> list:
        return [e for r in self.results for e in r.get_asset_materialization_events()]

    def asset_materializations_for_node(self, node: str) -> list:
        return [m for r in self.results for m in r.asset_materializations_for_node(node)]

    def get_asset_check_evaluations(self) -> list:
        return [e for r in self.results for e in r.get_asset_check_evaluations()]


@pytest.fixture(autouse=True)
def _clear_dagster_defs_state_storage() -> Iterator[None]:
    """Dagster's schedule test context (with instance_for_test) leaves a context-wide pointer to a
    disposed instance behind; a later materialize() in the same process would trip on it. Cleared before
    each test as well as after: a module-scoped fixture's teardown can leave one between two tests.

    An instance entered and never exited keeps a `set_defs_state_storage` generator; when the garbage
    collector closes it, its `finally` resets the pointer to the value before it, a disposed instance's,
    at whatever moment the collection runs (it once did in the middle of a test). Collecting first runs
    those finalizers here, before the pointer is cleared."""
    import gc

    from dagster._core.storage.defs_state.base import _current_storage

    gc.collect()
    _current_storage.set(None)
    yield
    gc.collect()
    _current_storage.set(None)


VISIBLE_SCHEMAS = ("raw", "harmonized", "analysis", "marts", "quarantine")


def warehouse_digest(db: Path) -> dict[str, tuple[int, str]]:
    """{schema.table: (rows, digest of the rows)} of every visible table, waiting while a writer holds the file."""
    from rootassets.warehouse import connect_read_only

    if not db.exists():
        return {}
    with connect_read_only(db, attempts=600) as con:
        names = [
            t
            for (t,) in con.execute(
                "select table_schema || '.' || table_name from information_schema.tables "
                "where table_schema in (select unnest(?)) and table_type = 'BASE TABLE'",
                [list(VISIBLE_SCHEMAS)],
            ).fetchall()
        ]
        return {
            name: tuple(
                con.execute(
                    "select count(*), md5(coalesce(string_agg(md5(t::varchar), '' order by md5(t::varchar)), '')) "
                    f"from {name} t"
                ).fetchone()
            )
            for name in sorted(names)
        }


def staged_refreshes(db: Path) -> list[str]:
    """The refreshes that still have staged (invisible) tables."""
    from rootassets.warehouse import connect_read_only

    with connect_read_only(db, attempts=600) as con:
        exists = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'meta' "
            "and table_name = 'staged_tables'"
        ).fetchone()[0]
        return (
            [r for (r,) in con.execute("select distinct refresh_id from meta.staged_tables").fetchall()]
            if exists
            else []
        )


def random_kill_point(low: float, high: float) -> tuple[float, int]:
    """A random kill point in [low, high] (seconds, or a count of materializations) and the seed that drew it;
    ROOTASSETS_KILL_SEED=<seed> replays a failing draw."""
    import random

    seed = int(os.environ.get("ROOTASSETS_KILL_SEED") or random.SystemRandom().randrange(2**32))
    return round(random.Random(seed).uniform(low, high), 2), seed
