"""Derived code versions remembered between processes (`rootassets.defs.version_cache`): a process that
finds them reads exactly what it would derive, and never a version of other code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rootassets_tests.conftest import REPO

# The code version of every asset, and whether the walk that derives them ran (it imports matplotlib to follow
# the figures' lazy imports; nothing else does when the definitions load).
ASSET_VERSIONS = (
    "import json, sys, importlib; defs = importlib.import_module('rootassets.definitions').defs; "
    "graph = defs.resolve_asset_graph(); "
    "print(json.dumps({'walked': 'matplotlib' in sys.modules, "
    "'versions': {k.to_user_string(): graph.get(k).code_version for k in graph.get_all_asset_keys()}}))"
)


def load(cache: Path, root: Path = REPO, **env: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", ASSET_VERSIONS],
        env={**os.environ, "XDG_CACHE_HOME": str(cache), "PYTHONPATH": str(root), **env},
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def remembered_files(cache: Path) -> list[Path]:
    return sorted((cache / "rootassets" / "code-versions").glob("*.json"))


@pytest.mark.slow
def test_remembered_versions_are_the_derived_ones_and_spare_the_walk(tmp_path: Path) -> None:
    derived = load(tmp_path / "cache")
    (file,) = remembered_files(tmp_path / "cache")
    remembered = load(tmp_path / "cache")
    assert derived["walked"] and not remembered["walked"]
    assert remembered["versions"] == derived["versions"] and len(derived["versions"]) > 40
    # A file that is not a map of versions is not trusted: they are derived again, the same, and written whole.
    file.write_text('{"module rootassets.defs.raw": 7, ')
    assert load(tmp_path / "cache")["versions"] == derived["versions"]
    assert all(isinstance(v, str) for v in json.loads(file.read_text()).values())
    # A cache that cannot be written (its folder is a file) is no error: the versions are derived.
    (tmp_path / "not-a-folder").write_text("")
    assert load(tmp_path / "not-a-folder")["versions"] == derived["versions"]
    # The versions do not depend on the settings of the process that derived them.
    other = load(tmp_path / "other", ROOTASSETS_HOME=str(tmp_path / "home"), ROOTASSETS_SNAPSHOT=str(tmp_path))
    assert other["versions"] == derived["versions"]


@pytest.mark.slow
def test_edited_code_is_another_fingerprint_and_is_never_read_from_the_old_one(tmp_path: Path) -> None:
    root = tmp_path / "code"
    shutil.copytree(REPO / "rootassets", root / "rootassets", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "dbt_like_sql").symlink_to(REPO / "dbt_like_sql")
    before = load(tmp_path / "cache", root)
    phi = root / "rootassets" / "science" / "phi.py"
    phi.write_text(phi.read_text().replace("def sums_as_numpy_sums(", "def sums_as_numpy_sums(  # edited\n", 1))
    after = load(tmp_path / "cache", root)
    assert after["walked"] and len(remembered_files(tmp_path / "cache")) == 2
    changed = {k for k in before["versions"] if before["versions"][k] != after["versions"][k]}
    assert {"analysis/phi", "analysis/phi_sensitivity"} <= changed
    assert load(tmp_path / "cache", root)["versions"] == after["versions"]


def test_only_the_newest_fingerprints_files_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rootassets.defs import version_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = version_cache.cache_folder()
    folder.mkdir(parents=True)
    for i in range(version_cache.FILES_KEPT + 3):
        old = folder / f"old{i:02d}.json"
        old.write_text("{}")
        os.utime(old, (1_000_000 + i, 1_000_000 + i))
    version_cache._remembered.cache_clear()
    try:
        assert version_cache.remembered_version("a test", lambda: "v1") == "v1"
        assert version_cache.remembered_version("a test", lambda: "never derived") == "v1"
    finally:
        version_cache._remembered.cache_clear()
    kept = sorted(p.name for p in folder.glob("*.json"))
    assert len(kept) == version_cache.FILES_KEPT and f"{version_cache.fingerprint()}.json" in kept
    assert "old00.json" not in kept and f"old{version_cache.FILES_KEPT + 2:02d}.json" in kept


def test_no_home_folder_derives_the_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process with neither XDG_CACHE_HOME nor a home folder (Path.home() fails) derives its versions."""
    from rootassets.defs import version_cache

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    version_cache._remembered.cache_clear()
    try:
        assert version_cache.remembered_version("a test", lambda: "derived") == "derived"
    finally:
        version_cache._remembered.cache_clear()
