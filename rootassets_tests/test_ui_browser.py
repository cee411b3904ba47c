"""The Dagster UI in a real browser (Debian chromium, headless, driven by Playwright).

Starts `dagster dev` on a free port against a temporary ROOTASSETS_HOME and the
snapshot, launches a materialization of every asset for RELEASE-2021 from the
UI, waits for it to succeed, and checks that an analysis asset shows its
figure and metadata. Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rootassets_tests.conftest import REPO, RELEASE

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
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
    env = {**os.environ, "ROOTASSETS_HOME": str(home), "ROOTASSETS_SNAPSHOT": str(snapshot),
           "DAGSTER_HOME": str(home / "dagster")}
    prepare = ("from rootassets.settings import Settings; Settings.from_env().ensure_dagster_home(); "
               "from dagster import DagsterInstance; "
               f"DagsterInstance.get().add_dynamic_partitions('neon_release', ['{RELEASE}'])")
    subprocess.run([str(Path(os.sys.executable)), "-c", prepare], env=env, cwd=REPO, check=True, timeout=120)
    port = free_port()
    dagster = str(Path(os.sys.executable).with_name("dagster"))
    log = (home / "dagster-dev.log").open("w")
    server = subprocess.Popen([dagster, "dev", "-w", "workspace.yaml", "-p", str(port)], env=env, cwd=REPO,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
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
            pytest.fail(f"dagster dev did not start; see {home / 'dagster-dev.log'}")
        yield base, env | {"UI_PORT": str(port)}
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
    out = subprocess.run([str(Path(os.sys.executable)), "-c", script], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    import json

    keys, failed, done = json.loads(out.stdout.strip().splitlines()[-1])
    return set(keys), failed, done


def test_webserver_listens_on_loopback_only(ui: tuple[str, dict[str, str]]) -> None:
    addresses = listening_addresses(int(ui[1]["UI_PORT"]))
    assert addresses and addresses <= {"0100007F"}, addresses  # 127.0.0.1 and nothing else


def reader_answers(env: dict[str, str]) -> tuple[int, str]:
    """One `rootassets sql` read of the UI's database while its run writes (it may wait for the lock)."""
    done = subprocess.run([str(Path(os.sys.executable)), "-m", "rootassets.cli", "sql", "--csv",
                           "select count(*) from information_schema.tables"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    return done.returncode, done.stderr


def test_materialize_everything_from_the_ui_and_see_the_figures(ui: tuple[str, dict[str, str]]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, env = ui
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    expected = {"raw/mpr_perrootsample", "harmonized/root_profiles", "analysis/site_modality", "analysis/phi",
                "reports/figure_1_root_profiles", "reports/report", "marts/site_summary",
                "analysis/soil_water_statistics", "analysis/site_modality_bootstrap"}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        open_page(page, f"{base}/asset-groups")
        for group in ("raw", "harmonized", "analysis", "reports", "marts"):
            expect(page.get_by_role("button", name=group).first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "1-asset-graph.png"))

        page.get_by_role("button", name="Materialize all…").click()
        page.get_by_role("button", name="All", exact=True).click()
        expect(page.get_by_text("1 partition", exact=True)).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "2-launch-dialog.png"))
        page.get_by_role("button", name=re.compile(r"^Launch (1 run|backfill)$")).click()

        deadline = time.time() + RUN_TIMEOUT_S
        reads = []
        while True:
            if (Path(env["ROOTASSETS_HOME"]) / "rootassets.duckdb").exists():
                reads.append(reader_answers(env))  # a SQL reader polling while the UI's run writes
            keys, failed, done = materialized_keys(env)
            assert not failed, f"runs failed: {failed}"
            if expected <= keys and done:
                break
            assert time.time() < deadline, f"not materialized after {RUN_TIMEOUT_S}s: {sorted(expected - keys)}"
            time.sleep(5)
        assert reads and all(code == 0 for code, _ in reads), reads
        # The run's tables became visible together when it succeeded (committed by the run itself).
        visible = subprocess.run([str(Path(os.sys.executable)), "-m", "rootassets.cli", "sql", "--csv",
                                  "select count(*) from marts.site_summary"], env=env, cwd=REPO,
                                 capture_output=True, text=True, timeout=300)
        assert visible.stdout.strip().splitlines()[-1:] == ["44"], visible.stdout + visible.stderr
        open_page(page, f"{base}/runs")
        page.wait_for_timeout(2000)
        page.screenshot(path=str(ARTIFACTS / "3-runs.png"))

        open_page(page, f"{base}/assets/reports/figure_1_root_profiles")
        expect(page.get_by_text("figure_1_root_profiles.png").first).to_be_visible(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "4-figure-asset.png"), full_page=True)
        page.get_by_text("[Show Markdown]").first.click()
        figure = page.locator("img[src^='data:image/png;base64']").first
        expect(figure).to_be_visible(timeout=60_000)
        assert figure.evaluate("img => img.naturalWidth") > 500
        page.screenshot(path=str(ARTIFACTS / "5-figure-shown.png"))

        open_page(page, f"{base}/assets/analysis/site_modality")
        expect(page.get_by_text("modality_counts").first).to_be_visible(timeout=60_000)
        expect(page.get_by_text("bimodal_sites").first).to_be_visible()
        expect(page.get_by_text("RELEASE-2021").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "6-analysis-asset.png"), full_page=True)
        browser.close()
