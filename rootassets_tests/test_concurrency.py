"""One DuckDB file, many users: two materializations at once while SQL readers poll."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from rootassets.warehouse import Location, connect_read_only
from rootassets_tests.conftest import RELEASE, REPO, warehouse_of

pytestmark = pytest.mark.slow
SELECT = "key:raw/* or key:harmonized/*"


def tables(db: Location) -> dict[str, pl.DataFrame]:
    with connect_read_only(db) as con:
        names = [
            n
            for (n,) in con.execute(
                "select table_schema || '.' || table_name from information_schema.tables "
                "where table_catalog = current_database() and table_schema in ('raw', 'harmonized', 'quarantine') "
                "order by 1"
            ).fetchall()
        ]

        def columns(name: str) -> set[str]:
            return {c for (c, *_) in con.execute(f"describe {name}").fetchall()}

        # publication_date of a raw table is parsed from the file (its time of day may differ per run)
        return {
            n: con.sql(f"select * exclude (publication_date) from {n} order by all").pl()
            if "publication_date" in columns(n) and n.startswith("raw.") and not n.startswith("raw.swc")
            else con.sql(f"select * from {n} order by all").pl()
            for n in names
        }


def test_concurrent_materializations_and_readers_end_like_a_quiet_run(
    tmp_path: Path, snapshot: Path, new_warehouse: Callable[[], dict]
) -> None:
    backends = {"quiet": new_warehouse(), "busy": new_warehouse()}

    def env(home: Path) -> dict[str, str]:
        return {**os.environ, "ROOTASSETS_HOME": str(home), "ROOTASSETS_SNAPSHOT": str(snapshot), **backends[home.name]}

    materialize = [
        sys.executable,
        "-m",
        "rootassets.cli",
        "materialize",
        "--release",
        RELEASE,
        "--select",
        SELECT,
        "--force",
    ]
    quiet = subprocess.run(materialize, env=env(tmp_path / "quiet"), cwd=REPO, capture_output=True, timeout=600)
    assert quiet.returncode == 0

    busy = tmp_path / "busy"
    first = subprocess.run(materialize, env=env(busy), cwd=REPO, capture_output=True, timeout=600)
    assert first.returncode == 0
    writers = [
        subprocess.Popen(
            materialize, env=env(busy), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    answers, deadline = [], time.time() + 600
    while any(w.poll() is None for w in writers) and time.time() < deadline:
        read = subprocess.run(
            [sys.executable, "-m", "rootassets.cli", "sql", "--csv", "select count(*) from raw.mpr_perrootsample"],
            env=env(busy),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        answers.append((read.returncode, read.stdout.strip().splitlines()[-1:] if read.stdout else []))
    outputs = [w.communicate(timeout=600) for w in writers]
    for w, (_, err) in zip(writers, outputs, strict=True):
        assert w.returncode == 0, err[-2000:]
    assert answers and all(code == 0 and lines == ["2913"] for code, lines in answers), answers
    quiet_tables, busy_tables = tables(warehouse_of(env(tmp_path / "quiet"))), tables(warehouse_of(env(busy)))
    assert quiet_tables.keys() == busy_tables.keys()
    for name in quiet_tables:
        assert quiet_tables[name].equals(busy_tables[name]), name


def test_only_a_lock_waits_a_database_that_cannot_be_opened_is_refused_at_once(tmp_path: Path) -> None:
    """Only another writer's lock is waited for and reported as such: a database in a folder that does not
    exist, or a file that is no database, fails at once with DuckDB's own message naming the file."""
    import duckdb

    from rootassets.warehouse import connect_writable

    missing = tmp_path / "no-such-folder" / "rootassets.duckdb"
    started = time.monotonic()
    with pytest.raises(duckdb.IOException, match="no-such-folder"):
        connect_writable(missing, wait_s=30)
    garbage = tmp_path / "garbage.duckdb"
    garbage.write_bytes(b"this is not a database" * 512)
    with pytest.raises(duckdb.Error, match="garbage.duckdb") as refused:
        connect_read_only(garbage, attempts=20, wait_s=0.25)
    assert "locked" not in str(refused.value)
    assert time.monotonic() - started < 5  # neither waited as for a lock
