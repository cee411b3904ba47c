"""The README is executable: every shell block runs, as written, in a fresh copy of the repository.

Each ```bash block of README.md is run in order with `bash -e -o pipefail`, from a copy of the repository
(its files, the project's venv linked as `.venv`, `../shared` beside it) with no rootassets or Dagster
variable set and the venv not on PATH, as a new user types it. A block fails the test on a non-zero exit
or a Python traceback in its output. The quickstart's install (`python3 -m venv ... pip install`) is the
one part left out: `.ci/run` proves it from scratch.

A block says how it is run with an HTML comment on the line before its fence:
- `<!-- readme-test: skip: <why> -->`: not run (the test suite itself; the lake block, whose commands
  test_lake.py runs against a PostgreSQL it starts);
- `<!-- readme-test: serves <url> -->`: a long-running command, started in the background until `<url>`
  answers, then stopped;
- `<!-- readme-test: needs <file> -->`: runs when `<file>` is available (from neonUtilities' test fixture
  folder, see test_stack_by_table.py), otherwise is reported as skipped;
and a block whose first line is `# illustrates output` shows output of files the reader has, not run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from rootassets_tests.conftest import REPO

pytestmark = pytest.mark.slow

EXTDATA = Path(
    os.environ.get("ROOTASSETS_NEONUTILITIES_EXTDATA", REPO / ".." / "shared" / "neon-utilities-extdata")
).resolve()
INSTALL = "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && "
MARKER = re.compile(r"<!--\s*readme-test:\s*(?P<kind>skip|serves|needs)\b:?\s*(?P<arg>.*?)\s*-->")
FENCE = re.compile(r"^```(?P<lang>\S*)\s*$")
BLOCK_TIMEOUT_S = 600


@dataclass
class Block:
    line: int  # of the opening fence, for messages
    text: str
    kind: str = "run"  # run | skip | serves | needs | illustrates
    arg: str = ""


def readme_blocks(readme: Path = REPO / "README.md") -> list[Block]:
    """The README's bash blocks, in order, each with how it is to be run."""
    lines = readme.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        if fence["lang"] == "bash":
            body = "\n".join(lines[i + 1 : end])
            marker = MARKER.search(lines[i - 1]) if i else None
            block = Block(i + 1, body)
            if marker:
                block.kind, block.arg = marker["kind"], marker["arg"]
            elif body.lstrip().startswith("# illustrates output"):
                block.kind = "illustrates"
            blocks.append(block)
        i = end + 1
    return blocks


def test_the_readme_marks_are_understood() -> None:
    blocks = readme_blocks()
    assert blocks[0].text.startswith(INSTALL), "the quickstart's first command installs, then runs the main job"
    assert {b.kind for b in blocks} >= {"run", "skip", "serves"}
    for block in blocks:
        assert "/tmp/" not in block.text, f"README line {block.line}: a block writes outside its working folder"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository's tracked files, the venv linked, `../shared` beside it."""
    root = tmp_path_factory.mktemp("readme")
    work = root / "rootassets"
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in tracked.splitlines():
        source = REPO / name
        if source.is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, work / name)
    (work / ".venv").symlink_to(REPO / ".venv")
    (root / "shared").symlink_to((REPO / ".." / "shared").resolve())
    return work


def user_environment(home: Path) -> dict[str, str]:
    """A new user's shell: no rootassets/Dagster/NEON variables, the venv not on PATH."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("ROOTASSETS_", "DAGSTER_", "NEON_"))}
    venv_bin = str(REPO / ".venv" / "bin")
    path = ":".join(p for p in keep.get("PATH", "/usr/bin:/bin").split(":") if p and p != venv_bin)
    return {**keep, "PATH": path, "HOME": str(home), "VIRTUAL_ENV": ""}


def run_block(block: Block, work: Path, env: dict[str, str]) -> str:
    script = block.text.removeprefix(INSTALL)  # only the quickstart's first block starts with it
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"README line {block.line}: exit {done.returncode}\n{script}\n{output[-3000:]}"
    assert "Traceback (most recent call last)" not in output, f"README line {block.line}: a traceback\n{output}"
    return output


def serve_block(block: Block, work: Path, env: dict[str, str]) -> None:
    url = block.arg
    log = (work / f"readme-line-{block.line}.log").open("w")
    server = subprocess.Popen(
        ["bash", "-e", "-c", block.text],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            assert server.poll() is None, f"README line {block.line}: exited {server.returncode}, see {log.name}"
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        pytest.fail(f"README line {block.line}: {url} did not answer within 180 s")
    finally:
        stop(server)
        output = (work / log.name).read_text()
        assert "Traceback (most recent call last)" not in output, f"README line {block.line}: a traceback\n{output}"


def stop(server: subprocess.Popen) -> None:
    """The block's whole process group (dg dev starts the webserver and the daemon)."""
    for sig, wait_s in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def test_every_readme_block_runs_as_written(workdir: Path, tmp_path: Path) -> None:
    env = user_environment(tmp_path)
    ran, left = [], []
    for block in readme_blocks():
        if block.kind in ("skip", "illustrates"):
            left.append(f"line {block.line}: {block.kind} {block.arg}".strip())
            continue
        if block.kind == "needs":
            needed = EXTDATA / block.arg
            if not needed.is_file():
                left.append(f"line {block.line}: needs {block.arg}, not at {EXTDATA}")
                continue
            shutil.copy2(needed, workdir / block.arg)
        if block.kind == "serves":
            serve_block(block, workdir, env)
        else:
            run_block(block, workdir, env)
        ran.append(block.line)
    print(f"ran the blocks at README lines {ran}; left out: {left}")
    assert len(ran) >= 4
    assert (workdir / ".rootassets" / "rootassets.duckdb").is_file()
