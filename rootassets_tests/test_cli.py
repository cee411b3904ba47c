"""End to end: the `rootassets` command line on the real snapshot, as a user runs it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from rootassets.settings import LakeLocation
from rootassets.warehouse import Location, connect_writable
from rootassets_tests.conftest import RELEASE, REPO, warehouse_of

pytestmark = pytest.mark.slow


def cli(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rootassets.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, snapshot: Path) -> dict[str, str]:
    """A ROOTASSETS_HOME after one `rootassets materialize --release latest` on the snapshot."""
    env = {**os.environ, "ROOTASSETS_HOME": str(tmp_path_factory.mktemp("home")), "ROOTASSETS_SNAPSHOT": str(snapshot)}
    env.pop("DAGSTER_HOME", None)
    done = cli("materialize", "--release", "latest", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "succeeded" in done.stdout and RELEASE in done.stdout
    # progress as each asset is done: every asset of a run counted once, in order, up to the run's total
    for run in done.stdout.split("succeeded:")[:-1]:
        counted = [tuple(map(int, m)) for m in re.findall(r"^  \[(\d+)/(\d+)\] materialized ", run, re.M)]
        assert counted == [(i, len(counted)) for i in range(1, len(counted) + 1)], run
    # a first refresh: every phase stale as a whole, so NEON observed, the 15 raw tables and the release assets
    # before the soil-water site partitions in one run
    first = done.stdout.split("succeeded:")[0]
    assert len(re.findall(r"^  \[\d+/\d+\] materialized raw/", first, re.M)) == 15
    assert re.search(r"^  \[\d+/\d+\] materialized analysis/classifier", first, re.M)
    # the very next run is the warm shortcut: the first refresh recorded the instance it created
    warm = cli("materialize", "--release", RELEASE, env=env)
    assert warm.returncode == 0 and f"{RELEASE} is up to date: its NEON sources" in warm.stdout, warm.stdout[:3000]
    return env


def test_raw_counts_through_sql(home: dict[str, str]) -> None:
    done = cli("sql", "--csv", "select count(*), count(distinct site_id) from raw.mpr_perrootsample", env=home)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "2913,44"
    done = cli("sql", "--csv", "select count(*), count(distinct site_id) from raw.mgp_perbiogeosample", env=home)
    assert done.stdout.strip().splitlines()[-1] == "375,47"
    done = cli("sql", "--csv", "select count(*) from raw.mgp_perhorizon", env=home)
    assert done.stdout.strip().splitlines()[-1] == "346"


def test_every_raw_table_is_release_2021(home: dict[str, str]) -> None:
    tables = cli(
        "sql", "--csv", "select table_name from information_schema.tables where table_schema = 'raw'", env=home
    ).stdout.split()[1:]
    assert len(tables) == 15  # 8 NEON megapit tables, 3 of NEON documentation, 2 site-attribute, 2 soil-water
    for table in tables:
        done = cli("sql", "--csv", f'select distinct release from raw."{table}" where release is not null', env=home)
        assert done.stdout.split()[1:] in ([RELEASE], []), table


def test_runs_are_recorded_in_the_persistent_instance(home: dict[str, str]) -> None:
    runs = Path(home["ROOTASSETS_HOME"]) / "dagster"
    # one writer at a time to the DuckDB file; a lake's writers commit independently
    assert (runs / "dagster.yaml").read_text().count("default_limit: 1") == (0 if warehouse_is_lake(home) else 1)
    assert (runs / "storage").is_dir() or any(runs.glob("*.db")) or any(runs.rglob("runs.db"))


def test_json_output(home: dict[str, str]) -> None:
    done = cli("sql", "--json", "select 1 as one, 'x' as two", env=home)
    assert done.stdout.replace(" ", "").replace("\n", "") == '[{"one":1,"two":"x"}]'


def test_select_subset(home: dict[str, str]) -> None:
    fresh = cli("materialize", "--release", RELEASE, "--select", "key:raw/site_land_cover", env=home)
    assert "1 raw tables up to date (their NEON source is unchanged), not re-read" in fresh.stdout, fresh.stdout
    done = cli("materialize", "--release", RELEASE, "--select", "key:raw/site_land_cover", "--force", env=home)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "observed neon/site_attributes" in done.stdout and "materialized raw/site_land_cover" in done.stdout
    assert "mpr_perrootsample" not in done.stdout and "field_site_metadata" not in done.stdout


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["materialize", "--release", "RELEASE-2021/../x"], "invalid NEON release tag", 2),
        (["materialize", "--select", "key:nope/*"], "matches no asset", 2),
        (["sql", ""], "empty query", 2),
        (["sql", "-- only a comment"], "empty query", 2),
        (["sql", "select * from raw.no_such_table"], "query failed", 1),
        (["sql", "select 1; select * from raw.no_such_table"], "query failed (statement 2 of 2)", 1),
    ],
)
def test_clear_errors_and_exit_codes(home: dict[str, str], args: list[str], message: str, code: int) -> None:
    done = cli(*args, env=home)
    assert done.returncode == code
    assert message in done.stderr and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_unknown_release_is_refused_before_anything_is_written(tmp_path: Path, snapshot: Path) -> None:
    env = {**os.environ, "ROOTASSETS_HOME": str(tmp_path / "home"), "ROOTASSETS_SNAPSHOT": str(snapshot)}
    done = cli("materialize", "--release", "RELEASE-2099", env=env)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "RELEASE-2099 is not offered" in done.stderr and RELEASE in done.stderr
    assert not (tmp_path / "home").exists()  # no database, no dagster/ folder


def test_every_statement_prints_its_result(home: dict[str, str]) -> None:
    done = cli("sql", "--csv", "select 1 as a; select 2 as b", env=home)
    assert done.returncode == 0 and done.stdout == "a\n1\n\nb\n2\n"


def test_sql_without_a_database_says_what_to_do(tmp_path: Path) -> None:
    env = {**os.environ, "ROOTASSETS_HOME": str(tmp_path)}
    done = cli("sql", "select 1", env=env)
    assert done.returncode == 1 and "run `rootassets materialize` first" in done.stderr


def test_missing_release_in_snapshot_fails_and_keeps_data(home: dict[str, str]) -> None:
    done = cli("materialize", "--release", "RELEASE-2099", env=home)
    assert done.returncode == 2
    assert "RELEASE-2099" in done.stderr
    after = cli("sql", "--csv", "select count(*) from raw.mpr_perrootsample", env=home)
    assert after.stdout.split()[-1] == "2913"


def test_definitions_validate(snapshot: Path, tmp_path: Path) -> None:
    env = {**os.environ, "ROOTASSETS_HOME": str(tmp_path), "ROOTASSETS_SNAPSHOT": str(snapshot)}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-w", "workspace.yaml"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "All code locations passed validation" in done.stdout + done.stderr


ANALYSIS_TABLES = [
    "site_modality",
    "site_kde",
    "phi",
    "site_factors",
    "classifier_performance",
    "classifier_importance",
    "group_tests",
    "nutrient_exponents",
    "nutrient_exponents_site_mean",
    "nutrient_points",
    "nutrient_loess",
    "site_label_robustness",
    "paper_comparison",
    "site_label_sensitivity",
    "phi_sensitivity",
]


def test_main_job_fills_every_analysis_table(home: dict[str, str]) -> None:
    for table in ANALYSIS_TABLES:
        done = cli("sql", "--csv", f"select count(*), min(release), max(release) from analysis.{table}", env=home)
        count, low, high = done.stdout.strip().splitlines()[-1].split(",")
        assert int(count) > 0 and low == high == RELEASE, table
    modality = cli("sql", "--csv", "select count(*), count(distinct modality) from analysis.site_modality", env=home)
    assert modality.stdout.strip().splitlines()[-1] == "44,2"
    names = cli("sql", "--csv", "select name from analysis.group_tests", env=home).stdout.split()
    assert {"total_fine_root_biomass", "land_cover", "growth_form", "phi_root_biomass_increment"} <= set(names)
    same = cli(
        "sql",
        "--csv",
        "select (select count(*) from analysis.phi_sensitivity s join analysis.group_tests g "
        "on g.name = 'phi_' || s.property || '_' || s.method and g.release = s.release "
        "where s.is_default and s.p_value = g.p_value), "
        "(select count(*) from analysis.group_tests where name like 'phi_%')",
        env=home,
    )
    matched, phi_tests = same.stdout.strip().splitlines()[-1].split(",")
    assert matched == phi_tests and int(phi_tests) > 0  # at the default depths: the phi tests themselves
    runs = cli(
        "sql",
        "--csv",
        "select run, max(value) filter (where metric = 'n_sites'), count(*) filter (where metric like '%_seed_mean'),"
        " count(*) filter (where metric like '%_null_p_value') from analysis.classifier_performance group by run "
        "order by run",
        env=home,
    )
    assert runs.stdout.strip().splitlines()[1:] == [
        f"{run},44.0,3,3" for run in ("all_factors", "kept_factors", "total_biomass_alone", "without_total_biomass")
    ]


def test_figures_model_and_report_are_written(home: dict[str, str]) -> None:
    root = Path(home["ROOTASSETS_HOME"])
    figures = sorted((root / "figures" / RELEASE).glob("*.png"))
    from rootassets.science.figure_specs import FIGURES

    assert [f.stem for f in figures] == sorted(spec.name for spec in FIGURES)
    assert all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 10_000 for f in figures)
    vectors = sorted((root / "figures" / RELEASE).glob("*.svg"))
    assert [f.stem for f in vectors] == [f.stem for f in figures]  # each figure also as SVG
    assert all(b"<svg" in f.read_bytes()[:2000] for f in vectors)
    from PIL import Image

    with Image.open(figures[0]) as image:
        assert round(image.info["dpi"][0]) == 300
    assert (root / "models" / RELEASE / "modality_forest.joblib").stat().st_size > 0
    report = (root / "reports" / RELEASE / "report.md").read_text()
    assert "## Group tests" in report and "figure_1_root_profiles.png" in report
    first = next(line for line in report.splitlines() if line.startswith("## "))
    assert first == "## The paper's headline results and this release's"
    compared = cli(
        "sql",
        "--csv",
        "select count(*), count(*) filter (where reproduced) from analysis.paper_comparison "
        "where reproduced is not null",
        env=home,
    )
    total, reproduced = compared.stdout.strip().splitlines()[-1].split(",")
    assert f"{reproduced} of {total} published results reproduced" in report
    values = cli("sql", "--csv", "select platform_value from analysis.paper_comparison", env=home).stdout
    table = report.split("## Modality")[0]
    assert all(f"| {v.strip()} " in table for v in values.splitlines()[1:] if v.strip())  # from the table itself
    pages = (root / "reports" / RELEASE / "site_pages.pdf").read_bytes()
    assert pages[:5] == b"%PDF-" and len(re.findall(rb"/Type\s*/Page[^s]", pages)) == 44  # one page per site
    page = (root / "reports" / RELEASE / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page and "## " not in page
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == len(figures) and all(s.startswith("data:image/png;base64,") for s in sources)  # inline
    done = cli("materialize", "--release", RELEASE, env=home)  # up to date: says where everything is
    assert f"rootassets: report   {root / 'reports' / RELEASE / 'report.html'}" in done.stdout
    assert f"rootassets: figures  {root / 'figures' / RELEASE}/" in done.stdout


def test_warm_rerun_recomputes_nothing_downstream(home: dict[str, str]) -> None:
    done = cli("materialize", "--release", RELEASE, "--full-check", env=home)  # Dagster's staleness, asset by asset
    assert done.returncode == 0, done.stderr[-2000:]
    assert "assets up to date (same code and inputs), not recomputed" in done.stdout
    assert "materialized analysis/" not in done.stdout and "materialized harmonized/" not in done.stdout
    assert "raw tables up to date (their NEON source is unchanged), not re-read" in done.stdout
    assert "materialized raw/" not in done.stdout
    forced = cli(
        "materialize", "--release", RELEASE, "--select", "key:harmonized/site_root_biomass", "--force", env=home
    )
    assert "materialized harmonized/site_root_biomass" in forced.stdout


def test_marts_site_summary_has_every_site(home: dict[str, str]) -> None:
    done = cli("sql", "--csv", "select count(distinct site_id) from marts.site_summary", env=home)
    assert done.stdout.strip().splitlines() == ["count(DISTINCT site_id)", "44"]


@pytest.mark.duckdb_file  # the file's lock: a lake's readers never wait
def test_sql_waits_for_a_writer_and_then_answers(home: dict[str, str]) -> None:
    db = Path(home["ROOTASSETS_HOME"]) / "rootassets.duckdb"
    hold = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('locked', flush=True); time.sleep(4)"
    writer = subprocess.Popen([sys.executable, "-c", hold, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "locked"
        done = cli("sql", "--csv", "select count(*) from raw.mgp_perhorizon", env=home)
    finally:
        writer.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    assert "locked by a running materialization; waiting" in done.stderr
    assert done.stdout.strip().splitlines()[-1] == "346"


def test_a_touched_source_file_is_re_read_and_unchanged_content_recomputes_nothing(
    tmp_path: Path, snapshot: Path
) -> None:
    copy = tmp_path / "snapshot"
    shutil.copytree(snapshot, copy)
    env = {**os.environ, "ROOTASSETS_HOME": str(tmp_path / "home"), "ROOTASSETS_SNAPSHOT": str(copy)}
    select = ["materialize", "--release", RELEASE, "--select", "key:raw/* or key:harmonized/*"]
    assert cli(*select, env=env).returncode == 0
    quiet = cli(*select, env=env)
    assert "not re-read" in quiet.stdout and "materialized raw/" not in quiet.stdout, quiet.stdout
    roots = copy / RELEASE / "DP1.10066.001" / "mpr_perrootsample.csv"
    os.utime(roots, ns=(roots.stat().st_atime_ns, roots.stat().st_mtime_ns + 10**9))
    touched = cli(*select, env=env)
    assert "materialized raw/mpr_perrootsample" in touched.stdout, touched.stdout
    assert "materialized harmonized/" not in touched.stdout  # same bytes: same md5 data version


def test_one_asset_of_a_multi_asset_runs_alone(home: dict[str, str]) -> None:
    # analysis/site_kde and analysis/site_modality come from one multi-asset; a subset run writes only its subset
    done = cli("materialize", "--release", RELEASE, "--select", "key:analysis/site_kde", "--force", env=home)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "materialized analysis/site_kde" in done.stdout
    assert "materialized analysis/site_modality" not in done.stdout, done.stdout


def warehouse_is_lake(env: dict[str, str]) -> bool:
    return isinstance(warehouse_of(env), LakeLocation)


def written_since(warehouse: Location) -> None:
    """A write to the warehouse by someone else: the file touched, or a commit to the lake."""
    if isinstance(warehouse, Path):
        os.utime(warehouse)
        return
    with connect_writable(warehouse) as con:
        con.execute("CREATE TABLE main.someone_elses AS SELECT 1 AS x")
        con.execute("DROP TABLE main.someone_elses")


def test_an_unchanged_release_is_up_to_date_without_dagster(home: dict[str, str]) -> None:
    """The warm shortcut (rootassets.uptodate): nothing changed since the last committed refresh of the release
    is said without running anything; a database written since, or another setting, takes the full path."""
    recorded = cli("materialize", "--release", RELEASE, "--full-check", env=home)
    assert recorded.returncode == 0, recorded.stderr[-2000:]
    again = cli("materialize", "--release", RELEASE, env=home)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{RELEASE} is up to date: its NEON sources, the code and the settings are those of the" in again.stdout
    assert "observed" not in again.stdout and "58 assets" not in again.stdout
    assert "15 raw tables up to date" in again.stdout and "0 assets materialized" in again.stdout
    written_since(warehouse_of(home))  # by a UI run, say
    touched = cli("materialize", "--release", RELEASE, env=home)
    assert "observed neon/" in touched.stdout and "is up to date: its NEON" not in touched.stdout
    assert "is up to date: its NEON" in cli("materialize", "--release", RELEASE, env=home).stdout
    other = {**home, "ROOTASSETS_SOIL_WATER_WINDOW": "2020-01:2020-12"}
    changed = cli("materialize", "--release", RELEASE, env=other)
    assert "observed neon/" in changed.stdout and "is up to date: its NEON" not in changed.stdout
    forced = cli("materialize", "--release", RELEASE, "--select", "key:raw/site_land_cover", env=other)
    assert "is up to date: its NEON" not in forced.stdout


def test_tables_lists_the_user_facing_tables_with_descriptions_and_rows(home: dict[str, str]) -> None:
    done = cli("tables", "--csv", env=home)
    assert done.returncode == 0, done.stderr[-2000:]
    import csv as csv_module

    rows = {r["table"]: r for r in csv_module.DictReader(done.stdout.splitlines())}
    assert rows["raw.mpr_perrootsample"]["rows"] == f"{RELEASE}: 2913"
    assert "Megapit root samples" in rows["raw.mpr_perrootsample"]["description"]
    assert rows["analysis.site_modality"]["rows"] == f"{RELEASE}: 44" and rows["analysis.site_modality"]["description"]
    assert not any(t.startswith(("staging.", "quarantine.")) for t in rows)
    assert {t.split(".")[0] for t in rows} == {"raw", "harmonized", "analysis", "marts"}
    assert "marts.latest_release" in rows  # views too
    uncommented = cli(
        "sql",
        "--csv",
        "select count(*) from (select comment from duckdb_tables() where schema_name in "
        "('raw','harmonized','analysis','marts') union all select comment from duckdb_views() where schema_name = "
        "'marts') where comment is null or comment = ''",
        env=home,
    )
    assert uncommented.stdout.split()[-1] == "0"  # every table and view says what it holds
    # DuckLake keeps no comments on a view's columns (README, "What differs"): there, the views' tables' columns
    views = "select view_name from duckdb_views() v where v.schema_name = c.schema_name"
    columns = cli(
        "sql",
        "--csv",
        "select schema_name || '.' || table_name || '.' || column_name as c from duckdb_columns() c "
        "where schema_name in ('raw','harmonized','analysis','marts') and (comment is null or comment = '')"
        + (f" and table_name not in ({views})" if warehouse_is_lake(home) else ""),
        env=home,
    )
    assert columns.returncode == 0 and columns.stdout.split() == ["c"]  # every column says what it holds
    neon_field = cli(
        "sql",
        "--csv",
        "select comment from duckdb_columns() where schema_name = 'raw' and table_name = 'mgp_perhorizon' "
        "and column_name = 'horizonName'",
        env=home,
    )
    assert "field of NEON's mgp_perhorizon table" in neon_field.stdout  # the snapshot has no variables file
    assert "variables file" in neon_field.stdout
    left = cli("sql", "--csv", "select count(*) from duckdb_tables() where schema_name = 'staging'", env=home)
    assert left.stdout.split()[-1] == "0"  # committed: no empty staging twin of every table
    renamed = cli(
        "sql", "--csv", "select d0_kde_density, kde_sample_size from analysis.site_modality limit 1", env=home
    )
    assert renamed.returncode == 0, renamed.stderr
    kept_aside = cli(
        "sql", "--csv", "select table_name from duckdb_tables() where schema_name = 'quarantine'", env=home
    )
    quarantine_tables = set(kept_aside.stdout.split()[1:])
    assert "mgp_perhorizon" in quarantine_tables  # the snapshot's one refused horizon
    assert "site_modality" not in quarantine_tables  # no empty twin: `site_modality` alone names one table
    refused = cli("tables", "--schema", "staging", env=home)
    assert refused.returncode == 2 and "no schema staging" in refused.stderr


def test_an_unexpected_failure_is_one_line_and_its_traceback_only_with_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rootassets import cli as rootassets_cli

    def broken(args: object) -> int:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(rootassets_cli, "_tables", broken)
    assert rootassets_cli.main(["tables"]) == 1
    err = capsys.readouterr().err
    assert err == "rootassets: error: RuntimeError: disk on fire (rerun with --debug for the traceback)\n"
    for argv in (["--debug", "tables"], ["tables", "--debug"]):
        with pytest.raises(RuntimeError, match="disk on fire"):
            rootassets_cli.main(argv)


def test_sql_reads_the_query_from_stdin(home: dict[str, str]) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("rootassets")), "sql", "--csv"],
        input="select count(*) as n from analysis.site_modality;",
        env=home,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout == "n\n44\n", done.stderr


def test_sql_without_a_query_at_a_terminal_opens_duckdbs_shell_read_only(home: dict[str, str]) -> None:
    """At a terminal (a pty answering the shell's terminal queries as a terminal does), `rootassets sql` with
    no query is DuckDB's own shell on the database, read-only (on a lake: an in-memory DuckDB with the lake
    attached read-only)."""
    import pty
    import select
    import time

    leader, follower = pty.openpty()
    shell = subprocess.Popen(
        [str(Path(sys.executable).with_name("rootassets")), "sql"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**home, "PAGER": "cat"},
        close_fds=True,
    )
    os.close(follower)
    typed = [b"select 40 + 4 as answer;\r", b"create table raw.x as select 1;\r", b".tables\r", b".quit\r"]
    answers = {b"\x1b]11;?": b"\x1b]11;rgb:0000/0000/0000\x07", b"\x1b[c": b"\x1b[?62;c", b"\x1b[6n": b"\x1b[24;80R"}
    output, deadline = b"", time.time() + 240  # a loaded CI machine draws `.tables` slowly
    while time.time() < deadline and shell.poll() is None:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if not ready:
            if typed:
                os.write(leader, typed.pop(0))
            continue
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        output += chunk
        for query, answer in answers.items():
            for _ in range(chunk.count(query)):
                os.write(leader, answer)
    try:
        shell.wait(timeout=30)  # `.quit` typed last: give the shell time to leave
    except subprocess.TimeoutExpired:
        shell.kill()
        pytest.fail(f"the shell did not quit: {output[-2000:]!r}")
    text = output.decode(errors="replace")
    assert "rootassets: DuckDB shell on" in text and "read-only" in text
    assert "44" in text and "site_modality" in text
    assert "attached in read-only mode" in text  # the shell cannot write


def test_preview_prints_each_request_and_nothing_for_a_committed_release(
    home: dict[str, str], tmp_path: Path, new_warehouse: Callable[[], dict]
) -> None:
    """`rootassets preview` evaluates one tick: a fresh home is offered RELEASE-2021 (release, partition, run
    key printed; nothing written), a home that committed it is asked for nothing, and the skip says why."""
    fresh = {**home, "ROOTASSETS_HOME": str(tmp_path / "fresh"), **new_warehouse()}
    done = cli("preview", "neon_release_sensor", env=fresh)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"release {RELEASE}: partition {RELEASE}, run key {RELEASE}," in done.stdout
    assert not (tmp_path / "fresh").exists()
    committed = cli("preview", "neon_release_sensor", env=home)
    assert committed.returncode == 0, committed.stderr[-2000:]
    assert "requests no run" in committed.stdout and "already committed in" in committed.stdout
    assert RELEASE in committed.stdout.split("already committed in")[1]
    schedule = cli("preview", "weekly_neon_refresh", env=home)
    assert schedule.returncode == 0 and "requests no run: the NEON source offers no PROVISIONAL data" in schedule.stdout
    unknown = cli("preview", "nope", env=home)
    assert unknown.returncode == 2 and "neon_release_sensor" in unknown.stderr and len(unknown.stderr.splitlines()) == 1


def test_site_pages_drawn_in_worker_processes_equal_one_process_pages(home: dict[str, str]) -> None:
    """The page document drawn in two worker processes and joined (pypdf) has the pages one process draws, in
    the same order, with the same text on each."""
    import io

    from pypdf import PdfReader

    from rootassets.science.figure_specs import SITE_PAGE_READS, site_order, site_pages_pdf
    from rootassets.warehouse import connect_read_only, read_release

    with connect_read_only(warehouse_of(home)) as con:
        inputs = {r.name: read_release(con, r.schema, r.name, RELEASE) for r in SITE_PAGE_READS}
    texts = []
    for n_jobs in (1, 2):
        reader = PdfReader(io.BytesIO(site_pages_pdf(inputs, n_jobs=n_jobs)))
        texts.append([page.extract_text() for page in reader.pages])
    sites = site_order(inputs)
    assert len(texts[0]) == len(sites) == 44 and texts[1] == texts[0]
    assert all(site in text for site, text in zip(sites, texts[0], strict=True))  # page k is site k's


def test_each_figure_shows_its_png_shrunk_in_the_ui(home: dict[str, str]) -> None:
    import base64
    import io

    import numpy as np
    from dagster import AssetKey, DagsterInstance
    from PIL import Image

    from rootassets.science.figure_specs import FIGURE_DPI, FIGURES, PREVIEW_DPI

    root = Path(home["ROOTASSETS_HOME"])
    with DagsterInstance.from_config(str(root / "dagster")) as instance:
        for spec in FIGURES:
            event = instance.get_latest_materialization_event(AssetKey(["reports", spec.name]))
            embedded = event.asset_materialization.metadata["figure_embedded"].value
            encoded = re.fullmatch(r"!\[\w+\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", embedded).group(1)
            with (
                Image.open(io.BytesIO(base64.b64decode(encoded))) as preview,
                Image.open(root / "figures" / RELEASE / f"{spec.name}.png") as png,
            ):
                shrunk = png.reduce(round(FIGURE_DPI / PREVIEW_DPI))
                assert np.array_equal(np.asarray(preview), np.asarray(shrunk)), spec.name
