"""The floor of the main job: the same work in one plain Python process, with no orchestration.

`python benchmarks/floor.py HOME [SNAPSHOT]` reads the snapshot, screens and
writes the raw tables, harmonizes, runs every analysis, draws every figure,
builds the marts and writes the same DuckDB tables into HOME/rootassets.duckdb,
calling the same `rootassets.neon`, `rootassets.warehouse.quarantine` and
`rootassets.science` functions as the assets, on one DuckDB connection and
with no Dagster run, instance, event log or staging. The registry's steps
(`rootassets.science.steps`) and the figure declarations
(`rootassets.science.figure_specs`) are the assets' own: this file wires none of
them; it never imports `rootassets.defs` (an import-linter contract).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import duckdb
import polars as pl

from rootassets.neon.open import open_source
from rootassets.neon.products import PRODUCTS, ROOT_MEGAPIT, SOIL_MEGAPIT
from rootassets.neon.site_attributes import SITE_ATTRIBUTE_TABLES, load_site_attributes
from rootassets.neon.soil_water import (
    corrected_depths,
    discover,
    read_sensor_positions,
    soil_water_folder,
)
from rootassets.neon.stacking import StackedTable, empty_table
from rootassets.schemas import CONTRACTS
from rootassets.science.figure_specs import FIGURES, SITE_PAGE_READS, SITE_PAGES_FILE, render_figures, site_pages_pdf
from rootassets.science.phi import depths_used
from rootassets.science.registry import GOOD_ROWS, Read, gather_inputs
from rootassets.science.report import REPORT_READS, report_markdown
from rootassets.science.soil_water import SoilWaterQuality, file_roles, sensor_choice
from rootassets.science.steps import STEPS
from rootassets.science.workers import start_workers
from rootassets.warehouse import qualified, quote_ident, read_release, replace_partitions, table_columns
from rootassets.warehouse.quarantine import screen, screen_stacked, screened_frames
from rootassets.warehouse.soil_water import aggregate_sites, combined_queries
from rootassets.warehouse.sqlmodels import discover_models
from rootassets.warehouse.staging import write_queries

RELEASE = "RELEASE-2021"
ALL_RAW = {f"raw.{t}" for p in PRODUCTS.values() for t in p.all_tables} | {
    f"raw.{t}" for t in (*SITE_ATTRIBUTE_TABLES, "swc_sensor_positions", "swc_files")
}


class FloorWarehouse:
    """`read`/`write` on one open DuckDB connection: what the assets do, minus orchestration."""

    def __init__(self, path: Path) -> None:
        self.con = duckdb.connect(str(path))

    def read(self, schema: str, table: str, release: str, where: str = "") -> pl.DataFrame:
        return read_release(self.con, schema, table, release, where)

    def write(self, frames: dict[tuple[str, str], pl.DataFrame], release: str) -> None:
        """As the assets write: a quarantine table comes into being with its first refused row."""
        frames = {
            key: frame
            for key, frame in frames.items()
            if frame.height or key[0] != "quarantine" or table_columns(self.con, *key) is not None
        }
        replace_partitions(self.con, frames, release)

    def releases(self, schema: str, table: str) -> list[str]:
        query = f"SELECT DISTINCT release FROM {qualified(schema, table)}"
        return [r for (r,) in self.con.execute(query).fetchall()]

    def read_csv(self, path: str) -> pl.DataFrame:
        return pl.read_csv(path)

    def inputs(self, reads: tuple[Read, ...], release: str) -> dict[str, pl.DataFrame]:
        return {r.name: self.read(r.schema, r.name, release, GOOD_ROWS if r.good_rows else "") for r in reads}

    def publish(self, schema: str, table: str, frame: pl.DataFrame, contract, release: str) -> pl.DataFrame:
        screened = screen(frame.with_columns(pl.lit(release).alias("release")), contract, f"{schema}.{table}", release)
        self.write({(schema, table): screened.kept, ("quarantine", table): screened.quarantined}, release)
        return screened.kept


def screen_raw(table: str, stacked: StackedTable, release: str, published: bool = True):
    return screen_stacked(table, stacked, release, CONTRACTS[f"raw.{table}"], published)


def run_ready_steps(w: FloorWarehouse, done: set[str], release: str) -> None:
    """Run, in the registry's order, every registry step not yet run whose input tables are all written (the
    assets run the same steps, through `rootassets.defs.steps`)."""
    for step in STEPS:
        if set(step.writes) <= done or not {r.table for r in step.reads} <= done:
            continue
        if step.tags.get("rootassets/optional") == "true":
            continue  # not in main_job either
        result = step.run(gather_inputs(step, step.default_parameters(), release, w))
        for table in step.writes:
            schema, name = table.split(".", 1)
            frame = result.tables[name]
            if table in CONTRACTS:
                w.publish(schema, name, frame, CONTRACTS[table], release)
            else:
                w.write({(schema, name): frame.with_columns(pl.lit(release).alias("release"))}, release)
            done.add(table)


def soil_water_tables(w: FloorWarehouse, files, modality: pl.DataFrame, release: str) -> None:
    """Section 4 for soil water, as the soil-water assets compute it (inside DuckDB)."""
    depths = depths_used(w.read("analysis", "phi", release))
    positions = w.read("raw", "swc_sensor_positions", release, GOOD_ROWS)
    sensors = sensor_choice(positions, corrected_depths(files), depths.drop("modality"))
    sensors = sensors.join(depths.select("site_id", "modality"), on="site_id", how="left")
    roles = file_roles(sensors, files.sensor_files())
    with tempfile.TemporaryDirectory(prefix="rootassets-floor-swc-") as work:
        aggregates = aggregate_sites(roles, depths, SoilWaterQuality(), Path(work))
        queries, scopes = combined_queries(w.con, aggregates)
        write_queries(w.con, queries, release, None, scopes)
    w.publish("analysis", "soil_water_sensors", sensors, CONTRACTS["analysis.soil_water_sensors"], release)


def run(home: Path, snapshot: Path, release: str = RELEASE) -> dict[str, float]:
    home.mkdir(parents=True, exist_ok=True)
    w = FloorWarehouse(home / "rootassets.duckdb")
    steps: dict[str, float] = {}
    clock = time.perf_counter()

    def step(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        steps[name] = now - clock
        clock = now

    start_workers()  # as `rootassets materialize` does when the pooled steps are to run
    source = open_source(snapshot, "http://127.0.0.1:9/api/v0/", home / "downloads")
    for product in (ROOT_MEGAPIT, SOIL_MEGAPIT):
        load = source.load_product(product, release)
        stacked = {t: load.tables.get(t) or StackedTable(t, empty_table()) for t in product.all_tables}
        w.write(
            screened_frames({t: screen_raw(t, s, release, published=t in load.tables) for t, s in stacked.items()}),
            release,
        )
    attributes = load_site_attributes(snapshot / "site-attributes", release)
    w.write(screened_frames({t: screen_raw(t, s, release) for t, s in attributes.items()}), release)
    files = discover(soil_water_folder(snapshot, release))
    swc = {"swc_sensor_positions": read_sensor_positions(files), "swc_files": files.inventory()}
    w.write(
        screened_frames(
            {
                t: screen(f.with_columns(pl.lit(release).alias("release")), CONTRACTS[f"raw.{t}"], f"raw.{t}", release)
                for t, f in swc.items()
            }
        ),
        release,
    )
    step("raw")

    done = {table for table in ALL_RAW}
    run_ready_steps(w, done, release)  # every registry step whose inputs exist, in the registry's order
    step("steps")
    modality = w.read("analysis", "site_modality", release)
    soil_water_tables(w, files, modality, release)
    done |= {f"analysis.{t}" for t in ("soil_water_phi_series", "soil_water_quality", "soil_water_statistics")}
    run_ready_steps(w, done, release)  # the steps that read soil water (the group tests) and what follows them
    step("analysis")

    figures = home / "figures" / release
    figures.mkdir(parents=True, exist_ok=True)
    paged = set()
    drawn = render_figures(FIGURES, {spec.name: w.inputs(spec.reads, release) for spec in FIGURES})
    for spec in FIGURES:
        rendered = drawn[spec.name]
        if isinstance(rendered, Exception):
            raise rendered
        (figures / f"{spec.name}.png").write_bytes(rendered.png)
        (figures / f"{spec.name}.svg").write_bytes(rendered.svg)
        if rendered.pdf is not None:
            (figures / f"{spec.name}.pdf").write_bytes(rendered.pdf)
            paged.add(spec.name)
    reports = home / "reports" / release
    reports.mkdir(parents=True, exist_ok=True)
    (reports / SITE_PAGES_FILE).write_bytes(site_pages_pdf(w.inputs(SITE_PAGE_READS, release)))
    text = report_markdown(
        w.inputs(REPORT_READS, release),
        release,
        [s.name for s in FIGURES],
        f"../../figures/{release}",
        SITE_PAGES_FILE,
        paged,
    )
    (reports / "report.md").write_text(text)
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
