"""The DuckLake backend (ROOTASSETS_WAREHOUSE=ducklake:postgres:...) against a real PostgreSQL server.

The main job on a lake must leave the same tables, row for row, as on the DuckDB file; the README's example
questions must get the same answers; a refresh's commit is one lake snapshot, readable again with
`rootassets sql --as-of RELEASE`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rootassets.settings import LakeConfigError, LakeLocation
from rootassets_tests.conftest import RELEASE, REPO
from rootassets_tests.object_storage import ObjectStorage, object_storage  # noqa: F401 - the fixture
from rootassets_tests.postgres import PG_BIN, Postgres

CLI = [sys.executable, "-m", "rootassets.cli"]
# The README's three example questions ("Three questions, three ways"), asked through `rootassets sql`.
QUESTIONS = [
    "select site_id, land_cover, d2_cm from marts.site_summary where modality = 'bimodal' order by d2_cm",
    "select land_cover, n_bimodal, n_sites, bimodal_share from marts.modality_by_land_cover "
    "order by bimodal_share desc, land_cover",
    "select nutrient, modality, median_exponent, share_positive from marts.nutrient_exponent_summary "
    "order by nutrient, modality",
]
CHECKSUMS = (
    "select table_schema || '.' || table_name as name from information_schema.tables "
    "where table_catalog = current_database() "
    "and table_schema in ('raw', 'harmonized', 'analysis', 'marts', 'quarantine') and table_type = 'BASE TABLE' "
    "order by 1"
)


def test_a_lake_setting_that_cannot_work_is_refused_with_its_reason() -> None:
    with pytest.raises(LakeConfigError, match="must not carry a password"):
        LakeLocation.parse("ducklake:postgres:dbname=lake user=me password=secret", "/tmp/lake")
    with pytest.raises(LakeConfigError, match="must not carry a password"):
        LakeLocation.parse("ducklake:postgres:postgresql://me:secret@host/lake", "/tmp/lake")
    with pytest.raises(LakeConfigError, match="names no database"):
        LakeLocation.parse("ducklake:postgres:host=127.0.0.1", "/tmp/lake")
    with pytest.raises(LakeConfigError, match="ROOTASSETS_LAKE_DATA is not set"):
        LakeLocation.parse("ducklake:postgres:dbname=lake", None)
    with pytest.raises(LakeConfigError, match="expected 'duckdb' or"):
        LakeLocation.parse("postgres:dbname=lake", "/tmp/lake")
    with pytest.raises(LakeConfigError, match="a URL must be object storage that DuckDB's httpfs writes"):
        LakeLocation.parse("ducklake:postgres:dbname=lake", "https://example.org/lake")
    lake = LakeLocation.parse("ducklake:postgres:dbname=lake host=127.0.0.1", "s3://bucket/lake")
    assert lake.data_path == "s3://bucket/lake/" and lake.spec == "ducklake:postgres:dbname=lake host=127.0.0.1"


def test_object_storage_is_reached_through_the_environment_with_no_key_in_any_statement() -> None:
    from rootassets.warehouse.lake import object_storage_statements

    keys = {"AWS_ACCESS_KEY_ID": "the-key-id", "AWS_SECRET_ACCESS_KEY": "the-secret", "AWS_SESSION_TOKEN": "the-token"}
    assert object_storage_statements("/data/lake/", keys) == []
    assert object_storage_statements("s3://bucket/lake/", keys) == ["LOAD httpfs"]
    custom = object_storage_statements("s3://bucket/lake/", {**keys, "AWS_ENDPOINT_URL": "http://127.0.0.1:9000/"})
    assert custom == [
        "LOAD httpfs",
        "SET s3_endpoint = '127.0.0.1:9000'",
        "SET s3_use_ssl = false",
        "SET s3_url_style = 'path'",
    ]
    assert not any(value in " ".join(custom) for value in keys.values())
    with pytest.raises(LakeConfigError, match="AWS_ENDPOINT_URL"):
        object_storage_statements("s3://bucket/lake/", {"AWS_ENDPOINT_URL": "http://"})


def test_the_cli_refuses_a_bad_lake_setting_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "ROOTASSETS_HOME": str(tmp_path), "ROOTASSETS_WAREHOUSE": "ducklake:postgres:dbname=x"}
    env.pop("ROOTASSETS_LAKE_DATA", None)
    done = subprocess.run([*CLI, "sql", "select 1"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "rootassets: error: ROOTASSETS_LAKE_DATA is not set: the lake needs a folder (or object-storage URL) "
        "for its Parquet files"
    ]
    env.pop("ROOTASSETS_WAREHOUSE")
    done = subprocess.run(
        [*CLI, "sql", "--as-of", RELEASE, "select 1"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "--as-of needs the DuckLake backend" in done.stderr


def _sql(env: dict[str, str], query: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, "sql", "--csv", *extra, query], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )


def _materialize(env: dict[str, str], *extra: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, "materialize", "--release", RELEASE, *extra],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _checksums(env: dict[str, str]) -> dict[str, str]:
    """{schema.table: 'rows,checksum'} of every user table, through `rootassets sql` (either backend)."""
    names = _sql(env, CHECKSUMS).stdout.splitlines()[1:]
    query = " union all ".join(
        f"select '{n}' as name, count(*)::varchar || ',' || coalesce(sum(hash(t)::hugeint), 0)::varchar as sums "
        f"from {n} t"
        for n in names
    )
    rows = _sql(env, query).stdout.strip().splitlines()[1:]
    return dict(line.split(",", 1) for line in rows)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_main_job_on_a_lake_leaves_the_tables_of_the_duckdb_file(
    tmp_path: Path,
    snapshot: Path,
    postgres: Postgres,
) -> None:
    base = {**os.environ, "ROOTASSETS_SNAPSHOT": str(snapshot)}
    base.pop("ROOTASSETS_WAREHOUSE", None)
    file_env = {**base, "ROOTASSETS_HOME": str(tmp_path / "file-home")}
    lake_env = {
        **base,
        "ROOTASSETS_HOME": str(tmp_path / "lake-home"),
        "ROOTASSETS_WAREHOUSE": "ducklake:postgres:" + postgres.create_database("lake"),
        "ROOTASSETS_LAKE_DATA": str(tmp_path / "lake-data"),
        "ROOTASSETS_INSTANCE_POSTGRES": postgres.create_database("dagster"),
    }
    runs = {}
    for name, env in (("lake", lake_env), ("file", file_env)):
        done = _materialize(env, timeout=1200)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        runs[name] = done.stdout.count(" succeeded: ")  # the refresh's runs, one line each
    assert not (tmp_path / "lake-home" / "rootassets.duckdb").exists()  # the lake run wrote no DuckDB file
    assert list((tmp_path / "lake-data").rglob("*.parquet")), "the lake's data are Parquet files under its path"

    # Dagster's instance in PostgreSQL: the refresh's runs are there, not in a SQLite file under the home.
    probe = (
        "from dagster import DagsterInstance; i = DagsterInstance.get(); "
        "print(type(i.run_storage).__name__, i.get_runs_count())"
    )
    dagster_home = {**lake_env, "DAGSTER_HOME": str(tmp_path / "lake-home" / "dagster")}
    storage = subprocess.run([sys.executable, "-c", probe], env=dagster_home, capture_output=True, text=True)
    assert runs["lake"] == runs["file"] > 0
    assert storage.stdout.split() == ["PostgresRunStorage", str(runs["lake"])], storage.stderr[-2000:]
    assert "password:" not in (tmp_path / "lake-home" / "dagster" / "dagster.yaml").read_text()

    lake, file = _checksums(lake_env), _checksums(file_env)
    assert len(lake) >= 40 and lake == file

    for question in QUESTIONS:
        on_lake, on_file = _sql(lake_env, question), _sql(file_env, question)
        assert on_lake.returncode == 0 and on_lake.stdout.count("\n") > 1, on_lake.stderr
        assert on_lake.stdout == on_file.stdout

    # The refresh's commit is one lake snapshot, named after it; the lake as RELEASE left it stays readable.
    commits = _sql(lake_env, "select author, commit_message from lake.snapshots() where author is not null")
    assert commits.stdout.strip().splitlines()[1:] == [f"rootassets,rootassets refresh {_refresh(lake_env)}: {RELEASE}"]
    as_of = _sql(lake_env, "select count(*) from marts.site_summary", "--as-of", RELEASE)
    assert as_of.returncode == 0 and as_of.stdout.split() == ["count_star()", "44"], as_of.stderr
    assert "the lake as of snapshot" in as_of.stderr
    assert _sql(lake_env, "select count(*) from meta.staged_tables").stdout.split()[1:] == ["0"]

    # Nothing changed: said at once, from the lake's newest snapshot, without Dagster.
    again = _materialize(lake_env)
    assert again.returncode == 0 and f"{RELEASE} is up to date: its NEON sources" in again.stdout, again.stderr


@pytest.mark.timeout(900)
def test_a_lake_with_its_data_in_object_storage(
    tmp_path: Path,
    snapshot: Path,
    postgres: Postgres,
    object_storage: ObjectStorage,  # noqa: F811 - the fixture imported above
) -> None:
    """ROOTASSETS_LAKE_DATA=s3://...: the lake's Parquet files go to an S3-compatible store (moto's server here),
    refreshes commit and replace rows there, `--as-of` reads an earlier snapshot back, and the store's keys,
    given only in the environment, reach no output, no file of the home, no object and not the catalog."""
    bucket = object_storage.create_bucket()
    dbname = f"objects_{bucket.replace('-', '_')}"
    env = {
        **os.environ,
        **object_storage.environment(),
        "ROOTASSETS_SNAPSHOT": str(snapshot),
        "ROOTASSETS_HOME": str(tmp_path / "home"),
        "ROOTASSETS_WAREHOUSE": "ducklake:postgres:" + postgres.create_database(dbname),
        "ROOTASSETS_LAKE_DATA": f"s3://{bucket}/lake",
    }
    env.pop("ROOTASSETS_INSTANCE_POSTGRES", None)
    outputs = []
    for extra in (["--select", "key:raw/*"], ["--select", "key:raw/site_land_cover", "--force"]):
        done = _materialize(env, *extra)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        outputs += [done.stdout, done.stderr]

    objects = object_storage.objects(bucket)
    parquet = [key for key in objects if key.startswith("lake/") and key.endswith(".parquet")]
    assert len(parquet) >= 15, sorted(objects)
    assert not list((tmp_path / "home").rglob("*.parquet")) and not (tmp_path / "home" / "rootassets.duckdb").exists()

    counts = _sql(env, "select count(*) as n from raw.site_land_cover")
    assert counts.returncode == 0, counts.stderr
    rows = int(counts.stdout.split()[1])
    assert rows > 0
    commits = _sql(env, "select count(distinct refresh_id) as n from meta.commits")
    assert commits.stdout.split()[1:] == ["2"], commits.stderr
    first = _sql(env, "select count(*) as n from raw.site_land_cover", "--as-of", RELEASE)
    assert first.returncode == 0 and first.stdout.split()[1:] == [str(rows)], first.stderr
    outputs += [counts.stdout, counts.stderr, commits.stdout, first.stdout, first.stderr]

    catalog = subprocess.run(
        [str(PG_BIN / "pg_dump"), "-h", postgres.host, "-p", str(postgres.port), "-U", postgres.user, dbname],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    secret = object_storage.secret
    files = [p for p in (tmp_path / "home").rglob("*") if p.is_file()]
    assert secret not in "".join(outputs)
    assert not [p for p in files if secret.encode() in p.read_bytes()]
    assert not [key for key, body in objects.items() if secret.encode() in body]
    assert secret.encode() not in catalog


def _refresh(env: dict[str, str]) -> str:
    found = _sql(env, "select distinct refresh_id from meta.commits").stdout.split()[1:]
    assert len(found) == 1, found
    return found[0]


def _site_writer(spec: str, data: str, site: str, rows: int) -> str:
    """In a process of its own: stage one site's rows under a refresh of its own, then commit them (what a site
    partition's run does), with DuckLake's conflicts retried."""
    import uuid

    from rootassets.warehouse.connection import connect_writable
    from rootassets.warehouse.staging import SiteScope, commit_refresh, write_queries

    refresh = str(uuid.uuid4())
    with connect_writable(LakeLocation.parse(spec, data)) as con:
        query = f"SELECT '{site}' AS site_id, range AS value FROM range({rows})"
        write_queries(con, {("analysis", "shared"): query}, RELEASE, refresh, SiteScope(only=(site,)))
        commit_refresh(con, refresh)
    return refresh


@pytest.mark.timeout(600)
def test_site_partitions_commit_side_by_side_on_a_lake_without_losing_rows(tmp_path: Path, postgres: Postgres) -> None:
    """Four site writers at once on one table: DuckLake refuses all but one of concurrent commits that delete from
    and insert into one table; each refused commit is retried, so all four commit, each its own site's rows."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from rootassets.warehouse.connection import connect_read_only

    spec, data = "ducklake:postgres:" + postgres.create_database("sides"), str(tmp_path / "lake")
    sites = {"ABBY": 1000, "BART": 2000, "CPER": 3000, "DELA": 4000}
    context = multiprocessing.get_context("spawn")
    for round_ in range(2):  # the second round replaces each site's rows (deletes and inserts at once)
        with ProcessPoolExecutor(len(sites), mp_context=context) as pool:
            futures = [pool.submit(_site_writer, spec, data, site, n + round_) for site, n in sites.items()]
            refreshes = [f.result() for f in futures]
        with connect_read_only(LakeLocation.parse(spec, data)) as con:
            counts = dict(con.execute("select site_id, count(*) from analysis.shared group by 1").fetchall())
            committed = {r for (r,) in con.execute("select refresh_id from meta.commits").fetchall()}
            snapshots = con.execute(
                "select count(*) from lake.snapshots() where author = 'rootassets' and commit_message like ?",
                [f"%{RELEASE}%"],
            ).fetchone()[0]
        assert counts == {s: n + round_ for s, n in sites.items()}
        assert set(refreshes) <= committed
        assert snapshots == len(sites) * (round_ + 1)  # one lake snapshot per commit


def _staging_then_stall(spec: str, data: str, site: str, rows: int, flag: str) -> None:
    """Stage one site's rows, say so (the file `flag`), then wait to be killed before committing."""
    import time
    import uuid

    from rootassets.warehouse.connection import connect_writable
    from rootassets.warehouse.staging import SiteScope, write_queries

    refresh = str(uuid.uuid4())
    with connect_writable(LakeLocation.parse(spec, data)) as con:
        query = f"SELECT '{site}' AS site_id, range AS value FROM range({rows})"
        write_queries(con, {("analysis", "shared"): query}, RELEASE, refresh, SiteScope(only=(site,)))
    Path(flag).write_text(refresh)
    time.sleep(600)


@pytest.mark.timeout(600)
def test_a_run_killed_before_its_commit_leaves_the_lake_as_the_others_committed_it(
    tmp_path: Path, postgres: Postgres
) -> None:
    import multiprocessing
    import signal
    import time
    from concurrent.futures import ProcessPoolExecutor

    from rootassets.warehouse.connection import connect_read_only, connect_writable
    from rootassets.warehouse.staging import discard_refresh

    spec, data = "ducklake:postgres:" + postgres.create_database("killed"), str(tmp_path / "lake")
    lake = LakeLocation.parse(spec, data)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(3, mp_context=context) as pool:
        list(pool.map(_site_writer, [spec] * 3, [data] * 3, ["ABBY", "BART", "CPER"], [10, 20, 30]))
    flag = tmp_path / "staged"
    victim = context.Process(target=_staging_then_stall, args=(spec, data, "ABBY", 99, str(flag)))
    victim.start()
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        others = [pool.submit(_site_writer, spec, data, site, n) for site, n in (("BART", 21), ("CPER", 31))]
        deadline = time.time() + 300
        while not flag.exists():
            assert victim.is_alive() and time.time() < deadline, "the victim never staged its rows"
            time.sleep(0.2)
        os.kill(victim.pid, signal.SIGKILL)
        victim.join()
        [f.result() for f in others]
    killed = flag.read_text()
    with connect_read_only(lake) as con:
        counts = dict(con.execute("select site_id, count(*) from analysis.shared group by 1").fetchall())
        staged = [r for (r,) in con.execute("select distinct refresh_id from meta.staged_tables").fetchall()]
    assert counts == {"ABBY": 10, "BART": 21, "CPER": 31}  # the killed site's earlier rows, the others' new ones
    assert staged == [killed]  # invisible, until the reaper discards it
    with connect_writable(lake) as con:
        assert discard_refresh(con, killed) == 1
    with connect_read_only(lake) as con:
        assert con.execute("select count(*) from meta.staged_tables").fetchone()[0] == 0
        assert con.execute("select count(*) from analysis.shared").fetchone()[0] == 10 + 21 + 31


def test_a_tampered_extension_file_is_refused_then_copied_anew(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lake connections load the extensions without DuckDB's per-load signature check (0.13 s each), because each
    process checks the folder's files once first: a file altered in the cache fails that check, is removed, and
    the next call copies it again from its PyPI package."""
    import duckdb

    from rootassets.warehouse.lake import extension_directory

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    extension_directory.cache_clear()
    try:
        folder = extension_directory()
        (file,) = folder.rglob("ducklake.duckdb_extension")
        with file.open("r+b") as handle:  # flip bytes inside the file, as a corrupted or planted copy would
            handle.seek(4096)
            chunk = handle.read(64)
            handle.seek(4096)
            handle.write(bytes(b ^ 0xFF for b in chunk))
        extension_directory.cache_clear()
        with pytest.raises(LakeConfigError, match="refused the ducklake extension's signature"):
            extension_directory()
        assert not file.exists()
        extension_directory.cache_clear()
        assert extension_directory() == folder and file.exists()
        with duckdb.connect(config={"extension_directory": str(folder)}) as con:
            con.execute("LOAD ducklake")  # signed and checked again by DuckDB itself
    finally:
        extension_directory.cache_clear()
