"""NEON's documentation of each product in the database, and the citations of a release.

`raw.variables` (NEON's variables file as published: table, fieldName,
description, dataType, units, ...), `raw.issue_log` (the API's changeLogs,
or offline the readme's ISSUE LOG) and `raw.product_citations` (each
product's DOI for the release), all per product and release; and
`reports/<release>/citations.bib` with each product's DOI, the paper and
rootassets' version.
"""

import hashlib
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version

import polars as pl
from dagster import (
    AssetCheckKey,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from rootassets.defs.metadata import comment_statement, table_metadata
from rootassets.defs.neon_sources import source_key
from rootassets.defs.partitions import neon_release
from rootassets.defs.raw import RAW_CHECKS, quarantine_share_check
from rootassets.defs.resources import ArtifactStore, NeonSourceResource, WarehouseResource
from rootassets.defs.version_cache import module_code_version
from rootassets.neon.citations import bibtex
from rootassets.neon.declared import DeclaredProduct
from rootassets.neon.documents import ISSUE_LOG_COLUMNS, VARIABLES_COLUMNS, ProductDocuments, issue_log_frame
from rootassets.neon.identifiers import validate_release
from rootassets.neon.products import PRODUCTS, ProductSpec
from rootassets.neon.source import NeonSource
from rootassets.schemas import DOCUMENT_CONTRACTS
from rootassets.warehouse.quarantine import screen

DOCUMENTS_CODE_VERSION = module_code_version(__name__)  # derived: this module's source and the rootassets code it uses

DESCRIPTIONS = {
    "variables": "`raw.variables`: NEON's variables file per product and release, NEON's own columns as published "
    "(table, fieldName, description, dataType, units, ...). Empty for a release whose source has none.",
    "issue_log": "`raw.issue_log`: NEON's issue log per product and release: the API's `changeLogs` for the product, "
    "or, offline, the ISSUE LOG section of the product's readme (`origin` says which).",
    "product_citations": "`raw.product_citations`: each product's DOI and NEON's citation text for the release.",
}


def _spec(name: str, codes: list[str]) -> AssetSpec:
    return AssetSpec(
        key=AssetKey(["raw", name]),
        description=DESCRIPTIONS[name],
        group_name="raw",
        deps=[source_key(code) for code in codes],
        kinds={"duckdb"},
        code_version=DOCUMENTS_CODE_VERSION,
        partitions_def=neon_release,
    )


def product_sources(neon: NeonSourceResource, declared: list[DeclaredProduct]) -> list[tuple[ProductSpec, NeonSource]]:
    """Every product documented here with the source it is read from: the platform's products and the
    declared ones (from their own download when they name one)."""
    source = neon.source()
    pairs: list[tuple[ProductSpec, NeonSource]] = [(p, source) for p in PRODUCTS.values()]
    pairs += [(d.spec, d.download() or source) for d in declared]
    return pairs


def build_raw_neon_documents(declared: list[DeclaredProduct]) -> AssetsDefinition:
    """`raw.variables`, `raw.issue_log` and `raw.product_citations` for the platform's and the declared
    products."""
    codes = [*PRODUCTS, *(d.spec.code for d in declared)]

    @multi_asset(
        name="raw_neon_documents",
        specs=[_spec(n, codes) for n in DESCRIPTIONS],
        pool="duckdb",
        can_subset=True,
        check_specs=[
            AssetCheckSpec("quarantine_share", asset=AssetKey(["raw", n]), description=RAW_CHECKS["quarantine_share"])
            for n in DESCRIPTIONS
        ],
        description="NEON's documentation of every product: variables, issue log, DOI per release.",
    )
    def raw_neon_documents(
        context: AssetExecutionContext, neon: NeonSourceResource, warehouse: WarehouseResource
    ) -> Iterator[MaterializeResult]:
        release = validate_release(context.partition_key)
        pairs = product_sources(neon, declared)
        variables, logs, citations = [], [], []
        for product, source in pairs:
            docs, doi = source.documents(product, release)
            variables.append(variables_rows(product.code, release, docs))
            logs.append(issue_log_rows(product.code, release, docs))
            citations.append(
                {
                    "product": product.code,
                    "product_name": product.name,
                    "release": release,
                    "doi": doi,
                    "citation": product.citation(release, doi),
                    "source": source.describe(),
                }
            )
            context.log.info(
                f"{product.code} {release}: variables from {docs.variables_file or 'no file'}, "
                f"{len(docs.change_logs)} issue-log entries ({docs.change_logs_origin}), "
                f"DOI {doi or 'not announced'}"
            )
        frames = {
            "variables": pl.concat(variables, how="diagonal_relaxed"),
            "issue_log": pl.concat(logs, how="diagonal_relaxed"),
            "product_citations": pl.DataFrame(citations, schema={k: pl.String for k in citations[0]}),
        }
        selected = {key.path[-1] for key in context.selected_asset_keys}
        screened = {
            name: screen(frame, DOCUMENT_CONTRACTS[name], f"raw.{name}", release)
            for name, frame in frames.items()
            if name in selected
        }
        written = {("raw", n): s.kept for n, s in screened.items()}
        written.update({("quarantine", n): s.quarantined for n, s in screened.items()})
        with warehouse.session():  # the rows and their comments: one opening of the file
            warehouse.write(written, release)
            for name in screened:
                warehouse.define(f"comment:raw.{name}", comment_statement("raw", name, DESCRIPTIONS[name]))
        fingerprint = documents_fingerprint(pairs, release)
        for name, s in screened.items():
            content = hashlib.sha256(s.kept.drop("source", strict=False).write_csv().encode()).hexdigest()[:24]
            key = AssetKey(["raw", name])
            checks = (
                [quarantine_share_check(key, s)]
                if AssetCheckKey(key, "quarantine_share") in context.selected_asset_check_keys
                else []
            )
            yield MaterializeResult(
                asset_key=key,
                data_version=DataVersion(content),
                check_results=checks,
                metadata={
                    **table_metadata(s.kept, release, table=f"raw.{name}"),
                    **s.summary(),
                    "source_fingerprint": fingerprint or "unknown",
                },
            )

    return raw_neon_documents


def documents_fingerprint(pairs: list[tuple[ProductSpec, NeonSource]], release: str) -> str | None:
    """The documentation tables are read from every product's files: their fingerprints together."""
    parts = [source.fingerprint(product, release) for product, source in pairs]
    if any(p is None for p in parts):
        return None
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:24]


def variables_rows(product: str, release: str, docs: ProductDocuments) -> pl.DataFrame:
    """The variables table as published, with the product, release and file it came from."""
    base = (
        docs.variables if docs.variables is not None else pl.DataFrame(schema={c: pl.String for c in VARIABLES_COLUMNS})
    )
    return base.with_columns(
        pl.lit(product).alias("product"),
        pl.lit(release).alias("release"),
        pl.lit(docs.variables_file, dtype=pl.String).alias("source_file"),
    )


def issue_log_rows(product: str, release: str, docs: ProductDocuments) -> pl.DataFrame:
    origin = {"api": "api changeLogs", "readme": "readme ISSUE LOG"}.get(docs.change_logs_origin, "api changeLogs")
    frame = issue_log_frame(docs.change_logs)
    return (
        frame.with_row_index("entry", offset=1)
        .with_columns(
            pl.col("entry").cast(pl.Int64),
            pl.lit(product).alias("product"),
            pl.lit(release).alias("release"),
            pl.lit(origin).alias("origin"),
        )
        .select("product", "entry", *ISSUE_LOG_COLUMNS, "origin", "release")
    )


def rootassets_version() -> str:
    try:
        return version("rootassets")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
        return "unknown"


@asset(
    key=AssetKey(["reports", "citations"]),
    deps=[AssetKey(["raw", "product_citations"])],
    partitions_def=neon_release,
    group_name="reports",
    kinds={"bibtex"},
    code_version=DOCUMENTS_CODE_VERSION,
)
def citations(
    context: AssetExecutionContext, warehouse: WarehouseResource, artifacts: ArtifactStore
) -> MaterializeResult:
    """`reports/<release>/citations.bib`: each NEON product with its DOI for the release, the paper reproduced
    (Lu et al. 2025) and the rootassets version that computed the results."""
    release = validate_release(context.partition_key)
    rows = warehouse.read("raw", "product_citations", release).sort("product").to_dicts()
    text = bibtex(rows, release, rootassets_version())
    path = artifacts.folder("reports", release) / "citations.bib"
    path.write_text(text)
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(path)),
            "entries": text.count("\n@") + 1,
            "citations": MetadataValue.md(f"```bibtex\n{text}```"),
            "release": release,
        }
    )


def build_document_assets(declared: list[DeclaredProduct]) -> list[AssetsDefinition]:
    return [build_raw_neon_documents(declared), citations]


raw_neon_documents = build_raw_neon_documents([])
document_assets = [raw_neon_documents, citations]
