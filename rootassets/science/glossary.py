"""What every column the platform computes means, with its unit: the text of its DuckDB comment
(`COMMENT ON COLUMN`) and of its description in the asset's column schema in the UI.

NEON's own columns are described by NEON's variables file (raw tables); this glossary covers what the
platform adds and derives. A name means the same in every table unless `BY_TABLE` says otherwise for a
table; `PATTERNS` covers families of names (one per soil property or nutrient). METHOD.md sections are
cited as `M<section>`.
"""

from __future__ import annotations

import re

USER_SCHEMAS = ("raw", "harmonized", "analysis", "marts")  # the schemas users query; their columns are described

# -- columns the raw layer adds to NEON's tables ---------------------------------------------------------
ADDED = {
    "site_id": "NEON site code (four letters), the key every table joins on (the same value as NEON's siteID "
    "where the table has it; a lab table's rows have none).",
    "release": "NEON release the row belongs to (RELEASE-<year> or PROVISIONAL); every table keeps releases "
    "side by side.",
    "publication_date": "When NEON published the file the row came from (from the file name, UTC).",
    "source_file": "The NEON file the row was read from.",
    "quarantined": "True when the row broke the table's contract; its reason is in quarantine.<table>. Queries "
    "should use rows where this is false.",
}

GENERIC: dict[str, str] = {
    **ADDED,
    # depths and grids
    "top_cm": "Top of the depth increment, cm below the soil surface.",
    "bottom_cm": "Bottom of the depth increment, cm below the soil surface.",
    "mid_cm": "Midpoint of the depth increment, cm below the soil surface.",
    "profile": "Root profile (one of the megapit's sampled vertical profiles) from depthIncrementID.",
    "modality": "The site's root profile label: bimodal (a deep second KDE peak D2 exists) or unimodal (M2.4).",
    "d0_cm": "D0: depth of the highest mode of the site's root-depth KDE, cm (M2.3).",
    "d1_cm": "D1: depth of the lowest antimode between D0 and D2, cm; for unimodal sites the method's fixed "
    "70 cm where phi needs it (M2.3, M4).",
    "d2_cm": "D2: depth of the highest secondary mode reaching the threshold share of D0's density, cm; for "
    "unimodal sites the method's fixed 100 cm where phi needs it (M2.3, M4).",
    "n_profiles": "Number of root profiles behind the value.",
    "fine_root_cutoff_mm": "Fine-root size class NEON sampled at the site: 2 (<=2 mm) or 4 (<=4 mm) (M1.1).",
    "depth_derived": "True when the increment's depths were derived from depthIncrementID (the source had no "
    "mpr_perdepthincrement) rather than published by NEON (M1.2).",
    "root_density_g_m3": "Live fine-root biomass per soil volume Y, g/m3 (NEON's incrementRootDensity; for a "
    "site profile, the mean over the profiles that sampled the increment) (M1.3, M1.4).",
    "root_biomass_g_m2": "Live fine-root biomass of the increment per ground area, g/m2 (NEON's incrementRootBiomass).",
    "total_fine_root_biomass_g_m2": "Total live fine-root biomass, g/m2, surface to the deepest sample: per "
    "profile the sum over increments, then the mean over profiles, at the site's own size cutoff (M1.5).",
    "total_fine_root_biomass_4mm_equiv_g_m2": "Total live fine-root biomass in <=4 mm equivalents, g/m2: sites "
    "sampled at 2 mm multiplied by cutoff_4mm_factor (1.3), for comparing absolute biomass across sites (M1.1).",
    "land_cover": "Four-way land cover of the site: forest, rangeland/grassland, shrubland or cultivated.",
    "phi": "phi = Y(D2) / Y(D1), the depth-level signature of property Y (M4).",
    "property": "The property Y of phi: root_biomass or a soil property column of harmonized.soil_profiles.",
    "method": "How Y(D) was read: increment (the value of the increment containing D) or kde (the smoothed "
    "profile) (M4).",
    "nutrient": "Nutrient X: N (total nitrogen), P, K or Ca (Mehlich III extractable) (M7).",
    "n_bimodal": "Number of bimodal sites in the comparison.",
    "n_unimodal": "Number of unimodal sites in the comparison.",
    "n_sites": "Number of sites.",
    "n_excluded": "Sites left out of the test because their value is missing or not positive (log scale).",
    "p_value": "p-value of the test.",
    "statistic": "Test statistic (t for the t-tests, chi-square for the contingency tests).",
    "test": "The test that ran: Student's t (equal variances by the F test), Welch's t, or Pearson's "
    "chi-square with a Monte Carlo p-value (M6).",
    "bimodal_share": "Share of sites (or resamples) labelled bimodal, 0-1.",
    "exponent": "Exponent b of log10(rel) = a + b * depth, per cm: positive means the nutrient gets relatively "
    "more abundant than roots with depth (M7).",
    "intercept": "Intercept a of log10(rel) = a + b * depth (M7).",
    "r2": "R^2 of the log-linear fit (M7).",
    "n": "Number of points (profile x increment) in the fit.",
    "exponent_low": "Lower end of the 95% confidence interval of the exponent, per cm.",
    "exponent_high": "Upper end of the 95% confidence interval of the exponent, per cm.",
    "fit": "Which points the fit used: across_profiles (every profile's increments, the method's) or "
    "site_mean (alternative) (the site-mean profile).",
    "depth_cm": "Depth below the soil surface, cm.",
    "hor": "NEON horizontal position index of the sensor (HOR, from the file name): the soil plot.",
    "ver": "NEON vertical position index of the sensor (VER, from the file name): the depth level in the plot.",
    "role": "What the sensor stands for at the site: d1 or d2 (the sensor nearest D1 or D2) or surface (the "
    "shallowest).",
    "valid_from": "Start of the period the row holds for (UTC).",
    "valid_to": "End of the period the row holds for (UTC); empty: still valid.",
    "resamples": "Number of resamples behind the shares.",
    "n_steps": "Number of 30-minute steps with a finite phi behind the statistics.",
    "file_name": "The NEON file the row comes from.",
    "detail": "How the test ran, in words (the groups' sizes, the contingency table, the excluded sites).",
    "name": "What was compared: the factor, phi_<property>_<method>, or modality x land cover / growth form.",
    "scale": "log10 (continuous factor, tested on its log10) or categorical (contingency table).",
    "critical_bandwidth_cm": "Silverman's critical bandwidth: the smallest bandwidth (cm, on a 1 cm grid up "
    "to 40) from which on every larger one labels the site unimodal; empty when still bimodal at 40 cm.",
    "secondary_prominence": "(KDE at D2 - KDE at D1) / KDE at D2: how far the second peak rises above the "
    "trough, at most 1.",
}

# Families of names: (pattern, description with {groups} filled in).
SOIL_UNITS = {
    "nitrogen_tot_g_kg": "total nitrogen, g/kg (NEON nitrogenTot)",
    "carbon_tot_g_kg": "total carbon, g/kg (NEON carbonTot)",
    "organic_carbon_g_kg": "organic carbon, g/kg (NEON estimatedOC)",
    "phosphorus_mjelm_mg_kg": "Mehlich III extractable phosphorus, mg/kg (NEON pMjelm)",
    "potassium_mjelm_mg_kg": "Mehlich III extractable potassium, mg/kg (NEON kMjelm)",
    "calcium_mjelm_mg_kg": "Mehlich III extractable calcium, mg/kg (NEON caMjelm)",
    "ph_h2o": "pH in water (NEON phH2o)",
    "sand_pct": "sand, % of the fine earth (NEON sandTotal)",
    "silt_pct": "silt, % of the fine earth (NEON siltTotal)",
    "clay_pct": "clay, % of the fine earth (NEON clayTotal)",
    "cec_cmol_kg": "cation exchange capacity, cmol(+)/kg (NEON cecdNh4)",
    "bulk_density_g_cm3": "bulk density excluding coarse fragments, g/cm3 (NEON bulkDensExclCoarseFrag)",
}
NUTRIENTS = {"n": "N", "p": "P", "k": "K", "ca": "Ca"}


def _soil(match: re.Match[str]) -> str | None:
    what = SOIL_UNITS.get(match["prop"])
    if what is None:
        return None
    return (
        f"Soil {what} of the increment: the overlap-weighted mean over the megapit horizons "
        "(missing where no horizon with a value overlaps) (M3)."
    )


def _coverage(match: re.Match[str]) -> str | None:
    what = SOIL_UNITS.get(match["prop"])
    if what is None:
        return None
    return f"Share of the increment covered by horizons with a value of {what.split(',')[0]}, 0-1 (M3)."


def _topsoil(match: re.Match[str]) -> str | None:
    what = SOIL_UNITS.get(match["prop"]) or ("pH in water" if match["prop"] == "soil_ph" else None)
    if what is None:
        return None
    return f"Soil {what}, overlap-weighted mean over 0-30 cm of the megapit: a classifier factor (M5)."


def _exponent(match: re.Match[str]) -> str | None:
    nutrient = NUTRIENTS.get(match["nutrient"])
    if nutrient is None:
        return None
    return f"Exponent b of {nutrient} relative to roots, per cm (analysis.nutrient_exponents, across profiles) (M7)."


PATTERNS = (
    (re.compile(r"^coverage_(?P<prop>.+)$"), _coverage),
    (re.compile(r"^(?P<prop>.+)_0_30cm$"), _topsoil),
    (re.compile(r"^exponent_(?P<nutrient>[a-z]+)$"), _exponent),
    (re.compile(r"^(?P<prop>.+)$"), _soil),
)

BY_TABLE: dict[str, dict[str, str]] = {
    "raw.swc_files": {
        "month": "Month of the file's data (YYYY-MM).",
        "publication_date": "When NEON published the file (from its name, UTC).",
        "size_bytes": "Size of the file, bytes. Its rows stay in the file and are read by DuckDB in place.",
    },
    "raw.swc_sensor_positions": {
        "sensor_location_id": "NEON's identifier of the sensor's location (sensorLocationID).",
        "position_start": "Start of the position period (positionStartDateTime, UTC).",
        "position_end": "End of the position period (positionEndDateTime, UTC); empty: still in place.",
        "z_offset_m": "NEON's zOffset: the sensor's height above the reference location, m (negative below).",
        "depth_cm": "Depth of the sensor below the surface, cm (-100 x zOffset).",
        "file_name": "The sensor_positions file the row comes from.",
    },
    "raw.issue_log": {
        "product": "NEON data product ID (DPx.xxxxx.xxx).",
        "entry": "Order of the entry in the product's issue log.",
        "id": "NEON's identifier of the issue (changeLogs id).",
        "parentIssueID": "Identifier of the issue this one belongs to, if any.",
        "issueDate": "When the issue was reported.",
        "resolvedDate": "When the issue was resolved; empty: open.",
        "dateRangeStart": "Start of the data affected.",
        "dateRangeEnd": "End of the data affected.",
        "locationAffected": "Sites or locations affected.",
        "issue": "The issue, in NEON's words.",
        "resolution": "How it was resolved, in NEON's words.",
        "origin": "Where the entry comes from: the API's changeLogs, or the ISSUE LOG section of the readme.",
    },
    "raw.variables": {
        "table": "NEON table the field belongs to.",
        "fieldName": "Name of the field (column) in the NEON table.",
        "description": "NEON's description of the field.",
        "dataType": "NEON's data type of the field (string, real, integer, dateTime, ...).",
        "units": "NEON's unit of the field; empty or NA when it has none.",
        "product": "NEON data product ID.",
    },
    "raw.product_citations": {
        "product": "NEON data product ID.",
        "product_name": "NEON's name of the product.",
        "doi": "DOI of the product's release.",
        "citation": "How NEON asks the release to be cited.",
        "source": "The NEON source the citation was taken from (the API, the snapshot folder or a download).",
    },
    "harmonized.root_increments": {
        "depth_rule": "The rule that gave the increment's bottom when it was derived: protocol, "
        "protocol_unless_measured or biomass_density_ratio (M1.2).",
        "zero_filled": "True for an increment that was sampled but had no live fine-root sample: NEON records "
        "none for a class without roots, so its biomass is 0.",
    },
    "harmonized.root_profiles": {
        "standardized": "Standardized abundance Y / max(Y) within the site, 0-1 (M1.4).",
        "n_profiles": "Number of profiles that sampled the increment (behind its mean) (M1.4).",
    },
    "harmonized.increment_depth_comparison": {
        "derived_bottom_cm": "Bottom of the increment as the platform derives it without mpr_perdepthincrement, cm.",
        "derived_rule": "The rule that derived it (protocol, protocol_unless_measured, biomass_density_ratio).",
        "published_top_cm": "Top of the increment as NEON publishes it in mpr_perdepthincrement, cm.",
        "published_bottom_cm": "Bottom of the increment as NEON publishes it in mpr_perdepthincrement, cm "
        "(empty where NEON publishes none).",
        "bottom_difference_cm": "derived_bottom_cm - published_bottom_cm, cm.",
    },
    "harmonized.site_root_biomass": {
        "deepest_sample_cm": "Deepest increment bottom sampled at the site, cm: total biomass runs to it.",
        "n_profiles": "Number of root profiles averaged into the total.",
    },
    "harmonized.soil_profiles": {
        "coverage": "Share of the increment covered by any horizon, 0-1 (M3).",
        "grid": "The depth grid of the row: root_profile (the site's root increments) or protocol (NEON's "
        "protocol grid, for a site without root data) (M3).",
    },
    "analysis.site_modality": {
        "n_modes": "Number of local maxima of the root-depth KDE, before the threshold (M2.4).",
        "d0_kde_density": "Height of the KDE at D0 (a probability density of depth, 1/cm; not a root density).",
        "d2_kde_density": "Height of the KDE at D2 (1/cm); empty for unimodal sites.",
        "secondary_ratio": "d2_kde_density / d0_kde_density: how high the second peak is relative to the first; "
        "bimodal needs at least secondary_threshold (0.10) (M2.3).",
        "kde_sample_size": "Number of depths in the KDE's sample: the sum over increments of round(Y * "
        "count_scale) (M2.1).",
        "d1_cm": "D1: depth of the lowest antimode between D0 and D2, cm; empty for unimodal sites (M2.3).",
        "d2_cm": "D2: depth of the highest secondary mode reaching secondary_threshold of D0's density, cm; "
        "empty for unimodal sites (M2.3).",
    },
    "analysis.site_kde": {
        "depth_cm": "Depth of the KDE grid point, cm (every 1 cm; the grid runs past the profile's ends).",
        "density": "The root-depth KDE at that depth (a probability density of depth, 1/cm) (M2.2).",
    },
    "analysis.phi": {
        "y_d1": "Y(D1): the property's value at D1 (read as `method` says), in the property's unit.",
        "y_d2": "Y(D2): the property's value at D2, in the property's unit.",
        "d1_cm": "The D1 used, cm: the site's own for bimodal sites, 70 cm for unimodal ones (M4).",
        "d2_cm": "The D2 used, cm: the site's own for bimodal sites, 100 cm for unimodal ones (M4).",
    },
    "analysis.phi_sensitivity": {
        "unimodal_d1_cm": "The D1 given to unimodal sites in this row, cm (the method's default is 70).",
        "unimodal_d2_cm": "The D2 given to unimodal sites in this row, cm (the method's default is 100).",
        "is_default": "True for the row with the method's defaults (70 cm, 100 cm).",
    },
    "analysis.site_factors": {
        "elevation_m": "Mean elevation of the site, m (NEON field-site table).",
        "mean_annual_temperature_c": "Mean annual temperature, degrees C (NEON field-site table).",
        "mean_annual_precipitation_mm": "Mean annual precipitation, mm (NEON field-site table).",
        "canopy_height_m": "Mean canopy height, m (NEON field-site table).",
        "green_days": "Average number of green days per year (NEON field-site table).",
        "imputed_factors": "The factors the forest fills in for this site because they are missing, with the "
        "value used (`factor=value; ...`, as ranger's roughfix: median or most frequent class); empty when none.",
    },
    "analysis.group_tests": {
        "geometric_mean_bimodal": "Geometric mean of the factor over bimodal sites, in the factor's unit.",
        "geometric_mean_unimodal": "Geometric mean of the factor over unimodal sites, in the factor's unit.",
        "p_value_holm": "Holm-adjusted p-value within holm_family (the phi tests of the soil properties).",
        "holm_family": "The family of tests the Holm adjustment ran over; empty when not adjusted.",
        "excluded_sites": "The excluded sites, comma-separated.",
    },
    "analysis.nutrient_points": {
        "depth_cm": "Top of the increment, cm (the fit's depth) (M7).",
        "relative": "rel = X / Y_root, rescaled so that the profile's surface increment is 1 (M7).",
    },
    "analysis.nutrient_loess": {
        "depth_cm": "Depth of the fitted point, cm.",
        "log10_rel_fitted": "LOESS fit (span 0.5, local quadratic) of log10(rel) at the depth (M7).",
        "lower": "Lower end of the LOESS fit's 95% band, log10(rel).",
        "upper": "Upper end of the LOESS fit's 95% band, log10(rel).",
    },
    "analysis.classifier_performance": {
        "run": "The forest run: all factors, the kept set, without total biomass, or biomass alone (M5).",
        "metric": "What `value` measures: out-of-bag accuracy (overall, per class), confusion-matrix counts, the "
        "spread over seeds (_seed_mean/_sd/_min/_max) and the permutation null (_null_mean/_q95/_p_value).",
        "value": "The metric's value (accuracies 0-1, counts as numbers).",
    },
    "analysis.classifier_importance": {
        "run": "The forest run (M5).",
        "factor": "The site factor (a column of analysis.site_factors).",
        "importance": "Gini importance of the factor in the run's forest (mean decrease in impurity).",
        "rank": "Rank of the factor by importance in the run, 1 = most important.",
        "kept": "True when backward elimination kept the factor (M5).",
    },
    "analysis.paper_comparison": {
        "position": "Order of the result in the comparison.",
        "result": "Short name of the published result.",
        "claim": "The paper's claim, in words.",
        "subset": "The sites the comparison covers (all, or a subset the paper used).",
        "paper_value": "The paper's value as the platform reads it.",
        "paper_number": "The paper's value as a number, where it is one.",
        "paper_printed": "The value as printed in the paper.",
        "paper_source": "Where in the paper (figure, table, text).",
        "paper_doi": "DOI of the paper.",
        "platform_value": "The platform's value for this release.",
        "platform_number": "The platform's value as a number, where it is one.",
        "platform_source": "The table (and rows) the platform's value comes from.",
        "tolerance": "How close the platform must be to count as reproduced.",
        "reproduced": "True when the platform's value is within the tolerance; empty when it has none.",
    },
    "analysis.release_changes": {
        "previous_release": "The release compared with.",
        "change": "What changed for the site: site_added, site_removed, modality_changed, depth_shift, "
        "biomass_change or phi_change (beyond the tolerances recorded in the asset's metadata).",
        "quantity": "The quantity that changed: site, modality, d0_cm/d1_cm/d2_cm, "
        "total_fine_root_biomass_g_m2 or phi_<property>_<method>.",
        "old_value": "Its value in previous_release.",
        "new_value": "Its value in this release.",
        "difference": "new - old, where both are numbers.",
    },
    "analysis.site_modality_bootstrap": {
        "bimodal_share": "Share of bootstrap resamples of the site's profiles labelled bimodal, 0-1.",
        "label_confidence": "Share of resamples that agree with the site's label, 0-1 (beyond the paper).",
        "d2_median_cm": "Median D2 over the resamples labelled bimodal, cm.",
        "d2_iqr_cm": "Interquartile range of D2 over those resamples, cm.",
    },
    "analysis.site_label_robustness": {
        "resample_method": "exact (every resample of the profiles enumerated) or random (drawn).",
        "resample_bimodal_share": "Share of profile resamples labelled bimodal, 0-1.",
        "resample_agreement": "Share of profile resamples agreeing with the label, 0-1.",
        "grid_bimodal_share": "Share of the bandwidth x threshold grid labelled bimodal, 0-1.",
        "grid_agreement": "Share of the bandwidth x threshold grid agreeing with the label, 0-1.",
        "beyond_the_paper": "True: these measures go beyond the paper's method (M2.5).",
    },
    "analysis.site_label_sensitivity": {
        "bandwidth_cm": "KDE bandwidth of this grid point, cm (the method's is 15).",
        "secondary_threshold": "Share of D0's density a second mode must reach in this grid point (the "
        "method's is 0.10).",
        "modality": "The site's label with these settings.",
    },
    "analysis.soil_water_sensors": {
        "depth_cm": "Installation depth of the sensor over the period, cm below the surface.",
        "depth_source": "Where the depth comes from: NEON's corrected depths (swc_depthsV2.csv) or "
        "sensor_positions (zOffset), with the file.",
        "target_cm": "The depth the role asks for (D1, D2, or 0 for the surface), cm.",
        "distance_cm": "|depth_cm - target_cm|, cm.",
    },
    "analysis.soil_water_phi_series": {
        "start_time": "Start of the 30-minute step (UTC).",
        "swc_d1": "Soil water content at D1: mean over the d1 sensors' valid values in the step, m3/m3.",
        "swc_d2": "Soil water content at D2, m3/m3.",
        "swc_surface": "Soil water content of the surface sensors, m3/m3.",
        "n_positions_d1": "Number of d1 sensors with a valid value in the step.",
        "n_positions_d2": "Number of d2 sensors with a valid value in the step.",
        "phi": "swc_d2 / swc_d1 of the step (M4).",
    },
    "analysis.soil_water_quality": {
        "n_observations": "Observations of the role's chosen sensors.",
        "n_dropped_flagged": "Observations dropped for a quality flag (VSWCFinalQF not 0).",
        "n_dropped_missing": "Observations dropped for a missing or non-finite VSWCMean.",
        "n_kept": "Observations kept.",
        "share_dropped": "Share of observations dropped, 0-1.",
        "n_steps_reported": "30-minute steps with any observation of the role.",
        "n_steps_with_value": "Steps with at least one kept value.",
        "n_steps_with_phi": "The site's steps with a finite phi.",
    },
    "analysis.soil_water_statistics": {
        "variable": "phi (swc_d2 / swc_d1 per step) or surface_swc (the surface sensors' content, m3/m3).",
        "mean": "Mean over the steps.",
        "median": "Median over the steps.",
        "min": "Minimum over the steps.",
        "max": "Maximum over the steps.",
        "sd": "Standard deviation over the steps.",
        "cv": "Coefficient of variation, sd / mean.",
        "q25": "25% quantile over the steps.",
        "q75": "75% quantile over the steps.",
        "iqr": "Interquartile range, q75 - q25.",
        "sufficient_data": "True when the statistics rest on enough steps (at least a week of steps with phi).",
        "data_note": "Why the data are not sufficient, when they are not.",
    },
    "marts.site_summary": {
        "site_name": "NEON's name of the site.",
        "latitude": "Latitude of the site, decimal degrees (NEON field-site table).",
        "longitude": "Longitude of the site, decimal degrees (NEON field-site table).",
        "phi_root_biomass": "phi of root biomass, increment reading (analysis.phi).",
        "phi_root_biomass_kde": "phi of root biomass read off the KDE (analysis.phi).",
        "phi_soil_nitrogen": "phi of soil total nitrogen, increment reading (analysis.phi).",
        "label_resample_agreement": "Share of profile resamples agreeing with the label "
        "(analysis.site_label_robustness).",
        "label_grid_agreement": "Share of the bandwidth x threshold grid agreeing with the label "
        "(analysis.site_label_robustness).",
        "d1_cm": "D1, cm; empty for unimodal sites (analysis.site_modality).",
        "d2_cm": "D2, cm; empty for unimodal sites (analysis.site_modality).",
    },
    "marts.modality_by_land_cover": {
        "n_sites": "Sites of the land cover in the latest release.",
        "bimodal_share": "n_bimodal / n_sites.",
    },
    "marts.nutrient_exponent_summary": {
        "n_sites": "Sites with an exponent of the nutrient.",
        "mean_exponent": "Mean exponent over the sites, per cm.",
        "median_exponent": "Median exponent over the sites, per cm.",
        "median_r2": "Median R^2 of the fits.",
        "share_positive": "Share of sites with a positive exponent (nutrient relatively richer with depth), 0-1.",
    },
    "marts.root_profiles_long": {
        "variable": "Which value of the increment `value` holds: root_density_g_m3, standardized, or a soil "
        "property column of harmonized.soil_profiles (nitrogen_tot_g_kg, ..., ph_h2o).",
        "value": "The value of `variable` at the increment, in that column's unit.",
    },
}


def describe_column(schema: str, table: str, column: str) -> str | None:
    """The column's description with its unit, or None when the glossary does not know it (NEON's own
    columns: their descriptions come from NEON's variables file)."""
    specific = BY_TABLE.get(f"{schema}.{table}", {})
    if column in specific:
        return specific[column]
    if column in GENERIC:
        return GENERIC[column]
    if schema == "raw":
        return None  # NEON's field: described by NEON's variables file, not guessed here
    for pattern, describe in PATTERNS:
        match = pattern.fullmatch(column)
        if match and (text := describe(match)):
            return text
    return None


def undescribed_neon_field(table: str, column: str) -> str:
    """The description of a raw column NEON published when the source gave no NEON variables file to describe
    it (the offline snapshot has none): what it is and where NEON's own description is."""
    return (
        f"{column}: a field of NEON's {table} table, as NEON published it. Its description and unit are in the "
        "product's NEON variables file, which this source did not include (NEON API and portal downloads do; "
        "then this comment is NEON's description)."
    )


def describe_columns(schema: str, table: str, columns: list[str]) -> dict[str, str]:
    """`describe_column` for each column the glossary knows."""
    return {c: d for c in columns if (d := describe_column(schema, table, c)) is not None}
