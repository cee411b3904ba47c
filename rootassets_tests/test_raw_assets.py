"""Raw assets materialized in process on a temporary DuckDB."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from rootassets.defs.raw import raw_assets
from rootassets.neon.mirror import MirrorServer
from rootassets.settings import Settings
from rootassets.warehouse import connect_read_only
from rootassets_tests.conftest import RELEASE, run_assets, settings_on_backend

RAW_COUNTS = {
    "mpr_perrootsample": (2913, 44),
    "mpr_carbonNitrogen": (2980, 44),
    "mpr_perdepthincrement": (0, 0),
    "mpr_perpitprofile": (0, 0),
    "mgp_permegapit": (47, 47),
    "mgp_perhorizon": (346, 47),
    "mgp_perbiogeosample": (375, 47),
    "mgp_perbulksample": (375, 47),
    "field_site_metadata": (81, 81),
    "site_land_cover": (47, 47),
}


def run(settings: Settings, api_url: str | None = None, raise_on_error: bool = True):
    return run_assets(settings, raw_assets, api_url=api_url, raise_on_error=raise_on_error)


def counts(db: Path) -> dict[str, tuple[int, int]]:
    with connect_read_only(db) as con:
        return {
            t: con.execute(f'select count(*), count(distinct site_id) from raw."{t}"').fetchone() for t in RAW_COUNTS
        }


def test_raw_tables_from_the_snapshot(snapshot_settings: Settings) -> None:
    result = run(snapshot_settings)
    assert counts(snapshot_settings.database) == RAW_COUNTS
    with connect_read_only(snapshot_settings.database) as con:
        releases = {t: con.execute(f'select distinct release from raw."{t}"').fetchall() for t in RAW_COUNTS}
    assert all(r in ([(RELEASE,)], []) for r in releases.values())
    meta = result.asset_materializations_for_node("raw_root_megapit")[0].metadata
    assert {
        "dagster/row_count",
        "dagster/column_schema",
        "n_sites",
        "preview",
        "release",
        "citation",
        "source_files",
        "doi",
    } <= meta.keys()


def test_rematerializing_replaces_the_partition(snapshot_settings: Settings) -> None:
    run(snapshot_settings)
    run(snapshot_settings)
    assert counts(snapshot_settings.database) == RAW_COUNTS


def test_metadata_names_release_citation_and_checksums(snapshot_settings: Settings) -> None:
    result = run(snapshot_settings)
    by_key = {
        e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()
    }
    meta = by_key["raw/mpr_perrootsample"]
    assert meta["release"].value == RELEASE
    assert meta["dagster/row_count"].value == 2913
    assert "Root biomass and chemistry, Megapit (DP1.10066.001), RELEASE-2021" in meta["citation"].value
    files = meta["source_files"].value
    assert files[0]["file"] == "mpr_perrootsample.csv" and len(files[0]["md5"]) == 32
    assert by_key["raw/mpr_perdepthincrement"]["published_by_source"].value is False


@pytest.mark.network
@pytest.mark.parametrize(
    ("fault", "scope", "message"),
    [
        ("server_error", "files", "gave up after 3 attempts"),
        ("expired_token", "all", "refused NEON_TOKEN (API token has expired)"),
        ("expired_url", "all", "signed download URL has expired"),
        ("bad_checksum", "files", "checksum mismatch"),
        ("truncate", "files", "file NEON."),
    ],
)
def test_failed_ingest_leaves_the_previous_release_untouched(
    snapshot_settings: Settings, mirror: MirrorServer, fault: str, scope: str, message: str
) -> None:
    run(snapshot_settings, api_url=mirror.base_url)
    before = counts(snapshot_settings.database)
    assert before == RAW_COUNTS
    faults = json.dumps({"counts": {fault: -1}, "scope": scope})
    httpx.post(mirror.base_url.replace("/api/v0/", "/__faults"), content=faults).raise_for_status()
    shutil.rmtree(snapshot_settings.downloads)  # files and the md5 cache: force fresh downloads, which now fail
    result = run(snapshot_settings, api_url=mirror.base_url, raise_on_error=False)
    assert not result.success
    errors = " ".join(str(e.step_failure_data.error) for e in result.all_events if e.is_step_failure)
    assert message in errors
    assert counts(snapshot_settings.database) == before


def test_visible_checks_flag_a_renamed_column_between_releases(tmp_path: Path, snapshot: Path) -> None:
    import polars as pl
    from dagster import DagsterInstance, materialize

    from rootassets.defs.partitions import NEON_RELEASE_PARTITIONS
    from rootassets.defs.raw import raw_soil_megapit
    from rootassets_tests.conftest import asset_resources
    from rootassets_tests.planted import copy_release

    root = tmp_path / "snapshot"
    copy_release(snapshot, root)
    shutil.copytree(root / RELEASE, root / "RELEASE-2022")
    horizons = root / "RELEASE-2022" / "DP1.00096.001" / "mgp_perhorizon.csv"
    frame = pl.read_csv(horizons, infer_schema=False)
    frame.rename({"nrcsDescriptionID": "nrcsDescriptionCode"}).write_csv(horizons)
    for path in (root / "RELEASE-2022").rglob("*.csv"):  # NEON's own release column follows the release
        table = pl.read_csv(path, infer_schema=False)
        if "release" in table.columns:
            table.with_columns(pl.lit("RELEASE-2022").alias("release")).write_csv(path)
    settings = settings_on_backend(
        home=tmp_path / "home",
        snapshot=root,
        api_url="http://127.0.0.1:9/api/v0/",
        site_attributes=root / "site-attributes",
    )
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(NEON_RELEASE_PARTITIONS, [RELEASE, "RELEASE-2022"])
    checks = {}
    for release in (RELEASE, "RELEASE-2022"):
        result = materialize(
            [raw_soil_megapit], resources=asset_resources(settings), partition_key=release, instance=instance
        )
        checks[release] = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}
    assert all(e.passed for e in checks[RELEASE].values())
    renamed = checks["RELEASE-2022"][("mgp_perhorizon", "columns_unchanged_since_previous_release")]
    assert not renamed.passed and renamed.severity.value == "WARN"
    assert (renamed.metadata["added"].value, renamed.metadata["removed"].value) == (
        ["nrcsDescriptionCode"],
        ["nrcsDescriptionID"],
    )
    assert checks["RELEASE-2022"][("mgp_perbulksample", "columns_unchanged_since_previous_release")].passed
    share = checks["RELEASE-2022"][("mgp_perhorizon", "quarantine_share")]
    assert share.passed and share.metadata["rows_in"].value == 346
