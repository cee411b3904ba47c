"""Runtime settings from the environment (DESIGN.md's runtime contract).

NEON_TOKEN is deliberately absent: the NEON client reads it from the
environment at request time so it never sits in config, metadata or logs.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from rootassets.neon.client import DEFAULT_API_URL

INSTANCE_MARK = "# Written by rootassets"
DEFAULT_FILES_URL = "http://127.0.0.1:3001"
INSTANCE_YAML = f"""\
{INSTANCE_MARK}: the Dagster instance the CLI and the UI share (rewritten when rootassets changes it).
{{storage}}{{pools}}\
# Run monitoring: a run stuck starting or canceling is failed, and the concurrency slots of a run that
# ended without releasing them (its worker was killed) are freed; the discard_failed_runs and
# discard_canceled_runs sensors then discard what it staged (rootassets.refresh).
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 30
telemetry:
  enabled: false
"""
FILE_POOLS = """\
# One writer at a time to the DuckDB file: assets that write carry pool="duckdb".
concurrency:
  pools:
    default_limit: 1
"""
LAKE_POOLS = """\
# The warehouse is a DuckLake: its writers commit independently, so the duckdb pool has no limit.
"""
POSTGRES_STORAGE = """\
# ROOTASSETS_INSTANCE_POSTGRES: runs, event log and schedules in PostgreSQL, shared by the webserver, the daemon
# and run workers on any machine. The password is libpq's: PGPASSWORD or ~/.pgpass, never this file.
storage:
  postgres:
    postgres_db:
{fields}"""
SQLITE_EVENT_LOG = """\
# Dagster's SQLite event log under this home, its connections kept open between events
# (rootassets.dagster_private.PooledSqliteEventLogStorage); runs and schedules are Dagster's defaults.
event_log_storage:
  module: rootassets.dagster_private
  class: PooledSqliteEventLogStorage
  config:
    base_dir: {base_dir}
"""

LAKE_PREFIX = "ducklake:postgres:"
_DSN_KEY = re.compile(r"(?:^|\s)(\w+)\s*=")


OBJECT_STORAGE_SCHEMES = ("s3", "r2", "gcs", "gs")  # what httpfs reads and writes (S3's API); keys from AWS_*


class LakeConfigError(ValueError):
    """The lake setting cannot be used as given (the message says which variable and why)."""


@dataclass(frozen=True)
class LakeLocation:
    """A DuckLake catalog on PostgreSQL (`dsn`, without password) with its data under `data_path`."""

    dsn: str
    data_path: str

    @classmethod
    def parse(cls, spec: str, data_path: str | None) -> LakeLocation:
        if not spec.startswith(LAKE_PREFIX):
            raise LakeConfigError(
                f"ROOTASSETS_WAREHOUSE={spec!r}: expected 'duckdb' or '{LAKE_PREFIX}<libpq DSN>', "
                f"e.g. '{LAKE_PREFIX}dbname=lake host=127.0.0.1 port=5432 user=me'"
            )
        dsn = spec[len(LAKE_PREFIX) :].strip()
        keys = {k.lower() for k in _DSN_KEY.findall(dsn)}
        if "password" in keys or "://" in dsn:
            raise LakeConfigError(
                "ROOTASSETS_WAREHOUSE must not carry a password (it would reach run configuration and logs): "
                "give the DSN as key=value pairs without password=, and the password in PGPASSWORD or ~/.pgpass"
            )
        if "dbname" not in keys:
            raise LakeConfigError(f"ROOTASSETS_WAREHOUSE: the DSN {dsn!r} names no database (dbname=...)")
        if not data_path:
            raise LakeConfigError(
                "ROOTASSETS_LAKE_DATA is not set: the lake needs a folder (or object-storage URL) for its Parquet files"
            )
        if "://" not in data_path:
            data_path = str(Path(data_path).expanduser().absolute())
        elif data_path.split("://", 1)[0].lower() not in OBJECT_STORAGE_SCHEMES:
            raise LakeConfigError(
                f"ROOTASSETS_LAKE_DATA={data_path!r}: a URL must be object storage that DuckDB's httpfs writes "
                f"({', '.join(s + '://' for s in OBJECT_STORAGE_SCHEMES)}), or give a folder"
            )
        return cls(dsn=dsn, data_path=data_path.rstrip("/") + "/")

    @property
    def spec(self) -> str:
        """The ATTACH string, as ROOTASSETS_WAREHOUSE gives it."""
        return LAKE_PREFIX + self.dsn

    def __str__(self) -> str:
        return f"DuckLake {self.spec} (data in {self.data_path})"

    def exists(self) -> bool:
        """Whether the lake's catalog has been created (by its first writer), as a database file exists."""
        if self in known_lakes:
            return True
        from rootassets.warehouse.lake import connect_lake  # DuckDB only when a lake is used

        try:
            connect_lake(self, read_only=True).close()
        except FileNotFoundError:
            return False
        return True


known_lakes: set[LakeLocation] = set()  # a catalog, once created, stays: no need to ask again


@dataclass(frozen=True)
class Settings:
    """Where rootassets keeps its state and where its NEON data come from."""

    home: Path
    snapshot: Path | None
    api_url: str
    site_attributes: Path | None
    soil_water: Path | None = None  # root of <release>/DP1.00094.001/ sensor files
    soil_water_window: str | None = None  # YYYY-MM:YYYY-MM of soil water to download (default: 3 complete years)
    soil_water_workers: int = 0  # sites aggregated at once, each in its own process (0: one per core)
    files_url: str = DEFAULT_FILES_URL  # where `rootassets ui` serves figures/ and reports/ (the UI shows them)
    warehouse: str = "duckdb"  # ROOTASSETS_WAREHOUSE: the DuckDB file, or ducklake:postgres:<DSN>
    lake_data: str | None = None  # ROOTASSETS_LAKE_DATA: the lake's Parquet folder or object-storage URL
    instance_postgres: str | None = None  # ROOTASSETS_INSTANCE_POSTGRES: libpq DSN of Dagster's instance storage

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("ROOTASSETS_HOME") or ".rootassets").expanduser().absolute()
        snapshot = os.environ.get("ROOTASSETS_SNAPSHOT")
        site_attributes = os.environ.get("ROOTASSETS_SITE_ATTRIBUTES")
        roots = [Path(p).expanduser().absolute() for p in (snapshot or "").split(os.pathsep) if p]
        # several snapshot folders (DIR1:DIR2) travel as one os.pathsep-joined value
        snapshot_path = Path(os.pathsep.join(str(r) for r in roots)) if roots else None
        if site_attributes:
            attributes_path: Path | None = Path(site_attributes).expanduser().absolute()
        elif roots:
            attributes_path = roots[0] / "site-attributes"
        else:
            attributes_path = None
        settings = cls(
            home=home,
            snapshot=snapshot_path,
            api_url=os.environ.get("NEON_API_URL") or DEFAULT_API_URL,
            site_attributes=attributes_path,
            soil_water=Path(os.environ["ROOTASSETS_SOIL_WATER"]).expanduser().absolute()
            if os.environ.get("ROOTASSETS_SOIL_WATER")
            else (roots[0] if roots else None),
            soil_water_window=os.environ.get("ROOTASSETS_SOIL_WATER_WINDOW") or None,
            files_url=(os.environ.get("ROOTASSETS_FILES_URL") or DEFAULT_FILES_URL).rstrip("/"),
            soil_water_workers=_count("ROOTASSETS_SOIL_WATER_WORKERS"),
            warehouse=(os.environ.get("ROOTASSETS_WAREHOUSE") or "duckdb").strip(),
            lake_data=os.environ.get("ROOTASSETS_LAKE_DATA") or None,
            instance_postgres=(os.environ.get("ROOTASSETS_INSTANCE_POSTGRES") or "").strip() or None,
        )
        settings.database  # noqa: B018 - refuse an unusable warehouse setting at once, before any work
        settings.instance_yaml()  # and an unusable instance setting
        return settings

    @property
    def products_file(self) -> Path:
        """Where extra NEON products are declared (README, "Add a NEON product")."""
        return self.home / "rootassets.toml"

    @property
    def database(self) -> Path | LakeLocation:
        """The warehouse: the DuckDB file under the home, or the DuckLake catalog ROOTASSETS_WAREHOUSE names."""
        if self.warehouse in ("", "duckdb"):
            return self.home / "rootassets.duckdb"
        return LakeLocation.parse(self.warehouse, self.lake_data)

    @property
    def database_setting(self) -> str:
        """`database` as the warehouse resource's configuration: the file's path, or the lake's ATTACH string."""
        database = self.database
        return str(database) if isinstance(database, Path) else database.spec

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def downloads(self) -> Path:
        return self.home / "downloads"

    @property
    def figures(self) -> Path:
        return self.home / "figures"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    def ensure_dagster_home(self) -> Path:
        """Create the persistent Dagster instance folder with the shipped dagster.yaml."""
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        config = self.dagster_home / "dagster.yaml"
        wanted = self.instance_yaml()
        if not config.exists() or (config.read_text().startswith(INSTANCE_MARK) and config.read_text() != wanted):
            config.write_text(wanted)  # a file the user wrote is left alone
        return self.dagster_home

    def instance_yaml(self) -> str:
        """The dagster.yaml rootassets ships: SQLite storage under the home (the event log's connections kept
        open), or PostgreSQL's when ROOTASSETS_INSTANCE_POSTGRES names a database; the duckdb pool limited to
        one writer for the DuckDB file."""
        pools = FILE_POOLS if isinstance(self.database, Path) else LAKE_POOLS
        storage = ""
        if self.instance_postgres:
            fields = postgres_fields(self.instance_postgres)
            lines = "".join(f"      {key}: {json.dumps(value)}\n" for key, value in fields.items())
            storage = POSTGRES_STORAGE.format(fields=lines)
        else:
            event_log = self.dagster_home.resolve() / "history" / "runs"  # where Dagster's default puts it
            storage = SQLITE_EVENT_LOG.format(base_dir=json.dumps(str(event_log)))
        return INSTANCE_YAML.format(storage=storage, pools=pools)


def postgres_fields(dsn: str) -> dict[str, str | int]:
    """dagster-postgres's `postgres_db` fields from a libpq key=value DSN (no password: libpq finds it)."""
    import shlex

    try:
        pairs = dict(item.split("=", 1) for item in shlex.split(dsn))
    except ValueError:
        raise LakeConfigError(
            f"ROOTASSETS_INSTANCE_POSTGRES={dsn!r}: expected libpq key=value pairs, e.g. "
            "'dbname=dagster host=127.0.0.1 port=5432 user=me'"
        ) from None
    if "password" in pairs:
        raise LakeConfigError(
            "ROOTASSETS_INSTANCE_POSTGRES must not carry a password (dagster.yaml would hold it): use PGPASSWORD "
            "or ~/.pgpass"
        )
    unknown = set(pairs) - {"dbname", "host", "port", "user"}
    if unknown or "dbname" not in pairs:
        raise LakeConfigError(
            f"ROOTASSETS_INSTANCE_POSTGRES: give dbname (and host, port, user) only; got {sorted(pairs)}"
        )
    if not pairs.get("port", "5432").isdigit():
        raise LakeConfigError(f"ROOTASSETS_INSTANCE_POSTGRES: port {pairs['port']!r} is not a number")
    return {
        "username": pairs.get("user") or os.environ.get("PGUSER") or os.environ.get("USER") or "postgres",
        "hostname": pairs.get("host", "127.0.0.1"),
        "db_name": pairs["dbname"],
        "port": int(pairs.get("port", "5432")),
        # dagster-postgres installs psycopg2; SQLAlchemy 2.1's default PostgreSQL driver is psycopg 3
        "scheme": "postgresql+psycopg2",
    }


def _count(variable: str) -> int:
    """A non-negative whole number from the environment (unset: 0)."""
    text = os.environ.get(variable) or "0"
    if not text.isdigit():
        raise ValueError(f"{variable}={text!r}: expected a whole number >= 0")
    return int(text)
