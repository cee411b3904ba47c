"""The main job: NEON's sources observed, then every asset for one NEON release."""

import warnings
from collections.abc import Sequence
from typing import Any

from dagster import AssetCheckKey, AssetSelection, BetaWarning, define_asset_job, in_process_executor

OPTIONAL = AssetSelection.tag("rootassets/optional", "true")

MAIN_JOB = "main_job"


def main_job(reported_checks: Sequence[AssetCheckKey]) -> Any:
    """The main job, without the checks that the refresh reports itself (`reported_checks`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)  # include_sources is beta in Dagster 1.13
        everything = AssetSelection.all(include_sources=True)
    return define_asset_job(
        MAIN_JOB,
        selection=everything - OPTIONAL - AssetSelection.checks(*reported_checks),  # partitioned by neon_release
        description="NEON's sources observed, then every asset for one NEON release, raw tables to figures "
        "(optional ones aside). Its tables become visible together when the run succeeds.",
        executor_def=in_process_executor,
    )
