"""The warehouse layer: DuckDB access for every other layer but `science/` and `neon/`.

- `connection`: the DuckDB contract (schemas, one `release` column, replace by partition) and connections;
- `staging`: a run's tables staged, and the one commit path that makes them visible together;
- `quarantine`: rows screened against their table's contract, the refused ones kept with the reason;
- `sqlmodels`: the dbt-like SQL models of `dbt_like_sql/`.

The connection API is re-exported here, as the package's public face.
"""

from rootassets.warehouse.connection import (
    INTERNAL_SCHEMAS,
    SCHEMAS,
    Location,
    WarehouseBusyError,
    WarehouseVersionError,
    check_frames,
    connect_read_only,
    connect_writable,
    qualified,
    quote_ident,
    read_release,
    replace_partitions,
    replace_rows,
    table_columns,
    transaction,
)

__all__ = [
    "INTERNAL_SCHEMAS",
    "Location",
    "SCHEMAS",
    "WarehouseBusyError",
    "WarehouseVersionError",
    "check_frames",
    "connect_read_only",
    "connect_writable",
    "qualified",
    "quote_ident",
    "read_release",
    "replace_partitions",
    "replace_rows",
    "table_columns",
    "transaction",
]
