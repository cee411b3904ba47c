"""The one place where the rootassets Dagster definitions are assembled."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job

from rootassets.defs.analysis import analysis_assets
from rootassets.defs.harmonized import harmonized_assets
from rootassets.defs.partitions import neon_release
from rootassets.defs.raw import raw_assets
from rootassets.defs.reports import report_assets
from rootassets.defs.resources import ArtifactStore, NeonSourceResource, WarehouseResource
from rootassets.settings import Settings

MAIN_JOB = "main_job"


def build_definitions(settings: Settings) -> Definitions:
    """Definitions wired to `settings` (tests pass their own)."""
    main_job = define_asset_job(
        MAIN_JOB,
        selection=AssetSelection.all(),
        partitions_def=neon_release,
        description="Every asset for one NEON release: raw tables to figures.",
    )
    return Definitions(
        assets=[*raw_assets, *harmonized_assets, *analysis_assets, *report_assets],
        jobs=[main_job],
        resources={
            "warehouse": WarehouseResource(database=str(settings.database)),
            "artifacts": ArtifactStore(home=str(settings.home)),
            "neon": NeonSourceResource(
                snapshot_dir=str(settings.snapshot) if settings.snapshot else None,
                api_url=settings.api_url,
                download_dir=str(settings.downloads),
                site_attributes_dir=str(settings.site_attributes) if settings.site_attributes else None,
            ),
        },
    )


defs = build_definitions(Settings.from_env())
