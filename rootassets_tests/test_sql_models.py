"""dbt-like SQL models: dependencies and column lineage parsed with sqlglot, errors named by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, materialize

from rootassets.defs.marts import mart_assets, model_asset, reads_through_marts
from rootassets.warehouse import Location, connect_read_only
from rootassets.warehouse.sqlmodels import SqlModelError, column_lineage, discover_models, parse_model
from rootassets_tests.conftest import warehouse_resource

EXPECTED_UPSTREAM = {
    "marts.latest_release": {("analysis", "site_modality")},
    "marts.site_summary": {
        ("marts", "latest_release"),
        ("analysis", "site_modality"),
        ("analysis", "phi"),
        ("analysis", "nutrient_exponents"),
        ("analysis", "site_label_robustness"),
        ("harmonized", "site_root_biomass"),
        ("raw", "field_site_metadata"),
        ("raw", "site_land_cover"),
    },
    "marts.modality_by_land_cover": {("analysis", "site_modality"), ("raw", "site_land_cover")},
    "marts.nutrient_exponent_summary": {("analysis", "nutrient_exponents")},
    "marts.root_profiles_long": {
        ("harmonized", "root_profiles"),
        ("harmonized", "soil_profiles"),
        ("analysis", "site_modality"),
    },
    "marts.latest_group_tests": {("analysis", "group_tests"), ("marts", "latest_release")},
}


def test_a_marts_preview_reads_its_tables_and_those_of_the_marts_it_reads_on_down() -> None:
    models = {(m.schema, m.name): m for m in discover_models()}
    through = EXPECTED_UPSTREAM["marts.site_summary"] | EXPECTED_UPSTREAM["marts.latest_release"]
    dotted = {f"{s}.{t}" for s, t in through}
    assert reads_through_marts(models[("marts", "site_summary")], models) == dotted
    assert reads_through_marts(models[("marts", "latest_release")], models) == {"analysis.site_modality"}
    assert reads_through_marts(models[("marts", "site_summary")], {}) == {
        f"{s}.{t}" for s, t in EXPECTED_UPSTREAM["marts.site_summary"]
    }


def test_every_model_has_its_parsed_dependencies() -> None:
    models = {m.table: m for m in discover_models()}
    assert set(models) == set(EXPECTED_UPSTREAM)
    for table, upstream in EXPECTED_UPSTREAM.items():
        assert set(models[table].upstream) == upstream, table
        assert models[table].parse_error is None


def test_assets_carry_the_parsed_dependencies_as_lineage() -> None:
    by_key = {a.key: a for a in mart_assets}
    for table, upstream in EXPECTED_UPSTREAM.items():
        key = AssetKey(table.split("."))
        deps = {dep.asset_key for dep in by_key[key].specs_by_key[key].deps}
        assert deps == {AssetKey(list(u)) for u in upstream}, table
        assert by_key[key].group_names_by_key[key] == "marts"


def test_column_lineage_is_traced_through_ctes() -> None:
    model = next(m for m in discover_models() if m.table == "marts.site_summary")
    schema = {
        "analysis": {
            "site_modality": {
                c: "DOUBLE"
                for c in ("site_id", "modality", "d0_cm", "d1_cm", "d2_cm", "total_fine_root_biomass_g_m2", "release")
            },
            "phi": {c: "DOUBLE" for c in ("site_id", "phi", "property", "method", "release")},
            "nutrient_exponents": {c: "DOUBLE" for c in ("site_id", "exponent", "nutrient", "release")},
        },
        "raw": {
            "field_site_metadata": {
                c: "DOUBLE"
                for c in ("site_id", "field_site_name", "field_latitude", "field_longitude", "release", "quarantined")
            },
            "site_land_cover": {c: "DOUBLE" for c in ("site_id", "Land.cover", "release", "quarantined")},
        },
        "harmonized": {"site_root_biomass": {c: "DOUBLE" for c in ("site_id", "fine_root_cutoff_mm", "release")}},
        "marts": {"latest_release": {"release": "VARCHAR"}},
    }
    lineage = column_lineage(model, schema)
    assert lineage["latitude"] == [("raw", "field_site_metadata", "field_latitude")]
    assert lineage["d2_cm"] == [("analysis", "site_modality", "d2_cm")]
    assert ("analysis", "phi", "phi") in lineage["phi_root_biomass"]
    assert (
        lineage["exponent_ca"] == [("analysis", "nutrient_exponents", "exponent")]
        or ("analysis", "nutrient_exponents", "exponent") in lineage["exponent_ca"]
    )


def test_sql_error_names_the_model_file_and_line(tmp_path: Path, warehouse: Location) -> None:
    (tmp_path / "marts").mkdir()
    bad = tmp_path / "marts" / "broken.sql"
    bad.write_text("-- materialized: table\nSELECT 1 AS a,\n    no_such_column AS b\nFROM (SELECT 1 AS x)\n")
    result = materialize(
        [model_asset(parse_model(bad, tmp_path))],
        resources={"warehouse": warehouse_resource(warehouse)},
        raise_on_error=False,
    )
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert message.startswith("marts/broken.sql:3: ") and "no_such_column" in message


def test_parse_error_names_the_model_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "marts").mkdir()
    bad = tmp_path / "marts" / "garbled.sql"
    bad.write_text("-- materialized: view\nSELECT a,\nFROM WHERE (\n")
    model = parse_model(bad, tmp_path)
    assert model.parse_error and "garbled.sql:" in model.parse_error


def test_bad_materialization_and_location_are_refused(tmp_path: Path) -> None:
    (tmp_path / "marts").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "marts" / "x.sql").write_text("-- materialized: index\nSELECT 1\n")
    (tmp_path / "elsewhere" / "y.sql").write_text("SELECT 1\n")
    with pytest.raises(SqlModelError, match="x.sql:1: materialized must be 'table' or 'view'"):
        parse_model(tmp_path / "marts" / "x.sql", tmp_path)
    with pytest.raises(SqlModelError, match="<schema>/<name>.sql"):
        parse_model(tmp_path / "elsewhere" / "y.sql", tmp_path)


def test_a_view_model_is_created_as_a_view(tmp_path: Path, warehouse: Location) -> None:
    (tmp_path / "marts").mkdir()
    path = tmp_path / "marts" / "numbers.sql"
    path.write_text("-- materialized: view\n-- description: numbers\nSELECT range AS n FROM range(3)\n")
    result = materialize(
        [model_asset(parse_model(path, tmp_path))], resources={"warehouse": warehouse_resource(warehouse)}
    )
    assert result.success
    with connect_read_only(warehouse) as con:
        assert con.execute(
            "select table_type from information_schema.tables where table_name='numbers'"
        ).fetchone() == ("VIEW",)


def test_model_tests_block_a_mart_that_breaks_them_and_leave_the_old_one(tmp_path: Path, warehouse: Location) -> None:
    (tmp_path / "marts").mkdir()
    path = tmp_path / "marts" / "sites.sql"
    path.write_text(
        "-- materialized: table\n-- unique: site\n-- not_null: site\nSELECT * FROM (VALUES ('A'), ('B')) AS t(site)\n"
    )
    resources = {"warehouse": warehouse_resource(warehouse)}
    good = materialize([model_asset(parse_model(path, tmp_path))], resources=resources)
    assert good.success
    assert {e.check_name: e.passed for e in good.get_asset_check_evaluations()} == {
        "unique": True,
        "not_null": True,
        "row_count": True,
    }

    path.write_text(
        "-- materialized: table\n-- unique: site\n-- not_null: site\n"
        "SELECT * FROM (VALUES ('A'), ('A'), ('A'), (NULL)) AS t(site)\n"
    )
    bad = materialize([model_asset(parse_model(path, tmp_path))], resources=resources, raise_on_error=False)
    assert not bad.success
    evaluations = {e.check_name: e for e in bad.get_asset_check_evaluations()}
    assert not evaluations["unique"].passed and evaluations["unique"].metadata["failing_rows"].value == 2
    assert not evaluations["not_null"].passed and evaluations["not_null"].metadata["failing_rows"].value == 1
    message = next(e for e in bad.all_events if e.is_step_failure).step_failure_data.user_failure_data.description
    assert "marts.sites: test(s) unique, not_null failed" in message
    with connect_read_only(warehouse) as con:
        assert con.execute("select site from marts.sites order by 1").fetchall() == [("A",), ("B",)]


def test_a_test_naming_a_column_the_model_lacks_is_refused(tmp_path: Path) -> None:
    (tmp_path / "marts").mkdir()
    path = tmp_path / "marts" / "sites.sql"
    path.write_text("-- unique: site_code\nSELECT 'A' AS site\n")
    with pytest.raises(SqlModelError, match="sites.sql: unique names site_code, not columns of the model"):
        parse_model(path, tmp_path)


def test_every_shipped_mart_declares_its_keys() -> None:
    for model in discover_models():
        assert model.unique and model.not_null, model.table
