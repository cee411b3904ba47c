"""Optional asset: each site's modality label with a bootstrap confidence (beyond the paper, labelled so)."""

import numpy as np
import polars as pl
from dagster import AssetExecutionContext, AssetKey, Config, MaterializeResult, asset

from rootassets.defs.metadata import table_metadata
from rootassets.defs.partitions import neon_release
from rootassets.defs.resources import WarehouseResource
from rootassets.neon.identifiers import validate_release
from rootassets.science.bootstrap import bootstrap_site
from rootassets.science.modality import ModalityParameters

BOOTSTRAP = AssetKey(["analysis", "site_modality_bootstrap"])


class BootstrapConfig(Config):
    resamples: int = 1000
    seed: int = 123


@asset(
    key=BOOTSTRAP,
    deps=[AssetKey(["harmonized", "root_increments"]), AssetKey(["analysis", "site_modality"])],
    partitions_def=neon_release,
    group_name="analysis_optional",
    pool="duckdb",
    kinds={"duckdb", "numpy"},
    code_version="bootstrap-1",
    tags={"rootassets/optional": "true"},
)
def site_modality_bootstrap(
    context: AssetExecutionContext, config: BootstrapConfig, warehouse: WarehouseResource
) -> MaterializeResult:
    """`analysis.site_modality_bootstrap` (optional, beyond the paper: METHOD.md 2.5): per site, the
    profiles resampled with replacement `resamples` times, each resample's site profile labelled as in
    section 2 (KDE by R's binned FFT), and the share of resamples agreeing with the site's label.
    Not part of main_job: materialize it on its own (`rootassets materialize --select
    key:analysis/site_modality_bootstrap`)."""
    release = validate_release(context.partition_key)
    params = ModalityParameters()
    increments = warehouse.read("harmonized", "root_increments", release)
    observed = dict(warehouse.read("analysis", "site_modality", release).select("site_id", "modality").iter_rows())
    rng = np.random.default_rng(config.seed)
    rows = []
    for (site,), g in increments.sort("site_id").group_by("site_id", maintain_order=True):
        result = bootstrap_site(
            g.select("profile", "top_cm", "bottom_cm", "root_density_g_m3"), params, config.resamples, rng
        )
        label = observed.get(site)
        agreeing = result.bimodal_share if label == "bimodal" else 1 - result.bimodal_share
        rows.append(
            {
                "site_id": site,
                "modality": label,
                "n_profiles": g["profile"].n_unique(),
                "resamples": result.resamples,
                "bimodal_share": result.bimodal_share,
                "label_confidence": agreeing,
                "d2_median_cm": result.d2_median_cm,
                "d2_iqr_cm": result.d2_iqr_cm,
                "release": release,
            }
        )
    table = pl.DataFrame(rows, schema_overrides={"d2_median_cm": pl.Float64, "d2_iqr_cm": pl.Float64})
    warehouse.write({("analysis", "site_modality_bootstrap"): table}, release)
    return MaterializeResult(
        metadata={
            **table_metadata(table, release),
            "resamples": config.resamples,
            "seed": config.seed,
            "kde": "binned FFT (R density.default)",
            "parameters": params.as_metadata(),
        }
    )


bootstrap_assets = [site_modality_bootstrap]
