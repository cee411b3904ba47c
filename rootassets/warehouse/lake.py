"""The DuckLake backend: the same schemas and tables in a DuckLake catalog on PostgreSQL, data as Parquet files.

`ROOTASSETS_WAREHOUSE=ducklake:postgres:<libpq DSN>` (DuckDB's own ATTACH string) and
`ROOTASSETS_LAKE_DATA=<directory or object-storage URL>` select it; unset or `duckdb`, the
warehouse is the DuckDB file under ROOTASSETS_HOME. A connection attaches the lake and makes it
the default catalog, so every statement of the warehouse, and a user's SQL, runs unchanged.

The password never travels in the DSN (it would sit in run configuration and logs): libpq reads
it from PGPASSWORD or ~/.pgpass. DuckDB extensions are version-locked to their DuckDB release; the
`ducklake` and `postgres` extensions come from the PyPI packages `duckdb-extension-ducklake` and
`duckdb-extension-postgres` (and `duckdb-extension-httpfs`, for data in object storage) of the pinned
DuckDB, copied once into an extension folder (the postgres one under its extension name,
`postgres_scanner`), so that no download is needed.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import random
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import duckdb

from rootassets.settings import LAKE_PREFIX, LakeConfigError, LakeLocation, known_lakes

LAKE_ALIAS = "lake"
CREATE_RACE_ATTEMPTS = 8
_EXTENSIONS = {  # extension name -> (PyPI package module, file name in it)
    "ducklake": ("duckdb_extension_ducklake", "ducklake"),
    "postgres_scanner": ("duckdb_extension_postgres", "postgres"),
    "httpfs": ("duckdb_extension_httpfs", "httpfs"),  # object storage (s3://, r2://, gcs://) for the data
}


class LakeUnavailableError(RuntimeError):
    """The lake's catalog could not be attached (PostgreSQL down, database missing, no permission)."""


def is_lake(database: object) -> bool:
    return isinstance(database, LakeLocation) or str(database).startswith(LAKE_PREFIX)


@functools.cache
def extension_directory() -> Path:
    """A DuckDB extension folder holding this DuckDB's ducklake and postgres_scanner, from their PyPI packages
    (prepared once per process: every lake connection asks for it)."""
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
    _verify_signatures(cache, folder)
    return cache


def _verify_signatures(cache: Path, folder: Path) -> None:
    """Load every extension of `folder` (this DuckDB's and platform's, under `cache`) once with DuckDB's signature
    check (it hashes each file: ~0.13 s for the three, which every lake connection would otherwise pay again);
    `connect_lake`'s connections then load these same files without it. A file that fails the check is removed,
    so the next process copies it anew."""
    with duckdb.connect(config={"extension_directory": str(cache), "allow_unsigned_extensions": False}) as con:
        for name in _EXTENSIONS:
            try:
                con.execute(f"LOAD {name}")
            except duckdb.Error as exc:
                (folder / f"{name}.duckdb_extension").unlink(missing_ok=True)
                raise LakeConfigError(
                    f"DuckDB refused the {name} extension's signature ({exc}); it was removed"
                ) from exc


def connect_lake(
    location: LakeLocation, read_only: bool = False, snapshot: int | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached as its default catalog (read-only as of `snapshot`, if given).

    Writers that attach a new lake at the same moment race to create its catalog tables; the losers' attempt
    fails whole (one PostgreSQL transaction), and they attach again to the catalog the winner created."""
    for attempt in range(1, CREATE_RACE_ATTEMPTS + 1):
        # the extensions' signatures were checked once in this process (extension_directory)
        con = duckdb.connect(
            config={"extension_directory": str(extension_directory()), "allow_unsigned_extensions": True}
        )
        try:
            for statement in attach_statements(location, read_only, snapshot):
                con.execute(statement)
        except duckdb.Error as exc:
            con.close()
            if read_only and "creating a new DuckLake is explicitly disabled" in str(exc):
                raise FileNotFoundError(f"no lake at {location} yet: run `rootassets materialize` first") from exc
            if "Failed to initialize DuckLake" in str(exc) and attempt < CREATE_RACE_ATTEMPTS:
                time.sleep(0.1 * attempt * random.uniform(0.5, 1.5))
                continue
            raise LakeUnavailableError(f"cannot attach {location}: {exc}") from exc
        known_lakes.add(location)
        return con
    raise AssertionError("unreachable")


def attach_statements(location: LakeLocation, read_only: bool = False, snapshot: int | None = None) -> list[str]:
    """The statements that make the lake the default catalog of a DuckDB whose extension folder is
    `extension_directory()`: run by `connect_lake`, and by DuckDB's own shell (`shell_arguments`)."""
    options = f"DATA_PATH '{_literal(location.data_path)}'" + (", READ_ONLY" if read_only else "")
    if snapshot is not None:
        options += f", READ_ONLY, SNAPSHOT_VERSION {int(snapshot)}"
    return [
        *object_storage_statements(location.data_path),
        "LOAD ducklake",
        "LOAD postgres_scanner",
        f"ATTACH '{_literal(location.spec)}' AS {LAKE_ALIAS} ({options})",
        f"USE {LAKE_ALIAS}",
    ]


def object_storage_statements(data_path: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """For data in object storage: load httpfs and point it at `AWS_ENDPOINT_URL` when one is set (an
    S3-compatible store such as MinIO or Ceph, addressed by path). The keys are never in a statement: httpfs
    reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and AWS_REGION from the environment
    itself, so they reach no log, no run configuration and no shell command line."""
    if "://" not in data_path:
        return []
    environ = os.environ if environ is None else environ
    statements = ["LOAD httpfs"]
    endpoint = (environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or "").strip()
    if endpoint:
        url = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        if not url.netloc:
            raise LakeConfigError(f"AWS_ENDPOINT_URL={endpoint!r}: expected a URL such as http://127.0.0.1:9000")
        statements += [
            f"SET s3_endpoint = '{_literal(url.netloc + url.path.rstrip('/'))}'",
            f"SET s3_use_ssl = {'false' if url.scheme == 'http' else 'true'}",
            "SET s3_url_style = 'path'",
        ]
    return statements


def shell_arguments(location: LakeLocation) -> list[str]:
    """DuckDB shell arguments that open the lake read-only, as `rootassets sql` does, before the user types."""
    statements = [f"SET extension_directory = '{_literal(str(extension_directory()))}'"]
    statements += attach_statements(location, read_only=True)
    return [argument for statement in statements for argument in ("-cmd", statement)]


def _literal(text: str) -> str:
    return text.replace("'", "''")


def on_lake(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether `con` works on a lake (attached by `connect_lake`), not on a DuckDB file."""
    return con.execute("SELECT current_database()").fetchone()[0] == LAKE_ALIAS


def label_commit(con: duckdb.DuckDBPyConnection, refresh_id: str, releases: list[str]) -> None:
    """Inside the commit's transaction: name its lake snapshot after the refresh and its releases, so that the
    lake as a release's refresh left it can be found again (`snapshot_of_release`)."""
    info = json.dumps({"refresh": refresh_id, "releases": releases})
    message = f"rootassets refresh {refresh_id}: {', '.join(releases) or 'no tables'}"
    con.execute(f"CALL {LAKE_ALIAS}.set_commit_message('rootassets', ?, extra_info => ?)", [message, info])


def newest_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    """The id of the lake's newest snapshot: every commit, by any process on any machine, makes a new one."""
    return con.execute(f"SELECT max(snapshot_id) FROM {LAKE_ALIAS}.snapshots()").fetchone()[0]


def snapshot_of_release(con: duckdb.DuckDBPyConnection, release: str) -> int | None:
    """The lake snapshot made by the newest commit of `release`'s tables (None when it was never committed)."""
    found = con.execute(
        f"SELECT max(snapshot_id) FROM {LAKE_ALIAS}.snapshots() "
        "WHERE author = 'rootassets' AND list_contains("
        "  CAST(json_extract(commit_extra_info, '$.releases') AS VARCHAR[]), ?)",
        [release],
    ).fetchone()
    return found[0] if found else None
