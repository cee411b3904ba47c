"""Root depth profiles (METHOD.md section 1) on small, hand-made samples."""

from __future__ import annotations

import polars as pl
import pytest

from rootassets.science.root_profiles import (
    RootProfileParameters,
    depth_comparison,
    derivation_report,
    increment_depths,
    profile_overlaps,
    root_increments,
    site_root_profiles,
    total_fine_root_biomass,
)

P = RootProfileParameters()


def samples(rows: list[tuple[str, str, str, float, float]]) -> pl.DataFrame:
    """rows: (depthIncrementID, rootStatus, sizeCategory, biomass g/m2, density g/m3)."""
    return pl.DataFrame(
        [
            {
                "depthIncrementID": i,
                "site_id": i.split(".")[0],
                "rootStatus": s,
                "sizeCategory": c,
                "incrementRootBiomass": b,
                "incrementRootDensity": d,
            }
            for i, s, c, b, d in rows
        ]
    )


def test_only_live_fine_roots_count() -> None:
    frame = samples(
        [
            ("AAAA.1.0", "live", "<=2mm", 10.0, 100.0),
            ("AAAA.1.0", "dead", "<=2mm", 50.0, 500.0),
            ("AAAA.1.0", "live", ">2mm", 70.0, 700.0),
        ]
    )
    inc = root_increments(frame, None, P)
    assert inc.select("root_density_g_m3", "root_biomass_g_m2", "fine_root_cutoff_mm").row(0) == (100.0, 10.0, 2)


def test_depths_from_the_recorded_thickness_protocol_and_capping() -> None:
    frame = samples(
        [
            ("AAAA.1.0", "live", "<=4mm", 10.0, 100.0),  # 10 cm
            ("AAAA.1.100", "live", "<=4mm", 1.0, 10.0),  # 10 cm below 100 (protocol says 20)
            ("AAAA.1.110", "live", "<=4mm", 3.0, 10.0),  # 30 cm, runs into 120: capped
            ("AAAA.1.120", "live", "<=4mm", 0.0, 0.0),  # no usable ratio: protocol 20 cm
            ("AAAA.2.120", "live", "<=4mm", 1.94, 10.0),  # 19.4 cm: rounded biomass, not a thickness
            ("AAAA.2.180", "live", "<=4mm", 2.5, 10.0),  # 25 cm: the protocol stops at 200
            ("AAAA.3.160", "live", "<=4mm", 1.0, 7.0),  # 14.29 cm: not a whole number of cm
        ]
    )
    depths = increment_depths(frame, P).sort("profile", "top_cm")
    assert depths.select("profile", "top_cm", "bottom_cm", "depth_rule").rows() == [
        ("1", 0.0, 10.0, "protocol"),
        ("1", 100.0, 110.0, "measured_thickness"),
        ("1", 110.0, 120.0, "capped_at_next_increment"),
        ("1", 120.0, 140.0, "protocol"),
        ("2", 120.0, 140.0, "protocol"),
        ("2", 180.0, 200.0, "protocol"),
        ("3", 160.0, 180.0, "protocol"),
    ]
    ratio = increment_depths(frame, RootProfileParameters(depth_rule="biomass_density_ratio"))
    assert ratio.sort("profile", "top_cm")["bottom_cm"].to_list() == [10.0, 110.0, 120.0, 140.0, 139.0, 205.0, 174.0]
    protocol = increment_depths(frame, RootProfileParameters(depth_rule="protocol")).sort("profile", "top_cm")
    assert protocol["bottom_cm"].to_list() == [10.0, 110.0, 120.0, 140.0, 140.0, 200.0, 180.0]
    assert profile_overlaps(root_increments(frame, None, P)).is_empty()


def test_published_depth_increments_are_used_when_present() -> None:
    frame = samples([("AAAA.1.0", "live", "<=2mm", 5.0, 100.0), ("AAAA.1.5", "live", "<=2mm", 5.0, 100.0)])
    published = pl.DataFrame(
        {"depthIncrementID": ["AAAA.1.0"], "site_id": ["AAAA"], "topDepth": [0.0], "bottomDepth": [5.0]}
    )
    inc = root_increments(frame, published, P).sort("top_cm")
    assert inc.select("top_cm", "bottom_cm", "depth_derived", "depth_rule").rows() == [
        (0.0, 5.0, False, "mpr_perdepthincrement"),
        (5.0, 10.0, True, "measured_thickness"),
    ]
    compared = depth_comparison(frame, published, P)
    assert compared.select("top_cm", "derived_bottom_cm", "derived_rule", "published_bottom_cm").rows() == [
        (0.0, 5.0, "measured_thickness", 5.0)
    ]
    assert compared["bottom_difference_cm"].to_list() == [0.0]
    assert depth_comparison(frame, None, P).is_empty()


def test_one_site_row_per_increment_top_with_the_bottom_most_profiles_share() -> None:
    frame = samples(
        [
            ("AAAA.1.120", "live", "<=2mm", 19.4, 100.0),  # 19.4 cm
            ("AAAA.2.120", "live", "<=2mm", 20.0, 100.0),
            ("AAAA.3.120", "live", "<=2mm", 10.0, 100.0),  # a whole 10 cm: this profile's own
        ]
    )
    profile = site_root_profiles(root_increments(frame, None, P))
    assert profile.select("top_cm", "bottom_cm", "n_profiles", "root_density_g_m3").rows() == [(120.0, 140.0, 3, 100.0)]


def test_sampled_increment_without_live_fine_roots_is_zero_filled() -> None:
    frame = samples(
        [
            ("AAAA.1.0", "live", "<=2mm", 10.0, 100.0),
            ("AAAA.1.10", "dead", "<=2mm", 1.0, 10.0),
        ]
    )
    inc = root_increments(frame, None, P).sort("top_cm")
    assert inc.select("top_cm", "root_density_g_m3", "zero_filled").rows() == [(0.0, 100.0, False), (10.0, 0.0, True)]
    assert derivation_report(inc)["zero_filled_increments"] == 1
    off = root_increments(frame, None, RootProfileParameters(zero_fill_sampled_increments=False))
    assert off.height == 1


def test_site_profile_is_the_mean_over_profiles_that_sampled_each_increment() -> None:
    frame = samples(
        [
            ("AAAA.1.0", "live", "<=2mm", 10.0, 100.0),
            ("AAAA.2.0", "live", "<=2mm", 30.0, 300.0),
            ("AAAA.1.10", "live", "<=2mm", 5.0, 50.0),  # only profile 1 reached 10 cm
        ]
    )
    profile = site_root_profiles(root_increments(frame, None, P)).sort("top_cm")
    assert profile.select("top_cm", "mid_cm", "root_density_g_m3", "n_profiles", "standardized").rows() == [
        (0.0, 5.0, 200.0, 2, 1.0),
        (10.0, 15.0, 50.0, 1, 0.25),
    ]


def test_total_biomass_sums_each_profile_then_averages() -> None:
    frame = samples(
        [
            ("AAAA.1.0", "live", "<=2mm", 10.0, 100.0),
            ("AAAA.1.10", "live", "<=2mm", 20.0, 200.0),
            ("AAAA.2.0", "live", "<=2mm", 60.0, 600.0),
            ("BBBB.7.0", "live", "<=4mm", 8.0, 80.0),
        ]
    )
    total = total_fine_root_biomass(root_increments(frame, None, P), P).sort("site_id")
    assert total.select("site_id", "total_fine_root_biomass_g_m2", "n_profiles").rows() == [
        ("AAAA", 45.0, 2),
        ("BBBB", 8.0, 1),
    ]
    assert total["total_fine_root_biomass_4mm_equiv_g_m2"].to_list() == pytest.approx([45.0 * 1.3, 8.0])


def test_real_snapshot_irregular_profiles(snapshot) -> None:
    from rootassets.neon.products import ROOT_MEGAPIT
    from rootassets.neon.snapshot import SnapshotSource

    frame = SnapshotSource(snapshot).load_product(ROOT_MEGAPIT, "RELEASE-2021").tables["mpr_perrootsample"].frame
    inc = root_increments(frame, None, P)
    report = derivation_report(inc)
    assert inc["site_id"].n_unique() == 44
    assert profile_overlaps(inc).is_empty()
    assert report["sites_shallower_than_100cm"]["OAES"] == 40.0
    assert set(report["sites_with_profile_numbers_other_than_1_3"]) == {"BARR", "BONA", "HEAL"}
    osbs = inc.filter((pl.col("site_id") == "OSBS") & (pl.col("profile") == "1") & (pl.col("top_cm") >= 100))
    assert (osbs["bottom_cm"] - osbs["top_cm"]).to_list() == [10.0] * osbs.height  # OSBS keeps 10 cm below 1 m
    assert "OSBS.1" in report["profiles_with_skipped_increments"]  # 60-70 cm was not sampled
    for site in ("BART", "STER", "KONZ", "UNDE"):  # bottoms as the protocol's, not 139, 159, 174 or 205
        rows = inc.filter(pl.col("site_id") == site)
        protocol = rows["top_cm"].map_elements(lambda top: min(top + (10 if top < 100 else 20), 200.0), pl.Float64)
        assert (rows["bottom_cm"] <= protocol).all(), site
        assert set(rows["bottom_cm"].to_list()) <= set(range(0, 201, 10)), site
    profiles = site_root_profiles(inc)
    assert profiles.group_by("site_id", "top_cm").len().filter(pl.col("len") > 1).is_empty()


def test_step_results_do_not_depend_on_the_order_rows_arrive_in(snapshot) -> None:
    """DuckDB returns a table's rows in any order; a float sum in another order differs in its last bits,
    so a concurrent run once ended with a site_root_biomass a few ulps off a quiet run's."""
    from rootassets.neon.products import ROOT_MEGAPIT
    from rootassets.neon.snapshot import SnapshotSource
    from rootassets.science.steps import STEPS

    frame = SnapshotSource(snapshot).load_product(ROOT_MEGAPIT, "RELEASE-2021").tables["mpr_perrootsample"].frame
    increments = root_increments(frame, None, P)
    steps = {s.name: s for s in STEPS}
    for name in ("root_profiles", "site_root_biomass"):
        reference = steps[name].run({"root_increments": increments}).tables[name]
        for seed in range(5):
            shuffled = increments.sample(fraction=1.0, shuffle=True, seed=seed)
            assert steps[name].run({"root_increments": shuffled}).tables[name].equals(reference), (name, seed)
