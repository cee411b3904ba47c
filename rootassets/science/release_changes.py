"""What changed between two NEON releases, per site: the release diff behind analysis.release_changes."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import polars as pl

CHANGE_SCHEMA = {
    "site_id": pl.String,
    "change": pl.String,
    "quantity": pl.String,
    "old_value": pl.String,
    "new_value": pl.String,
    "difference": pl.Float64,
}


@dataclass(frozen=True)
class ChangeTolerances:
    """Differences at or below these are not reported."""

    depth_cm: float = 1.0
    relative: float = 0.01
    exponent: float = 1e-4

    def as_metadata(self) -> dict[str, float]:
        return asdict(self)


def _row(site: str, change: str, quantity: str, old: object, new: object, diff: float | None) -> dict[str, object]:
    text = lambda v: None if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)  # noqa: E731
    return {
        "site_id": site,
        "change": change,
        "quantity": quantity,
        "old_value": text(old),
        "new_value": text(new),
        "difference": diff,
    }


def _relative_change(old: float | None, new: float | None, tolerance: float) -> bool:
    if old is None or new is None:
        return (old is None) != (new is None)
    scale = max(abs(old), abs(new), 1e-12)
    return abs(new - old) / scale > tolerance


def compare_releases(
    old_modality: pl.DataFrame,
    new_modality: pl.DataFrame,
    old_phi: pl.DataFrame,
    new_phi: pl.DataFrame,
    old_exponents: pl.DataFrame,
    new_exponents: pl.DataFrame,
    tolerances: ChangeTolerances,
) -> pl.DataFrame:
    """Per site: added or removed, label changes, D0/D1/D2 shifts, biomass change, changed phi and exponents."""
    rows: list[dict[str, object]] = []
    old_sites, new_sites = set(old_modality["site_id"]), set(new_modality["site_id"])
    rows += [_row(s, "site_added", "site", None, s, None) for s in sorted(new_sites - old_sites)]
    rows += [_row(s, "site_removed", "site", s, None, None) for s in sorted(old_sites - new_sites)]
    both = old_modality.join(new_modality, on="site_id", suffix="_new").sort("site_id")
    for r in both.iter_rows(named=True):
        site = r["site_id"]
        if r["modality"] != r["modality_new"]:
            rows.append(_row(site, "modality_changed", "modality", r["modality"], r["modality_new"], None))
        for depth in ("d0_cm", "d1_cm", "d2_cm"):
            old, new = r[depth], r[f"{depth}_new"]
            moved = (old is None) != (new is None) or (old is not None and abs(new - old) > tolerances.depth_cm)
            if moved:
                rows.append(
                    _row(site, "depth_shift", depth, old, new, None if old is None or new is None else new - old)
                )
        old_b, new_b = r["total_fine_root_biomass_g_m2"], r["total_fine_root_biomass_g_m2_new"]
        if _relative_change(old_b, new_b, tolerances.relative):
            rows.append(
                _row(
                    site,
                    "biomass_change",
                    "total_fine_root_biomass_g_m2",
                    old_b,
                    new_b,
                    None if old_b is None or new_b is None else new_b - old_b,
                )
            )
    keys = ["site_id", "property", "method"]
    phis = old_phi.select(*keys, "phi").join(new_phi.select(*keys, "phi"), on=keys, suffix="_new")
    for r in phis.filter(pl.col("site_id").is_in(list(old_sites & new_sites))).sort(keys).iter_rows(named=True):
        if _relative_change(r["phi"], r["phi_new"], tolerances.relative):
            rows.append(
                _row(
                    r["site_id"],
                    "phi_change",
                    f"phi_{r['property']}_{r['method']}",
                    r["phi"],
                    r["phi_new"],
                    None if r["phi"] is None or r["phi_new"] is None else r["phi_new"] - r["phi"],
                )
            )
    keys = ["site_id", "nutrient"]
    exps = old_exponents.select(*keys, "exponent").join(
        new_exponents.select(*keys, "exponent"), on=keys, how="full", coalesce=True, suffix="_new"
    )
    for r in exps.filter(pl.col("site_id").is_in(list(old_sites & new_sites))).sort(keys).iter_rows(named=True):
        old, new = r["exponent"], r["exponent_new"]
        if (old is None) != (new is None) or (old is not None and abs(new - old) > tolerances.exponent):
            rows.append(
                _row(
                    r["site_id"],
                    "exponent_change",
                    f"exponent_{r['nutrient']}",
                    old,
                    new,
                    None if old is None or new is None else new - old,
                )
            )
    return pl.DataFrame(rows, schema=CHANGE_SCHEMA)


def previous_release(present: list[str], release: str) -> str | None:
    """The newest release before `release` among those present (PROVISIONAL follows every numbered one)."""
    from rootassets.neon.identifiers import release_sort_key

    earlier = [r for r in present if release_sort_key(r) < release_sort_key(release)]
    return max(earlier, key=release_sort_key) if earlier else None
