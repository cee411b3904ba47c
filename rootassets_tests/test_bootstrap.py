"""The binned-FFT KDE against the direct sum, and the optional bootstrap asset."""

from __future__ import annotations

import dataclasses

import duckdb
import numpy as np
from dagster import RunConfig
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from rootassets.defs.analysis import analysis_assets
from rootassets.defs.harmonized import harmonized_assets
from rootassets.defs.raw import raw_assets
from rootassets.defs.steps import config_class
from rootassets.science.bootstrap import binned_fft_kde
from rootassets.science.modality import ModalityParameters, classify_modality, gaussian_kde
from rootassets.science.steps import STEPS
from rootassets.settings import Settings
from rootassets_tests.conftest import RELEASE, asset_resources

MODALITY = [a for a in analysis_assets if any(k.path[-1] == "site_modality" for k in a.keys)]
BOOTSTRAP = [a for a in analysis_assets if any(k.path[-1] == "site_modality_bootstrap" for k in a.keys)]
BOOTSTRAP_CONFIG = config_class(next(s for s in STEPS if s.name == "site_modality_bootstrap"))


@hsettings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 200), st.integers(1, 400)), min_size=1, max_size=20))
def test_binned_fft_kde_matches_the_direct_sum(points: list[tuple[float, int]]) -> None:
    depths = np.array([d for d, _ in points])
    counts = np.array([c for _, c in points], dtype=float)
    params = ModalityParameters(grid_points=2**13)
    direct, fft = gaussian_kde(depths, counts, params), binned_fft_kde(depths, counts, params)
    assert np.allclose(direct.grid, fft.grid)
    # Linear binning moves mass by under one bin (about 0.03 cm here): a small error relative to the peak.
    assert np.abs(direct.density - fft.density).max() <= 2e-3 * direct.density.max()


def test_bootstrap_asset_gives_each_site_a_reproducible_label_confidence(snapshot_settings: Settings) -> None:
    from dagster import DagsterInstance, materialize

    from rootassets.defs.partitions import NEON_RELEASE_PARTITIONS

    def run(home_settings: Settings) -> list[tuple]:
        instance = DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(NEON_RELEASE_PARTITIONS, [RELEASE])
        config = RunConfig({BOOTSTRAP[0].op.name: BOOTSTRAP_CONFIG(resamples=40, seed=5)})
        result = materialize(
            [*raw_assets, *harmonized_assets, *MODALITY, *BOOTSTRAP],
            resources=asset_resources(home_settings),
            partition_key=RELEASE,
            instance=instance,
            run_config=config,
        )
        assert result.success
        with duckdb.connect(str(home_settings.database), read_only=True) as con:
            return con.execute(
                "select site_id, modality, resamples, bimodal_share, label_confidence "
                "from analysis.site_modality_bootstrap order by site_id"
            ).fetchall()

    first = run(snapshot_settings)
    again = run(dataclasses.replace(snapshot_settings, home=snapshot_settings.home.parent / "again"))
    assert first == again and len(first) == 44
    assert all(r[2] == 40 and 0 <= r[4] <= 1 for r in first)
    unimodal_shares = [r[3] for r in first if r[1] == "unimodal"]
    assert np.median(unimodal_shares) < 0.2  # most unimodal labels are stable under resampling


def test_the_direct_and_fft_labels_agree_on_a_planted_bimodal_profile() -> None:
    mids = np.arange(5, 200, 10.0)
    density = 1000 * np.exp(-mids / 20) + 250 * np.exp(-0.5 * ((mids - 130) / 12) ** 2)
    params = ModalityParameters()
    counts = np.rint(density)
    a = classify_modality(gaussian_kde(mids, counts, params), params)
    b = classify_modality(binned_fft_kde(mids, counts, params), params)
    assert a.modality == b.modality == "bimodal" and abs(a.d2_cm - b.d2_cm) < 0.5
