"""The main job: every asset for one NEON release."""

from dagster import AssetSelection, define_asset_job, in_process_executor

OPTIONAL = AssetSelection.tag("rootassets/optional", "true")

MAIN_JOB = "main_job"

main_job = define_asset_job(
    MAIN_JOB,
    selection=AssetSelection.all() - OPTIONAL,  # partitioned by neon_release, inferred from the assets
    description="Every asset for one NEON release, raw tables to figures (optional ones aside). Its tables become visible "
    "together when the run succeeds.",
    executor_def=in_process_executor,
)
