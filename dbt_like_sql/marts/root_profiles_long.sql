-- materialized: view
-- description: Long format for plotting: one row per release, site, increment and variable (root density, standardized abundance, soil N, P, K, Ca, pH), with the site's modality.
-- unique: release, site_id, top_cm, bottom_cm, variable
-- not_null: release, site_id, top_cm, bottom_cm, variable
WITH grid AS (
    SELECT
        roots.release,
        roots.site_id,
        modality.modality,
        roots.top_cm,
        roots.bottom_cm,
        roots.mid_cm,
        roots.root_density_g_m3,
        roots.standardized,
        soil.nitrogen_tot_g_kg,
        soil.phosphorus_mjelm_mg_kg,
        soil.potassium_mjelm_mg_kg,
        soil.calcium_mjelm_mg_kg,
        soil.ph_h2o
    FROM harmonized.root_profiles AS roots
    LEFT JOIN harmonized.soil_profiles AS soil
        ON soil.site_id = roots.site_id AND soil.release = roots.release
        AND soil.top_cm = roots.top_cm AND soil.bottom_cm = roots.bottom_cm
    LEFT JOIN analysis.site_modality AS modality
        ON modality.site_id = roots.site_id AND modality.release = roots.release
)
SELECT release, site_id, modality, top_cm, bottom_cm, mid_cm, 'root_density_g_m3' AS variable, root_density_g_m3 AS value FROM grid
UNION ALL
SELECT release, site_id, modality, top_cm, bottom_cm, mid_cm, 'standardized', standardized FROM grid
UNION ALL
SELECT release, site_id, modality, top_cm, bottom_cm, mid_cm, 'nitrogen_tot_g_kg', nitrogen_tot_g_kg FROM grid
UNION ALL
SELECT release, site_id, modality, top_cm, bottom_cm, mid_cm, 'phosphorus_mjelm_mg_kg', phosphorus_mjelm_mg_kg FROM grid
UNION ALL
SELECT release, site_id, modality, top_cm, bottom_cm, mid_cm, 'potassium_mjelm_mg_kg', potassium_mjelm_mg_kg FROM grid
UNION ALL
SELECT release, site_id, modality, top_cm, bottom_cm, mid_cm, 'calcium_mjelm_mg_kg', calcium_mjelm_mg_kg FROM grid
UNION ALL
SELECT release, site_id, modality, top_cm, bottom_cm, mid_cm, 'ph_h2o', ph_h2o FROM grid
