"""The Dagster UI in a real browser (Debian chromium, headless, driven by Playwright).

Starts the UI as the README says (`rootassets releases --add`, then `rootassets ui`,
without an activated venv) on a free port against a temporary ROOTASSETS_HOME and
a copy of the snapshot with a planted RELEASE-2022 beside it (the release the sensor
requests: RELEASE-2021, committed by the UI's run, it never requests again),
launches a materialization of every asset for RELEASE-2021 from the UI, waits for
it to succeed, and checks that an analysis asset shows its figure and metadata.
Then it kills a UI run and a sensor run at random points and checks what a user
would: the visible tables are unchanged, the failure sensor emptied the staging,
and the UI flags the killed run's assets as not visible. Screenshots go to
test-artifacts/browser/.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rootassets_tests.conftest import (
    MATERIALIZED,
    RELEASE,
    REPO,
    random_kill_point,
    staged_refreshes,
    warehouse_digest,
    warehouse_of,
)
from rootassets_tests.planted import copy_release, plant_release

NEXT_RELEASE = "RELEASE-2022"  # planted beside the snapshot's release: the one the release sensor requests

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUN_TIMEOUT_S = 900


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory, snapshot: Path) -> Iterator[tuple[str, dict[str, str]]]:
    if not CHROMIUM.exists():
        pytest.fail("Debian chromium is required at /usr/bin/chromium (apt-get install chromium chromium-driver)")
    home = tmp_path_factory.mktemp("ui-home")
    source = tmp_path_factory.mktemp("ui-snapshot")
    copy_release(snapshot, source, RELEASE)
    plant_release(source, RELEASE, NEXT_RELEASE, drop_site="ABBY", flatten_site="DELA", flatten_below_cm=50)
    env = {
        **os.environ,
        "ROOTASSETS_HOME": str(home),
        "ROOTASSETS_SNAPSHOT": str(source),
        "DAGSTER_HOME": str(home / "dagster"),
    }
    bare = {**env, "PATH": "/usr/bin:/bin"}  # as the README runs it: the venv's commands, the venv not activated
    rootassets = str(Path(os.sys.executable).with_name("rootassets"))
    subprocess.run(
        [rootassets, "releases", "--add", RELEASE], env=bare, cwd=REPO, check=True, timeout=120, capture_output=True
    )
    port, files_port = free_port(), free_port()
    log = (home / "dagster-dev.log").open("w")
    server = subprocess.Popen(
        [rootassets, "ui", "--port", str(port), "--files-port", str(files_port)],
        env=bare,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            pytest.fail(f"rootassets ui did not start; see {home / 'dagster-dev.log'}")
        yield base, env | {"UI_PORT": str(port), "FILES_PORT": str(files_port)}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses in LISTEN state on `port`, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def open_page(page, url: str) -> None:  # noqa: ANN001 - playwright Page
    """Go to `url` and dismiss Dagster's community dialog, which opens a moment after load."""
    page.goto(url, wait_until="networkidle")
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=5_000)
        skip.click()
    except Exception:  # noqa: BLE001 - the dialog is optional: absent once dismissed
        pass


def materialized_keys(env: dict[str, str]) -> tuple[set[str], list[str], list[str]]:
    """Asset keys materialized so far, failed runs and succeeded runs, read from the UI's instance."""
    script = (
        "import json; from dagster import DagsterInstance, DagsterRunStatus, RunsFilter; i = DagsterInstance.get(); "
        "keys = [k.to_user_string() for k in i.get_asset_keys() if i.get_latest_materialization_event(k)]; "
        "failed = [r.run_id for r in i.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.FAILURE]))]; "
        "done = [r.run_id for r in i.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.SUCCESS]))]; "
        "print(json.dumps([keys, failed, done]))"
    )
    out = subprocess.run(
        [str(Path(os.sys.executable)), "-c", script], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    import json

    keys, failed, done = json.loads(out.stdout.strip().splitlines()[-1])
    return set(keys), failed, done


def launch_everything(page, base: str, screenshot: str | None = None) -> None:  # noqa: ANN001 - playwright Page
    """On the main job's page: "Materialize all" (confirming that the soil-water site partitions, which are not
    the main job's, have not run: the offline snapshot has none), every partition (the one release), launch one
    run. (The global graph's "Materialize all" spans release and release x site partitions, so Dagster makes it
    a backfill of several runs; see the README.)"""
    from playwright.sync_api import expect

    open_page(page, f"{base}/locations/rootassets/jobs/main_job")
    page.get_by_role("button", name=re.compile(r"Materialize all")).click()
    confirm = page.get_by_role("button", name="Confirm")
    try:
        confirm.wait_for(state="visible", timeout=5_000)
        confirm.click()
    except Exception:  # noqa: BLE001 - shown only while the site partitions have never run
        pass
    page.get_by_role("button", name="All", exact=True).click()
    expect(page.get_by_text("1 partition", exact=True)).to_be_visible()
    if screenshot:
        page.screenshot(path=str(ARTIFACTS / screenshot))
    page.get_by_role("button", name=re.compile(r"^Launch 1 run$")).click()


def test_webserver_listens_on_loopback_only(ui: tuple[str, dict[str, str]]) -> None:
    addresses = listening_addresses(int(ui[1]["UI_PORT"]))
    assert addresses and addresses <= {"0100007F"}, addresses  # 127.0.0.1 and nothing else


def reader_answers(env: dict[str, str]) -> tuple[int, str]:
    """One `rootassets sql` read of the UI's database while its run writes (it may wait for the lock)."""
    done = subprocess.run(
        [
            str(Path(os.sys.executable)),
            "-m",
            "rootassets.cli",
            "sql",
            "--csv",
            "select count(*) from information_schema.tables",
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, done.stderr


def test_materialize_everything_from_the_ui_and_see_the_figures(ui: tuple[str, dict[str, str]]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, env = ui
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    expected = {
        "raw/mpr_perrootsample",
        "harmonized/root_profiles",
        "analysis/site_modality",
        "analysis/phi",
        "reports/figure_1_root_profiles",
        "reports/report",
        "marts/site_summary",
        "analysis/soil_water_sensors",  # the snapshot has no soil water: no site partition to run
    }
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        open_page(page, f"{base}/asset-groups")
        for group in ("raw", "harmonized", "analysis", "reports", "marts"):
            expect(page.get_by_role("button", name=group).first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "1-asset-graph.png"))

        launch_everything(page, base, screenshot="2-launch-dialog.png")

        deadline = time.time() + RUN_TIMEOUT_S
        reads = []
        while True:
            if warehouse_of(env).exists():
                reads.append(reader_answers(env))  # a SQL reader polling while the UI's run writes
            keys, failed, done = materialized_keys(env)
            assert not failed, f"runs failed: {failed}"
            if expected <= keys and done:
                break
            assert time.time() < deadline, f"not materialized after {RUN_TIMEOUT_S}s: {sorted(expected - keys)}"
            time.sleep(5)
        assert reads and all(code == 0 for code, _ in reads), reads
        # The run's tables became visible together when it succeeded (committed by the run itself).
        visible = subprocess.run(
            [
                str(Path(os.sys.executable)),
                "-m",
                "rootassets.cli",
                "sql",
                "--csv",
                "select count(*) from marts.site_summary",
            ],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert visible.stdout.strip().splitlines()[-1:] == ["44"], visible.stdout + visible.stderr
        open_page(page, f"{base}/runs")
        page.wait_for_timeout(2000)
        page.screenshot(path=str(ARTIFACTS / "3-runs.png"))

        open_page(page, f"{base}/assets/reports/figure_1_root_profiles")
        expect(page.get_by_text("figure_1_root_profiles.png").first).to_be_visible(timeout=60_000)
        # the figure itself, on the asset's page without a click: served by `rootassets ui` beside the UI
        files = f"http://127.0.0.1:{env['FILES_PORT']}"
        figure = page.locator(f"img[src='{files}/figures/{RELEASE}/figure_1_root_profiles.png']").first
        expect(figure).to_be_visible(timeout=60_000)
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=figure.element_handle())
        assert figure.evaluate("img => img.naturalWidth") > 500
        expect(page.get_by_role("link", name=re.compile(r"report\.html#figure_1_root_profiles"))).to_have_count(1)
        page.screenshot(path=str(ARTIFACTS / "4-figure-asset.png"), full_page=True)
        page.get_by_text("[Show Markdown]").first.click()  # the embedded preview, for when nothing serves files
        embedded = page.locator("img[src^='data:image/png;base64']").first
        expect(embedded).to_be_visible(timeout=60_000)
        assert embedded.evaluate("img => img.naturalWidth") > 500
        page.screenshot(path=str(ARTIFACTS / "5-figure-shown.png"))

        open_page(page, f"{base}/assets/analysis/site_modality")
        expect(page.get_by_text("modality_counts").first).to_be_visible(timeout=60_000)
        expect(page.get_by_text("bimodal_sites").first).to_be_visible()
        expect(page.get_by_text("RELEASE-2021").first).to_be_visible()
        # the column schema carries the glossary's descriptions (the same text as the DuckDB comments)
        expect(page.get_by_text("Height of the KDE at D0", exact=False).first).to_be_visible(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "6-analysis-asset.png"), full_page=True)

        # the HTML report opens on its own, figures inline; the UI's link to it opens it at the figure
        page.goto(f"{files}/reports/{RELEASE}/report.html#figure_1_root_profiles")
        expect(page.locator("h3#figure_1_root_profiles")).to_be_in_viewport()
        report = Path(env["ROOTASSETS_HOME"]) / "reports" / RELEASE / "report.html"
        page.goto(report.as_uri())
        expect(page.get_by_role("heading", name=re.compile("Root bimodality")).first).to_be_visible()
        inline = page.locator("img[src^='data:image/png;base64']")
        expect(inline.first).to_be_visible(timeout=60_000)
        assert inline.count() >= 5 and inline.first.evaluate("img => img.naturalWidth") > 500
        page.screenshot(path=str(ARTIFACTS / "6b-html-report.png"))
        browser.close()


def instance_json(env: dict[str, str], script: str) -> object:
    """Run `script` (it sets `out`) against the UI's Dagster instance in a subprocess; return `out`."""
    code = (
        "import json; from dagster import *; i = DagsterInstance.get()\n"
        + textwrap.dedent(script)
        + "\nprint(json.dumps(out))"
    )
    done = subprocess.run(
        [str(Path(os.sys.executable)), "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def runs(env: dict[str, str]) -> dict[str, dict[str, object]]:
    """{run id: status, tags and the assets it materialized} of every run of the UI's instance."""
    return instance_json(
        env,
        """
        out = {}
        for r in i.get_runs():
            keys = [e.dagster_event.asset_key.to_user_string()
                    for e in i.all_logs(r.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)]
            out[r.run_id] = {"status": r.status.value, "tags": dict(r.tags), "materialized": keys}
    """,
    )


def visibility(env: dict[str, str], keys: list[str]) -> dict[str, bool | None]:
    """The latest visible_in_warehouse evaluation of each asset: passed, or None when never evaluated."""
    return instance_json(
        env,
        f"""
        checks = [AssetCheckKey(AssetKey.from_user_string(k), "visible_in_warehouse") for k in {keys!r}]
        latest = i.event_log_storage.get_latest_asset_check_execution_by_key(checks)
        out = {{}}
        for c in checks:
            record = latest.get(c)
            evaluation = record.event.dagster_event.event_specific_data if record and record.event else None
            out[c.asset_key.to_user_string()] = evaluation.passed if evaluation is not None else None
    """,
    )


def wait_for_new_run(env: dict[str, str], known: set[str], timeout_s: float = 300) -> str:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        new = sorted(set(runs(env)) - known)
        if new:
            return new[0]
        time.sleep(2)
    pytest.fail("no run was launched")


def kill_at_random_point(env: dict[str, str], run_id: str) -> tuple[list[str], str]:
    """Wait until the run has materialized a random number of assets, then SIGKILL its worker process."""
    count, seed = random_kill_point(1, 30)
    replay = f"killed after {int(count)} materializations (replay: ROOTASSETS_KILL_SEED={seed})"
    deadline = time.time() + RUN_TIMEOUT_S
    while time.time() < deadline:
        run = runs(env)[run_id]
        assert run["status"] in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED"), f"{run['status']}: {replay}"
        pid = str(run["tags"].get("rootassets/pid", ""))
        if len(run["materialized"]) >= int(count) and pid.isdigit():
            os.kill(int(pid), signal.SIGKILL)
            return list(run["materialized"]), replay
        time.sleep(1)
    pytest.fail(f"the run never got that far: {replay}")


def wait_until_discarded(env: dict[str, str], run_id: str, db: Path, replay: str) -> None:
    """Dagster marks the killed run failed; the discard_failed_runs sensor then empties its staging."""
    deadline = time.time() + 300
    while time.time() < deadline:
        if runs(env)[run_id]["status"] == "FAILURE" and not staged_refreshes(db):
            return
        time.sleep(3)
    pytest.fail(f"run {run_id} still {runs(env)[run_id]['status']}, staged {staged_refreshes(db)}: {replay}")


def assert_killed_run_changed_nothing(
    page,
    base: str,
    env: dict[str, str],
    run_id: str,  # noqa: ANN001
    earlier: dict,
    name: str,
) -> None:
    from playwright.sync_api import expect

    db = warehouse_of(env)
    materialized, replay = kill_at_random_point(env, run_id)
    wait_until_discarded(env, run_id, db, replay)
    assert warehouse_digest(db) == earlier, replay  # every visible table is as it was before the run
    flagged = visibility(env, materialized)
    assert materialized and all(v is False for v in flagged.values()), (flagged, replay)
    key = materialized[-1]
    open_page(page, f"{base}/assets/{key}?view=checks")
    page.get_by_text("visible_in_warehouse").first.click(timeout=60_000)
    expect(page.get_by_text("its rows were never made visible").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Failed").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / f"{name}-{key.replace('/', '-')}-checks.png"), full_page=True)


def test_a_ui_run_and_a_sensor_run_killed_at_random_points_change_nothing_visible(
    ui: tuple[str, dict[str, str]],
) -> None:
    from playwright.sync_api import sync_playwright

    base, env = ui
    db = warehouse_of(env)
    if not db.exists() or not (keys := runs(env)) or not any(r["status"] == "SUCCESS" for r in keys.values()):
        pytest.fail("needs the UI's first run (test_materialize_everything_from_the_ui_and_see_the_figures)")
    earlier = warehouse_digest(db)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})

        known = set(runs(env))  # a run launched from the UI, killed
        launch_everything(page, base)
        assert_killed_run_changed_nothing(page, base, env, wait_for_new_run(env, known), earlier, "7-ui-kill")

        known = set(runs(env))  # a run requested by the release sensor, killed
        dagster = str(Path(os.sys.executable).with_name("dagster"))
        sensor = [dagster, "sensor", "start", "neon_release_sensor", "-w", "workspace.yaml"]
        started = subprocess.run(sensor, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert started.returncode == 0, started.stderr[-2000:]
        run_id = wait_for_new_run(env, known)
        requested = runs(env)[run_id]["tags"]
        assert requested.get("dagster/sensor_name") == "neon_release_sensor"
        assert requested.get("dagster/partition") == NEXT_RELEASE  # never the release already committed
        assert_killed_run_changed_nothing(page, base, env, run_id, earlier, "8-sensor-kill")
        browser.close()

    # The next refresh completes, makes the same tables visible again, and every asset it ran passes its check.
    rootassets = str(Path(os.sys.executable).with_name("rootassets"))
    rerun = subprocess.run(
        [rootassets, "materialize", "--release", RELEASE],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert not staged_refreshes(db)
    assert warehouse_digest(db) == earlier
    redone = [line.split()[-1] for line in rerun.stdout.splitlines() if MATERIALIZED.match(line)]
    assert redone and all(visibility(env, redone).values()), rerun.stdout
