"""A real second release: NEON's own RELEASE-2022 stacked output of DP1.10066.001 for seven sites
(../shared/neon-samples/RELEASE-2022-seven-sites), with the real mpr_perdepthincrement and variables file,
loaded beside RELEASE-2021 through the mirror (API path) and from the folder (snapshot path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey

from rootassets.defs.harmonized import harmonized_assets
from rootassets.defs.neon_documents import raw_neon_documents
from rootassets.defs.raw import raw_root_megapit, raw_soil_megapit
from rootassets.neon.mirror import TEST_DOI_PREFIX, MirrorServer
from rootassets.warehouse import Location, connect_read_only
from rootassets_tests.conftest import REPO, SNAPSHOT, run_assets, settings_on_backend, warehouse_of

SAMPLES = (REPO / ".." / "shared" / "neon-samples").resolve()
RELEASE = "RELEASE-2022"
SEVEN = ["BART", "DELA", "HARV", "LENO", "ORNL", "SERC", "TREE"]


@pytest.fixture(scope="module")
def roots() -> str:
    if not (SAMPLES / "RELEASE-2022-seven-sites").is_dir():
        pytest.fail(f"the NEON samples are expected at {SAMPLES} (../shared/neon-samples from the repo root)")
    return os.pathsep.join([str(SNAPSHOT), str(SAMPLES)])


def _check_loaded(database: Location, origin: str) -> None:
    with connect_read_only(database) as con:
        increments = con.execute(
            "select count(*), list(distinct site_id order by site_id) from raw.mpr_perdepthincrement where release = ?",
            [RELEASE],
        ).fetchone()
        assert increments == (275, SEVEN)
        rules = con.execute(
            "select distinct depth_rule, depth_derived from harmonized.root_increments where release = ?", [RELEASE]
        ).fetchall()
        assert rules == [("mpr_perdepthincrement", False)]  # NEON's depths, not derived ones
        compared = con.execute(
            "select count(*), count(distinct site_id), count(*) filter (where bottom_difference_cm = 0) "
            "from harmonized.increment_depth_comparison where release = ?",
            [RELEASE],
        ).fetchone()
        assert compared[0] > 0 and compared[1] == len(SEVEN) and compared[2] > 0  # derived beside published
        units = con.execute(
            "select description, units from raw.variables where fieldName = 'incrementRootDensity' and release = ?",
            [RELEASE],
        ).fetchall()
        assert units == [("Root biomass per collected soil volume per depth increment", "gramsPerCubicMeter")]
        comment = con.execute(
            "select comment from duckdb_columns() where schema_name = 'raw' and "
            "table_name = 'mpr_perrootsample' and column_name = 'incrementRootDensity'"
        ).fetchone()
        assert comment == ("Root biomass per collected soil volume per depth increment (gramsPerCubicMeter)",)
        log = con.execute(
            "select count(*), any_value(origin) from raw.issue_log where release = ? and product = 'DP1.10066.001'",
            [RELEASE],
        ).fetchone()
        assert log == (3, origin)
        soil = con.execute("select count(*) from raw.mgp_perhorizon where release = ?", [RELEASE]).fetchone()
        assert soil == (0,)  # the sample holds no soil product for RELEASE-2022: written empty, not invented


@pytest.mark.network
def test_release_2022_through_the_mirror(tmp_path: Path, roots: str, neon_token: str) -> None:
    with MirrorServer(roots) as mirror:
        settings = settings_on_backend(
            home=tmp_path / "home", snapshot=None, api_url=mirror.base_url, site_attributes=SNAPSHOT / "site-attributes"
        )
        result = run_assets(
            settings,
            [
                raw_root_megapit,
                raw_soil_megapit,
                raw_neon_documents,
                *[a for a in harmonized_assets if AssetKey(["harmonized", "root_increments"]) in a.keys],
            ],
            api_url=mirror.base_url,
            release=RELEASE,
        )
        assert result.success
        assert not mirror.stats.token_seen_by_storage
    _check_loaded(settings.database, "api changeLogs")
    with connect_read_only(settings.database) as con:
        doi = con.execute("select doi from raw.product_citations where product = 'DP1.10066.001'").fetchone()[0]
    assert doi == f"{TEST_DOI_PREFIX}/neon-mirror.DP1.10066.001.{RELEASE}"


@pytest.mark.slow
def test_release_2022_from_the_folders_end_to_end(tmp_path: Path, roots: str) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "ROOTASSETS_HOME": str(home), "ROOTASSETS_SNAPSHOT": roots}
    for release in ("RELEASE-2021", RELEASE):
        done = subprocess.run(
            [sys.executable, "-m", "rootassets.cli", "materialize", "--release", release],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    _check_loaded(warehouse_of(env), "readme ISSUE LOG")
    for release in ("RELEASE-2021", RELEASE):
        bib = (home / "reports" / release / "citations.bib").read_text()
        assert "DP1.10066.001" in bib and "DP1.00096.001" in bib and "root bimodality" in bib
    assert "classifier not fitted" in done.stdout + done.stderr
    with connect_read_only(warehouse_of(env)) as con:
        sites = con.execute(
            "select release, count(*) from analysis.site_modality group by release order by release"
        ).fetchall()
    assert sites == [("RELEASE-2021", 44), (RELEASE, 7)]
