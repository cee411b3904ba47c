"""Resources: the DuckDB warehouse and the NEON data source."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl
from dagster import ConfigurableResource, InitResourceContext
from dagster_duckdb import DuckDBResource
from pydantic import Field, PrivateAttr

from rootassets.neon.api_source import ApiSource, parse_window
from rootassets.neon.client import DEFAULT_API_URL, RetryPolicy
from rootassets.neon.open import open_source
from rootassets.neon.site_attributes import load_site_attributes
from rootassets.neon.soil_water import SOIL_WATER_PRODUCT, soil_water_folder
from rootassets.neon.source import NeonSource
from rootassets.neon.stacking import StackedTable
from rootassets.refresh import finish_run, mark_worker
from rootassets.settings import DEFAULT_FILES_URL
from rootassets.warehouse import (
    connect_writable,
    qualified,
    read_release,
    replace_partitions,
    table_columns,
    transaction,
)
from rootassets.warehouse.connection import Location
from rootassets.warehouse.lake import LakeLocation, is_lake
from rootassets.warehouse.staging import (
    EVERY_SITE,
    REFRESH_TAG,
    SiteScope,
    exists,
    is_staged,
    preview_commit,
    read_as_committed,
    stage,
    stage_statement,
    validate_refresh,
    write_queries,
)


class WarehouseResource(DuckDBResource):
    """The rootassets DuckDB file; its folder is created on first use.

    Inside a run, writes are staged under the run's refresh id and become
    visible together when the run succeeds (see `rootassets.warehouse.staging`); the
    run's own steps read what it staged. A run tagged `rootassets/refresh`
    belongs to a refresh that its launcher (the CLI) commits itself; any other
    run commits or discards itself as its resources are torn down
    (`rootassets.refresh.finish_run`).
    """

    lake_data: str | None = Field(
        default=None, description="ROOTASSETS_LAKE_DATA: the DuckLake's data path, when `database` is a lake"
    )
    _refresh_id: str | None = PrivateAttr(default=None)
    _commits_at_end: bool = PrivateAttr(default=False)
    _session: duckdb.DuckDBPyConnection | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        run = context.run
        if run is not None:
            self._refresh_id = validate_refresh(run.tags.get(REFRESH_TAG, run.run_id))
            self._commits_at_end = REFRESH_TAG not in run.tags
            if self._commits_at_end and context.instance is not None:
                mark_worker(context.instance, run)  # so a killed worker is found and its staging discarded

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if not self._commits_at_end or self._refresh_id is None or context.instance is None or context.run is None:
            return
        message = finish_run(context.instance, context.run, self.location)
        if message and context.log is not None:
            context.log.info(f"rootassets: {message}")

    @property
    def location(self) -> Location:
        """The DuckDB file, or the DuckLake catalog when `database` is a `ducklake:` string."""
        if is_lake(self.database):
            return LakeLocation.parse(self.database, self.lake_data)
        return Path(self.database)

    @property
    def refresh_id(self) -> str | None:
        return self._refresh_id

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A writable connection, waiting (polling every <= 0.5 s, up to 10 min) while another process holds the
        file's lock: site partitions running side by side take it in turn to write their rows. Inside `session()`
        it is the session's connection."""
        if self._session is not None:
            yield self._session
            return
        location = self.location
        if isinstance(location, Path):
            location.parent.mkdir(parents=True, exist_ok=True)
        con = connect_writable(location)
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def session(self) -> Iterator[None]:
        """Every read and write inside the block shares one connection (opening the file costs ~25 ms, and a
        step reads several tables). Keep the block short: it holds the file's lock, so readers wait for it."""
        if self._session is not None:
            yield
            return
        with self.get_connection() as con:
            self._session = con
            try:
                yield
            finally:
                self._session = None

    def read(self, schema: str, table: str, release: str, where: str = "") -> pl.DataFrame:
        """The rows of `release` in `schema.table` as this run sees them: what it staged (with the visible rows
        of the sites it did not stage, when it staged site partitions), else the visible rows (`where`: a fixed
        SQL condition, never user input)."""
        with self.get_connection() as con:
            if self._refresh_id and is_staged(con, self._refresh_id, release, schema, table):
                return read_as_committed(con, self._refresh_id, release, schema, table, where)
            return read_release(con, schema, table, release, where)

    def write_sql(
        self,
        con: duckdb.DuckDBPyConnection,
        queries: dict[tuple[str, str], str],
        release: str,
        scope: SiteScope | Mapping[tuple[str, str], SiteScope] = EVERY_SITE,
    ) -> dict[str, int]:
        """Like `write`, for tables computed inside DuckDB on `con` (rows never pass through Python); `scope`:
        which sites' rows of the release they replace (default: all)."""
        return write_queries(con, queries, release, self._refresh_id, scope)

    def write(self, frames: dict[tuple[str, str], pl.DataFrame], release: str) -> dict[str, int]:
        """Replace `release`'s rows of each table: staged inside a run, directly outside one. A quarantine
        table comes into being with its first refused row (no empty `quarantine.<table>` beside every table
        to make a bare table name ambiguous); once it exists it is replaced like any other."""
        with self.get_connection() as con:
            frames = {
                key: frame
                for key, frame in frames.items()
                if frame.height or key[0] != "quarantine" or exists(con, self._refresh_id, release, *key)
            }
            if self._refresh_id:
                return stage(con, frames, release, self._refresh_id)
            return replace_partitions(con, frames, release)

    @contextmanager
    def preview(self, only: Collection[str] | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection that sees the database (with `only`, the tables and views named there: "schema.table")
        as this run's commit would leave it; all changes made through it are rolled back."""
        with self.get_connection() as con:
            if self._refresh_id:
                with preview_commit(con, self._refresh_id, only) as seen:
                    yield seen
                return
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            finally:
                con.execute("ROLLBACK")

    def define(self, name: str, statements: list[str]) -> None:
        """Run DDL `statements` (a mart) with this run's commit, after its tables are swapped in;
        at once outside a run."""
        with self.get_connection() as con:
            if self._refresh_id:
                for index, statement in enumerate(statements):
                    stage_statement(con, self._refresh_id, f"{name}:{index}", statement)
                return
            with transaction(con):
                for statement in statements:
                    con.execute(statement)

    def described_variables(self, product: str) -> pl.DataFrame | None:
        """The visible `raw.variables` rows of `product` from the newest release that gives descriptions."""
        with self.get_connection() as con:
            if table_columns(con, "raw", "variables") is None:
                return None
            frame = con.execute(  # executed, not a relation with parameters (see warehouse.read_release)
                "SELECT * FROM raw.variables WHERE product = ? AND release = ("
                "  SELECT max(release) FROM raw.variables WHERE product = ? AND description IS NOT NULL"
                "    AND release <> 'PROVISIONAL')",
                [product, product],
            ).pl()
        return frame if frame.height else None

    def visible_releases(self, schema: str, table: str) -> list[str]:
        """The releases present in the visible `schema.table` (none if it does not exist yet)."""
        with self.get_connection() as con:
            if table_columns(con, schema, table) is None:
                return []
            return [r for (r,) in con.execute(f"SELECT DISTINCT release FROM {qualified(schema, table)}").fetchall()]


class NeonSourceResource(ConfigurableResource):
    """Where NEON data come from: a local snapshot folder, or the NEON API (or a mirror).

    The API token is not configuration: the client reads NEON_TOKEN from the
    environment when it sends a request.
    """

    snapshot_dir: str | None = Field(
        default=None, description="ROOTASSETS_SNAPSHOT: read this folder instead of the API"
    )
    api_url: str = Field(default=DEFAULT_API_URL, description="NEON_API_URL: base URL of the NEON Data API v0")
    download_dir: str = Field(description="where API downloads are kept")
    site_attributes_dir: str | None = Field(default=None, description="folder of NEON site-attribute tables")
    soil_water_dir: str | None = Field(
        default=None, description="ROOTASSETS_SOIL_WATER: folder holding <release>/DP1.00094.001/ sensor files"
    )
    soil_water_window: str | None = Field(
        default=None,
        description="ROOTASSETS_SOIL_WATER_WINDOW: YYYY-MM:YYYY-MM of DP1.00094.001 to download from the API "
        "(default: the three most recent complete years of the release)",
    )
    soil_water_workers: int = Field(
        default=0,
        description="ROOTASSETS_SOIL_WATER_WORKERS: sites whose soil water is aggregated at once, each in its own "
        "process and DuckDB (0: one per core)",
    )
    http_attempts: int = Field(default=6, description="attempts per API request before giving up")
    http_backoff_s: float = Field(default=0.5, description="first backoff wait; doubles per attempt (max 30 s)")
    http_timeout_s: float = Field(default=60.0, description="read timeout of every API request")

    def source(self) -> NeonSource:
        policy = RetryPolicy(
            attempts=self.http_attempts, backoff_base_s=self.http_backoff_s, read_timeout_s=self.http_timeout_s
        )
        return open_source(self.snapshot_dir, self.api_url, self.download_dir, policy)

    def soil_water_path(self) -> Path | None:
        return Path(self.soil_water_dir) if self.soil_water_dir else None

    def soil_water_release_folder(
        self, release: str, download: bool = False, report: Callable[[str], None] | None = None
    ) -> Path | None:
        """The folder of DP1.00094.001 files for `release`: `<soil water dir>/<release>/DP1.00094.001` when one is
        set, else (reading from the API) the download folder, filled first when `download` is true."""
        if self.soil_water_dir or self.snapshot_dir:
            return soil_water_folder(self.soil_water_path(), release)
        source = self.source()
        if download and isinstance(source, ApiSource):
            if report is not None:
                source.report = report
            window = parse_window(self.soil_water_window) if self.soil_water_window else None
            source.download_soil_water(release, window)
        folder = Path(self.download_dir) / release / SOIL_WATER_PRODUCT
        return folder if folder.is_dir() else None

    def site_attributes(self, release: str) -> dict[str, StackedTable]:
        if not self.site_attributes_dir:
            raise FileNotFoundError(
                "no site-attribute folder: set ROOTASSETS_SITE_ATTRIBUTES (or ROOTASSETS_SNAPSHOT, "
                "whose site-attributes/ folder is used)"
            )
        return load_site_attributes(Path(self.site_attributes_dir), release)


class ArtifactStore(ConfigurableResource):
    """Files the platform keeps beside the database: figures, models, reports (per release)."""

    home: str = Field(description="ROOTASSETS_HOME")
    files_url: str = Field(
        default=DEFAULT_FILES_URL,
        description="ROOTASSETS_FILES_URL: where `rootassets ui` serves figures/ and reports/ to the UI",
    )

    def folder(self, kind: str, release: str) -> Path:
        from rootassets.neon.identifiers import validate_release

        path = Path(self.home) / kind / validate_release(release)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def url(self, kind: str, release: str, name: str) -> str:
        """The address at which `rootassets ui` serves the file `name` of `kind/<release>/`."""
        from rootassets.neon.identifiers import validate_release

        return f"{self.files_url.rstrip('/')}/{kind}/{validate_release(release)}/{name}"
