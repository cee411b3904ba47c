"""One asset factory over the step registry (`rootassets.science.steps`): every declared step becomes an asset.

From each `Step` the factory derives the asset keys (the tables it writes), deps (the tables it
reads), description (its docstring), run config (its parameter dataclass: defaults live there
only), code version (a hash of its source and the science it reaches, plus its tables' contracts),
blocking checks (its invariants) and the write through each table's contract.
"""

import dataclasses
import hashlib
import typing
from collections.abc import Iterator
from typing import Any

import polars as pl
import pydantic
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from rootassets.defs.partitions import neon_release
from rootassets.defs.publish import CheckOutcome, check_specs, publish
from rootassets.defs.resources import WarehouseResource
from rootassets.defs.version_cache import step_code_version
from rootassets.neon.identifiers import validate_release
from rootassets.schemas import CONTRACTS, TableContract
from rootassets.science.registry import (
    Step,
    StepInputError,
    gather_inputs,
    parameter_metadata,
    source_text,
)
from rootassets.science.steps import STEPS


def key(table: str) -> AssetKey:
    return AssetKey(table.split("."))


def step_version(step: Step) -> str:
    """The step's derived version, with the contracts of the tables it writes (a contract shapes the rows)."""
    contracts = "|".join(_contract_text(CONTRACTS.get(t)) for t in step.writes)
    return hashlib.sha256(f"{step_code_version(step)}|{contracts}".encode()).hexdigest()[:16]


def _contract_text(contract: TableContract | None) -> str:
    if contract is None:
        return "none"
    own = [c for c in contract.schema.__mro__ if c.__module__ == contract.schema.__module__]
    return "".join(source_text(c) for c in own) + repr(contract.key)


def config_class(step: Step) -> type[Config]:
    """A Dagster run config with the fields and defaults of the step's parameter dataclass (tuples as lists)."""
    fields: dict[str, Any] = {}
    if step.parameters is not None:
        hints = typing.get_type_hints(step.parameters)
        for f in dataclasses.fields(step.parameters):
            kind, default = hints[f.name], f.default
            if typing.get_origin(kind) is tuple:
                kind, default = list[typing.get_args(kind)[0]], list(default)
            fields[f.name] = (kind, default)
    doc = f"Parameters of {step.name} (`{step.parameters.__name__}`, METHOD.md defaults)." if step.parameters else None
    return pydantic.create_model(f"{step.name.title().replace('_', '')}Config", __base__=Config, __doc__=doc, **fields)


def parameters_from(step: Step, config: Config) -> Any:
    if step.parameters is None:
        return None
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(step.parameters)}
    hints = typing.get_type_hints(step.parameters)
    values = {k: tuple(v) if typing.get_origin(hints[k]) is tuple else v for k, v in values.items()}
    return step.parameters(**values)


def step_asset(step: Step):
    version = step_version(step)
    specs = [
        AssetSpec(
            key(table),
            deps=[key(t) for t in dict.fromkeys(r.table for r in step.reads)],
            description=step.description(table),
            group_name=step.group,
            kinds=set(step.kinds),
            tags=dict(step.tags),
            code_version=version,
            partitions_def=neon_release,
        )
        for table in (*step.writes, *step.artifacts)
    ]
    checks = [
        spec
        for table in step.writes
        for spec in check_specs(
            key(table), {c.name: c.description for c in step.checks if c.table == table.split(".", 1)[1]}
        )
    ]
    run_config = config_class(step)

    @multi_asset(
        required_resource_keys={"warehouse", "artifacts"} if step.artifacts else {"warehouse"},
        name=f"{step.group}_{step.name}",
        specs=specs,
        check_specs=checks,
        can_subset=True,
        pool="duckdb",
        description=step.doc,
    )
    def _asset(context: AssetExecutionContext, config: run_config) -> Iterator:
        warehouse: WarehouseResource = context.resources.warehouse
        release = validate_release(context.partition_key)
        params = parameters_from(step, config)
        try:
            with warehouse.session():
                inputs = gather_inputs(step, params, release, _Source(warehouse))
            result = step.run(inputs, params)
        except StepInputError as exc:
            raise Failure(description=f"{step.name} {release}: {exc}") from exc
        for note in result.notes:
            context.log.warning(f"{step.name} {release}: {note}")
        recorded = {"parameters": parameter_metadata(params)} if params is not None else {}
        for asset, location in step.artifacts.items():
            if key(asset) in context.selected_asset_keys:
                name = asset.split(".", 1)[1]
                yield _keep(
                    context.resources.artifacts,
                    asset,
                    location,
                    result.artifacts.get(name),
                    release,
                    {**recorded, **result.metadata.get(name, {})},
                )
        with warehouse.session():  # one opening of the file for all the step's tables (~30 ms each)
            for table in step.writes:
                if key(table) not in context.selected_asset_keys:
                    continue
                yield from _write(
                    step,
                    warehouse,
                    table,
                    result.tables[table.split(".", 1)[1]],
                    release,
                    inputs,
                    params,
                    {**recorded, **result.metadata.get(table.split(".", 1)[1], {})},
                )

    return _asset


class _Source:
    """The warehouse as the registry's `TableSource`: what this run sees."""

    def __init__(self, warehouse: WarehouseResource) -> None:
        self.warehouse = warehouse

    def read(self, schema: str, table: str, release: str, where: str = "") -> pl.DataFrame:
        return self.warehouse.read(schema, table, release, where)

    def releases(self, schema: str, table: str) -> list[str]:
        return self.warehouse.visible_releases(schema, table)

    def read_csv(self, path: str) -> pl.DataFrame:
        return pl.read_csv(path)


def _keep(
    artifacts: Any, asset: str, location: str, obj: Any, release: str, metadata: dict[str, Any]
) -> MaterializeResult:
    """Save a step's object (joblib) under ROOTASSETS_HOME/<kind>/<release>/; None removes the old file, so that
    an object made from other data never passes for this release's."""
    kind, file_name = location.split("/", 1)
    path = artifacts.folder(kind, release) / file_name
    if obj is None:
        path.unlink(missing_ok=True)
        return MaterializeResult(asset_key=key(asset), metadata={**metadata, "release": release})
    import joblib  # imported where used

    joblib.dump({**obj, "release": release} if isinstance(obj, dict) else obj, path)
    return MaterializeResult(
        asset_key=key(asset), metadata={**metadata, "path": MetadataValue.path(str(path)), "release": release}
    )


def _write(
    step: Step,
    warehouse: WarehouseResource,
    table: str,
    frame: pl.DataFrame,
    release: str,
    inputs: dict[str, pl.DataFrame],
    params: Any,
    metadata: dict[str, Any],
) -> Iterator:
    name = table.split(".", 1)[1]
    invariants = {
        c.name: (lambda f, rule=c.rule: CheckOutcome(*rule(f, inputs, params))) for c in step.checks if c.table == name
    }
    yield from publish(
        warehouse, key(table), frame, release, CONTRACTS.get(table), invariants, metadata, step.description(table)
    )


step_assets = [step_asset(step) for step in STEPS]


def assets_of_group(group: str) -> list:
    return [a for a, step in zip(step_assets, STEPS, strict=True) if step.group == group]
