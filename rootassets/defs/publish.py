"""Write a computed table: screen it, evaluate its blocking checks, then replace its partition.

Blocking checks are evaluated on the rows that would be written, before
anything is written: when one fails, its result is recorded (visible in the
UI), the asset fails, downstream assets do not run, and the tables of the
last good run stay as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, Failure, MaterializeResult

from rootassets.defs.metadata import comment_statement, table_metadata
from rootassets.defs.resources import WarehouseResource
from rootassets.schemas import TableContract
from rootassets.warehouse.quarantine import Screened, StructuralError, empty_quarantine, screen


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    metadata: dict[str, Any] = field(default_factory=dict)


Invariant = Callable[[pl.DataFrame], CheckOutcome]


def check_specs(key: AssetKey, invariants: dict[str, str]) -> list[AssetCheckSpec]:
    """Blocking check specs for `key`, from {name: description}."""
    return [AssetCheckSpec(name, asset=key, blocking=True, description=text) for name, text in invariants.items()]


def publish(
    warehouse: WarehouseResource,
    key: AssetKey,
    frame: pl.DataFrame,
    release: str,
    contract: TableContract | None,
    invariants: dict[str, Invariant],
    metadata: dict[str, Any],
    description: str | None = None,
) -> Iterator[MaterializeResult | AssetCheckResult]:
    """Screen `frame` against `contract`, run `invariants` on the kept rows, and write if they pass (with
    `description` as the table's DuckDB comment).

    A table without a contract yet is written as computed (no quarantine); its invariants still block.
    """
    schema, table = key.path
    rows = frame.with_columns(pl.lit(release).alias("release"))
    if contract is None:
        screened = Screened(rows=rows, kept=rows, quarantined=empty_quarantine(), rows_in=rows.height)
    else:
        try:
            screened = screen(rows, contract, f"{schema}.{table}", release)
        except StructuralError as exc:
            raise Failure(description=str(exc)) from exc
    outcomes = {name: check(screened.kept) for name, check in invariants.items()}
    results = [
        AssetCheckResult(
            asset_key=key, check_name=name, passed=o.passed, metadata=o.metadata, severity=AssetCheckSeverity.ERROR
        )
        for name, o in outcomes.items()
    ]
    failed = [name for name, o in outcomes.items() if not o.passed]
    if failed:
        yield from results
        raise Failure(
            description=f"{schema}.{table} for {release}: blocking check(s) {', '.join(failed)} failed; "
            "nothing was written and the previous results are unchanged",
            metadata={name: str(outcomes[name].metadata)[:500] for name in failed},
        )
    written = {(schema, table): screened.kept}
    if contract is not None:
        written[("quarantine", table)] = screened.quarantined
    comment = comment_statement(schema, table, description)
    with warehouse.session():
        warehouse.write(written, release)
        if comment:
            warehouse.define(f"comment:{schema}.{table}", comment)
    yield MaterializeResult(
        asset_key=key,
        metadata={
            **table_metadata(screened.kept, release, table=f"{schema}.{table}"),
            **(screened.summary() if contract else {}),
            **metadata,
        },
        check_results=results,
    )
