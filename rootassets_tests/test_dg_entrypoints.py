"""The Dagster-native ways in: definitions load without deprecations, `dg check defs`, release partitions
added from the CLI, and `dg launch` on a fresh instance."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from rootassets_tests.conftest import RELEASE, REPO, SNAPSHOT

BIN = Path(sys.executable).parent


def _env(home: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "ROOTASSETS_HOME": str(home),
        "ROOTASSETS_SNAPSHOT": str(SNAPSHOT),
        "DAGSTER_HOME": str(home / "dagster"),
    }
    env.pop("NEON_TOKEN", None)
    return env


def test_definitions_import_without_deprecation_warnings() -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", "import rootassets.definitions"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_dg_check_defs_passes(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "dg"), "check", "defs"], cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "All definitions loaded successfully" in done.stdout + done.stderr


def test_releases_lists_and_adds_partitions(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "rootassets.cli", "releases"]
    listed = subprocess.run(command, cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0 and f"{RELEASE}" in listed.stdout and " no" in listed.stdout.splitlines()[-1]
    added = subprocess.run(
        [*command, "--add", RELEASE], cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert added.returncode == 0, added.stderr
    assert f"added the release partition {RELEASE}" in added.stdout
    assert added.stdout.splitlines()[-1].split()[-2:] == ["yes", "yes"]
    refused = subprocess.run(
        [*command, "--add", "RELEASE-2030"], cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "RELEASE-2030 not offered" in refused.stderr
    hostile = subprocess.run(
        [*command, "--add", "../etc"], cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert hostile.returncode == 2 and "invalid NEON release tag" in hostile.stderr


@pytest.mark.slow
def test_dg_launch_on_a_fresh_instance_commits(tmp_path: Path) -> None:
    env = _env(tmp_path)
    subprocess.run(
        [sys.executable, "-m", "rootassets.cli", "releases", "--add", RELEASE],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    done = subprocess.run(
        [str(BIN / "dg"), "launch", "--assets", "key:raw/*", "--partition", RELEASE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "staged tables made visible in one transaction" in done.stdout + done.stderr
    with duckdb.connect(str(tmp_path / "rootassets.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from raw.mpr_perrootsample where release = ?", [RELEASE]).fetchone() == (
            2913,
        )
