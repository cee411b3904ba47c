-- materialized: table
-- description: Per release, nutrient and modality: sites, mean and median exponent (per cm), share of positive exponents, median r2.
-- unique: release, nutrient, modality
-- not_null: release, nutrient, n_sites
SELECT
    release,
    nutrient,
    modality,
    count(*) AS n_sites,
    avg(exponent) AS mean_exponent,
    median(exponent) AS median_exponent,
    avg(CASE WHEN exponent > 0 THEN 1.0 ELSE 0.0 END) AS share_positive,
    median(r2) AS median_r2
FROM analysis.nutrient_exponents
GROUP BY ALL
ORDER BY release, nutrient, modality
