"""Soil water content assets (DP1.00094.001): sensor inventory, phi per time step, its statistics.

The 30-minute rows are read and aggregated inside DuckDB, in bounded memory;
only the per-site sensor choice and the results' previews pass through Python.
Where the source has no DP1.00094.001 files for a release (the offline
snapshot has none), the tables are written empty and the metadata says so.
"""

import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    DataVersion,
    Failure,
    MaterializeResult,
    multi_asset,
)

from rootassets.defs.metadata import comment_statement, table_metadata
from rootassets.defs.neon_sources import SOIL_WATER, source_key
from rootassets.defs.partitions import NEON_SITE_PARTITIONS, neon_release, release_and_site, release_site
from rootassets.defs.resources import NeonSourceResource, WarehouseResource
from rootassets.defs.version_cache import module_code_version
from rootassets.neon.errors import NeonTokenError
from rootassets.neon.identifiers import validate_release, validate_site
from rootassets.neon.soil_water import (
    SoilWaterFiles,
    corrected_depths,
    discover,
    read_sensor_positions,
)
from rootassets.refresh import SITE_PARTITIONS_METADATA
from rootassets.schemas import CONTRACTS
from rootassets.science.phi import depths_used
from rootassets.science.registry import GOOD_ROWS
from rootassets.science.soil_water import (
    ROLES,
    STATISTICS,
    SoilWaterQuality,
    file_roles,
    sensor_choice,
)
from rootassets.warehouse.quarantine import screen, screened_frames
from rootassets.warehouse.soil_water import (
    INPUT_REFUSED,
    QUALITY_TABLE,
    SERIES_TABLE,
    STATS_TABLE,
    TOTAL_MEMORY_MB,
    aggregate_site,
    combined_queries,
    parquet_select,
    partition_queries,
)
from rootassets.warehouse.staging import SiteScope

SOIL_WATER_CODE_VERSION = module_code_version(__name__)  # derived: this module's source and the rootassets code it uses

QUALITY_RULES = SoilWaterQuality()  # defaults, recorded in the statistics' metadata
COMMON = dict(partitions_def=neon_release, pool="duckdb", code_version=SOIL_WATER_CODE_VERSION)

POSITIONS, FILES = AssetKey(["raw", "swc_sensor_positions"]), AssetKey(["raw", "swc_files"])
SENSORS = AssetKey(["analysis", "soil_water_sensors"])
SERIES, STATS = AssetKey(SERIES_TABLE.split(".")), AssetKey(STATS_TABLE.split("."))
QUALITY = AssetKey(QUALITY_TABLE.split("."))

SERIES_DESCRIPTION = (
    "`analysis.soil_water_phi_series`: per site and 30-minute step, soil water content "
    "at D1, D2 and the surface (mean over positions of valid values) and "
    "phi = swc_d2 / swc_d1. Aggregated inside DuckDB from the NEON files, one site partition at a time."
)
QUALITY_DESCRIPTION = (
    "`analysis.soil_water_quality`: per site and role (d1, d2, surface), what the quality "
    "rules kept: observations of the chosen sensors, dropped for a quality flag (VSWCFinalQF not 0) or a "
    "missing value, kept, the share dropped, the steps reported and with a value, and the site's steps "
    "with phi."
)
STATS_DESCRIPTION = (
    "`analysis.soil_water_statistics`: per site, the distribution of phi over time "
    "steps and of the surface sensor alone: mean, median, min, max, sd, cv, 25%, 75%, "
    "IQR (METHOD.md section 4), and whether they rest on enough data (`sufficient_data`, `data_note`: "
    "a site with too few steps with phi is reported, not silently averaged with the others)."
)


@multi_asset(
    specs=[
        AssetSpec(
            POSITIONS,
            group_name="raw",
            kinds={"duckdb"},
            deps=[source_key(SOIL_WATER)],
            description="`raw.swc_sensor_positions`: DP1.00094.001 sensor positions per site, HOR and VER, "
            "with the depth in cm (-100 x zOffset); the current position of a moved sensor.",
        ),
        AssetSpec(
            FILES,
            group_name="raw",
            kinds={"duckdb"},
            deps=[source_key(SOIL_WATER)],
            description="`raw.swc_files`: the 30-minute soil water files of the release (site, HOR, VER, "
            "month, publication, size). Their rows stay in the files and are read in DuckDB.",
        ),
    ],
    check_specs=[
        AssetCheckSpec(
            "files_found",
            asset=FILES,
            description="Warns when the release's folder holds no "
            "DP1.00094.001 30-minute file (soil-water phi then has no input).",
        ),
        AssetCheckSpec(
            "positions_for_every_site",
            asset=POSITIONS,
            description="Warns when a site with soil "
            "water files has no sensor_positions file (its sensors' depths are unknown).",
        ),
    ],
    can_subset=True,
    **COMMON,
)
def swc_sources(
    context: AssetExecutionContext, neon: NeonSourceResource, warehouse: WarehouseResource
) -> Iterator[MaterializeResult]:
    release = validate_release(context.partition_key)
    try:
        files = discover(neon.soil_water_release_folder(release, download=True, report=context.log.info))
    except NeonTokenError as exc:
        raise Failure(description=str(exc)) from None
    except ValueError as exc:  # a malformed window
        raise Failure(description=f"ROOTASSETS_SOIL_WATER_WINDOW: {exc}") from None
    raw = {
        "swc_sensor_positions": screen(
            read_sensor_positions(files).with_columns(pl.lit(release).alias("release")),
            CONTRACTS["raw.swc_sensor_positions"],
            "raw.swc_sensor_positions",
            release,
        ),
        "swc_files": screen(
            files.inventory().with_columns(pl.lit(release).alias("release")),
            CONTRACTS["raw.swc_files"],
            "raw.swc_files",
            release,
        ),
    }
    positions, inventory = raw["swc_sensor_positions"].kept, raw["swc_files"].kept
    selected = context.selected_asset_keys
    wanted = {t: s for t, s in raw.items() if AssetKey(["raw", t]) in selected}
    warehouse.write(screened_frames(wanted), release)
    comment_tables(context, warehouse, [AssetKey(["raw", t]) for t in wanted])
    common = {
        "folder": str(files.folder) if files.folder else "none",
        "available": bool(files.data),
        "note": ""
        if files.data
        else "the source has no DP1.00094.001 files for this release "
        "(set ROOTASSETS_SOIL_WATER to a folder with <release>/DP1.00094.001/, or, from the API, "
        "ROOTASSETS_SOIL_WATER_WINDOW to months the release has)",
        "ignored_files": len(files.ignored),
        "source_fingerprint": files.fingerprint(),
    }
    version = DataVersion(files.fingerprint())
    checks = context.selected_asset_check_keys
    unplaced = sorted(set(files.sites) - set(files.positions))
    if POSITIONS in selected:
        yield MaterializeResult(
            asset_key=POSITIONS,
            data_version=version,
            metadata={
                **table_metadata(positions, release, table="raw.swc_sensor_positions"),
                **raw["swc_sensor_positions"].summary(),
                **common,
            },
            check_results=[
                AssetCheckResult(
                    asset_key=POSITIONS,
                    check_name="positions_for_every_site",
                    passed=not unplaced,
                    severity=AssetCheckSeverity.WARN,
                    metadata={"sites_without_positions": unplaced},
                )
            ]
            if AssetCheckKey(POSITIONS, "positions_for_every_site") in checks
            else [],
        )
    if FILES in selected:
        yield MaterializeResult(
            asset_key=FILES,
            data_version=version,
            check_results=[
                AssetCheckResult(
                    asset_key=FILES,
                    check_name="files_found",
                    passed=bool(files.data),
                    severity=AssetCheckSeverity.WARN,
                    metadata={"files": len(files.data), "folder": common["folder"]},
                )
            ]
            if AssetCheckKey(FILES, "files_found") in checks
            else [],
            metadata={
                **table_metadata(inventory, release, table="raw.swc_files"),
                **raw["swc_files"].summary(),
                **common,
                "total_bytes": int(inventory["size_bytes"].sum()) if inventory.height else 0,
            },
        )


@multi_asset(
    specs=[
        AssetSpec(
            SENSORS,
            group_name="soil_water",
            kinds={"duckdb"},
            deps=[POSITIONS, FILES, AssetKey(["analysis", "phi"])],
            description="`analysis.soil_water_sensors`: per site, sensor position and period, the sensor used "
            "for D1, D2 (nearest depth; the depths analysis.phi used, so phi's parameters apply here too) and the "
            "surface (shallowest), from `valid_from` to `valid_to`: a sensor that was moved has each depth for "
            "its own period only. Depths come from NEON's corrected installation depths (swc_depthsV2.csv) where "
            "the download has them, else from sensor_positions; `depth_source` says which. Each site with a "
            "sensor here gets its site partition of the soil-water series and statistics.",
        ),
    ],
    **COMMON,
)
def soil_water_sensors(
    context: AssetExecutionContext, neon: NeonSourceResource, warehouse: WarehouseResource
) -> MaterializeResult:
    release = validate_release(context.partition_key)
    files = discover(neon.soil_water_release_folder(release))
    with warehouse.session():  # every read and write below on one opening of the file (~30 ms each)
        depths = depths_used(warehouse.read("analysis", "phi", release))  # D1/D2 as the phi step chose them
        positions = warehouse.read("raw", "swc_sensor_positions", release, GOOD_ROWS)
        sensors = sensor_choice(positions, corrected_depths(files), depths.drop("modality"))
        sensors = sensors.join(depths.select("site_id", "modality"), on="site_id", how="left")
        screened = screen(
            sensors.with_columns(pl.lit(release).alias("release")),
            CONTRACTS["analysis.soil_water_sensors"],
            "analysis.soil_water_sensors",
            release,
        )
        sensors = screened.kept
        warehouse.write(
            {("analysis", "soil_water_sensors"): sensors, ("quarantine", "soil_water_sensors"): screened.quarantined},
            release,
        )
        comment_tables(context, warehouse, [SENSORS])
        sites = site_partitions(sensors, files)
        with tempfile.TemporaryDirectory(prefix="rootassets-swc-") as work, warehouse.get_connection() as con:
            # no rows, every site but this release's: the site tables exist (with no site, downstream reads zero
            # rows), and a site that left the release leaves them; each site partition then writes its own rows
            roles = file_roles(sensors.drop("release"), files.sensor_files())
            empty = aggregate_site("", roles.clear(), depths.clear(), QUALITY_RULES, work)
            queries, _ = combined_queries(con, [empty])
            others = SiteScope(keep=tuple(sites))
            warehouse.write_sql(con, {k: q for k, q in queries.items() if k[0] != "quarantine"}, release, others)
            con.unregister("swc_site_failures")
        for key, description in SITE_TABLE_DESCRIPTIONS.items():
            comment_table(warehouse, key, description)
    registered = set(context.instance.get_dynamic_partitions(NEON_SITE_PARTITIONS))
    if set(sites) - registered:
        context.instance.add_dynamic_partitions(NEON_SITE_PARTITIONS, sorted(set(sites) - registered))
    return MaterializeResult(
        asset_key=SENSORS,
        metadata={
            **table_metadata(sensors, release, table="analysis.soil_water_sensors"),
            **screened.summary(),
            "depths_from": "analysis.phi (the D1 and D2 its parameters chose for each site)",
            "sensor_depths_from": files.corrected_depths.name
            if files.corrected_depths is not None
            else "sensor_positions (the download has no swc_depthsV2.csv or swc_depths.csv)",
            "sensor_periods_by_depth_source": dict(
                sensors.group_by("depth_source").len().sort("depth_source").iter_rows()
            )
            if sensors.height
            else {},
            "files_available": len(files.data),
            "sites_without_modality": sorted(set(files.sites) - set(sensors["site_id"].to_list())),
            SITE_PARTITIONS_METADATA: sites,  # release x site partitions of the soil-water series and statistics
        },
    )


def site_folder(folder: Path | None, site: str) -> Path | None:
    """The folder to list for one site: its own subfolder where the layout has one (downloads, per-site
    folders), so a site partition does not list the whole release's files; else the release folder."""
    if folder is not None and (folder / site).is_dir():
        return folder / site
    return folder


def site_partitions(sensors: pl.DataFrame, files: SoilWaterFiles) -> list[str]:
    """The sites of the release whose soil water is aggregated: a chosen sensor with 30-minute files."""
    with_files = set(files.sites)
    return sorted(s for s in set(sensors["site_id"].drop_nulls().to_list()) if s in with_files)


@multi_asset(
    specs=[
        AssetSpec(
            SERIES,
            group_name="soil_water",
            kinds={"duckdb"},
            deps=[FILES, SENSORS],
            description=SERIES_DESCRIPTION,
        ),
        AssetSpec(
            QUALITY,
            group_name="soil_water",
            kinds={"duckdb"},
            deps=[FILES, SENSORS],
            description=QUALITY_DESCRIPTION,
        ),
        AssetSpec(
            STATS,
            group_name="soil_water",
            kinds={"duckdb"},
            deps=[SERIES, QUALITY],
            description=STATS_DESCRIPTION,
        ),
    ],
    check_specs=[
        AssetCheckSpec(
            "site_aggregated",
            asset=STATS,
            description="Fails when the site's files could not be aggregated (a file unreadable as a whole, "
            "DuckDB out of memory): the site keeps its earlier rows, and quarantine.soil_water_phi_series has a "
            "site_not_aggregated row naming the file.",
        ),
    ],
    can_subset=True,
    partitions_def=release_site,
    code_version=SOIL_WATER_CODE_VERSION,
)
def soil_water_site(
    context: AssetExecutionContext, neon: NeonSourceResource, warehouse: WarehouseResource
) -> Iterator[MaterializeResult]:
    """Phi of soil water content per time step, and its statistics, for one site of one release: computed in
    a DuckDB of its own (one thread, spilling to disk), so site partitions run side by side in separate runs,
    and written as that site's rows only."""
    release, site = release_and_site(context.partition_key)
    release, site = validate_release(release), validate_site(site)
    selected = context.selected_asset_keys
    files = discover(site_folder(neon.soil_water_release_folder(release), site))
    depths = depths_used(warehouse.read("analysis", "phi", release)).filter(pl.col("site_id") == site)
    sensors = warehouse.read("analysis", "soil_water_sensors", release, f"site_id = '{site}'")
    roles = file_roles(sensors.drop("release"), files.sensor_files())
    with tempfile.TemporaryDirectory(prefix=f"rootassets-swc-{site}-") as work:
        aggregate = aggregate_site(site, roles, depths, QUALITY_RULES, work)
        empty = aggregate_site("", roles.clear(), depths.clear(), QUALITY_RULES, work) if aggregate.error else None
        if aggregate.error:
            context.log.warning(f"soil water at {site} not aggregated: {aggregate.error}")
        with warehouse.get_connection() as con:
            queries, scopes = partition_queries(con, site, aggregate, empty)
            wanted = {SERIES: SERIES in selected, QUALITY: QUALITY in selected, STATS: STATS in selected}
            chosen = {k: q for k, q in queries.items() if wanted.get(AssetKey(list(k)), True)}
            counts = warehouse.write_sql(con, chosen, release, scopes)  # the release run comments the tables
            series, statistics = queries[("analysis", SERIES.path[1])], queries[("analysis", STATS.path[1])]
            series_preview = con.sql(f"{series} ORDER BY start_time LIMIT 10").pl()
            stats = con.sql(f"{statistics} ORDER BY variable").pl()
            quality = con.sql(f"{queries[('analysis', QUALITY.path[1])]} ORDER BY role").pl()
            steps = con.execute(f"SELECT count(*), count(phi) FROM ({series})").fetchall()[0]
            left_out = {}
            if aggregate.error is None:
                refused = parquet_select([aggregate.files[INPUT_REFUSED]])
                left_out = dict(con.execute(f"SELECT source_file, count(*) FROM ({refused}) GROUP BY ALL").fetchall())
            con.unregister("swc_site_failures")
    for name, lines in left_out.items():
        context.log.warning(
            f"{name}: {lines} line(s) or the whole file left out of the soil-water aggregation; each is in "
            "quarantine.soil_water_phi_series with its line and reason"
        )
    common = {
        "site": site,
        "aggregated": aggregate.error is None,
        "not_aggregated_because": aggregate.error or "",  # its earlier rows kept; a quarantine row names it
        "files_read": roles["path"].n_unique(),
        "input_left_out": left_out,  # file -> lines DuckDB could not read (or 1: the file refused whole)
        "roles": list(ROLES),
        "memory_limit_mb": TOTAL_MEMORY_MB,  # this site's DuckDB spills to disk beyond it
    }
    if SERIES in selected:
        yield MaterializeResult(
            asset_key=SERIES,
            metadata={
                **table_metadata(series_preview, release, table=SERIES_TABLE),
                "dagster/row_count": counts[SERIES_TABLE],
                "rows_quarantined": counts["quarantine.soil_water_phi_series"],
                "time_steps": steps[0],
                "time_steps_with_phi": steps[1],
                **common,
            },
        )
    if QUALITY in selected:
        yield MaterializeResult(
            asset_key=QUALITY,
            metadata={
                **table_metadata(quality, release, table=QUALITY_TABLE),
                "dagster/row_count": counts[QUALITY_TABLE],
                "rows_quarantined": counts["quarantine.soil_water_quality"],
                "rule": "only VSWCFinalQF = 0 with a finite VSWCMean is used",
                **common,
            },
        )
    if STATS in selected:
        stats = stats.with_columns(pl.lit(release).alias("release"))
        insufficient = stats.filter(~pl.col("sufficient_data")) if stats.height else stats
        yield MaterializeResult(
            asset_key=STATS,
            metadata={
                **table_metadata(stats, release, table=STATS_TABLE),
                "statistics": list(STATISTICS),
                "quality_rules": QUALITY_RULES.as_metadata(),
                "too_little_data": bool(insufficient.height),
                **common,
            },
            check_results=[
                AssetCheckResult(
                    asset_key=STATS,
                    check_name="site_aggregated",
                    passed=aggregate.error is None,
                    severity=AssetCheckSeverity.WARN,
                    metadata={"site": site, "error": aggregate.error or ""},
                )
            ]
            if AssetCheckKey(STATS, "site_aggregated") in context.selected_asset_check_keys
            else [],
        )


soil_water_assets = [swc_sources, soil_water_sensors, soil_water_site]
SITE_TABLE_DESCRIPTIONS = {SERIES: SERIES_DESCRIPTION, QUALITY: QUALITY_DESCRIPTION, STATS: STATS_DESCRIPTION}
SITE_PARTITIONED = [SERIES, QUALITY, STATS]  # run by release x site partition, outside the main job


def comment_tables(context: AssetExecutionContext, warehouse: WarehouseResource, keys: list[AssetKey]) -> None:
    """Each written table's asset description as its DuckDB comment."""
    with warehouse.session():
        for key in keys:
            comment_table(warehouse, key, context.assets_def.specs_by_key[key].description)


def comment_table(warehouse: WarehouseResource, key: AssetKey, description: str | None) -> None:
    schema, table = key.path
    statements = comment_statement(schema, table, description)
    if statements:
        warehouse.define(f"comment:{schema}.{table}", statements)
