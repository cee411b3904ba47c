"""A release already up to date, decided without Dagster: the shortcut of a warm `rootassets materialize`.

After a refresh of the main job's default selection commits, its inputs are recorded in
`$ROOTASSETS_HOME/state/<release>.json`: a fingerprint of every NEON source it read (names, sizes and
modification times of the snapshot's files, the declared downloads, the site attributes, the soil-water
folder), of the code (every rootassets source file, the SQL models of `dbt_like_sql/`, and the versions of
the libraries that compute), of the
settings and declared products, and of the database file as the commit left it. A later `materialize` of
the same release whose fingerprint is identical has nothing to do, and says so without importing Dagster
or resolving staleness asset by asset. Anything else (a changed or touched file, other code, another
setting, a database written since, by a UI run or another release) takes the full path, where Dagster
decides. Only local sources are fingerprinted this way; reading from the NEON API always takes the full
path (its versions come from the API).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from rootassets.settings import LakeLocation, Settings

STATE_FOLDER = "state"
LIBRARIES = ("dagster", "duckdb", "polars", "pandera", "numpy", "scipy", "scikit-learn", "matplotlib", "cartopy")
PACKAGE = Path(__file__).resolve().parent
MODELS_DIR = PACKAGE.parent / "dbt_like_sql"  # the SQL models (warehouse.sqlmodels.MODELS_DIR, not imported: slow)


def code_fingerprint(package: Path = PACKAGE, models: Path = MODELS_DIR) -> str:
    """Every rootassets source file, every SQL model, and the versions of the libraries that compute the
    results."""
    digest = hashlib.sha256()
    for root, pattern in ((package, "*.py"), (models, "*.sql")):
        for path in sorted(root.rglob(pattern)):
            digest.update(f"{root.name}/{path.relative_to(root).as_posix()}".encode())
            digest.update(path.read_bytes())
    for name in LIBRARIES:
        try:
            digest.update(f"{name}=={version(name)}".encode())
        except PackageNotFoundError:
            digest.update(f"{name} absent".encode())
    return digest.hexdigest()[:24]


def input_fingerprint(settings: Settings, release: str) -> dict[str, Any] | None:
    """What a refresh of `release` reads, fingerprinted; None when a source is not local (the API)."""
    if settings.snapshot is None:
        return None
    from rootassets.neon.declared import read_declared
    from rootassets.neon.products import PRODUCTS
    from rootassets.neon.site_attributes import site_attributes_fingerprint
    from rootassets.neon.snapshot import SnapshotSource
    from rootassets.neon.soil_water import discover, soil_water_folder

    snapshot = SnapshotSource(settings.snapshot)
    sources = {code: snapshot.fingerprint(p, release) for code, p in PRODUCTS.items()}
    for declared in read_declared(settings.products_file):
        source = declared.download() or snapshot
        sources[declared.spec.code] = source.fingerprint(declared.spec, release)
    attributes = settings.site_attributes
    sources["site_attributes"] = (
        site_attributes_fingerprint(attributes) if attributes is not None and attributes.is_dir() else None
    )
    sources["soil_water"] = discover(soil_water_folder(settings.soil_water, release)).fingerprint()
    declared_text = settings.products_file.read_text() if settings.products_file.is_file() else ""
    return {
        "release": release,
        "code": code_fingerprint(),
        "settings": {k: str(v) for k, v in asdict(settings).items()},
        "declared": hashlib.sha256(declared_text.encode()).hexdigest()[:24],
        "sources": sources,
        "instance": (settings.dagster_home / "dagster.yaml").is_file(),
    }


def database_fingerprint(settings: Settings) -> list[int] | None:
    """The database file's size and modification time, or a lake's newest snapshot id (None without a database,
    with a file's pending WAL, or a lake that cannot be read now: the full path then says why)."""
    location = settings.database
    if isinstance(location, LakeLocation):
        return lake_fingerprint(location)
    if not location.is_file() or location.with_name(location.name + ".wal").exists():
        return None
    stat = location.stat()
    return [stat.st_size, stat.st_mtime_ns]


def lake_fingerprint(lake: LakeLocation) -> list[int] | None:
    """A lake's newest snapshot id: a commit or a staging write of any run, on any machine, changes it."""
    import duckdb  # only here: the file's shortcut imports neither DuckDB nor Dagster

    from rootassets.warehouse.lake import LakeUnavailableError, connect_lake, newest_snapshot

    try:
        with connect_lake(lake, read_only=True) as con:
            return [newest_snapshot(con)]
    except (FileNotFoundError, LakeUnavailableError, duckdb.Error):
        return None


def state_path(settings: Settings, release: str) -> Path:
    return settings.home / STATE_FOLDER / f"{release}.json"


def record(settings: Settings, release: str, inputs: dict[str, Any] | None, summary: dict[str, Any]) -> None:
    """After a committed refresh of the default selection: remember what it read and the database it left."""
    path = state_path(settings, release)
    database = database_fingerprint(settings)
    if inputs is None or database is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        # the instance as the refresh left it: a first refresh creates it after `inputs` was taken
        "inputs": {**inputs, "instance": (settings.dagster_home / "dagster.yaml").is_file()},
        "database": database,
        "summary": summary,
        "committed": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(state, indent=1, sort_keys=True))
    os.replace(partial, path)


def forget(settings: Settings, release: str) -> None:
    state_path(settings, release).unlink(missing_ok=True)


def up_to_date(settings: Settings, release: str, inputs: dict[str, Any] | None) -> dict[str, Any] | None:
    """The recorded state when nothing changed since it was recorded, else None."""
    path = state_path(settings, release)
    if inputs is None or not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if state.get("inputs") != json.loads(json.dumps(inputs)) or state.get("database") != database_fingerprint(settings):
        return None
    return state
