"""Resources: the DuckDB warehouse and the NEON data source."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl
from dagster import ConfigurableResource
from dagster_duckdb import DuckDBResource
from pydantic import Field

from rootassets.neon.client import DEFAULT_API_URL, RetryPolicy
from rootassets.neon.open import open_source
from rootassets.neon.site_attributes import load_site_attributes
from rootassets.neon.source import NeonSource
from rootassets.neon.stacking import StackedTable
from rootassets.warehouse import read_release


class WarehouseResource(DuckDBResource):
    """The rootassets DuckDB file; its folder is created on first use."""

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        with super().get_connection() as con:
            yield con

    def read(self, schema: str, table: str, release: str, where: str = "") -> pl.DataFrame:
        """The rows of `release` in `schema.table` (`where`: a fixed SQL condition, never user input)."""
        with self.get_connection() as con:
            return read_release(con, schema, table, release, where)


class NeonSourceResource(ConfigurableResource):
    """Where NEON data come from: a local snapshot folder, or the NEON API (or a mirror).

    The API token is not configuration: the client reads NEON_TOKEN from the
    environment when it sends a request.
    """

    snapshot_dir: str | None = Field(default=None, description="ROOTASSETS_SNAPSHOT: read this folder instead of the API")
    api_url: str = Field(default=DEFAULT_API_URL, description="NEON_API_URL: base URL of the NEON Data API v0")
    download_dir: str = Field(description="where API downloads are kept")
    site_attributes_dir: str | None = Field(default=None, description="folder of NEON site-attribute tables")
    http_attempts: int = Field(default=6, description="attempts per API request before giving up")
    http_backoff_s: float = Field(default=0.5, description="first backoff wait; doubles per attempt (max 30 s)")
    http_timeout_s: float = Field(default=60.0, description="read timeout of every API request")

    def source(self) -> NeonSource:
        policy = RetryPolicy(
            attempts=self.http_attempts, backoff_base_s=self.http_backoff_s, read_timeout_s=self.http_timeout_s
        )
        return open_source(self.snapshot_dir, self.api_url, self.download_dir, policy)

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

    def folder(self, kind: str, release: str) -> Path:
        from rootassets.neon.identifiers import validate_release

        path = Path(self.home) / kind / validate_release(release)
        path.mkdir(parents=True, exist_ok=True)
        return path
