"""METHOD.md section 4 for soil moisture: phi per time step and its distribution, and the surface sensor.

Y(D) at a time step is the site's volumetric soil water content at depth D:
at each horizontal sensor position, the sensor (vertical level) whose depth
is nearest D, and the mean over positions of their valid 30-minute means
(`VSWCFinalQF == 0`). phi(t) = Y(D2, t) / Y(D1, t). The surface value is the
shallowest sensor of each position, averaged the same way.

The aggregation itself runs in DuckDB over tens of millions of rows, so this
module holds the rules as pure functions: the sensor choice (polars, per
site), the SQL text of the per-time-step series and of the statistics, and a
NumPy reference of the statistics that the tests hold the SQL to.
"""

from __future__ import annotations

import numpy as np
import polars as pl

ROLES = ("d1", "d2", "surface")
STATISTICS = ("mean", "median", "min", "max", "sd", "cv", "q25", "q75", "iqr")


def choose_sensors(positions: pl.DataFrame, depths: pl.DataFrame) -> pl.DataFrame:
    """Per site, position and role: the chosen sensor.

    `positions`: site_id, hor, ver, depth_cm. `depths`: site_id, d1_cm, d2_cm.
    Roles d1 and d2 take the sensor nearest that depth (the shallower on a
    tie); the surface role takes the shallowest sensor. Sites missing from
    `depths` get no rows.
    """
    located = positions.join(depths, on="site_id", how="inner")
    chosen = []
    for role, target in (("d1", pl.col("d1_cm")), ("d2", pl.col("d2_cm")), ("surface", pl.lit(0.0))):
        ranked = located.with_columns(
            pl.lit(role).alias("role"),
            target.alias("target_cm"),
            (pl.col("depth_cm") - target).abs().alias("distance_cm"),
        )
        chosen.append(
            ranked.sort("site_id", "hor", "distance_cm", "depth_cm")
            .group_by("site_id", "hor", maintain_order=True)
            .first()
        )
    columns = ["site_id", "hor", "role", "ver", "depth_cm", "target_cm", "distance_cm"]
    if not chosen or located.is_empty():
        return pl.DataFrame(
            schema={
                "site_id": pl.String,
                "hor": pl.String,
                "role": pl.String,
                "ver": pl.String,
                "depth_cm": pl.Float64,
                "target_cm": pl.Float64,
                "distance_cm": pl.Float64,
            }
        )
    return pl.concat([c.select(columns) for c in chosen]).sort("site_id", "role", "hor")


def file_roles(sensors: pl.DataFrame, sensor_files: pl.DataFrame) -> pl.DataFrame:
    """site_id, role, path: every file of each chosen sensor (`sensor_files`: site_id, hor, ver, path)."""
    return sensors.join(sensor_files, on=["site_id", "hor", "ver"], how="inner").select("site_id", "role", "path")


def series_sql(observations: str, files_table: str) -> str:
    """SQL of the per-site, per-time-step table: Y at D1, D2 and the surface, and phi.

    `observations` is a relation with the 30-minute columns and `filename`;
    `files_table` maps each chosen file (`path`) to its site_id and role.
    """
    return f"""
        WITH by_role AS (
            SELECT f.site_id, o.startDateTime AS start_time, f.role,
                   avg(o.VSWCMean) AS swc, count(*) AS n_positions
            FROM {observations} AS o JOIN {files_table} AS f ON o.filename = f.path
            WHERE o.VSWCFinalQF = 0 AND o.VSWCMean IS NOT NULL AND isfinite(o.VSWCMean)
            GROUP BY ALL
        )
        SELECT site_id, start_time,
               max(swc) FILTER (WHERE role = 'd1') AS swc_d1,
               max(swc) FILTER (WHERE role = 'd2') AS swc_d2,
               max(swc) FILTER (WHERE role = 'surface') AS swc_surface,
               max(n_positions) FILTER (WHERE role = 'd1') AS n_positions_d1,
               max(n_positions) FILTER (WHERE role = 'd2') AS n_positions_d2,
               swc_d2 / nullif(swc_d1, 0) AS phi
        FROM by_role
        GROUP BY site_id, start_time
    """


def statistics_sql(series: str) -> str:
    """SQL of the distribution statistics of phi and of the surface value, per site (one row per variable)."""
    parts = []
    for variable, column in (("phi", "phi"), ("surface_swc", "swc_surface")):
        parts.append(f"""
            SELECT site_id, '{variable}' AS variable, count({column}) AS n_steps,
                   avg({column}) AS mean, median({column}) AS median,
                   min({column}) AS min, max({column}) AS max, stddev_samp({column}) AS sd,
                   stddev_samp({column}) / nullif(avg({column}), 0) AS cv,
                   quantile_cont({column}, 0.25) AS q25, quantile_cont({column}, 0.75) AS q75,
                   quantile_cont({column}, 0.75) - quantile_cont({column}, 0.25) AS iqr
            FROM {series} WHERE {column} IS NOT NULL AND isfinite({column}) GROUP BY site_id""")
    return " UNION ALL ".join(parts)


def labelled_statistics_sql(series: str, depths: str) -> str:
    """`statistics_sql` with each site's modality, d1_cm and d2_cm from the relation `depths`."""
    return (
        f"SELECT s.*, d.modality, d.d1_cm, d.d2_cm FROM ({statistics_sql(series)}) AS s "
        f"LEFT JOIN {depths} AS d USING (site_id)"
    )


def distribution_statistics(values: np.ndarray) -> dict[str, float]:
    """The statistics of METHOD.md section 4 (sd with n - 1; quantiles by linear interpolation, as R's type 7)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {name: float("nan") for name in STATISTICS}
    mean, sd = float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else float("nan")
    q25, q75 = (float(q) for q in np.quantile(v, [0.25, 0.75]))
    return {
        "mean": mean,
        "median": float(np.median(v)),
        "min": float(v.min()),
        "max": float(v.max()),
        "sd": sd,
        "cv": sd / mean if mean else float("nan"),
        "q25": q25,
        "q75": q75,
        "iqr": q75 - q25,
    }
