"""Shared fixtures: the real snapshot, temporary homes, a NEON mirror on 127.0.0.1, the warehouse backend.

The suite runs on either warehouse backend: `pytest` on the DuckDB file (the default), `pytest --warehouse=lake`
on DuckLake, each test module and each test with a lake of its own (a new database in the session's real
PostgreSQL and a new data folder), given through ROOTASSETS_WAREHOUSE and ROOTASSETS_LAKE_DATA as a user gives
them, so that the CLI's subprocesses and Dagster's run workers inherit it. Tests of the DuckDB file itself (its
lock, its size and time) are marked `duckdb_file` and skipped on the lake.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Callable, Iterator
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
from rootassets.settings import LakeLocation, Settings
from rootassets.warehouse import Location
from rootassets_tests.postgres import postgres  # noqa: F401 - a real PostgreSQL server, for any test that asks

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = (REPO / ".." / "shared" / "neon-snapshot").resolve()
RELEASE = "RELEASE-2021"
MATERIALIZED = re.compile(r"^  (\[\d+/\d+\] )?materialized \S+$")  # an asset `rootassets materialize` says it did
# Fast retries for tests: same logic, shorter waits.
FAST_RETRIES = RetryPolicy(attempts=6, backoff_base_s=0.01, backoff_max_s=0.05, read_timeout_s=5.0)


BACKEND_VARIABLES = ("ROOTASSETS_WAREHOUSE", "ROOTASSETS_LAKE_DATA")
_lakes = itertools.count()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--warehouse",
        choices=("duckdb", "lake"),
        default="duckdb",
        help="the warehouse backend the suite runs on: the DuckDB file (default) or a DuckLake on a real PostgreSQL",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--warehouse") != "lake":
        return
    skip = pytest.mark.skip(reason="a test of the DuckDB file itself (its lock, size or time): not on a lake")
    for item in items:
        if item.get_closest_marker("duckdb_file"):
            item.add_marker(skip)


def _use_new_lake(request: pytest.FixtureRequest, patch: pytest.MonkeyPatch, folder: Path) -> None:
    """On `--warehouse=lake`, point ROOTASSETS_WAREHOUSE and ROOTASSETS_LAKE_DATA at a new, empty lake; on the
    file backend, make sure neither is set (a developer's shell may have them)."""
    if request.config.getoption("--warehouse") != "lake":
        for name in BACKEND_VARIABLES:
            patch.delenv(name, raising=False)
        return
    server = request.getfixturevalue("postgres")
    dsn = server.create_database(f"lake_{os.getpid()}_{next(_lakes)}")
    patch.setenv("ROOTASSETS_WAREHOUSE", "ducklake:postgres:" + dsn)
    patch.setenv("ROOTASSETS_LAKE_DATA", str(folder))


@pytest.fixture(scope="module", autouse=True)
def _module_warehouse(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The backend for a module's shared fixtures (a home materialized once per module)."""
    with pytest.MonkeyPatch.context() as patch:
        _use_new_lake(request, patch, tmp_path_factory.mktemp("module-lake"))
        yield


@pytest.fixture(autouse=True)
def _test_warehouse(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The backend for a test's own homes: a new home is a new, empty warehouse on either backend."""
    _use_new_lake(request, monkeypatch, tmp_path / "lake-data")


@pytest.fixture()
def new_warehouse(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Callable[[], dict]:
    """Backend variables of one more empty warehouse, for a test's second home: none on the file backend (the
    file follows ROOTASSETS_HOME), a new lake on `--warehouse=lake`."""

    def make() -> dict[str, str]:
        with pytest.MonkeyPatch.context() as patch:
            _use_new_lake(request, patch, tmp_path_factory.mktemp("lake"))
            return {name: os.environ[name] for name in BACKEND_VARIABLES if name in os.environ}

    return make


@pytest.fixture()
def warehouse(tmp_path: Path) -> Location:
    """An empty warehouse of this test's backend: a DuckDB file under tmp_path, or the test's own lake."""
    return warehouse_of({**os.environ, "ROOTASSETS_HOME": str(tmp_path)})


def warehouse_resource(location: Location) -> WarehouseResource:
    """The warehouse resource on `location` (a DuckDB file or a lake)."""
    if isinstance(location, LakeLocation):
        return WarehouseResource(database=location.spec, lake_data=location.data_path)
    return WarehouseResource(database=str(location))


@pytest.fixture()
def clone_warehouse(request: pytest.FixtureRequest) -> Callable[[dict], dict]:
    """Backend variables of a copy of the warehouse a CLI environment wrote, for a test that copies a home: none
    on the file backend (copying the home copies the file), a new database made from the lake's catalog as its
    template on `--warehouse=lake` (the copy shares the data folder: Parquet files are never rewritten, a copy's
    new files get new names)."""

    def make(env: dict[str, str]) -> dict[str, str]:
        if not env.get("ROOTASSETS_WAREHOUSE"):
            return {}
        from rootassets.settings import postgres_fields

        lake = LakeLocation.parse(env["ROOTASSETS_WAREHOUSE"], env["ROOTASSETS_LAKE_DATA"])
        server = request.getfixturevalue("postgres")
        template = str(postgres_fields(lake.dsn)["db_name"])
        dsn = server.create_database(f"lake_{os.getpid()}_{next(_lakes)}", template=template)
        return {"ROOTASSETS_WAREHOUSE": "ducklake:postgres:" + dsn, "ROOTASSETS_LAKE_DATA": lake.data_path}

    return make


def backend_fields() -> dict[str, str]:
    """`Settings` fields of the backend this test runs on (from the environment the fixtures above set)."""
    warehouse = os.environ.get("ROOTASSETS_WAREHOUSE")
    return {"warehouse": warehouse, "lake_data": os.environ["ROOTASSETS_LAKE_DATA"]} if warehouse else {}


def settings_on_backend(*args: object, **fields: object) -> Settings:
    """`Settings(*args, **fields)` on this test's warehouse backend."""
    return Settings(*args, **{**backend_fields(), **fields})  # type: ignore[arg-type]


def warehouse_of(env: dict[str, str]) -> Location:
    """The warehouse a CLI environment (ROOTASSETS_HOME and the backend variables) writes."""
    if env.get("ROOTASSETS_WAREHOUSE"):
        return LakeLocation.parse(env["ROOTASSETS_WAREHOUSE"], env.get("ROOTASSETS_LAKE_DATA"))
    return Path(env["ROOTASSETS_HOME"]) / "rootassets.duckdb"


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
    return settings_on_backend(
        home=tmp_path / "home",
        snapshot=snapshot,
        api_url="http://127.0.0.1:9/api/v0/",
        site_attributes=snapshot / "site-attributes",
    )


def asset_resources(settings: Settings, api_url: str | None = None) -> dict[str, object]:
    """The project's resources on `settings`; with `api_url`, read through that (mirror) API."""
    return {
        "warehouse": warehouse_resource(settings.database),
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


def warehouse_digest(db: Location) -> dict[str, tuple[int, str]]:
    """{schema.table: (rows, digest of the rows)} of every visible table, waiting while a writer holds the file."""
    from rootassets.warehouse import connect_read_only

    if not db.exists():
        return {}
    with connect_read_only(db, attempts=600) as con:
        names = [
            t
            for (t,) in con.execute(
                "select table_schema || '.' || table_name from information_schema.tables "
                "where table_catalog = current_database() and table_schema in (select unnest(?)) "
                "and table_type = 'BASE TABLE'",
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


def staged_refreshes(db: Location) -> list[str]:
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
