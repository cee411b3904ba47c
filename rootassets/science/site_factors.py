"""METHOD.md section 5 inputs: one row of site-level factors per site, units in the names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from rootassets.science.by_site import groups_in_order
from rootassets.science.soil_profiles import overlap_weighted_average

TOPSOIL_CM = 30.0  # METHOD.md 5: soil factors are means over 0-30 cm, and the column names say so


@dataclass(frozen=True)
class Factor:
    """A site factor: the name used in tests and rankings, its column, and its unit."""

    name: str
    column: str
    unit: str
    categorical: bool = False


NEON_FACTORS: tuple[Factor, ...] = (
    Factor(
        "total_fine_root_biomass_4mm_equiv",
        "total_fine_root_biomass_4mm_equiv_g_m2",
        "g/m2, 4 mm-equivalent (2 mm totals x cutoff_4mm_factor): comparable across cutoffs",
    ),
    Factor("elevation", "elevation_m", "m"),
    Factor("mean_annual_temperature", "mean_annual_temperature_c", "degC"),
    Factor("mean_annual_precipitation", "mean_annual_precipitation_mm", "mm"),
    Factor("canopy_height", "canopy_height_m", "m"),
    Factor("green_days", "green_days", "days/year"),
    Factor("land_cover", "land_cover", "category", categorical=True),
    Factor("soil_ph", "soil_ph_0_30cm", "pH (H2O), 0-30 cm"),
    Factor("sand", "sand_pct_0_30cm", "%, 0-30 cm"),
    Factor("clay", "clay_pct_0_30cm", "%, 0-30 cm"),
    Factor("organic_carbon", "organic_carbon_g_kg_0_30cm", "g/kg, 0-30 cm"),
    Factor("cec", "cec_cmol_kg_0_30cm", "cmol(+)/kg, 0-30 cm"),
)
# Measured totals, as sampled (the paper's group means): in the table and the group tests, not a forest factor
# beside its own 4 mm-equivalent.
MEASURED_BIOMASS = Factor("total_fine_root_biomass", "total_fine_root_biomass_g_m2", "g/m2, measured")
_TOPSOIL = {
    "soil_ph_0_30cm": "ph_h2o",
    "sand_pct_0_30cm": "sand_pct",
    "clay_pct_0_30cm": "clay_pct",
    "organic_carbon_g_kg_0_30cm": "organic_carbon_g_kg",
    "cec_cmol_kg_0_30cm": "cec_cmol_kg",
}


def leading_number(column: str) -> pl.Expr:
    """The number at the start of a text such as '10.0°C' (NEON's site table mixes units in)."""
    return pl.col(column).cast(pl.String).str.extract(r"^\s*(-?[0-9]+(?:\.[0-9]+)?)").cast(pl.Float64)


def climate_and_vegetation(field_sites: pl.DataFrame, land_cover: pl.DataFrame) -> pl.DataFrame:
    """Elevation, MAT, MAP, canopy height, green days (NEON field-site table) and land cover."""
    sites = field_sites.select(
        "site_id",
        leading_number("field_mean_evelation_m").alias("elevation_m"),
        leading_number("field_mean_annual_temperature_C").alias("mean_annual_temperature_c"),
        leading_number("field_mean_annual_precipitation_mm").alias("mean_annual_precipitation_mm"),
        leading_number("field_mean_canopy_height_m").alias("canopy_height_m"),
        leading_number("field_avg_number_of_green_days").alias("green_days"),
    )
    cover = land_cover.select("site_id", pl.col("Land.cover").alias("land_cover"))
    return sites.join(cover, on="site_id", how="full", coalesce=True)


def topsoil_means(soil: pl.DataFrame, depth_cm: float = TOPSOIL_CM) -> pl.DataFrame:
    """Overlap-weighted means of soil properties over [0, depth_cm) per site. Each column is taken once and
    sliced by each site's row positions (a polars group per site cost ten times the arithmetic)."""
    schema = {"site_id": pl.String, **{c: pl.Float64 for c in _TOPSOIL}}
    if not soil.height:
        return pl.DataFrame(schema=schema)
    tops = soil["top_cm"].to_numpy().astype(float)
    bottoms = soil["bottom_cm"].to_numpy().astype(float)
    columns = {out: soil[source].cast(pl.Float64).fill_null(np.nan).to_numpy() for out, source in _TOPSOIL.items()}
    rows = []
    for (site,), at in groups_in_order(soil, ["site_id"]):
        row: dict[str, object] = {"site_id": site}
        for out, values in columns.items():
            value, _ = overlap_weighted_average(
                np.array([0.0]), np.array([depth_cm]), tops[at], bottoms[at], values[at]
            )
            row[out] = None if np.isnan(value[0]) else float(value[0])
        rows.append(row)
    return pl.DataFrame(rows, schema=schema)


def site_factor_table(
    sites: list[str],
    biomass: pl.DataFrame,
    field_sites: pl.DataFrame,
    land_cover: pl.DataFrame,
    soil: pl.DataFrame,
    extra: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per site of `sites` with every NEON factor (and `extra` user factors)."""
    table = (
        pl.DataFrame({"site_id": sites})
        .join(
            biomass.select("site_id", MEASURED_BIOMASS.column, "total_fine_root_biomass_4mm_equiv_g_m2"),
            on="site_id",
            how="left",
        )
        .join(climate_and_vegetation(field_sites, land_cover), on="site_id", how="left")
        .join(topsoil_means(soil), on="site_id", how="left")
        .select("site_id", MEASURED_BIOMASS.column, *[f.column for f in NEON_FACTORS])
    )
    if extra is not None:
        table = table.join(extra, on="site_id", how="left")
    return table.sort("site_id")


def read_user_factors(
    frame: pl.DataFrame, source: str, columns: tuple[str, ...] = ()
) -> tuple[pl.DataFrame, list[Factor]]:
    """Validate a user table of extra factors: a site column and factor columns.

    `columns` names the factor columns to use (default: every other column, all of which must then be
    numbers); a named column that is not numeric becomes a categorical factor (e.g. a climate class).
    """
    site_column = next((c for c in ("site_id", "siteID", "site") if c in frame.columns), None)
    if site_column is None:
        raise ValueError(f"{source}: no site column (expected one of site_id, siteID, site)")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: no column(s) {', '.join(repr(c) for c in missing)} (it has {frame.columns})")
    frame = frame.rename({site_column: "site_id"})
    chosen = [c for c in columns if c != site_column] if columns else [c for c in frame.columns if c != "site_id"]
    frame = frame.select("site_id", *chosen)
    bad_sites = frame.filter(~pl.col("site_id").cast(pl.String).str.contains(r"^[A-Z]{4}$"))
    if bad_sites.height:
        raise ValueError(f"{source}: row {bad_sites.row(0)} has a site id that is not a NEON site code")
    if frame["site_id"].is_duplicated().any():
        raise ValueError(f"{source}: site ids repeat; one row per site is expected")
    factors = []
    for column in chosen:
        values = frame[column].cast(pl.Float64, strict=False)
        failed = frame[column].is_not_null() & values.is_null()
        if failed.any() and column in columns:
            frame = frame.with_columns(pl.col(column).cast(pl.String))
            factors.append(Factor(column, column, "user-supplied category", categorical=True))
            continue
        if failed.any():
            row = int(failed.arg_true()[0])
            raise ValueError(
                f"{source}: row {row + 1}, column {column!r}: {frame[column][row]!r} is not a number "
                "(name the columns to use in extra_factor_columns; a named text column becomes a category)"
            )
        frame = frame.with_columns(values.alias(column))
        factors.append(Factor(column, column, "user-supplied"))
    return frame, factors
