"""METHOD.md section 4, phi = Y(D2) / Y(D1), the depth-level signature."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class PhiParameters:
    """Section 4 constants: the depths used for unimodal sites."""

    unimodal_d1_cm: float = 70.0
    unimodal_d2_cm: float = 100.0

    def as_metadata(self) -> dict[str, float]:
        return asdict(self)


def phi_depths(modality: str, d1_cm: float | None, d2_cm: float | None, params: PhiParameters) -> tuple[float, float]:
    """A bimodal site's own D1 and D2; the defaults for a unimodal site."""
    if modality == "bimodal" and d1_cm is not None and d2_cm is not None:
        return d1_cm, d2_cm
    return params.unimodal_d1_cm, params.unimodal_d2_cm


def value_in_increment(tops: np.ndarray, bottoms: np.ndarray, values: np.ndarray, depth: float) -> float | None:
    """Y(D) as the value of the increment containing D (top <= D < bottom); the mean
    where site-level increments of different profiles both contain it; None if none does."""
    inside = (tops <= depth) & (depth < bottoms) & np.isfinite(values)
    return float(np.mean(values[inside])) if inside.any() else None


def phi(y_d2: float | None, y_d1: float | None) -> float | None:
    """Y(D2) / Y(D1); None when either is missing or Y(D1) is zero."""
    if y_d1 is None or y_d2 is None or y_d1 == 0 or not np.isfinite(y_d1) or not np.isfinite(y_d2):
        return None
    return y_d2 / y_d1
