"""Analysis assets: METHOD.md sections 2 and 4-7. The registry's steps (`rootassets.science.steps`) and, by hand
for now, site factors (a user CSV), the classifier (a model file) and release changes (two releases)."""

import hashlib
from collections.abc import Iterator

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from rootassets.defs.metadata import table_metadata
from rootassets.defs.partitions import neon_release
from rootassets.defs.publish import publish
from rootassets.defs.resources import ArtifactStore, WarehouseResource
from rootassets.defs.steps import assets_of_group
from rootassets.neon.identifiers import validate_release
from rootassets.schemas import ANALYSIS_CONTRACTS
from rootassets.science.classifier import BIMODAL, ForestParameters, TooFewSitesError, classifier_tables
from rootassets.science.site_factors import NEON_FACTORS, read_user_factors, site_factor_table

ANALYSIS_CODE_VERSION = "analysis-1"
COMMON = dict(partitions_def=neon_release, group_name="analysis", pool="duckdb", code_version=ANALYSIS_CODE_VERSION)


def _key(name: str) -> AssetKey:
    return AssetKey(["analysis", name])


def _h(name: str) -> AssetKey:
    return AssetKey(["harmonized", name])


class SiteFactorConfig(Config):
    """Optional user CSV of extra site factors (site_id + numeric columns)."""

    extra_factors_csv: str | None = None


@asset(
    key=_key("site_factors"),
    deps=[
        AssetKey(["raw", "field_site_metadata"]),
        AssetKey(["raw", "site_land_cover"]),
        _h("site_root_biomass"),
        _h("soil_profiles"),
        _key("site_modality"),
    ],
    kinds={"duckdb", "polars"},
    **COMMON,
)
def analysis_site_factors(
    context: AssetExecutionContext, config: SiteFactorConfig, warehouse: WarehouseResource
) -> Iterator:
    """`analysis.site_factors`: one row per site with the factors of METHOD.md section 5 (total fine-root
    biomass as 4 mm-equivalent g/m2, elevation, MAT, MAP, canopy height, green days, land cover, and soil
    pH, sand, clay, organic C and CEC over 0-30 cm), units in the column names, plus optional user factors."""
    release = validate_release(context.partition_key)
    modality = warehouse.read("analysis", "site_modality", release).select("site_id", "modality")
    extra, extra_factors = None, []
    if config.extra_factors_csv:
        try:
            extra, extra_factors = read_user_factors(pl.read_csv(config.extra_factors_csv), config.extra_factors_csv)
        except (OSError, pl.exceptions.PolarsError, ValueError) as exc:
            raise Failure(description=f"extra factors: {exc}") from exc
    table = site_factor_table(
        modality["site_id"].to_list(),
        warehouse.read("harmonized", "site_root_biomass", release),
        warehouse.read("raw", "field_site_metadata", release, "NOT quarantined"),
        warehouse.read("raw", "site_land_cover", release, "NOT quarantined"),
        warehouse.read("harmonized", "soil_profiles", release),
        extra,
    ).join(modality, on="site_id", how="left")
    factors = [*NEON_FACTORS, *extra_factors]
    incomplete = table.filter(pl.any_horizontal([pl.col(f.column).is_null() for f in factors]))["site_id"].to_list()
    yield from publish(
        warehouse,
        _key("site_factors"),
        table,
        release,
        ANALYSIS_CONTRACTS["site_factors"],
        {},
        {
            "factors": {f.column: f.unit for f in factors},
            "sites_with_missing_factors": incomplete,
            "extra_factors_csv": config.extra_factors_csv or "none",
        },
    )


class ClassifierConfig(Config):
    """Section 5 settings, as R ranger: 500 trees, mtry 6, min node size 3, 30% samples, seed 123."""

    n_trees: int = 500
    mtry: int = 6
    min_node_size: int = 3
    sample_fraction: float = 0.3
    seed: int = 123
    n_seeds: int = 50

    def parameters(self) -> ForestParameters:
        return ForestParameters(
            self.n_trees, self.mtry, self.min_node_size, self.sample_fraction, True, self.seed, self.n_seeds
        )


@multi_asset(
    name="analysis_classifier",
    can_subset=True,
    specs=[
        AssetSpec(
            _key("classifier_model"),
            deps=[_key("site_factors")],
            kinds={"sklearn"},
            description="The fitted random forest of site factors predicting modality (METHOD.md section 5), "
            "saved with its parameters, feature list and training-data version.",
        ),
        AssetSpec(
            _key("classifier_performance"),
            deps=[_key("site_factors")],
            kinds={"duckdb"},
            description="`analysis.classifier_performance`: out-of-bag hard-vote confusion matrix, overall and "
            "per-class accuracy with the minority re-weighted vote, for all factors, the kept set, "
            "the run without total root biomass, and the spread over many seeds.",
        ),
        AssetSpec(
            _key("classifier_importance"),
            deps=[_key("site_factors")],
            kinds={"duckdb"},
            description="`analysis.classifier_importance`: ranked Gini importance, the set kept by backward "
            "elimination, and the ranking without total root biomass.",
        ),
    ],
    **COMMON,
)
def analysis_classifier(
    context: AssetExecutionContext, config: ClassifierConfig, warehouse: WarehouseResource, artifacts: ArtifactStore
) -> Iterator[MaterializeResult]:
    release = validate_release(context.partition_key)
    params = config.parameters()
    try:
        out = classifier_tables(warehouse.read("analysis", "site_factors", release), params)
    except TooFewSitesError as exc:
        yield from _classifier_not_fitted(context, warehouse, artifacts, release, params, str(exc))
        return
    frame, names, categorical, dropped, full, kept, steps = (
        out.frame,
        out.names,
        out.categorical,
        out.dropped,
        out.full,
        out.kept,
        out.steps,
    )
    performance = out.performance.with_columns(pl.lit(release).alias("release"))
    importance = out.importance.with_columns(pl.lit(release).alias("release"))

    training_version = hashlib.sha256(frame.sort("site_id").write_csv().encode()).hexdigest()[:16]
    model_path = artifacts.folder("models", release) / "modality_forest.joblib"
    import joblib  # imported where used

    selected = context.selected_asset_keys
    if _key("classifier_model") in selected:
        joblib.dump(
            {
                "forest": full.forest,
                "factors": names,
                "categorical": sorted(categorical),
                "parameters": params.as_metadata(),
                "training_data_version": training_version,
                "release": release,
            },
            model_path,
        )
    tables = {("analysis", "classifier_performance"): performance, ("analysis", "classifier_importance"): importance}
    warehouse.write({k: v for k, v in tables.items() if _key(k[1]) in selected}, release)
    common = {"parameters": params.as_metadata(), "sites_used": frame.height, "sites_dropped_incomplete": dropped}
    results = [
        MaterializeResult(
            asset_key=_key("classifier_model"),
            metadata={
                **common,
                "path": MetadataValue.path(str(model_path)),
                "features": names,
                "training_data_version": training_version,
                "release": release,
            },
        ),
        MaterializeResult(
            asset_key=_key("classifier_performance"),
            metadata={
                **common,
                **table_metadata(performance, release),
                "confusion_all_factors": MetadataValue.json(full.performance.confusion),
                "overall_accuracy": full.performance.overall_accuracy,
                "bimodal_accuracy": full.performance.class_accuracy[BIMODAL],
            },
        ),
        MaterializeResult(
            asset_key=_key("classifier_importance"),
            metadata={
                **common,
                **table_metadata(importance, release),
                "kept_factors": kept,
                "elimination_steps": MetadataValue.json(steps),
            },
        ),
    ]
    yield from (r for r in results if r.asset_key in selected)


def _classifier_not_fitted(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    artifacts: ArtifactStore,
    release: str,
    params: object,
    reason: str,
) -> Iterator[MaterializeResult]:
    """Too few complete sites: empty performance and importance tables, no model file, and the reason."""
    context.log.warning(f"classifier not fitted for {release}: {reason}")
    selected = context.selected_asset_keys
    model_path = artifacts.folder("models", release) / "modality_forest.joblib"
    if _key("classifier_model") in selected:
        model_path.unlink(missing_ok=True)  # a model of other data must not pass for this release's
    performance = pl.DataFrame(
        schema={"run": pl.String, "metric": pl.String, "value": pl.Float64, "release": pl.String}
    )
    importance = pl.DataFrame(
        schema={
            "run": pl.String,
            "factor": pl.String,
            "importance": pl.Float64,
            "rank": pl.Int64,
            "kept": pl.Boolean,
            "release": pl.String,
        }
    )
    tables = {("analysis", "classifier_performance"): performance, ("analysis", "classifier_importance"): importance}
    warehouse.write({k: v for k, v in tables.items() if _key(k[1]) in selected}, release)
    common = {"parameters": params.as_metadata(), "fitted": False, "not_fitted_because": reason, "release": release}
    results = [
        MaterializeResult(asset_key=_key("classifier_model"), metadata=common),
        MaterializeResult(
            asset_key=_key("classifier_performance"), metadata={**common, **table_metadata(performance, release)}
        ),
        MaterializeResult(
            asset_key=_key("classifier_importance"), metadata={**common, **table_metadata(importance, release)}
        ),
    ]
    yield from (r for r in results if r.asset_key in selected)


analysis_assets = [*assets_of_group("analysis"), analysis_site_factors, analysis_classifier]


class ReleaseChangeConfig(Config):
    """Differences at or below these are not listed."""

    depth_cm: float = 1.0
    relative: float = 0.01
    exponent: float = 1e-4


@asset(
    key=_key("release_changes"),
    deps=[_key("site_modality"), _key("phi"), _key("nutrient_exponents")],
    kinds={"duckdb"},
    **COMMON,
)
def analysis_release_changes(
    context: AssetExecutionContext, config: ReleaseChangeConfig, warehouse: WarehouseResource
) -> MaterializeResult:
    """`analysis.release_changes`: what changed per site since the previous release present: sites added or
    removed, modality label changes, D0/D1/D2 shifts, total biomass change, and phi/exponent values that moved
    beyond a tolerance. Empty for the first release."""
    from rootassets.science.release_changes import (
        CHANGE_SCHEMA,
        ChangeTolerances,
        compare_releases,
        previous_release,
    )

    release = validate_release(context.partition_key)
    tolerances = ChangeTolerances(config.depth_cm, config.relative, config.exponent)
    present = warehouse.visible_releases("analysis", "site_modality")
    before = previous_release(present, release)
    if before is None:
        changes = pl.DataFrame(schema=CHANGE_SCHEMA)
    else:
        tables = {
            t: (warehouse.read("analysis", t, before), warehouse.read("analysis", t, release))
            for t in ("site_modality", "phi", "nutrient_exponents")
        }
        changes = compare_releases(*tables["site_modality"], *tables["phi"], *tables["nutrient_exponents"], tolerances)
    changes = changes.with_columns(
        pl.lit(before, dtype=pl.String).alias("previous_release"), pl.lit(release).alias("release")
    )
    warehouse.write({("analysis", "release_changes"): changes}, release)
    summary = dict(changes.group_by("change").len().sort("change").iter_rows()) if changes.height else {}
    return MaterializeResult(
        metadata={
            **table_metadata(changes, release),
            "previous_release": before or "none",
            "changes": summary,
            "tolerances": tolerances.as_metadata(),
        }
    )


analysis_assets.append(analysis_release_changes)
