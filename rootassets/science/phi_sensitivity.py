"""Beyond the paper: how much the phi comparison depends on the depths assumed for unimodal sites.

A unimodal site has no D1 or D2 of its own; section 4 reads it at 70 and 100 cm. This module redoes the
phi group test (section 6) over a grid of those two depths, so a reader sees whether a difference between
bimodal and unimodal sites survives other reasonable choices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from rootassets.science.group_tests import GroupTestParameters, two_group_test
from rootassets.science.phi import PhiParameters, phi_inputs, phi_table_of


@dataclass(frozen=True)
class PhiSensitivityParameters:
    """The unimodal D1 and D2 grids (pairs with D1 < D2 only) and the group test's settings."""

    unimodal_d1_grid_cm: tuple[float, ...] = (50.0, 60.0, 70.0, 80.0, 90.0)
    unimodal_d2_grid_cm: tuple[float, ...] = (80.0, 100.0, 120.0, 140.0)
    alpha: float = 0.05


SCHEMA = {
    "unimodal_d1_cm": pl.Float64,
    "unimodal_d2_cm": pl.Float64,
    "property": pl.String,
    "method": pl.String,
    "test": pl.String,
    "statistic": pl.Float64,
    "p_value": pl.Float64,
    "n_bimodal": pl.Int64,
    "n_unimodal": pl.Int64,
    "n_excluded": pl.Int64,
    "is_default": pl.Boolean,
}


def phi_sensitivity_table(
    modality: pl.DataFrame,
    profiles: pl.DataFrame,
    soil: pl.DataFrame,
    kde: pl.DataFrame,
    params: PhiSensitivityParameters,
) -> pl.DataFrame:
    """The phi group test of every property and method at each (unimodal D1, unimodal D2) of the grid."""
    default = PhiParameters()
    tests = GroupTestParameters(alpha=params.alpha)
    rows = []
    by_site = phi_inputs(profiles, soil, kde)  # split by site once for the whole grid
    for d1 in params.unimodal_d1_grid_cm:
        for d2 in params.unimodal_d2_grid_cm:
            if d1 >= d2:
                continue
            table = phi_table_of(modality, by_site, PhiParameters(d1, d2))
            for (prop, method), g in table.group_by("property", "method", maintain_order=True):
                split = [
                    g.filter((pl.col("modality") == m) & pl.col("phi").is_not_null()) for m in ("bimodal", "unimodal")
                ]
                result = two_group_test(
                    split[0]["phi"].to_numpy().astype(float),
                    split[1]["phi"].to_numpy().astype(float),
                    tests,
                    split[0]["site_id"].to_list(),
                    split[1]["site_id"].to_list(),
                )
                rows.append(
                    {
                        "unimodal_d1_cm": d1,
                        "unimodal_d2_cm": d2,
                        "property": prop,
                        "method": method,
                        "test": result.test,
                        "statistic": result.statistic,
                        "p_value": result.p_value,
                        "n_bimodal": result.n_bimodal,
                        "n_unimodal": result.n_unimodal,
                        "n_excluded": result.n_excluded,
                        "is_default": bool(
                            np.isclose(d1, default.unimodal_d1_cm) and np.isclose(d2, default.unimodal_d2_cm)
                        ),
                    }
                )
    return pl.DataFrame(rows, schema=SCHEMA).sort("property", "method", "unimodal_d1_cm", "unimodal_d2_cm")
