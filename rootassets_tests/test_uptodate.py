"""The warm shortcut's fingerprint (rootassets.uptodate): it changes with every input a refresh reads."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from rootassets import uptodate
from rootassets.settings import Settings
from rootassets_tests.conftest import RELEASE, settings_on_backend


def settings_on(snapshot: Path, home: Path) -> Settings:
    return settings_on_backend(home, snapshot, "http://127.0.0.1:9/api/v0/", snapshot / "site-attributes", snapshot)


def test_the_fingerprint_follows_sources_settings_and_declarations(tmp_path: Path, snapshot: Path) -> None:
    copy = tmp_path / "snapshot"
    shutil.copytree(snapshot, copy)
    settings = settings_on(copy, tmp_path / "home")
    first = uptodate.input_fingerprint(settings, RELEASE)
    assert first is not None and first == uptodate.input_fingerprint(settings, RELEASE)
    table = copy / RELEASE / "DP1.10066.001" / "mpr_perrootsample.csv"
    table.write_bytes(table.read_bytes() + b"\n")
    rewritten = uptodate.input_fingerprint(settings, RELEASE)
    assert rewritten is not None and rewritten["sources"]["DP1.10066.001"] != first["sources"]["DP1.10066.001"]
    other = dataclasses.replace(settings, soil_water_window="2020-01:2020-12")
    assert uptodate.input_fingerprint(other, RELEASE)["settings"] != rewritten["settings"]
    settings.home.mkdir(parents=True)
    settings.products_file.write_text('[[products]]\ndpid = "DP1.99901.001"\ntables = ["tst_perplot"]\n')
    declared = uptodate.input_fingerprint(settings, RELEASE)
    assert declared["declared"] != rewritten["declared"] and "DP1.99901.001" in declared["sources"]


@pytest.mark.duckdb_file  # the shortcut vouches for the file's size and time; a lake takes the full path
def test_no_shortcut_from_the_api_or_without_a_record(tmp_path: Path, snapshot: Path) -> None:
    api = settings_on_backend(tmp_path / "home", None, "http://127.0.0.1:9/api/v0/", None)
    assert uptodate.input_fingerprint(api, RELEASE) is None
    local = settings_on(snapshot, tmp_path / "home")
    inputs = uptodate.input_fingerprint(local, RELEASE)
    assert uptodate.up_to_date(local, RELEASE, inputs) is None  # nothing recorded
    uptodate.record(local, RELEASE, inputs, {"raw": 1, "rest": 2})  # no database: nothing to vouch for
    assert not uptodate.state_path(local, RELEASE).exists()
    local.database.parent.mkdir(parents=True, exist_ok=True)
    local.database.write_bytes(b"db")
    uptodate.record(local, RELEASE, inputs, {"raw": 1, "rest": 2})
    assert uptodate.up_to_date(local, RELEASE, inputs)["summary"] == {"raw": 1, "rest": 2}
    local.database.write_bytes(b"db, written again")
    assert uptodate.up_to_date(local, RELEASE, inputs) is None


def test_the_code_fingerprint_follows_python_and_sql_model_files(tmp_path: Path) -> None:
    from rootassets.warehouse.sqlmodels import MODELS_DIR

    assert uptodate.MODELS_DIR == MODELS_DIR  # the models the marts are built from
    package, models = tmp_path / "rootassets", tmp_path / "dbt_like_sql"
    shutil.copytree(uptodate.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(MODELS_DIR, models)
    first = uptodate.code_fingerprint(package, models)
    assert first == uptodate.code_fingerprint(package, models)
    model = next(models.rglob("*.sql"))
    model.write_text(model.read_text() + "\n-- edited\n")
    edited_sql = uptodate.code_fingerprint(package, models)
    assert edited_sql != first
    (package / "science" / "phi.py").write_text((package / "science" / "phi.py").read_text() + "\n# edited\n")
    assert uptodate.code_fingerprint(package, models) not in (first, edited_sql)
