"""Code versions are derived, never hand-bumped: editing a science function re-runs exactly its asset and downstream."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import pytest

from rootassets.science.registry import code_version
from rootassets.science.steps import STEPS
from rootassets_tests.conftest import MATERIALIZED, RELEASE, REPO

VERSIONS = (
    "import json; from rootassets.defs.steps import step_version; from rootassets.science.steps import STEPS; "
    "print(json.dumps({s.name: step_version(s) for s in STEPS}))"
)


def copy_package(tmp_path: Path) -> Path:
    """A copy of the rootassets package that a subprocess imports instead of the installed one."""
    root = tmp_path / "code"
    shutil.copytree(REPO / "rootassets", root / "rootassets", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "dbt_like_sql").symlink_to(REPO / "dbt_like_sql")
    return root


def edit_function_body(module: Path, function: str) -> None:
    """Insert a statement into `function`'s body (the behaviour stays; the source does not)."""
    lines = module.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"def {function}("))
    body = next(i for i in range(start, len(lines)) if lines[i].rstrip().endswith(":")) + 1
    lines.insert(body, "    _edited = True  # noqa: F841\n")
    module.write_text("".join(lines))


def derived_afresh() -> dict[str, str]:
    """An environment whose remembered code versions (`defs.version_cache`) start empty: the versions a test
    compares are derived by the walk it tests, not read from an earlier process's file."""
    return {**os.environ, "XDG_CACHE_HOME": tempfile.mkdtemp(prefix="rootassets-versions-")}


def versions(root: Path) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", VERSIONS],
        env={**derived_afresh(), "PYTHONPATH": str(root)},
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_step_has_a_stable_derived_version() -> None:
    assert all(code_version(step) == code_version(step) for step in STEPS)
    assert len({code_version(step) for step in STEPS}) == len(STEPS)


def test_editing_a_science_function_changes_exactly_the_steps_that_reach_it(tmp_path: Path) -> None:
    root = copy_package(tmp_path)
    before = versions(root)
    # sums_as_numpy_sums is reached through phi_table_of (its readings): by phi, and by phi_sensitivity, which redoes it
    edit_function_body(root / "rootassets" / "science" / "phi.py", "sums_as_numpy_sums")
    after = versions(root)
    assert [name for name in before if before[name] != after[name]] == ["phi", "phi_sensitivity"]
    # a function several steps reach changes all of them
    edit_function_body(root / "rootassets" / "science" / "root_profiles.py", "site_root_profiles")
    again = versions(root)
    assert [name for name in after if after[name] != again[name]] == ["root_profiles"]


def test_editing_a_figure_function_imported_lazily_changes_the_figures_code_versions(tmp_path: Path) -> None:
    """The figure specs import `rootassets.science.figures` inside their functions (matplotlib loads only when
    a figure is drawn); that import is still part of the figure assets' code versions."""
    script = (
        "import json; from rootassets.defs.reports import report_assets; "
        "print(json.dumps({k.to_user_string(): a.code_versions_by_key[k] for a in report_assets for k in a.keys}))"
    )

    def figure_versions(root: Path) -> dict[str, str]:
        env = {**derived_afresh(), "PYTHONPATH": str(root)}
        done = subprocess.run([sys.executable, "-c", script], env=env, cwd=root, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    root = copy_package(tmp_path)
    before, steps_before = figure_versions(root), versions(root)
    edit_function_body(root / "rootassets" / "science" / "basemap.py", "map_extent")  # reached through figures
    after = figure_versions(root)
    assert before["reports/figure_1_site_map"] != after["reports/figure_1_site_map"]
    assert versions(root) == steps_before  # the analysis steps do not draw: unchanged
    # A figure's draw function is named by no code, only held by its declaration in FIGURES (a tuple of
    # FigureSpec): it is part of the version all the same.
    edit_function_body(root / "rootassets" / "science" / "figure_specs.py", "draw_map")
    assert figure_versions(root)["reports/figure_1_site_map"] != after["reports/figure_1_site_map"]


@pytest.mark.slow
def test_an_edited_step_reruns_its_asset_and_its_downstream_only(tmp_path: Path, snapshot: Path) -> None:
    root = copy_package(tmp_path)
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),  # both runs remember versions there: the edit must not be missed
        "PYTHONPATH": str(root),
        "ROOTASSETS_HOME": str(tmp_path / "home"),
        "ROOTASSETS_SNAPSHOT": str(snapshot),
    }
    command = [sys.executable, "-m", "rootassets.cli", "materialize", "--release", RELEASE]
    first = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-2000:]
    edit_function_body(root / "rootassets" / "science" / "phi.py", "sums_as_numpy_sums")
    second = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-2000:]
    rerun = {line.split()[-1] for line in second.stdout.splitlines() if MATERIALIZED.match(line)}

    from rootassets.definitions import defs

    graph = defs.resolve_asset_graph()
    by_name = {k.to_user_string(): k for k in graph.get_all_asset_keys()}
    edited = ["analysis/phi", "analysis/phi_sensitivity"]  # the steps that reach sums_as_numpy_sums
    downstream, frontier = set(), list(edited)
    while frontier:
        for child in graph.get(by_name[frontier.pop()]).child_keys:
            if child.to_user_string() not in downstream:
                downstream.add(child.to_user_string())
                frontier.append(child.to_user_string())
    optional = {k.to_user_string() for k in graph.get_all_asset_keys() if k.path[-1].endswith("_bootstrap")}
    # the soil-water site partitions: none in the offline snapshot, which has no soil water
    from dagster import MultiPartitionsDefinition

    multi = MultiPartitionsDefinition
    sites = {k.to_user_string() for k in graph.get_all_asset_keys() if isinstance(graph.get(k).partitions_def, multi)}
    assert "site partitions" not in second.stdout
    assert rerun == (set(edited) | downstream) - optional - sites, second.stdout


ASSET_VERSIONS = (
    "import json, importlib; defs = importlib.import_module('rootassets.definitions').defs; "
    "graph = defs.resolve_asset_graph(); "
    "print(json.dumps({k.to_user_string(): graph.get(k).code_version for k in graph.get_all_asset_keys()}))"
)

# Before loading the definitions: every module-level set, list and dict of the modules they use gets one more
# element, as a cache or a registry of what was seen does while a process runs (a lake once created, for one).
FILL_STATE = """
import importlib, pkgutil, rootassets
skip = ("rootassets.defs", "rootassets.definitions", "rootassets.cli", "rootassets.uptodate",
        "rootassets.artifacts_server", "rootassets.synthetic", "rootassets.neon.mirror")
for info in pkgutil.walk_packages(rootassets.__path__, "rootassets."):
    if not info.name.startswith(skip):
        importlib.import_module(info.name)
import sys
import types
from typing import Any
for name, module in list(sys.modules.items()):
    if not name.startswith("rootassets.") or name.startswith(skip):
        continue
    for attribute, value in list(vars(module).items()):
        if attribute.startswith("__") or getattr(value, "__module__", None):
            continue
        if isinstance(value, set):
            value.add(("seen at run time", attribute))
        elif isinstance(value, list) and attribute.islower():
            value.append(("seen at run time", attribute))
"""


def asset_versions(prelude: str = "") -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", prelude + "\n" + ASSET_VERSIONS],
        cwd=REPO,
        env=derived_afresh(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_code_versions_are_of_the_code_not_of_what_the_process_did_before() -> None:
    """A refresh's process may have touched the lake (its up-to-date check does) before it loads the definitions:
    the versions it records must equal those a fresh process computes, or every later refresh finds every raw
    table changed and recomputes the whole graph (it did, on a lake, until mutable module state was hashed by its
    assignment's source rather than by its content)."""
    plain = asset_versions()
    touched = asset_versions(
        "from rootassets.settings import LakeLocation, known_lakes\n"
        "known_lakes.add(LakeLocation(dsn='dbname=seen host=127.0.0.1', data_path='/tmp/seen/'))\n" + FILL_STATE
    )
    assert plain and touched == plain


def test_a_mutable_constant_counts_by_its_source(tmp_path: Path) -> None:
    """Editing a module-level dict's assignment changes the version of a function that reads it; adding to the
    dict while the process runs does not."""
    from rootassets.science.registry import source_version

    def load(text: str, file: str) -> Any:
        path = tmp_path / f"{file}.py"
        path.write_text(text)
        module = types.ModuleType("rootassets.version_probe")
        module.__file__ = str(path)
        sys.modules[module.__name__] = module
        exec(compile(text, str(path), "exec"), vars(module))  # noqa: S102 - the test's own module text
        return module

    text = "LIMITS = {'depth': 200}\n\n\ndef limit(name):\n    return LIMITS[name]\n"
    try:
        first = load(text, "first")
        before = source_version("probe", first.limit)
        first.LIMITS["width"] = 3
        assert source_version("probe", first.limit) == before
        assert source_version("probe", load(text, "same").limit) == before
        assert source_version("probe", load(text.replace("200", "250"), "edited").limit) != before
    finally:
        sys.modules.pop("rootassets.version_probe", None)
