"""The one place where the rootassets Dagster definitions are assembled."""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from rootassets.defs.analysis import analysis_assets
from rootassets.defs.automation import build_site_sensors, neon_release_sensor, weekly_neon_refresh
from rootassets.defs.harmonized import harmonized_assets
from rootassets.defs.jobs import MAIN_JOB, SITES_JOB, main_job, sites_job
from rootassets.defs.marts import mart_assets
from rootassets.defs.neon_documents import build_document_assets
from rootassets.defs.neon_sources import build_neon_sources
from rootassets.defs.raw import declared_product_asset, raw_assets
from rootassets.defs.reports import report_assets
from rootassets.defs.resources import ArtifactStore, NeonSourceResource, WarehouseResource
from rootassets.defs.soil_water import soil_water_assets
from rootassets.defs.visibility import refresh_sensors, visibility_check_keys, visibility_checks
from rootassets.neon.declared import read_declared
from rootassets.settings import Settings

__all__ = ["MAIN_JOB", "SITES_JOB", "build_definitions", "defs"]


def build_definitions(settings: Settings) -> Definitions:
    """Definitions wired to `settings` (tests pass their own), with the products declared in its home."""
    declared = read_declared(settings.products_file)
    assets = [
        *raw_assets,
        *(declared_product_asset(d) for d in declared),
        *build_document_assets(declared),
        *harmonized_assets,
        *analysis_assets,
        *report_assets,
        *mart_assets,
        *soil_water_assets,
    ]
    jobs = [main_job(visibility_check_keys(assets)), sites_job(visibility_check_keys(assets))]
    return Definitions(
        assets=[build_neon_sources(declared), *assets],
        asset_checks=[visibility_checks(assets)],
        jobs=jobs,
        executor=in_process_executor,  # one process per run; the run commits itself (rootassets.refresh)
        sensors=[neon_release_sensor, *refresh_sensors, *build_site_sensors(jobs)],
        schedules=[weekly_neon_refresh],
        resources={
            "warehouse": WarehouseResource(
                database=settings.database_setting,
                lake_data=settings.lake_data,
            ),
            "artifacts": ArtifactStore(home=str(settings.home), files_url=settings.files_url),
            "neon": NeonSourceResource(
                snapshot_dir=str(settings.snapshot) if settings.snapshot else None,
                api_url=settings.api_url,
                download_dir=str(settings.downloads),
                site_attributes_dir=str(settings.site_attributes) if settings.site_attributes else None,
                soil_water_dir=str(settings.soil_water) if settings.soil_water else None,
                soil_water_window=settings.soil_water_window,
                soil_water_workers=settings.soil_water_workers,
            ),
        },
    )


defs = build_definitions(Settings.from_env())
