"""Every column the platform computes is explained (glossary), and a renamed column is renamed in place."""

from __future__ import annotations

import duckdb
import pandera.polars as pa
import polars as pl

from rootassets import schemas
from rootassets.science.glossary import describe_column
from rootassets.warehouse.connection import replace_partitions, table_columns


def contract_tables() -> list[tuple[str, str, list[str]]]:
    """(schema, table, columns) of every pandera contract of a harmonized or analysis table."""
    out = []
    for model in vars(schemas).values():
        if isinstance(model, type) and issubclass(model, pa.DataFrameModel) and model.__doc__:
            name = model.__doc__.split(":")[0].split()[0]
            if name.startswith(("harmonized.", "analysis.")):
                out.append((*name.split("."), list(model.to_schema().columns)))
    return out


def test_every_contract_column_of_the_derived_tables_is_described() -> None:
    tables = contract_tables()
    assert len(tables) > 15
    missing = [f"{s}.{t}.{c}" for s, t, columns in tables for c in columns if not describe_column(s, t, c)]
    assert missing == []


def test_neons_own_raw_fields_are_left_to_neons_variables_file() -> None:
    assert describe_column("raw", "mpr_perrootsample", "rootDryMass") is None
    assert describe_column("raw", "mpr_perrootsample", "site_id")  # what the platform adds is described
    assert "mg/kg" in describe_column("harmonized", "soil_profiles", "calcium_mjelm_mg_kg")
    assert "0-30 cm" in describe_column("analysis", "site_factors", "clay_pct_0_30cm")


def test_a_table_written_before_a_rename_has_its_column_renamed_in_place() -> None:
    con = duckdb.connect()
    old = pl.DataFrame({"site_id": ["ABBY"], "primary_density": [0.02], "n_depths": [40], "release": ["RELEASE-2021"]})
    replace_partitions(con, {("analysis", "site_modality"): old}, "RELEASE-2021")
    new = pl.DataFrame(
        {"site_id": ["ABBY"], "d0_kde_density": [0.03], "kde_sample_size": [41], "release": ["RELEASE-2022"]}
    )
    replace_partitions(con, {("analysis", "site_modality"): new}, "RELEASE-2022")
    assert list(table_columns(con, "analysis", "site_modality")) == [
        "site_id",
        "d0_kde_density",
        "kde_sample_size",
        "release",
    ]
    rows = con.sql("select release, d0_kde_density from analysis.site_modality order by release").fetchall()
    assert rows == [("RELEASE-2021", 0.02), ("RELEASE-2022", 0.03)]  # the old release's values kept, one name


def test_a_raw_table_written_with_neons_site_column_beside_site_id_keeps_one_name() -> None:
    """Raw tables once carried NEON's siteID (or field_site_id) beside site_id: the next write folds a value
    only the former had (a lab's rows) into site_id and drops the former column; no value is lost."""
    con = duckdb.connect()
    old = pl.DataFrame(
        {
            "uid": ["a", "b"],
            "siteID": ["BART", "HARV"],
            "site_id": ["BART", None],
            "release": ["RELEASE-2021", "RELEASE-2021"],
        }
    )
    replace_partitions(con, {("raw", "mpr_carbonNitrogen"): old}, "RELEASE-2021")
    new = pl.DataFrame({"uid": ["c"], "site_id": ["KONZ"], "release": ["RELEASE-2022"]})
    replace_partitions(con, {("raw", "mpr_carbonNitrogen"): new}, "RELEASE-2022")
    assert list(table_columns(con, "raw", "mpr_carbonNitrogen")) == ["uid", "site_id", "release"]
    rows = con.sql('select uid, site_id from raw."mpr_carbonNitrogen" order by uid').fetchall()
    assert rows == [("a", "BART"), ("b", "HARV"), ("c", "KONZ")]
