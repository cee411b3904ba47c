"""Shared fixtures: the real snapshot, temporary homes, a NEON mirror on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rootassets.neon.client import NeonClient, RetryPolicy
from rootassets.neon.mirror import FaultPlan, MirrorCatalogue, MirrorServer
from rootassets.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = (REPO / ".." / "shared" / "neon-snapshot").resolve()
RELEASE = "RELEASE-2021"
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


@pytest.fixture()
def mirror(catalogue: MirrorCatalogue) -> Iterator[MirrorServer]:
    with MirrorServer(catalogue, faults=FaultPlan()) as server:
        yield server


@pytest.fixture()
def client(mirror: MirrorServer) -> Iterator[NeonClient]:
    with NeonClient(mirror.base_url, policy=FAST_RETRIES) as c:
        yield c


@pytest.fixture()
def snapshot_settings(tmp_path: Path, snapshot: Path) -> Settings:
    return Settings(home=tmp_path / "home", snapshot=snapshot, api_url="http://127.0.0.1:9/api/v0/",
                    site_attributes=snapshot / "site-attributes")
