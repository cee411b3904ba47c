"""The contract of every table the platform writes: pandera schemas on polars frames, and, for the tables
computed inside DuckDB (whose rows never pass through Python), SQL row rules (`SqlContract`).

Each schema lists the columns downstream work relies on (others may be
present: NEON adds columns over time), their types, nullability, ranges,
allowed values and unique keys. `rootassets.warehouse.quarantine` applies them: rows
that break a rule are quarantined with the rule, the column and the value;
a missing required column fails the asset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Optional

import pandera.polars as pa
import polars as pl

SITE = r"^[A-Z]{4}$"
RELEASE = r"^(RELEASE-20[0-9]{2}|PROVISIONAL)$"
DEPTH_MAX_CM = 300.0
ROOT_STATUS = ["live", "dead"]
SIZE_CATEGORIES = ["<=2mm", ">2mm", "<=4mm", ">4mm"]
LAND_COVERS = ["forest", "rangeland/grassland", "shrubland", "cultivated"]


class _Contract(pa.DataFrameModel):
    """Columns every table has."""

    site_id: str = pa.Field(str_matches=SITE)
    release: str = pa.Field(str_matches=RELEASE)

    class Config:
        strict = False
        coerce = False


def _depth(nullable: bool = False) -> object:
    return pa.Field(ge=0, le=DEPTH_MAX_CM, nullable=nullable)


def _top_below_bottom(data: pa.PolarsData, top: str, bottom: str) -> pl.LazyFrame:
    """Row-wise: top < bottom wherever both are known."""
    return data.lazyframe.select(
        (pl.col(top).is_null() | pl.col(bottom).is_null() | (pl.col(top) < pl.col(bottom))).alias("ok")
    )


# -- raw tables ------------------------------------------------------------------


class RootSample(_Contract):
    """raw.mpr_perrootsample"""

    uid: str = pa.Field(unique=True)
    depthIncrementID: str = pa.Field(str_matches=r"^[A-Z]{4}\.[A-Za-z0-9]+\.[0-9]+$")
    rootStatus: str = pa.Field(isin=ROOT_STATUS)
    sizeCategory: str = pa.Field(isin=SIZE_CATEGORIES)
    rootDryMass: float = pa.Field(ge=0, nullable=True)
    incrementRootBiomass: float = pa.Field(ge=0, nullable=True)
    incrementRootDensity: float = pa.Field(ge=0, nullable=True)


class RootCarbonNitrogen(_Contract):
    """raw.mpr_carbonNitrogen"""

    uid: str = pa.Field(unique=True)
    cnSampleID: str = pa.Field(nullable=True)
    nitrogenPercent: float = pa.Field(ge=0, le=100, nullable=True)
    carbonPercent: float = pa.Field(ge=0, le=100, nullable=True)


class DepthIncrement(_Contract):
    """raw.mpr_perdepthincrement (when the source publishes it)"""

    uid: str = pa.Field(unique=True)
    depthIncrementID: str
    topDepth: float = _depth()
    bottomDepth: float = _depth()

    @pa.dataframe_check
    def top_above_bottom(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return _top_below_bottom(data, "topDepth", "bottomDepth")


class PitProfile(_Contract):
    """raw.mpr_perpitprofile (when the source publishes it)"""

    uid: str = pa.Field(unique=True)


class Megapit(_Contract):
    """raw.mgp_permegapit"""

    uid: str = pa.Field(unique=True)
    pitID: str
    decimalLatitude: float = pa.Field(ge=-90, le=90, nullable=True)
    decimalLongitude: float = pa.Field(ge=-180, le=180, nullable=True)


class Horizon(_Contract):
    """raw.mgp_perhorizon"""

    uid: str = pa.Field(unique=True)
    horizonID: str
    horizonName: str = pa.Field(nullable=True)
    horizonTopDepth: float = _depth()
    horizonBottomDepth: float = _depth()

    @pa.dataframe_check
    def top_above_bottom(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return _top_below_bottom(data, "horizonTopDepth", "horizonBottomDepth")


class BiogeoSample(_Contract):
    """raw.mgp_perbiogeosample"""

    uid: str = pa.Field(unique=True)
    horizonID: str
    biogeoSampleType: str = pa.Field(nullable=True)
    biogeoTopDepth: float = _depth(nullable=True)
    biogeoBottomDepth: float = _depth(nullable=True)
    nitrogenTot: float = pa.Field(ge=0, nullable=True)
    carbonTot: float = pa.Field(ge=0, nullable=True)
    estimatedOC: float = pa.Field(ge=0, nullable=True)
    pMjelm: float = pa.Field(ge=0, nullable=True)
    kMjelm: float = pa.Field(ge=0, nullable=True)
    caMjelm: float = pa.Field(ge=0, nullable=True)
    phH2o: float = pa.Field(ge=0, le=14, nullable=True)
    sandTotal: float = pa.Field(ge=0, le=100, nullable=True)
    siltTotal: float = pa.Field(ge=0, le=100, nullable=True)
    clayTotal: float = pa.Field(ge=0, le=100, nullable=True)
    cecdNh4: float = pa.Field(ge=0, nullable=True)

    @pa.dataframe_check
    def top_above_bottom(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return _top_below_bottom(data, "biogeoTopDepth", "biogeoBottomDepth")


class BulkSample(_Contract):
    """raw.mgp_perbulksample"""

    uid: str = pa.Field(unique=True)
    horizonID: str
    bulkDensSampleType: str = pa.Field(nullable=True)
    bulkDensExclCoarseFrag: float = pa.Field(ge=0, le=3, nullable=True)


class FieldSiteMetadata(_Contract):
    """raw.field_site_metadata"""

    site_id: str = pa.Field(unique=True, str_matches=SITE)
    field_latitude: float = pa.Field(ge=-90, le=90, nullable=True)
    field_longitude: float = pa.Field(ge=-180, le=180, nullable=True)


class SiteLandCover(_Contract):
    """raw.site_land_cover"""

    site_id: str = pa.Field(unique=True, str_matches=SITE)
    land_cover: str = pa.Field(alias="Land.cover", isin=LAND_COVERS)


# -- harmonized tables -------------------------------------------------------------


class RootIncrements(_Contract):
    """harmonized.root_increments: live fine roots per site, profile and increment."""

    profile: str
    top_cm: float = _depth()
    bottom_cm: float = _depth()
    root_density_g_m3: float = pa.Field(ge=0)
    root_biomass_g_m2: float = pa.Field(ge=0)
    fine_root_cutoff_mm: int = pa.Field(isin=[2, 4])
    depth_derived: bool
    depth_rule: str
    zero_filled: bool

    @pa.dataframe_check
    def top_above_bottom(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return _top_below_bottom(data, "top_cm", "bottom_cm")


class RootProfiles(_Contract):
    """harmonized.root_profiles: the site-level fine-root profile."""

    top_cm: float = _depth()
    bottom_cm: float = _depth()
    mid_cm: float = _depth()
    root_density_g_m3: float = pa.Field(ge=0)
    standardized: float = pa.Field(ge=0, le=1)
    n_profiles: int = pa.Field(ge=1)
    fine_root_cutoff_mm: int = pa.Field(isin=[2, 4])
    depth_derived: bool

    @pa.dataframe_check
    def top_above_bottom(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return _top_below_bottom(data, "top_cm", "bottom_cm")


class IncrementDepthComparison(_Contract):
    """harmonized.increment_depth_comparison"""

    profile: str
    top_cm: float = _depth()
    derived_bottom_cm: float = _depth()
    published_bottom_cm: float = _depth(nullable=True)


class SiteRootBiomass(_Contract):
    """harmonized.site_root_biomass: total fine-root biomass per site."""

    site_id: str = pa.Field(str_matches=SITE, unique=True)
    total_fine_root_biomass_g_m2: float = pa.Field(ge=0)
    total_fine_root_biomass_4mm_equiv_g_m2: float = pa.Field(ge=0)
    fine_root_cutoff_mm: int = pa.Field(isin=[2, 4])
    n_profiles: int = pa.Field(ge=1)
    deepest_sample_cm: float = _depth()


class SoilProfiles(_Contract):
    """harmonized.soil_profiles: megapit soil properties on the root depth grid."""

    top_cm: float = _depth()
    bottom_cm: float = _depth()
    coverage: float = pa.Field(ge=0, le=1)
    ph_h2o: float = pa.Field(ge=0, le=14, nullable=True)
    sand_pct: float = pa.Field(ge=0, le=100, nullable=True)
    silt_pct: float = pa.Field(ge=0, le=100, nullable=True)
    clay_pct: float = pa.Field(ge=0, le=100, nullable=True)


@dataclass(frozen=True)
class TableContract:
    """A table's schema and the key that identifies one of its records."""

    schema: type[pa.DataFrameModel]
    key: tuple[str, ...]

    @property
    def required_columns(self) -> list[str]:
        return [field.name for field in self.schema.to_schema().columns.values()]


def generic_contract(
    table: str, variables: pl.DataFrame | None, package: str = "basic", dtypes: Mapping[str, pl.DataType] | None = None
) -> TableContract:
    """The contract of a declared product's table, from NEON's variables file: the columns every raw table has
    (a lab table has no site), and NEON's primary key (`primaryKey` = Y; `uid` when the file marks none),
    required in every file and unique (a single-column key also not null). The reader has already typed each
    column from the variables file (`dtypes`: the types it gave); a value that did not fit was refused there."""
    rows = pl.DataFrame(schema={c: pl.String for c in ("table", "fieldName", "dataType")})
    if variables is not None and {"table", "fieldName", "dataType"} <= set(variables.columns):
        rows = variables.filter(pl.col("table") == table)
        if package == "basic" and "downloadPkg" in rows.columns:
            rows = rows.filter(pl.col("downloadPkg") != "expanded")
    marked = rows.filter(pl.col("primaryKey") == "Y") if "primaryKey" in rows.columns else rows.clear()
    if marked.is_empty():
        marked = rows.filter(pl.col("fieldName") == "uid")
    key = tuple(marked["fieldName"].to_list())
    annotations: dict[str, object] = {"site_id": Optional[str]}  # noqa: UP045 - pandera reads Optional
    namespace: dict[str, object] = {"site_id": pa.Field(str_matches=SITE, nullable=True)}
    for name in key:
        dtype = (dtypes or {}).get(name, pl.String)
        annotations[name] = str if dtype in (pl.String, pl.Null) else dtype
        namespace[name] = pa.Field(nullable=len(key) > 1)
    model = type(
        f"Declared_{table}",
        (_Contract,),
        {"__annotations__": annotations, "__module__": __name__, "__doc__": f"NEON's {table}", **namespace},
    )
    return TableContract(model, key)


RAW_CONTRACTS: dict[str, TableContract] = {
    "mpr_perrootsample": TableContract(RootSample, ("uid",)),
    "mpr_carbonNitrogen": TableContract(RootCarbonNitrogen, ("uid",)),
    "mpr_perdepthincrement": TableContract(DepthIncrement, ("uid",)),
    "mpr_perpitprofile": TableContract(PitProfile, ("uid",)),
    "mgp_permegapit": TableContract(Megapit, ("uid",)),
    "mgp_perhorizon": TableContract(Horizon, ("uid",)),
    "mgp_perbiogeosample": TableContract(BiogeoSample, ("uid",)),
    "mgp_perbulksample": TableContract(BulkSample, ("uid",)),
    "field_site_metadata": TableContract(FieldSiteMetadata, ("site_id",)),
    "site_land_cover": TableContract(SiteLandCover, ("site_id",)),
}


class _ReleaseRows(pa.DataFrameModel):
    """Tables with a row per something other than a site: only the release column is common."""

    release: str = pa.Field(str_matches=RELEASE)

    class Config:
        strict = False
        coerce = False


class _ReleaseContract(_ReleaseRows):
    """Columns every product-level table has (no site)."""

    product: str = pa.Field(str_matches=r"^DP[0-4]\.[0-9]{5}\.[0-9]{3}$")


class Variables(_ReleaseContract):
    """raw.variables: NEON's variables file, as published, per product and release"""

    table: str
    fieldName: str
    description: str = pa.Field(nullable=True)
    dataType: str = pa.Field(nullable=True)
    units: str = pa.Field(nullable=True)


class IssueLog(_ReleaseContract):
    """raw.issue_log: NEON's changeLogs (or the readme's ISSUE LOG) per product and release"""

    entry: int = pa.Field(ge=1)
    issue: str = pa.Field(nullable=True)
    origin: str = pa.Field(isin=["api changeLogs", "readme ISSUE LOG"])


class ProductCitation(_ReleaseContract):
    """raw.product_citations: each product's DOI and citation per release"""

    product_name: str
    doi: str = pa.Field(nullable=True, str_matches=r"^10\.[0-9]{4,9}/\S+$")
    citation: str


DOCUMENT_CONTRACTS: dict[str, TableContract] = {
    "variables": TableContract(Variables, ("product", "table", "fieldName")),
    "issue_log": TableContract(IssueLog, ("product", "entry")),
    "product_citations": TableContract(ProductCitation, ("product",)),
}
HARMONIZED_CONTRACTS: dict[str, TableContract] = {
    "root_increments": TableContract(RootIncrements, ("site_id", "profile", "top_cm")),
    "root_profiles": TableContract(RootProfiles, ("site_id", "top_cm")),
    "site_root_biomass": TableContract(SiteRootBiomass, ("site_id",)),
    "increment_depth_comparison": TableContract(IncrementDepthComparison, ("site_id", "profile", "top_cm")),
    "soil_profiles": TableContract(SoilProfiles, ("site_id", "top_cm", "bottom_cm")),
}


# -- analysis tables ---------------------------------------------------------------


class SiteModalityTable(_Contract):
    """analysis.site_modality"""

    site_id: str = pa.Field(str_matches=SITE, unique=True)
    modality: str = pa.Field(isin=["bimodal", "unimodal"])
    n_modes: int = pa.Field(ge=1)
    d0_cm: float
    d1_cm: float = pa.Field(nullable=True)
    d2_cm: float = pa.Field(nullable=True)
    d0_kde_density: float = pa.Field(gt=0)
    secondary_ratio: float = pa.Field(ge=0, le=1, nullable=True)
    total_fine_root_biomass_g_m2: float = pa.Field(ge=0, nullable=True)


class PhiTable(_Contract):
    """analysis.phi"""

    property: str
    method: str = pa.Field(isin=["increment", "kde"])
    phi: float = pa.Field(nullable=True)
    d1_cm: float
    d2_cm: float
    modality: str = pa.Field(isin=["bimodal", "unimodal"])


class SiteFactorsTable(_Contract):
    """analysis.site_factors"""

    site_id: str = pa.Field(str_matches=SITE, unique=True)
    modality: str = pa.Field(isin=["bimodal", "unimodal"])
    total_fine_root_biomass_g_m2: float = pa.Field(ge=0, nullable=True)
    total_fine_root_biomass_4mm_equiv_g_m2: float = pa.Field(ge=0, nullable=True)
    imputed_factors: str
    soil_ph_0_30cm: float = pa.Field(ge=0, le=14, nullable=True)
    sand_pct_0_30cm: float = pa.Field(ge=0, le=100, nullable=True)
    clay_pct_0_30cm: float = pa.Field(ge=0, le=100, nullable=True)
    land_cover: str = pa.Field(isin=LAND_COVERS, nullable=True)


class NutrientExponentsTable(_Contract):
    """analysis.nutrient_exponents"""

    nutrient: str = pa.Field(isin=["N", "P", "K", "Ca"])
    exponent: float
    intercept: float
    r2: float = pa.Field(ge=0, le=1)
    n: int = pa.Field(ge=3)
    modality: str = pa.Field(isin=["bimodal", "unimodal"])
    fit: str = pa.Field(isin=["across_profiles", "site_mean (alternative)"])


class NutrientPointsTable(_Contract):
    """analysis.nutrient_points: X / Y_root per profile and increment, the profile's surface = 1."""

    profile: str
    nutrient: str = pa.Field(isin=["N", "P", "K", "Ca"])
    depth_cm: float = _depth()
    relative: float = pa.Field(gt=0)


class GroupTestsTable(pa.DataFrameModel):
    """analysis.group_tests (one row per comparison, not per site)"""

    name: str
    test: str
    p_value: float = pa.Field(ge=0, le=1, nullable=True)
    n_bimodal: int = pa.Field(ge=0)
    n_unimodal: int = pa.Field(ge=0)
    scale: str = pa.Field(isin=["log10", "categorical"])
    n_excluded: int = pa.Field(ge=0)
    p_value_holm: float = pa.Field(ge=0, le=1, nullable=True)
    geometric_mean_bimodal: float = pa.Field(gt=0, nullable=True)
    geometric_mean_unimodal: float = pa.Field(gt=0, nullable=True)
    release: str = pa.Field(str_matches=RELEASE)

    class Config:
        strict = False
        coerce = False


class PaperComparisonTable(_ReleaseRows):
    """analysis.paper_comparison: one row per published headline result and subset of sites."""

    position: int = pa.Field(ge=1, unique=True)
    result: str
    subset: str
    claim: str
    tolerance: str
    reproduced: bool = pa.Field(nullable=True)


class SiteKdeTable(_Contract):
    """analysis.site_kde: each site's root-depth KDE every 1 cm (the grid runs past the profile's ends)."""

    depth_cm: float = pa.Field()
    density: float = pa.Field(ge=0)


class NutrientLoessTable(_Contract):
    """analysis.nutrient_loess: LOESS of log10 relative nutrient concentration against depth."""

    nutrient: str = pa.Field(isin=["N", "P", "K", "Ca"])
    depth_cm: float = pa.Field(ge=0, le=DEPTH_MAX_CM)
    log10_rel_fitted: float = pa.Field(nullable=True)
    lower: float = pa.Field(nullable=True)
    upper: float = pa.Field(nullable=True)


class ClassifierPerformanceTable(_ReleaseRows):
    """analysis.classifier_performance: one value per forest run and metric."""

    run: str
    metric: str
    value: float = pa.Field(nullable=True)


class ClassifierImportanceTable(_ReleaseRows):
    """analysis.classifier_importance: one Gini importance per forest run and factor."""

    run: str
    factor: str
    importance: float = pa.Field(nullable=True)
    rank: int = pa.Field(ge=1)
    kept: bool


class ReleaseChangesTable(_Contract):
    """analysis.release_changes: what changed per site since `previous_release`."""

    change: str
    quantity: str = pa.Field(nullable=True)
    old_value: str = pa.Field(nullable=True)
    new_value: str = pa.Field(nullable=True)
    difference: float = pa.Field(nullable=True)
    previous_release: str = pa.Field(str_matches=RELEASE)


class SiteModalityBootstrapTable(_Contract):
    """analysis.site_modality_bootstrap: each site's label with its bootstrap confidence."""

    modality: str = pa.Field(isin=["bimodal", "unimodal"], nullable=True)
    n_profiles: int = pa.Field(ge=1)
    resamples: int = pa.Field(ge=0)
    bimodal_share: float = pa.Field(ge=0, le=1, nullable=True)
    label_confidence: float = pa.Field(ge=0, le=1, nullable=True)
    d2_median_cm: float = pa.Field(ge=0, nullable=True)
    d2_iqr_cm: float = pa.Field(ge=0, nullable=True)


class SiteLabelRobustnessTable(_Contract):
    """analysis.site_label_robustness (beyond the paper)"""

    modality: str = pa.Field(isin=["bimodal", "unimodal"], nullable=True)
    n_profiles: int = pa.Field(ge=1)
    resample_method: str = pa.Field(isin=["exact", "random"])
    resample_bimodal_share: float = pa.Field(ge=0, le=1, nullable=True)
    grid_bimodal_share: float = pa.Field(ge=0, le=1)
    critical_bandwidth_cm: float = pa.Field(gt=0, nullable=True)
    secondary_prominence: float = pa.Field(le=1, nullable=True)
    beyond_the_paper: bool


class SiteLabelSensitivityTable(_Contract):
    """analysis.site_label_sensitivity (beyond the paper)"""

    bandwidth_cm: float = pa.Field(gt=0)
    secondary_threshold: float = pa.Field(ge=0, le=1)
    modality: str = pa.Field(isin=["bimodal", "unimodal"])


class PhiSensitivityTable(_ReleaseRows):
    """analysis.phi_sensitivity (beyond the paper): one phi group test per unimodal (D1, D2) and property."""

    unimodal_d1_cm: float = _depth()
    unimodal_d2_cm: float = _depth()
    property: str
    method: str = pa.Field(isin=["increment", "kde"])
    p_value: float = pa.Field(ge=0, le=1, nullable=True)
    n_excluded: int = pa.Field(ge=0)


class SoilWaterSensorsTable(_Contract):
    """analysis.soil_water_sensors: the sensor used for each role (d1, d2, surface) at a site's position over
    a period, with the source of its depth."""

    role: str = pa.Field(isin=["d1", "d2", "surface"])
    hor: str
    ver: str
    depth_cm: float = pa.Field(nullable=True)
    distance_cm: float = pa.Field(ge=0, nullable=True)


class SwcSensorPositions(_Contract):
    """raw.swc_sensor_positions: a soil water sensor's position and depth over one position period."""

    hor: str
    ver: str
    depth_cm: float = pa.Field(nullable=True)
    file_name: str


class SwcFiles(_Contract):
    """raw.swc_files: one row per 30-minute soil water file of the release."""

    hor: str
    ver: str
    month: str = pa.Field(str_matches=r"^[0-9]{4}-[0-9]{2}$")
    file_name: str
    size_bytes: int = pa.Field(ge=0)


SOIL_WATER_RAW_CONTRACTS: dict[str, TableContract] = {
    "swc_sensor_positions": TableContract(
        SwcSensorPositions, ("site_id", "hor", "ver", "sensor_location_id", "position_start")
    ),
    "swc_files": TableContract(SwcFiles, ("file_name",)),
}


@dataclass(frozen=True)
class SqlContract:
    """The contract of a table computed inside DuckDB: its key and its row rules, each a SQL predicate
    over one column (rule name -> (column, predicate)). A row whose predicate is false or NULL, or whose
    key repeats, is quarantined with the rule, the column and the value, inside DuckDB."""

    key: tuple[str, ...]
    rules: Mapping[str, tuple[str, str]] = field(default_factory=dict)


def _fraction(column: str) -> tuple[str, str]:
    return column, f"{column} IS NULL OR {column} BETWEEN 0 AND 1"


SQL_CONTRACTS: dict[str, SqlContract] = {
    "analysis.soil_water_phi_series": SqlContract(
        ("site_id", "start_time"),
        {
            "site_id_is_a_site": ("site_id", "regexp_full_match(site_id, '[A-Z]{4}')"),
            "start_time_known": ("start_time", "start_time IS NOT NULL"),
            "swc_d1_is_a_fraction": _fraction("swc_d1"),
            "swc_d2_is_a_fraction": _fraction("swc_d2"),
            "swc_surface_is_a_fraction": _fraction("swc_surface"),
            "phi_not_negative": ("phi", "phi IS NULL OR phi >= 0"),
        },
    ),
    "analysis.soil_water_quality": SqlContract(
        ("site_id", "role"),
        {
            "site_id_is_a_site": ("site_id", "regexp_full_match(site_id, '[A-Z]{4}')"),
            "role_known": ("role", "role IN ('d1', 'd2', 'surface')"),
            "counts_add_up": (
                "n_observations",
                "n_observations = n_dropped_flagged + n_dropped_missing + n_kept",
            ),
            "share_dropped_is_a_fraction": ("share_dropped", "share_dropped IS NULL OR share_dropped BETWEEN 0 AND 1"),
        },
    ),
    "analysis.soil_water_statistics": SqlContract(
        ("site_id", "variable"),
        {
            "site_id_is_a_site": ("site_id", "regexp_full_match(site_id, '[A-Z]{4}')"),
            "variable_known": ("variable", "variable IN ('phi', 'surface_swc')"),
            "n_steps_not_negative": ("n_steps", "n_steps >= 0"),
        },
    ),
}


ANALYSIS_CONTRACTS: dict[str, TableContract] = {
    "site_modality": TableContract(SiteModalityTable, ("site_id",)),
    "site_kde": TableContract(SiteKdeTable, ("site_id", "depth_cm")),
    "nutrient_loess": TableContract(NutrientLoessTable, ("site_id", "nutrient", "depth_cm")),
    "phi": TableContract(PhiTable, ("site_id", "property", "method")),
    "site_factors": TableContract(SiteFactorsTable, ("site_id",)),
    "nutrient_exponents": TableContract(NutrientExponentsTable, ("site_id", "nutrient")),
    "nutrient_exponents_site_mean": TableContract(NutrientExponentsTable, ("site_id", "nutrient")),
    "nutrient_points": TableContract(NutrientPointsTable, ("site_id", "profile", "nutrient", "depth_cm")),
    "group_tests": TableContract(GroupTestsTable, ("name",)),
    "classifier_performance": TableContract(ClassifierPerformanceTable, ("run", "metric")),
    "classifier_importance": TableContract(ClassifierImportanceTable, ("run", "factor")),
    "paper_comparison": TableContract(PaperComparisonTable, ("result", "subset")),
    "release_changes": TableContract(ReleaseChangesTable, ("site_id", "change", "quantity")),
    "site_modality_bootstrap": TableContract(SiteModalityBootstrapTable, ("site_id",)),
    "soil_water_sensors": TableContract(SoilWaterSensorsTable, ("site_id", "role", "hor", "ver", "valid_from")),
    "site_label_robustness": TableContract(SiteLabelRobustnessTable, ("site_id",)),
    "phi_sensitivity": TableContract(PhiSensitivityTable, ("unimodal_d1_cm", "unimodal_d2_cm", "property", "method")),
    "site_label_sensitivity": TableContract(
        SiteLabelSensitivityTable, ("site_id", "bandwidth_cm", "secondary_threshold")
    ),
}


CONTRACTS: dict[str, TableContract] = {
    **{f"raw.{name}": c for name, c in {**RAW_CONTRACTS, **DOCUMENT_CONTRACTS, **SOIL_WATER_RAW_CONTRACTS}.items()},
    **{f"harmonized.{name}": c for name, c in HARMONIZED_CONTRACTS.items()},
    **{f"analysis.{name}": c for name, c in ANALYSIS_CONTRACTS.items()},
}
