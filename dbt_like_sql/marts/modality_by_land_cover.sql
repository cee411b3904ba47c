-- materialized: table
-- description: Per release and land cover: number of bimodal and unimodal sites and the bimodal share.
-- unique: release, land_cover
-- not_null: release, land_cover, n_sites
SELECT
    modality.release,
    coalesce(cover."Land.cover", 'unknown') AS land_cover,
    count(*) FILTER (WHERE modality.modality = 'bimodal') AS n_bimodal,
    count(*) FILTER (WHERE modality.modality = 'unimodal') AS n_unimodal,
    count(*) AS n_sites,
    round(count(*) FILTER (WHERE modality.modality = 'bimodal') / count(*), 3) AS bimodal_share
FROM analysis.site_modality AS modality
LEFT JOIN raw.site_land_cover AS cover
    ON cover.site_id = modality.site_id AND cover.release = modality.release AND NOT cover.quarantined
GROUP BY ALL
ORDER BY modality.release, land_cover
