"""METHOD.md section 4 for soil moisture: phi per time step and its distribution, and the surface sensor.

Y(D) at a time step is the site's volumetric soil water content at depth D:
at each horizontal sensor position, the sensor (vertical level) whose depth
at that time is nearest D, and the mean over positions of their valid
30-minute means (`VSWCFinalQF == 0`). phi(t) = Y(D2, t) / Y(D1, t). The
surface value is the shallowest sensor of each position, averaged the same way.

Sensor depths are valid over periods: NEON's corrected installation depths
(`swc_depthsV2.csv`) where the download has them for a site, else the periods
of `sensor_positions`. A sensor that was moved has each depth for its own
period only, so the sensor chosen for a role can change at the move.

The aggregation itself runs in DuckDB over tens of millions of rows, so this
module holds the rules as pure functions: the sensor choice (polars, per
site), the SQL text of the per-time-step series and of the statistics, and a
NumPy reference of the statistics that the tests hold the SQL to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

ROLES = ("d1", "d2", "surface")
STATISTICS = ("mean", "median", "min", "max", "sd", "cv", "q25", "q75", "iqr")


@dataclass(frozen=True)
class SoilWaterQuality:
    """When a site's soil-water statistics rest on enough data: at least `min_steps` time steps with phi, and
    phi at no fewer than `min_step_share` of the steps its sensors reported. A site below either is reported
    (`sufficient_data = false`, with the reason), never silently averaged with the others."""

    min_steps: int = 48 * 7  # a week of 30-minute steps
    min_step_share: float = 0.5

    def as_metadata(self) -> dict[str, float | int]:
        return asdict(self)


UTC_TIME = pl.Datetime("us", "UTC")
PERIOD_SCHEMA = {
    "site_id": pl.String,
    "hor": pl.String,
    "ver": pl.String,
    "depth_cm": pl.Float64,
    "valid_from": UTC_TIME,
    "valid_to": UTC_TIME,
    "depth_source": pl.String,
}
SENSOR_SCHEMA = {
    "site_id": pl.String,
    "hor": pl.String,
    "role": pl.String,
    "ver": pl.String,
    "depth_cm": pl.Float64,
    "target_cm": pl.Float64,
    "distance_cm": pl.Float64,
    "valid_from": UTC_TIME,
    "valid_to": UTC_TIME,
    "depth_source": pl.String,
}


def depth_periods(positions: pl.DataFrame, corrected: pl.DataFrame | None) -> pl.DataFrame:
    """Each sensor's depth periods: NEON's corrected depths for the sites they cover, else `sensor_positions`.

    `positions`: site_id, hor, ver, depth_cm, position_start, position_end (text, as published) and file_name.
    `corrected`: site_id, hor, ver, depth_cm, valid_from, valid_to, depth_source (`read_corrected_depths`).
    Both ends of a period are inclusive (NEON ends a period at 23:59:59); an empty end means still there.
    """
    parse = {"format": "%Y-%m-%dT%H:%M:%SZ", "strict": False, "time_zone": "UTC"}
    from_positions = positions.select(
        "site_id",
        "hor",
        "ver",
        "depth_cm",
        pl.col("position_start").str.to_datetime(**parse).cast(UTC_TIME).alias("valid_from"),
        pl.col("position_end").str.to_datetime(**parse).cast(UTC_TIME).alias("valid_to"),
        pl.concat_str(pl.lit("sensor_positions ("), "file_name", pl.lit(")")).alias("depth_source"),
    )
    if corrected is None or corrected.is_empty():
        return from_positions.select(list(PERIOD_SCHEMA)).cast(PERIOD_SCHEMA)
    covered = corrected["site_id"].unique()
    return (
        pl.concat(
            [
                corrected.select(list(PERIOD_SCHEMA)).cast(PERIOD_SCHEMA),
                from_positions.filter(~pl.col("site_id").is_in(covered.implode())).cast(PERIOD_SCHEMA),
            ]
        )
        .sort("site_id", "hor", "ver", "valid_from", nulls_last=False)
        .select(list(PERIOD_SCHEMA))
    )


def _segments(periods: pl.DataFrame) -> pl.DataFrame:
    """Cut each (site, position)'s time line at every period boundary: site_id, hor, seg_from, seg_to, with the
    sensors (and depths) in place over each segment."""
    bounds = pl.concat(
        [
            periods.select("site_id", "hor", pl.col("valid_from").alias("t")),
            periods.filter(pl.col("valid_to").is_not_null()).select(
                "site_id", "hor", (pl.col("valid_to") + pl.duration(seconds=1)).alias("t")
            ),
        ]
    ).unique()
    cuts = bounds.sort("site_id", "hor", "t", nulls_last=False).with_columns(
        (pl.col("t").shift(-1).over("site_id", "hor") - pl.duration(seconds=1)).alias("seg_to")
    )
    cuts = cuts.rename({"t": "seg_from"})
    # an empty start is the beginning of time, an empty end the end of it
    seg_from, valid_from, valid_to = pl.col("seg_from"), pl.col("valid_from"), pl.col("valid_to")
    started = valid_from.is_null() | (seg_from.is_not_null() & (valid_from <= seg_from))
    not_ended = valid_to.is_null() | seg_from.is_null() | (seg_from <= valid_to)
    return cuts.join(periods, on=["site_id", "hor"], how="inner").filter(
        started & not_ended & pl.col("depth_cm").is_not_null()
    )


def choose_sensors(positions: pl.DataFrame, depths: pl.DataFrame) -> pl.DataFrame:
    """Per site, position, role and period: the chosen sensor.

    `positions`: site_id, hor, ver, depth_cm, and optionally valid_from, valid_to and depth_source (the
    periods of `depth_periods`; without them each depth holds for all time). `depths`: site_id, d1_cm, d2_cm.
    Over each stretch of time in which no sensor of the position moves, roles d1 and d2 take the sensor whose
    depth is nearest that depth (the shallower on a tie) and the surface role the shallowest; a sensor with
    no depth then is not a candidate. Consecutive stretches with the same choice are one row (valid_from,
    valid_to inclusive; empty: open). Sites missing from `depths` get no rows.
    """
    periods = positions
    for column, dtype in (("valid_from", UTC_TIME), ("valid_to", UTC_TIME), ("depth_source", pl.String)):
        if column not in periods.columns:
            periods = periods.with_columns(pl.lit(None, dtype).alias(column))
    periods = periods.select(list(PERIOD_SCHEMA)).cast(PERIOD_SCHEMA).join(depths.select("site_id"), on="site_id")
    if periods.is_empty():
        return pl.DataFrame(schema=SENSOR_SCHEMA)
    located = _segments(periods).join(depths, on="site_id", how="inner")
    chosen = []
    for role, target in (("d1", pl.col("d1_cm")), ("d2", pl.col("d2_cm")), ("surface", pl.lit(0.0))):
        ranked = located.with_columns(
            pl.lit(role).alias("role"),
            target.alias("target_cm"),
            (pl.col("depth_cm") - target).abs().alias("distance_cm"),
        )
        chosen.append(
            ranked.sort("site_id", "hor", "seg_from", "distance_cm", "depth_cm", "ver", nulls_last=False)
            .group_by("site_id", "hor", "seg_from", maintain_order=True)
            .first()
        )
    picked = pl.concat(chosen).sort("site_id", "hor", "role", "seg_from", nulls_last=False)
    same = ["site_id", "hor", "role", "ver", "depth_cm", "depth_source"]
    runs = picked.with_columns(
        pl.any_horizontal([pl.col(c).ne_missing(pl.col(c).shift(1)) for c in same])
        .fill_null(True)
        .cum_sum()
        .alias("run")
    )
    merged = runs.group_by("run", maintain_order=True).agg(
        *[pl.col(c).first() for c in (*same, "target_cm", "distance_cm")],
        pl.col("seg_from").first().alias("valid_from"),
        pl.col("seg_to").last().alias("valid_to"),
    )
    return (
        merged.select(list(SENSOR_SCHEMA))
        .cast(SENSOR_SCHEMA)
        .sort("site_id", "role", "hor", "valid_from", nulls_last=False)
    )


def sensor_choice(positions: pl.DataFrame, corrected: pl.DataFrame | None, depths: pl.DataFrame) -> pl.DataFrame:
    """The sensors of every role and period (`choose_sensors`) on the depth periods of `depth_periods`."""
    return choose_sensors(depth_periods(positions, corrected), depths)


def file_roles(sensors: pl.DataFrame, sensor_files: pl.DataFrame) -> pl.DataFrame:
    """site_id, role, path, valid_from, valid_to: every file of each chosen sensor, with the period in which it
    holds the role (`sensor_files`: site_id, hor, ver, path)."""
    return sensors.join(sensor_files, on=["site_id", "hor", "ver"], how="inner").select(
        "site_id", "role", "path", "valid_from", "valid_to"
    )


def role_observations_sql(observations: str, files_table: str) -> str:
    """Every 30-minute observation of a chosen sensor while it holds its role: site_id, role, start_time,
    VSWCMean, VSWCFinalQF, and `kept` (QF = 0 and a finite value: the only ones METHOD.md's phi uses)."""
    return f"""
        SELECT f.site_id, f.role, o.startDateTime AS start_time, o.VSWCMean, o.VSWCFinalQF,
               coalesce(o.VSWCFinalQF = 0 AND o.VSWCMean IS NOT NULL AND isfinite(o.VSWCMean), false) AS kept
        FROM {observations} AS o JOIN {files_table} AS f ON o.filename = f.path
            AND (f.valid_from IS NULL OR o.startDateTime >= f.valid_from)
            AND (f.valid_to IS NULL OR o.startDateTime <= f.valid_to)
    """


def steps_sql(observations: str, files_table: str) -> str:
    """Per site, role and 30-minute step: the mean of the kept values over positions (`swc`), how many
    positions gave one, and how many observations the quality rules dropped (flagged, missing). One pass over
    the files feeds both the series and the quality accounting."""
    return f"""
        SELECT site_id, role, start_time,
               avg(VSWCMean) FILTER (WHERE kept) AS swc,
               count(*) FILTER (WHERE kept) AS n_positions,
               count(*) AS n_observations,
               count(*) FILTER (WHERE VSWCFinalQF IS DISTINCT FROM 0) AS n_dropped_flagged,
               count(*) FILTER (WHERE VSWCFinalQF = 0 AND NOT kept) AS n_dropped_missing
        FROM ({role_observations_sql(observations, files_table)})
        GROUP BY site_id, role, start_time
    """


def quality_sql(steps: str, series: str) -> str:
    """Per site and role, what the quality rules kept (`steps`: `steps_sql`): observations of the chosen
    sensors, those dropped for a quality flag (`VSWCFinalQF` not 0) and for a missing value, those kept, the
    steps reported and the steps with a value; with, per site, the steps with phi (`series`)."""
    return f"""
        WITH roles AS (
            SELECT site_id, role, sum(n_observations) AS n_observations,
                   sum(n_dropped_flagged) AS n_dropped_flagged, sum(n_dropped_missing) AS n_dropped_missing,
                   sum(n_positions) AS n_kept, count(*) AS n_steps_reported,
                   count(*) FILTER (WHERE n_positions > 0) AS n_steps_with_value
            FROM {steps} GROUP BY site_id, role
        ), phi AS (
            SELECT site_id, count(phi) FILTER (WHERE isfinite(phi)) AS n_steps_with_phi FROM {series} GROUP BY site_id
        )
        SELECT r.*, (r.n_dropped_flagged + r.n_dropped_missing) / nullif(r.n_observations, 0) AS share_dropped,
               coalesce(p.n_steps_with_phi, 0) AS n_steps_with_phi
        FROM roles AS r LEFT JOIN phi AS p USING (site_id)
    """


def sufficiency_sql(quality: str, params: SoilWaterQuality) -> str:
    """Per site: whether its statistics rest on enough data (`SoilWaterQuality`), and why not."""
    least, share = int(params.min_steps), float(params.min_step_share)
    return f"""
        WITH per_site AS (
            SELECT site_id, coalesce(max(n_steps_with_phi), 0) AS n_steps_with_phi,
                   max(n_steps_reported) AS n_steps_reported
            FROM {quality} GROUP BY site_id
        )
        SELECT site_id, n_steps_with_phi, n_steps_reported,
               n_steps_with_phi >= {least} AND n_steps_with_phi >= {share} * n_steps_reported AS sufficient_data,
               CASE
                 WHEN n_steps_with_phi < {least}
                   THEN format('{{}} steps with phi, fewer than {least}', n_steps_with_phi)
                 WHEN n_steps_with_phi < {share} * n_steps_reported
                   THEN format('phi at {{}} of {{}} reported steps, under {share:g}',
                               n_steps_with_phi, n_steps_reported)
                 ELSE ''
               END AS data_note
        FROM per_site
    """


def series_from_steps_sql(steps: str) -> str:
    """SQL of the per-site, per-time-step table from `steps` (`steps_sql`): Y at D1, D2 and the surface (the
    mean over positions of kept values), and phi = Y(D2) / Y(D1)."""
    return f"""
        SELECT site_id, start_time,
               max(swc) FILTER (WHERE role = 'd1') AS swc_d1,
               max(swc) FILTER (WHERE role = 'd2') AS swc_d2,
               max(swc) FILTER (WHERE role = 'surface') AS swc_surface,
               max(n_positions) FILTER (WHERE role = 'd1') AS n_positions_d1,
               max(n_positions) FILTER (WHERE role = 'd2') AS n_positions_d2,
               swc_d2 / nullif(swc_d1, 0) AS phi
        FROM {steps}
        WHERE n_positions > 0
        GROUP BY site_id, start_time
    """


def series_sql(observations: str, files_table: str) -> str:
    """SQL of the per-site, per-time-step table: Y at D1, D2 and the surface, and phi.

    `observations` is a relation with the 30-minute columns and `filename`;
    `files_table` maps each chosen file (`path`) to its site_id and role over the period [valid_from,
    valid_to] (inclusive; NULL: open) in which its sensor holds that role.
    """
    return series_from_steps_sql(f"({steps_sql(observations, files_table)})")


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


def labelled_statistics_sql(series: str, depths: str, sufficiency: str) -> str:
    """`statistics_sql` with each site's modality, d1_cm and d2_cm from the relation `depths`, and whether the
    site has enough data and why not from the relation `sufficiency` (`sufficiency_sql`)."""
    return (
        f"SELECT s.*, d.modality, d.d1_cm, d.d2_cm, coalesce(q.sufficient_data, false) AS sufficient_data, "
        f"coalesce(q.data_note, 'no quality accounting') AS data_note FROM ({statistics_sql(series)}) AS s "
        f"LEFT JOIN {depths} AS d USING (site_id) LEFT JOIN {sufficiency} AS q USING (site_id)"
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
