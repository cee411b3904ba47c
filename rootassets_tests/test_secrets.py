"""NEON_TOKEN never leaves the environment: not in logs, run storage, the database, figures or files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rootassets.neon.mirror import MirrorServer
from rootassets.neon.tokens import unsigned_token
from rootassets.settings import LakeLocation, postgres_fields
from rootassets_tests.conftest import RELEASE, REPO, warehouse_of
from rootassets_tests.postgres import PG_BIN, Postgres

pytestmark = [pytest.mark.slow, pytest.mark.network]
TOKEN = unsigned_token(time.time() + 86400, subject="neon-token-9f3c1a7e-SECRET")


def test_token_leaves_no_trace(tmp_path: Path, snapshot: Path, request: pytest.FixtureRequest) -> None:
    home = tmp_path / "home"
    with MirrorServer(snapshot) as mirror:
        env = {
            **os.environ,
            "ROOTASSETS_HOME": str(home),
            "NEON_API_URL": mirror.base_url,
            "ROOTASSETS_SITE_ATTRIBUTES": str(snapshot / "site-attributes"),
        }
        env.pop("ROOTASSETS_SNAPSHOT", None)
        env.pop("NEON_TOKEN", None)
        command = [sys.executable, "-m", "rootassets.cli", "materialize", "--release", RELEASE]
        refused = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
        assert refused.returncode == 2  # refused before any work: a usage error
        assert refused.stderr.count("\n") == 1 and "NEON_TOKEN" in refused.stderr, refused.stderr
        assert not warehouse_of(env).exists() and not (home / "downloads").exists()
        assert not (home / "dagster").exists()
        assert not [p for p in mirror.stats.paths if "/data" in p]  # refused before any data request
        env["NEON_TOKEN"] = TOKEN
        ok = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
        assert ok.returncode == 0, ok.stderr[-3000:]
        assert mirror.stats.token_seen  # the token was really used
        assert mirror.stats.downloads > 0 and not mirror.stats.token_seen_by_storage
        faults = json.dumps({"counts": {"server_error": -1}, "scope": "all"})
        httpx.post(mirror.base_url.replace("/api/v0/", "/__faults"), content=faults).raise_for_status()
        failed = subprocess.run([*command, "--force"], env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
        assert failed.returncode == 1 and "HTTP 500" in failed.stderr
    for text in (ok.stdout, ok.stderr, failed.stdout, failed.stderr):
        assert TOKEN not in text
    needle = TOKEN.encode()
    scanned = 0
    lake_data = [Path(env["ROOTASSETS_LAKE_DATA"])] if env.get("ROOTASSETS_LAKE_DATA") else []
    for path in (p for folder in (home, *lake_data) for p in folder.rglob("*")):
        if path.is_file():
            scanned += 1
            assert needle not in path.read_bytes(), f"token found in {path}"
    assert scanned > 50  # downloads, figures, the warehouse (the DuckDB file or the lake's Parquet), Dagster's storage
    assert warehouse_of(env).exists() and any((home / "dagster").rglob("*.db"))
    lake = warehouse_of(env)
    if isinstance(lake, LakeLocation):  # and not in the lake's catalog either
        dbname = postgres_fields(lake.dsn)["db_name"]
        server: Postgres = request.getfixturevalue("postgres")
        dump = subprocess.run(
            [str(PG_BIN / "pg_dump"), "-h", server.host, "-p", str(server.port), "-U", server.user, str(dbname)],
            capture_output=True,
            check=True,
            timeout=300,
        ).stdout
        assert b"ducklake_snapshot" in dump and needle not in dump
