"""Staging nobody will commit is found and discarded; staging a live process will commit is left alone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import polars as pl
from dagster import DagsterInstance, asset, materialize

from rootassets.refresh import HOST_TAG, PID_TAG, reap_dead_runs
from rootassets.warehouse import Location, connect_read_only, connect_writable
from rootassets.warehouse.staging import REFRESH_TAG, stage, staged_refreshes


@asset
def step() -> None:
    """A run that succeeds (a refresh's first run, say) before its launcher dies."""


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def staged_by(warehouse: Location, instance: DagsterInstance, pid: int) -> str:
    refresh_id = str(uuid.uuid4())
    tags = {REFRESH_TAG: refresh_id, PID_TAG: str(pid), HOST_TAG: socket.gethostname()}
    assert materialize([step], instance=instance, tags=tags).success
    frame = pl.DataFrame({"site_id": ["AAAA"], "x": [1.0], "release": ["RELEASE-2021"]})
    with connect_writable(warehouse) as con:
        stage(con, {("analysis", "t"): frame}, "RELEASE-2021", refresh_id)
    return refresh_id


def test_a_refresh_whose_launcher_died_between_runs_is_discarded_and_a_live_one_is_not(
    tmp_path: Path, warehouse: Location
) -> None:
    with DagsterInstance.ephemeral() as instance:
        orphan = staged_by(warehouse, instance, dead_pid())
        live = staged_by(warehouse, instance, os.getpid())
        with connect_read_only(warehouse) as con:
            assert staged_refreshes(con) == sorted([orphan, live])
        notes = reap_dead_runs(instance, warehouse)
        with connect_read_only(warehouse) as con:
            assert staged_refreshes(con) == [live]
        assert any(orphan in note for note in notes) and not any(live in note for note in notes)
