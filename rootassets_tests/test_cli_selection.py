"""How `rootassets materialize` chooses what to run after re-reading the raw tables."""

from __future__ import annotations

from dagster import AssetKey

from rootassets.cli import with_unsplittable_siblings
from rootassets.definitions import defs


def test_a_stale_half_of_a_multi_asset_brings_its_sibling() -> None:
    # A run killed after analysis/site_modality was written but before analysis/site_kde leaves only
    # site_kde stale; the multi-asset that makes both cannot run one alone.
    keys = with_unsplittable_siblings(defs, [AssetKey(["analysis", "site_kde"])])
    assert keys == [AssetKey(["analysis", "site_kde"]), AssetKey(["analysis", "site_modality"])]


def test_subsettable_assets_are_left_alone() -> None:
    raw = [AssetKey(["raw", "mpr_perrootsample"])]
    assert with_unsplittable_siblings(defs, raw) == raw
    single = [AssetKey(["analysis", "phi"])]
    assert with_unsplittable_siblings(defs, single) == single
