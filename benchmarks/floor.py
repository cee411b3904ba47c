"""The floor of the main job: the same work in one plain Python process, with no orchestration.

`python benchmarks/floor.py HOME [SNAPSHOT]` reads the snapshot, screens and
writes the raw tables, harmonizes, runs every analysis, draws every figure,
builds the marts and writes the same DuckDB tables into HOME/rootassets.duckdb,
calling the same `rootassets.neon`, `rootassets.warehouse.quarantine` and
`rootassets.science` functions as the assets, on one DuckDB connection and
with no Dagster run, instance, event log or staging. The figure drawers and
raw screening are shared with `rootassets.defs` (plain functions there), so
importing them loads the dagster package: that import is counted in the floor.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import duckdb
import polars as pl

from rootassets.neon.open import open_source
from rootassets.neon.products import ROOT_MEGAPIT, SOIL_MEGAPIT
from rootassets.neon.site_attributes import load_site_attributes
from rootassets.neon.soil_water import discover, read_csv_sql, read_sensor_positions, soil_water_folder
from rootassets.neon.stacking import StackedTable, empty_table
from rootassets.schemas import ANALYSIS_CONTRACTS, HARMONIZED_CONTRACTS
from rootassets.science.classifier import ForestParameters, classifier_tables
from rootassets.science.group_tests import GroupTestParameters, group_test_table
from rootassets.science.modality import ModalityParameters, kde_table, modality_table
from rootassets.science.nutrients import NutrientParameters, nutrient_tables
from rootassets.science.phi import PhiParameters, phi_depth_table, phi_table
from rootassets.science.release_changes import CHANGE_SCHEMA, ChangeTolerances, compare_releases
from rootassets.science.root_profiles import (
    RootProfileParameters,
    root_increments,
    site_root_profiles,
    total_fine_root_biomass,
)
from rootassets.science.site_factors import site_factor_table
from rootassets.science.soil_profiles import horizon_properties, protocol_root_grid, soil_on_root_grid
from rootassets.science.soil_water import choose_sensors, file_roles, labelled_statistics_sql, series_sql
from rootassets.warehouse import qualified, quote_ident, read_release, replace_partitions
from rootassets.warehouse.quarantine import screen
from rootassets.warehouse.sqlmodels import discover_models
from rootassets.warehouse.staging import write_queries

RELEASE = "RELEASE-2021"
GOOD = "NOT quarantined"


class FloorWarehouse:
    """`read`/`write` on one open DuckDB connection: what the assets do, minus orchestration."""

    def __init__(self, path: Path) -> None:
        self.con = duckdb.connect(str(path))

    def read(self, schema: str, table: str, release: str, where: str = "") -> pl.DataFrame:
        return read_release(self.con, schema, table, release, where)

    def write(self, frames: dict[tuple[str, str], pl.DataFrame], release: str) -> None:
        replace_partitions(self.con, frames, release)

    def publish(self, schema: str, table: str, frame: pl.DataFrame, contract, release: str) -> pl.DataFrame:
        screened = screen(frame.with_columns(pl.lit(release).alias("release")), contract, f"{schema}.{table}", release)
        self.write({(schema, table): screened.kept, ("quarantine", table): screened.quarantined}, release)
        return screened.kept


def soil_water_tables(w: FloorWarehouse, files, modality: pl.DataFrame, release: str) -> None:
    """Section 4 for soil water, as the soil-water assets compute it (inside DuckDB)."""
    depths = phi_depth_table(modality, PhiParameters())
    positions = w.read("raw", "swc_sensor_positions", release)
    sensors = choose_sensors(positions.select("site_id", "hor", "ver", "depth_cm"), depths.drop("modality"))
    sensors = sensors.join(depths.select("site_id", "modality"), on="site_id", how="left")
    roles = file_roles(sensors, files.sensor_files())
    w.con.register("swc_file_roles", roles)
    w.con.register("swc_depths", depths)
    observations = read_csv_sql([Path(p) for p in sorted(set(roles["path"]))])
    w.con.execute(f"CREATE OR REPLACE TEMP TABLE swc_series AS {series_sql(observations, 'swc_file_roles')}")
    write_queries(
        w.con,
        {
            ("analysis", "soil_water_phi_series"): "SELECT * FROM swc_series",
            ("analysis", "soil_water_statistics"): labelled_statistics_sql("swc_series", "swc_depths"),
        },
        release,
        None,
    )
    w.write({("analysis", "soil_water_sensors"): sensors.with_columns(pl.lit(release).alias("release"))}, release)


def run(home: Path, snapshot: Path, release: str = RELEASE) -> dict[str, float]:
    from rootassets.defs.analysis import previous_release
    from rootassets.defs.raw import _frames, screen_raw
    from rootassets.defs.reports import FIGURES

    home.mkdir(parents=True, exist_ok=True)
    w = FloorWarehouse(home / "rootassets.duckdb")
    steps: dict[str, float] = {}
    clock = time.perf_counter()

    def step(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        steps[name] = now - clock
        clock = now

    source = open_source(snapshot, "http://127.0.0.1:9/api/v0/", home / "downloads")
    for product in (ROOT_MEGAPIT, SOIL_MEGAPIT):
        load = source.load_product(product, release)
        stacked = {t: load.tables.get(t) or StackedTable(t, empty_table()) for t in product.all_tables}
        w.write(
            _frames({t: screen_raw(t, s, release, published=t in load.tables) for t, s in stacked.items()}), release
        )
    attributes = load_site_attributes(snapshot / "site-attributes", release)
    w.write(_frames({t: screen_raw(t, s, release) for t, s in attributes.items()}), release)
    files = discover(soil_water_folder(snapshot, release))
    w.write(
        {
            ("raw", "swc_sensor_positions"): read_sensor_positions(files).with_columns(
                pl.lit(release).alias("release")
            ),
            ("raw", "swc_files"): files.inventory().with_columns(pl.lit(release).alias("release")),
        },
        release,
    )
    step("raw")

    params = RootProfileParameters()
    samples = w.read("raw", "mpr_perrootsample", release, GOOD)
    depth_table = w.read("raw", "mpr_perdepthincrement", release, GOOD)
    usable = depth_table if {"topDepth", "bottomDepth", "depthIncrementID"} <= set(depth_table.columns) else None
    increments = w.publish(
        "harmonized",
        "root_increments",
        root_increments(samples, usable, params),
        HARMONIZED_CONTRACTS["root_increments"],
        release,
    )
    profiles = w.publish(
        "harmonized", "root_profiles", site_root_profiles(increments), HARMONIZED_CONTRACTS["root_profiles"], release
    )
    biomass = w.publish(
        "harmonized",
        "site_root_biomass",
        total_fine_root_biomass(increments, params),
        HARMONIZED_CONTRACTS["site_root_biomass"],
        release,
    )
    horizons = horizon_properties(
        w.read("raw", "mgp_perhorizon", release, GOOD),
        w.read("raw", "mgp_perbiogeosample", release, GOOD),
        w.read("raw", "mgp_perbulksample", release, GOOD),
    )
    grid = profiles.select("site_id", "top_cm", "bottom_cm")
    soil_only = sorted(set(horizons["site_id"]) - set(grid["site_id"]))
    protocol = pl.DataFrame(
        [{"site_id": s, "top_cm": a, "bottom_cm": b} for s in soil_only for a, b in protocol_root_grid()],
        schema=grid.schema,
    )
    soil = soil_on_root_grid(horizons, pl.concat([grid, protocol])).with_columns(
        pl.when(pl.col("site_id").is_in(soil_only))
        .then(pl.lit("protocol"))
        .otherwise(pl.lit("root_profile"))
        .alias("grid")
    )
    soil = w.publish("harmonized", "soil_profiles", soil, HARMONIZED_CONTRACTS["soil_profiles"], release)
    step("harmonized")

    modality, kdes = modality_table(profiles, ModalityParameters())
    modality = modality.join(biomass.select("site_id", "total_fine_root_biomass_g_m2"), on="site_id", how="left")
    modality = w.publish("analysis", "site_modality", modality, ANALYSIS_CONTRACTS["site_modality"], release)
    curves = kde_table(kdes).with_columns(pl.lit(release).alias("release"))
    w.write({("analysis", "site_kde"): curves}, release)
    phis = w.publish(
        "analysis",
        "phi",
        phi_table(modality, profiles, soil, curves, PhiParameters()),
        ANALYSIS_CONTRACTS["phi"],
        release,
    )
    factors = site_factor_table(
        modality["site_id"].to_list(),
        biomass,
        w.read("raw", "field_site_metadata", release, GOOD),
        w.read("raw", "site_land_cover", release, GOOD),
        soil,
        None,
    ).join(modality.select("site_id", "modality"), on="site_id", how="left")
    factors = w.publish("analysis", "site_factors", factors, ANALYSIS_CONTRACTS["site_factors"], release)
    forest = classifier_tables(factors, ForestParameters())
    w.write(
        {
            ("analysis", "classifier_performance"): forest.performance.with_columns(pl.lit(release).alias("release")),
            ("analysis", "classifier_importance"): forest.importance.with_columns(pl.lit(release).alias("release")),
        },
        release,
    )
    step("classifier")
    w.publish(
        "analysis",
        "group_tests",
        group_test_table(factors, phis, GroupTestParameters()),
        ANALYSIS_CONTRACTS["group_tests"],
        release,
    )
    labels = dict(modality.select("site_id", "modality").iter_rows())
    exponents, loess_table, _ = nutrient_tables(profiles, soil, labels, NutrientParameters())
    w.publish("analysis", "nutrient_exponents", exponents, ANALYSIS_CONTRACTS["nutrient_exponents"], release)
    w.write({("analysis", "nutrient_loess"): loess_table.with_columns(pl.lit(release).alias("release"))}, release)
    present = [r for (r,) in w.con.execute("SELECT DISTINCT release FROM analysis.site_modality").fetchall()]
    before = previous_release([r for r in present if r != release], release)
    changes = pl.DataFrame(schema=CHANGE_SCHEMA)
    if before is not None:
        tables = [
            w.read("analysis", t, r) for t in ("site_modality", "phi", "nutrient_exponents") for r in (before, release)
        ]
        changes = compare_releases(*tables, ChangeTolerances())
    w.write(
        {
            ("analysis", "release_changes"): changes.with_columns(
                pl.lit(before, dtype=pl.String).alias("previous_release"), pl.lit(release).alias("release")
            )
        },
        release,
    )
    soil_water_tables(w, files, modality, release)
    step("analysis")

    figures = home / "figures" / release
    figures.mkdir(parents=True, exist_ok=True)
    import matplotlib.pyplot as plt

    for name, _deps, _doc, draw in FIGURES:
        fig = draw(w, release)
        fig.savefig(figures / f"{name}.png", dpi=150)
        plt.close(fig)
    step("figures")

    models = {(m.schema, m.name): m for m in discover_models()}
    done: set[tuple[str, str]] = set()
    while len(done) < len(models):  # dependencies first, as Dagster orders the mart assets
        ready = [
            k for k, m in models.items() if k not in done and all(u in done or u not in models for u in m.upstream)
        ]
        if not ready:
            raise SystemExit(f"mart models depend on each other in a cycle: {sorted(set(models) - done)}")
        model = models[ready[0]]
        done.add(ready[0])
        kind = "VIEW" if model.materialized == "view" else "TABLE"
        w.con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(model.schema)}")
        w.con.execute(f"CREATE OR REPLACE {kind} {qualified(model.schema, model.name)} AS {model.sql}")
    w.con.close()
    step("marts")
    return steps


if __name__ == "__main__":
    start = time.perf_counter()
    home = Path(sys.argv[1])
    snapshot = (
        Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).resolve().parents[2] / "shared" / "neon-snapshot"
    )
    steps = run(home, snapshot)
    print(" ".join(f"{k}={v:.2f}" for k, v in steps.items()), f"total={time.perf_counter() - start:.2f}")
