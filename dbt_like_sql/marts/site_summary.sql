-- materialized: table
-- description: One row per site of the latest release: location, land cover, fine-root cutoff, modality, D0/D1/D2, total biomass, key phi values and nutrient exponents, and how robust the label is (beyond the paper: analysis.site_label_robustness).
-- unique: site_id
-- not_null: site_id, release, modality
WITH latest AS (
    SELECT release FROM marts.latest_release
),
modality AS (
    SELECT * FROM analysis.site_modality WHERE release = (SELECT release FROM latest)
),
phi AS (
    SELECT
        site_id,
        max(phi) FILTER (WHERE property = 'root_biomass' AND method = 'increment') AS phi_root_biomass,
        max(phi) FILTER (WHERE property = 'root_biomass' AND method = 'kde') AS phi_root_biomass_kde,
        max(phi) FILTER (WHERE property = 'nitrogen_tot_g_kg' AND method = 'increment') AS phi_soil_nitrogen
    FROM analysis.phi
    WHERE release = (SELECT release FROM latest)
    GROUP BY site_id
),
exponents AS (
    SELECT
        site_id,
        max(exponent) FILTER (WHERE nutrient = 'N') AS exponent_n,
        max(exponent) FILTER (WHERE nutrient = 'P') AS exponent_p,
        max(exponent) FILTER (WHERE nutrient = 'K') AS exponent_k,
        max(exponent) FILTER (WHERE nutrient = 'Ca') AS exponent_ca
    FROM analysis.nutrient_exponents
    WHERE release = (SELECT release FROM latest)
    GROUP BY site_id
)
SELECT
    modality.site_id,
    sites.field_site_name AS site_name,
    sites.field_latitude AS latitude,
    sites.field_longitude AS longitude,
    cover."Land.cover" AS land_cover,
    biomass.fine_root_cutoff_mm,
    modality.modality,
    modality.d0_cm,
    modality.d1_cm,
    modality.d2_cm,
    modality.total_fine_root_biomass_g_m2,
    phi.phi_root_biomass,
    phi.phi_root_biomass_kde,
    phi.phi_soil_nitrogen,
    exponents.exponent_n,
    exponents.exponent_p,
    exponents.exponent_k,
    exponents.exponent_ca,
    robustness.resample_agreement AS label_resample_agreement,
    robustness.grid_agreement AS label_grid_agreement,
    robustness.critical_bandwidth_cm,
    robustness.secondary_prominence,
    modality.release
FROM modality
LEFT JOIN raw.field_site_metadata AS sites
    ON sites.site_id = modality.site_id AND sites.release = modality.release AND NOT sites.quarantined
LEFT JOIN raw.site_land_cover AS cover
    ON cover.site_id = modality.site_id AND cover.release = modality.release AND NOT cover.quarantined
LEFT JOIN harmonized.site_root_biomass AS biomass
    ON biomass.site_id = modality.site_id AND biomass.release = modality.release
LEFT JOIN phi ON phi.site_id = modality.site_id
LEFT JOIN exponents ON exponents.site_id = modality.site_id
LEFT JOIN analysis.site_label_robustness AS robustness
    ON robustness.site_id = modality.site_id AND robustness.release = modality.release
ORDER BY modality.site_id
