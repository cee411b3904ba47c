-- materialized: view
-- description: The newest numbered NEON release with analysis results (PROVISIONAL is not a release).
-- unique: release
-- not_null: release
SELECT max(release) AS release
FROM analysis.site_modality
WHERE release LIKE 'RELEASE-%'
