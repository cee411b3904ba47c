-- materialized: view
-- description: The group tests of the latest release (bimodal vs unimodal), most significant first.
-- unique: name
-- not_null: name, test, release
SELECT name, test, statistic, p_value, n_bimodal, n_unimodal, detail, release
FROM analysis.group_tests
WHERE release = (SELECT release FROM marts.latest_release)
ORDER BY p_value
