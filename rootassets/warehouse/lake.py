"""The DuckLake backend: the same schemas and tables in a DuckLake catalog on PostgreSQL, data as Parquet files.

`ROOTASSETS_WAREHOUSE=ducklake:postgres:<libpq DSN>` (DuckDB's own ATTACH string) and
`ROOTASSETS_LAKE_DATA=<directory or object-storage URL>` select it; unset or `duckdb`, the
warehouse is the DuckDB file under ROOTASSETS_HOME. A connection attaches the lake and makes it
the default catalog, so every statement of the warehouse, and a user's SQL, runs unchanged.

The password never travels in the DSN (it would sit in run configuration and logs): libpq reads
it from PGPASSWORD or ~/.pgpass. DuckDB extensions are version-locked to their DuckDB release; the
`ducklake` and `postgres` extensions come from the PyPI packages `duckdb-extension-ducklake` and
`duckdb-extension-postgres` of the pinned DuckDB, copied once into an extension folder (the
postgres one under its extension name, `postgres_scanner`), so that no download is needed.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

LAKE_PREFIX = "ducklake:postgres:"
LAKE_ALIAS = "lake"
_EXTENSIONS = {  # extension name -> (PyPI package module, file name in it)
    "ducklake": ("duckdb_extension_ducklake", "ducklake"),
    "postgres_scanner": ("duckdb_extension_postgres", "postgres"),
}
_DSN_KEY = re.compile(r"(?:^|\s)(\w+)\s*=")


class LakeConfigError(ValueError):
    """The lake setting cannot be used as given (the message says which variable and why)."""


class LakeUnavailableError(RuntimeError):
    """The lake's catalog could not be attached (PostgreSQL down, database missing, no permission)."""


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
        return cls(dsn=dsn, data_path=data_path.rstrip("/") + "/")

    @property
    def spec(self) -> str:
        """The ATTACH string, as ROOTASSETS_WAREHOUSE gives it."""
        return LAKE_PREFIX + self.dsn

    def __str__(self) -> str:
        return f"DuckLake {self.spec} (data in {self.data_path})"

    def exists(self) -> bool:
        """Whether the lake's catalog has been created (by its first writer), as a database file exists."""
        if self in _EXISTING:
            return True
        try:
            connect_lake(self, read_only=True).close()
        except FileNotFoundError:
            return False
        return True


_EXISTING: set[LakeLocation] = set()  # a catalog, once created, stays: no need to ask again


def is_lake(database: object) -> bool:
    return isinstance(database, LakeLocation) or str(database).startswith(LAKE_PREFIX)


def extension_directory() -> Path:
    """A DuckDB extension folder holding this DuckDB's ducklake and postgres_scanner, from their PyPI packages."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rootassets" / "duckdb-extensions"
    with duckdb.connect() as con:
        platform = con.execute("PRAGMA platform").fetchone()[0]
    folder = cache / f"v{duckdb.__version__}" / platform
    for name, (module, file_name) in _EXTENSIONS.items():
        target = folder / f"{name}.duckdb_extension"
        if target.exists():
            continue
        spec = importlib.util.find_spec(module)
        source = (
            Path(spec.origin).parent / "extensions" / f"v{duckdb.__version__}" / f"{file_name}.duckdb_extension"
            if spec and spec.origin
            else None
        )
        if source is None or not source.exists():
            raise LakeConfigError(
                f"the DuckLake backend needs the PyPI package {module.replace('_', '-')}=={duckdb.__version__} "
                f"(DuckDB extensions are locked to their DuckDB release): pip install -e '.[lake]'"
            )
        folder.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".partial{os.getpid()}")
        shutil.copyfile(source, partial)
        partial.replace(target)
    return cache


def connect_lake(location: LakeLocation, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached as its default catalog."""
    con = duckdb.connect(config={"extension_directory": str(extension_directory())})
    try:
        con.execute("LOAD ducklake")
        con.execute("LOAD postgres_scanner")
        options = f"DATA_PATH '{_literal(location.data_path)}'" + (", READ_ONLY" if read_only else "")
        con.execute(f"ATTACH '{_literal(location.spec)}' AS {LAKE_ALIAS} ({options})")
        con.execute(f"USE {LAKE_ALIAS}")
    except duckdb.Error as exc:
        con.close()
        if read_only and "does not exist" in str(exc):
            raise FileNotFoundError(f"no lake at {location} yet: run `rootassets materialize` first") from exc
        raise LakeUnavailableError(f"cannot attach {location}: {exc}") from exc
    _EXISTING.add(location)
    return con


def _literal(text: str) -> str:
    return text.replace("'", "''")
