"""The main job: NEON's sources observed, then every asset for one NEON release."""

import warnings
from collections.abc import Sequence
from typing import Any

from dagster import AssetCheckKey, AssetSelection, BetaWarning, define_asset_job, in_process_executor

OPTIONAL = AssetSelection.tag("rootassets/optional", "true")
SITE_PARTITIONED = AssetSelection.assets(
    ["analysis", "soil_water_phi_series"], ["analysis", "soil_water_quality"], ["analysis", "soil_water_statistics"]
)

SITE_PARTITIONED_CHECKS = AssetSelection.checks_for_assets(
    ["analysis", "soil_water_phi_series"], ["analysis", "soil_water_quality"], ["analysis", "soil_water_statistics"]
)

MAIN_JOB = "main_job"
SITES_JOB = "soil_water_sites_job"


def main_job(reported_checks: Sequence[AssetCheckKey]) -> Any:
    """The main job, without the checks that the refresh reports itself (`reported_checks`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)  # include_sources is beta in Dagster 1.13
        everything = AssetSelection.all(include_sources=True)
    return define_asset_job(
        MAIN_JOB,
        selection=everything
        - OPTIONAL
        - SITE_PARTITIONED
        - SITE_PARTITIONED_CHECKS
        - AssetSelection.checks(*reported_checks),
        description="NEON's sources observed, then every release-partitioned asset for one NEON release, raw "
        "tables to figures (optional ones aside; the soil-water site partitions are soil_water_sites_job's). "
        "Its tables become visible together when the run succeeds.",
        executor_def=in_process_executor,
    )


def sites_job(reported_checks: Sequence[AssetCheckKey]) -> Any:
    """The soil-water assets of one release x site partition (partitioned as its assets are: release x site):
    one run per site, runs side by side."""
    return define_asset_job(
        SITES_JOB,
        selection=SITE_PARTITIONED - AssetSelection.checks(*reported_checks),
        description="The soil-water phi series, quality and statistics of one site of one release (a release x "
        "site partition). Each site's run computes in a DuckDB of its own and commits that site's rows alone, "
        "so sites run side by side and one site's failure leaves the others' rows as they are.",
        executor_def=in_process_executor,
    )
