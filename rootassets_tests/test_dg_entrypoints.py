"""The Dagster-native ways in: definitions load without deprecations, `dg check defs`, release partitions
added from the CLI, and `dg launch` on a fresh instance."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rootassets.warehouse import connect_read_only
from rootassets_tests.conftest import RELEASE, REPO, SNAPSHOT, warehouse_of

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
    with connect_read_only(warehouse_of(env)) as con:
        assert con.execute("select count(*) from raw.mpr_perrootsample where release = ?", [RELEASE]).fetchone() == (
            2913,
        )


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_stopping_rootassets_ui_stops_every_process_it_started(tmp_path: Path, signal_name: str) -> None:
    """Ctrl-C (SIGINT to the terminal's group) or SIGTERM to `rootassets ui` alone stops the webserver, the daemon
    and the figure server: Dagster 1.13's webserver can outlive `dg dev`, so a leftover would hold the port."""
    import signal
    import socket
    import time

    import httpx

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    ui, files = ports
    server = subprocess.Popen(
        [str(BIN / "rootassets"), "ui", "--port", str(ui), "--files-port", str(files)],
        env={**_env(tmp_path), "PATH": "/usr/bin:/bin"},
        cwd=REPO,
        stdout=(tmp_path / "ui.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 180
        while not _listening(ui) or not _listening(files):
            assert server.poll() is None and time.time() < deadline, (tmp_path / "ui.log").read_text()[-3000:]
            time.sleep(1)
        assert httpx.get(f"http://127.0.0.1:{ui}/server_info", timeout=30).status_code == 200
        sig = getattr(signal, signal_name)
        if sig == signal.SIGINT:
            os.killpg(server.pid, sig)  # what a terminal sends to its foreground group
        else:
            server.send_signal(sig)  # to rootassets alone, as a process manager would
        assert server.wait(timeout=60) == 130
        time.sleep(1)
        assert not _listening(ui) and not _listening(files), "a process of the UI outlived rootassets ui"
        assert "Traceback" not in (tmp_path / "ui.log").read_text()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
