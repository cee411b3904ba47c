"""The `rootassets` command line: materialize, releases, sql, mirror, stack, products, ui."""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from rootassets.science.glossary import USER_SCHEMAS
from rootassets.settings import LakeConfigError, Settings

UI_STOP_GRACE_S = 12.0  # how long the UI's processes get to shut down before they are killed


class CliError(Exception):
    """A failure to report to the user in one line, with exit code 1."""

    exit_code = 1


class UsageError(CliError):
    """A request refused before any work starts or anything is written (an unknown release, an empty query, a
    bad selection): one line naming the thing and what exists, exit code 2."""

    exit_code = 2


def entry() -> NoReturn:
    """The `rootassets` command: `main`, then exit without the interpreter's last collection of the cyclic garbage
    Dagster and the libraries leave (0.65 s of a cold `materialize`). Every file, database and instance is closed
    by then (context managers) and the operating system frees the memory; `main` alone, as the tests call it in
    their own process, leaves the collector as it is."""
    code = main()
    gc.freeze()
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except CliError as exc:
        print(f"rootassets: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except LakeConfigError as exc:  # ROOTASSETS_WAREHOUSE or ROOTASSETS_LAKE_DATA as given cannot be used
        print(f"rootassets: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader stopped early (`| head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a failure nobody anticipated: one line, the traceback only when asked
        if getattr(args, "debug", False):
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        print(
            f"rootassets: error: {type(exc).__name__}: {first} (rerun with --debug for the traceback)", file=sys.stderr
        )
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rootassets",
        description="NEON megapit root-bimodality assets: materialize, query, mirror.",
    )
    parser.add_argument("--debug", action="store_true", help="print the traceback of an unexpected failure")
    common = argparse.ArgumentParser(add_help=False)  # --debug after the command works too
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "materialize", parents=[common], help="run the main job for one NEON release in the persistent instance"
    )
    p.add_argument("--release", default="latest", help="NEON release tag (RELEASE-2021, PROVISIONAL) or 'latest'")
    p.add_argument("--select", default=None, help="Dagster asset selection, e.g. 'key:raw/*' (default: all)")
    p.add_argument(
        "--force",
        action="store_true",
        help="recompute every selected asset, even those up to date (same code and inputs)",
    )
    p.add_argument(
        "--full-check",
        action="store_true",
        help="let Dagster decide what is stale even when nothing changed since the last committed refresh "
        "(without it, an unchanged release is reported up to date in a second)",
    )
    p.set_defaults(handler=_materialize)

    p = sub.add_parser(
        "releases", parents=[common], help="list NEON's releases and the instance's release partitions; add partitions"
    )
    p.add_argument(
        "--add",
        action="append",
        default=[],
        metavar="TAG",
        help="add the release partition TAG (e.g. RELEASE-2021) to the persistent instance, so that "
        "`dg launch --partition TAG` and the UI can run it; repeatable",
    )
    p.set_defaults(handler=_releases)

    p = sub.add_parser("sql", parents=[common], help="run a read-only SQL query against the DuckDB file")
    p.add_argument(
        "query",
        nargs="?",
        default=None,
        help="one or more SQL statements (separated by ;); every result is printed. Without it: the statements "
        "on stdin, or, at a terminal, DuckDB's own shell on the read-only database (history, multi-line, .tables)",
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="print a header line, then rows, as CSV")
    fmt.add_argument("--json", action="store_true", help="print rows as a JSON array of objects")
    p.add_argument(
        "--as-of",
        metavar="RELEASE|SNAPSHOT",
        help="on the DuckLake backend: query the lake as the newest refresh of RELEASE left it (or as of a lake "
        "snapshot id); every table, not only that release's rows",
    )
    p.set_defaults(handler=_sql)

    p = sub.add_parser(
        "tables", parents=[common], help="the tables users query: schema.table, what it holds, and its rows per release"
    )
    p.add_argument("--schema", action="append", default=[], help="only this schema (repeatable)")
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    p.set_defaults(handler=_tables)

    p = sub.add_parser("mirror", parents=[common], help="serve snapshot folders as the NEON Data API on 127.0.0.1")
    p.add_argument(
        "--snapshot",
        required=True,
        help="snapshot folder(s) (layout of ../shared/neon-snapshot), several joined with ':'",
    )
    p.add_argument("--port", type=int, default=8765, help="port of the API origin")
    p.add_argument(
        "--storage-port",
        type=int,
        default=0,
        help="port of the storage origin serving the signed file URLs (default: any free port)",
    )
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (loopback only)")
    p.add_argument(
        "--no-token-required",
        action="store_true",
        help="answer /data* without an API token (NEON requires one since June 2026)",
    )
    p.add_argument("--url-ttl", type=int, default=7 * 24 * 3600, help="validity of signed file URLs, seconds")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND=COUNT",
        help="inject a fault into the next COUNT requests (-1: always); kinds: rate_limit "
        "(X-RateLimit-Reset 100, RetryAfter 1), server_error, drop, truncate, bad_checksum, slow, "
        "malformed_json, hostile_ids, expired_url, expired_token",
    )
    p.add_argument(
        "--fault-scope",
        choices=("all", "json", "files"),
        default="all",
        help="json: API answers only; files: storage downloads only",
    )
    p.set_defaults(handler=_mirror)

    p = sub.add_parser(
        "stack",
        parents=[common],
        help="stack a NEON download (portal zip, folder of packages) into one CSV per table, as neonUtilities' "
        "stackByTable does (no R, no Dagster)",
    )
    p.add_argument("path", type=Path, help="a data-portal zip (NEON_<name>.zip), a folder of packages, or a package")
    p.add_argument("--out", type=Path, required=True, help="a new (or empty) folder for the stacked files")
    p.add_argument(
        "--issue-log-from-api",
        action="store_true",
        help="also write issueLog_<number>.csv from the product's changeLogs on the NEON API (NEON_API_URL), as "
        "neonUtilities does (offline, the readme's ISSUE LOG section holds the same issues)",
    )
    p.set_defaults(handler=_stack)

    p = sub.add_parser(
        "products", parents=[common], help="list NEON's products, describe one, declare one as raw assets"
    )
    products = p.add_subparsers(dest="action", required=True)
    q = products.add_parser("list", parents=[common], help="every NEON product (/products), the declared ones marked")
    q.add_argument("--release", default=None, help="only products with data in this release")
    q.add_argument("--match", default=None, help="only products whose code or name contains this text")
    q.set_defaults(handler=_products_list)
    q = products.add_parser("describe", parents=[common], help="a product's releases, DOIs, sites, months and tables")
    q.add_argument("dpid", help="NEON product code, e.g. DP1.10033.001")
    q.add_argument("--input", type=Path, default=None, help="describe this local download instead of asking the API")
    q.set_defaults(handler=_products_describe)
    q = products.add_parser(
        "add", parents=[common], help="declare a product in $ROOTASSETS_HOME/rootassets.toml: one raw asset per table"
    )
    q.add_argument("dpid", help="NEON product code, e.g. DP1.10033.001")
    q.add_argument(
        "--input", type=Path, default=None, help="a local download: portal zip, folder of packages or stacked tables"
    )
    q.add_argument("--table", action="append", default=[], help="a table to take (repeatable; default: every table)")
    q.add_argument("--site", action="append", default=[], help="a site to take (repeatable; default: every site)")
    q.add_argument("--start", default=None, help="first month, YYYY-MM")
    q.add_argument("--end", default=None, help="last month, YYYY-MM")
    q.add_argument("--package", choices=("basic", "expanded"), default=None)
    q.add_argument("--name", default=None, help="the product's name (default: NEON's)")
    q.set_defaults(handler=_products_add)
    q = products.add_parser(
        "remove", parents=[common], help="remove a declared product (its tables stay in the database)"
    )
    q.add_argument("dpid")
    q.set_defaults(handler=_products_remove)

    p = sub.add_parser(
        "preview",
        parents=[common],
        help="evaluate a sensor or schedule once, as its next tick would, and print each run it would request "
        "(release, partition, run key, assets); nothing is launched or written",
    )
    p.add_argument("name", help="neon_release_sensor or weekly_neon_refresh (or any sensor or schedule)")
    p.set_defaults(handler=_preview)

    p = sub.add_parser(
        "ui", parents=[common], help="start the Dagster UI and daemon on the persistent instance (dg dev)"
    )
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--files-port",
        type=int,
        help="serve figures/ and reports/ here, for the UI to show the figures inline (default: the port of "
        "ROOTASSETS_FILES_URL, 3001)",
    )
    p.set_defaults(handler=_ui)
    return parser


def _materialize(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    from rootassets.neon.api_source import ApiSource, parse_window
    from rootassets.neon.errors import NeonApiError, NeonError, NeonTokenError
    from rootassets.neon.identifiers import InvalidIdentifierError, validate_release
    from rootassets.neon.open import latest_release, open_source
    from rootassets.neon.tokens import require_token

    try:
        source = open_source(settings.snapshot, settings.api_url, settings.downloads)
        if isinstance(source, ApiSource):
            require_token()  # NEON needs it for every download: refuse before anything is written
        release = latest_release(source) if args.release == "latest" else validate_release(args.release)
        offered = source.releases() + declared_releases(settings)
        if settings.soil_water_window:
            parse_window(settings.soil_water_window)
    except NeonTokenError as exc:
        raise UsageError(str(exc)) from exc
    except NeonApiError as exc:  # the source failed (after its retries): not the user's request
        raise CliError(str(exc)) from exc
    except (NeonError, InvalidIdentifierError, LookupError) as exc:
        raise UsageError(str(exc)) from exc
    except ValueError as exc:
        raise UsageError(f"ROOTASSETS_SOIL_WATER_WINDOW: {exc}") from exc
    if release != "PROVISIONAL" and release not in offered:  # provisional data is not a listed release
        raise UsageError(
            f"{release} is not offered by {source.describe()} (it offers {', '.join(offered) or 'no release'})"
        )
    from rootassets import uptodate

    whole_release = not args.select
    try:
        inputs = uptodate.input_fingerprint(settings, release) if whole_release else None
    except (NeonError, InvalidIdentifierError) as exc:
        raise UsageError(str(exc)) from exc
    state = None if args.force or args.full_check else uptodate.up_to_date(settings, release, inputs)
    if state is not None:
        summary = state["summary"]
        print(
            f"rootassets: {release} is up to date: its NEON sources, the code and the settings are those of the "
            f"refresh committed {state['committed']}, and {settings.database} is as that refresh left it"
        )
        print(f"rootassets: {summary['raw']} raw tables up to date (their NEON source is unchanged), not re-read")
        print(f"rootassets: {summary['rest']} assets up to date (same code and inputs), not recomputed")
        print(f"rootassets: {release} done: 0 assets materialized; 0 tables made visible at once")
        _print_outputs(settings, release)
        return 0

    from dagster import AssetSelection, DagsterInstance

    from rootassets.definitions import MAIN_JOB, SITES_JOB, defs
    from rootassets.defs.jobs import OPTIONAL
    from rootassets.defs.partitions import NEON_RELEASE_PARTITIONS

    graph = defs.resolve_asset_graph()
    selection = AssetSelection.all() - OPTIONAL  # optional assets run only when --select names them
    if args.select:
        try:
            selection = AssetSelection.from_string(args.select)
            selected = selection.resolve(graph)
        except Exception as exc:  # dagster raises several types for a bad selection string
            raise UsageError(f"invalid --select {args.select!r}: {str(exc).splitlines()[0]}") from exc
        if not selected:
            raise UsageError(f"--select {args.select!r} matches no asset")
    asset_keys = sorted(selection.resolve(graph), key=str)
    os.environ["DAGSTER_HOME"] = str(settings.ensure_dagster_home())  # only now: a refused request writes nothing

    from rootassets.refresh import Refresh, RefreshFailed, reap_dead_runs

    with DagsterInstance.get() as instance:
        for note in reap_dead_runs(instance, settings.database):
            print(f"rootassets: {note}", file=sys.stderr)
        if not instance.has_dynamic_partition(NEON_RELEASE_PARTITIONS, release):
            instance.add_dynamic_partitions(NEON_RELEASE_PARTITIONS, [release])
        print(f"rootassets: materializing {release} from {source.describe()} into {settings.database}")
        refresh = Refresh(
            instance,
            defs,
            MAIN_JOB,
            settings.database,
            release,
            asset_keys,
            force=args.force,
            say=lambda line: print(line if line.startswith("  ") else f"rootassets: {line}", flush=True),
            sites_job_name=SITES_JOB,
            site_workers=settings.soil_water_workers,
        )
        try:
            report = refresh.run()
        except RefreshFailed as exc:
            for step, message in exc.failures:
                print(f"  FAILED {step}: {message}", file=sys.stderr)
            raise CliError(
                f"run {exc.run_id} failed; nothing it computed was made visible, and the earlier "
                f"results in {settings.database} are unchanged"
            ) from None
        print(
            f"rootassets: {release} done: {len(report.materialized)} assets materialized; "
            f"{report.visible_tables} tables made visible at once"
        )
        if report.failed_sites:
            for site, why in sorted(report.failed_sites.items()):
                print(f"  FAILED site partition {site}: {why}", file=sys.stderr)
            _print_outputs(settings, release)
            raise CliError(
                f"{len(report.failed_sites)} soil-water site partition(s) failed: "
                f"{', '.join(sorted(report.failed_sites))}; their earlier rows are unchanged, everything else "
                f"was committed (re-run `rootassets materialize` to retry them)"
            )
    if whole_release:
        raw = sum(1 for key in asset_keys if key.path[0] == "raw")
        uptodate.record(settings, release, inputs, {"raw": raw, "rest": len(asset_keys) - raw})
    _print_outputs(settings, release)
    return 0


def _print_outputs(settings: Settings, release: str) -> None:
    """Where the results of `release` are: the database, and the figures and report when they exist."""
    print(f"rootassets: database {settings.database} (rootassets sql, rootassets tables)")
    figures = settings.figures / release
    if figures.is_dir() and any(figures.glob("*.png")):
        print(f"rootassets: figures  {figures}/ (PNG 300 dpi and SVG)")
    for name in ("report.html", "report.md"):
        if (settings.reports / release / name).is_file():
            print(f"rootassets: report   {settings.reports / release / name}")


def declared_releases(settings: Settings) -> list[str]:
    """The releases held by the local downloads of declared products (they can be materialized too)."""
    from rootassets.neon.declared import read_declared

    found: set[str] = set()
    for product in read_declared(settings.products_file):
        download = product.download()
        if download is not None and download.path.exists():
            found |= set(download.releases_of(product.spec))
    return sorted(found)


def _tables(args: argparse.Namespace) -> int:
    """Every table (and view) of the user-facing schemas with its DuckDB comment (its asset's description) and
    its rows per release (staging and quarantine left out: `quarantine.<table>` holds the refused rows of the
    table of the same name)."""
    settings = Settings.from_env()
    schemas = tuple(args.schema) or USER_SCHEMAS
    unknown = [s for s in schemas if s not in (*USER_SCHEMAS, "quarantine")]
    if unknown:
        raise UsageError(f"no schema {', '.join(unknown)} (the tables are in {', '.join(USER_SCHEMAS)}, quarantine)")
    from rootassets.warehouse import connect_read_only, qualified

    try:
        con = connect_read_only(settings.database)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    with con:
        marks = ", ".join("?" for _ in schemas)
        listed = con.execute(
            f"SELECT schema_name, table_name, comment FROM duckdb_tables() WHERE schema_name IN ({marks}) "
            f"AND NOT temporary UNION ALL SELECT schema_name, view_name, comment FROM duckdb_views() "
            f"WHERE schema_name IN ({marks}) AND NOT internal AND NOT temporary ORDER BY 1, 2",
            [*schemas, *schemas],
        ).fetchall()
        counts: dict[tuple[str, str], str] = {}
        for schema, table, _ in listed:
            columns = {
                c
                for (c,) in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?", [schema, table]
                ).fetchall()
            }
            target = qualified(schema, table)
            if "release" in columns:
                rows = con.execute(f"SELECT release, count(*) FROM {target} GROUP BY 1 ORDER BY 1").fetchall()
                counts[(schema, table)] = "; ".join(f"{r}: {n}" for r, n in rows) or "0"
            else:
                counts[(schema, table)] = str(con.execute(f"SELECT count(*) FROM {target}").fetchone()[0])
    rows = [(f"{s}.{t}", _shortened(comment or ""), counts[(s, t)]) for s, t, comment in listed]
    if args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["table", "description", "rows"])
        writer.writerows(rows)
        return 0
    from tabulate import tabulate

    headers = ["table", "description", "rows per release"]
    print(tabulate(rows, headers=headers, tablefmt="simple", maxcolwidths=[None, 70, 40]))
    return 0


def _shortened(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


def _declared(settings: Settings) -> list[Any]:
    from rootassets.neon.declared import read_declared
    from rootassets.neon.errors import NeonDataError

    try:
        return read_declared(settings.products_file)
    except NeonDataError as exc:
        raise UsageError(str(exc)) from exc


def _api_call(settings: Settings, call: Any) -> Any:
    """Run `call(client)` against the NEON API (or the mirror NEON_API_URL names); one line on failure."""
    from rootassets.neon.client import NeonClient
    from rootassets.neon.errors import NeonApiError, NeonError, NeonRequestRefusedError
    from rootassets.neon.identifiers import InvalidIdentifierError

    try:
        with NeonClient(settings.api_url) as client:
            return call(client)
    except NeonRequestRefusedError as exc:
        raise UsageError(f"the NEON API at {settings.api_url} refused the request: {exc}") from exc
    except NeonApiError as exc:
        raise CliError(f"the NEON API at {settings.api_url} did not answer: {exc}") from exc
    except (NeonError, InvalidIdentifierError) as exc:
        raise UsageError(str(exc)) from exc


def _products_list(args: argparse.Namespace) -> int:
    """NEON's products from `/products`, the declared ones marked."""
    from rootassets.neon.catalog import list_products
    from rootassets.neon.declared import BUILT_IN_PRODUCTS

    settings = Settings.from_env()
    declared = {d.spec.code for d in _declared(settings)}
    rows = _api_call(settings, lambda client: list_products(client, args.release))
    if args.match:
        rows = [r for r in rows if args.match.lower() in f"{r['code']} {r['name']}".lower()]
    from tabulate import tabulate

    table = [
        (
            r["code"],
            r["name"],
            r["sites"],
            "built in" if r["code"] in BUILT_IN_PRODUCTS else "declared" if r["code"] in declared else "",
        )
        for r in rows
    ]
    print(tabulate(table, headers=["product", "name", "sites", "rootassets"], tablefmt="simple"))
    return 0


def _describe(settings: Settings, dpid: str, path: Path | None) -> Any:
    from rootassets.neon.catalog import describe_api, describe_download
    from rootassets.neon.errors import NeonDataError
    from rootassets.neon.identifiers import InvalidIdentifierError, validate_product
    from rootassets.neon.tokens import current_token

    try:
        validate_product(dpid)
        if path is not None:
            description = describe_download(path)
            if description.code != dpid:
                raise UsageError(f"{path} holds {description.code}, not {dpid}")
            return description
    except (NeonDataError, InvalidIdentifierError) as exc:
        raise UsageError(str(exc)) from exc
    return _api_call(settings, lambda client: describe_api(client, dpid, list_files=current_token() is not None))


def _products_describe(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    path = args.input
    if path is None:
        path = next((d.input for d in _declared(settings) if d.spec.code == args.dpid), None)
    for line in _describe(settings, args.dpid, path).lines():
        print(line)
    return 0


def _products_add(args: argparse.Namespace) -> int:
    """Declare a product in rootassets.toml; its tables default to every table the source shows."""
    from rootassets.neon.declared import declared_product, write_declared
    from rootassets.neon.errors import NeonDataError

    settings = Settings.from_env()
    current = _declared(settings)
    description = _describe(settings, args.dpid, args.input)
    tables = args.table or list(description.tables)
    if not tables:
        raise UsageError(
            f"no table of {args.dpid} is known: name them with --table (NEON lists a package's files only with an "
            "API token, NEON_TOKEN), or give --input with a download"
        )
    unknown = [t for t in tables if description.tables and t not in description.tables]
    if unknown:
        raise UsageError(f"{args.dpid} has no table {', '.join(unknown)} (it has {', '.join(description.tables)})")
    try:
        product = declared_product(
            args.dpid,
            args.name or description.name,
            tables,
            package=args.package or description.package,
            sites=args.site,
            start=args.start,
            end=args.end,
            input_path=args.input,
        )
        kept = [d for d in current if d.spec.code != args.dpid]
        write_declared(settings.products_file, [*kept, product])
    except NeonDataError as exc:
        raise UsageError(str(exc)) from exc
    verb = "updated" if len(kept) < len(current) else "declared"
    print(f"rootassets: {verb} {product.spec.code} ({product.spec.name}) in {settings.products_file}")
    for table in product.spec.tables:
        print(f"  raw.{table}")
    print(
        f"rootassets: its raw assets are the group {product.group}; materialize them with "
        f"rootassets materialize --release <release> --select 'group:{product.group}'"
    )
    return 0


def _products_remove(args: argparse.Namespace) -> int:
    from rootassets.neon.declared import write_declared

    settings = Settings.from_env()
    current = _declared(settings)
    kept = [d for d in current if d.spec.code != args.dpid]
    if len(kept) == len(current):
        declared = ", ".join(d.spec.code for d in current) or "none"
        raise UsageError(f"{args.dpid} is not declared in {settings.products_file} (declared: {declared})")
    write_declared(settings.products_file, kept)
    print(f"rootassets: removed {args.dpid} from {settings.products_file}; its tables stay in {settings.database}")
    return 0


def _releases(args: argparse.Namespace) -> int:
    """List the source's releases beside the instance's partitions; add the partitions asked for."""
    settings = Settings.from_env()
    from rootassets.neon.errors import NeonError
    from rootassets.neon.identifiers import InvalidIdentifierError, validate_release
    from rootassets.neon.open import open_source

    try:
        wanted = [validate_release(tag) for tag in args.add]
        source = open_source(settings.snapshot, settings.api_url, settings.downloads)
        offered = source.release_info()
    except (NeonError, InvalidIdentifierError) as exc:
        raise UsageError(str(exc)) from exc
    missing = [tag for tag in wanted if tag not in offered]
    if missing:
        raise UsageError(
            f"{', '.join(missing)} not offered by {source.describe()} (it offers "
            f"{', '.join(offered) or 'no release with every product'})"
        )
    os.environ["DAGSTER_HOME"] = str(settings.ensure_dagster_home())
    from dagster import DagsterInstance

    from rootassets.defs.partitions import NEON_RELEASE_PARTITIONS

    with DagsterInstance.get() as instance:
        new = [tag for tag in wanted if not instance.has_dynamic_partition(NEON_RELEASE_PARTITIONS, tag)]
        if new:
            instance.add_dynamic_partitions(NEON_RELEASE_PARTITIONS, new)
        partitions = set(instance.get_dynamic_partitions(NEON_RELEASE_PARTITIONS))
    for tag in new:
        print(f"rootassets: added the release partition {tag} to {settings.dagster_home}")
    from tabulate import tabulate

    rows = [
        (tag, offered.get(tag, "-"), "yes" if tag in offered else "no", "yes" if tag in partitions else "no")
        for tag in sorted(set(offered) | partitions)
    ]
    print(f"releases of {source.describe()} and partitions of {settings.dagster_home}:")
    print(tabulate(rows, headers=["release", "generated", "offered", "partition"], tablefmt="simple"))
    return 0


def _preview(args: argparse.Namespace) -> int:
    """One tick of a sensor or schedule, evaluated as the daemon would (the instance's stored cursor, the
    database's committed releases), printed request by request. Dagster's own `sensor preview` prints only each
    request's run config, which says nothing here (the release is the partition and the run key)."""
    settings = Settings.from_env()
    from dagster import (
        RunStatusSensorDefinition,
        build_schedule_context,
        build_sensor_context,
        partition_loading_context,
    )

    from rootassets.definitions import defs
    from rootassets.refresh import RELEASE_TAG

    repository = defs.get_repository_def()
    sensors = {s.name: s for s in repository.sensor_defs}
    schedules = {s.name: s for s in repository.schedule_defs}
    if args.name not in sensors and args.name not in schedules:
        raise UsageError(
            f"no sensor or schedule named {args.name!r} (sensors: {', '.join(sorted(sensors))}; schedules: "
            f"{', '.join(sorted(schedules))})"
        )
    if isinstance(sensors.get(args.name), RunStatusSensorDefinition):
        raise UsageError(f"{args.name} reacts to finished runs, so it has no tick to preview without one")
    resources = repository.get_top_level_resources()
    with _preview_instance(settings) as instance, partition_loading_context(dynamic_partitions_store=instance):
        if args.name in sensors:
            cursor = _stored_cursor(instance, args.name)
            with build_sensor_context(
                instance_ref=instance.get_ref(),
                cursor=cursor,
                repository_def=repository,
                sensor_name=args.name,
                resources=resources,
            ) as context:
                data = sensors[args.name].evaluate_tick(context)
            kind = f"sensor {args.name} (cursor: {cursor or 'none, as a sensor switched on afresh'})"
        else:
            with build_schedule_context(
                instance_ref=instance.get_ref(), repository_def=repository, resources=resources
            ) as context:
                data = schedules[args.name].evaluate_tick(context)
            kind = f"schedule {args.name}"
    requests = list(data.run_requests or [])
    if not requests:
        print(f"rootassets: {kind} requests no run: {data.skip_message or 'nothing to do'}")
        return 0
    print(f"rootassets: {kind} requests {len(requests)} run(s):")
    for request in requests:
        selection = request.asset_selection
        assets = f"{len(selection)} assets" if selection is not None else "its job's assets"
        release = request.tags.get(RELEASE_TAG) or request.partition_key or "-"
        print(
            f"  release {release}: partition {request.partition_key or '-'}, run key {request.run_key or '-'}, {assets}"
        )
    return 0


@contextlib.contextmanager
def _preview_instance(settings: Settings) -> Iterator[Any]:
    """The persistent instance when there is one (its runs and cursors), else one in a temporary folder: a
    preview creates nothing under ROOTASSETS_HOME."""
    from dagster import DagsterInstance

    if (settings.dagster_home / "dagster.yaml").is_file():
        os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
        with DagsterInstance.get() as instance:
            yield instance
        return
    with tempfile.TemporaryDirectory(prefix="rootassets-preview-") as folder:
        with DagsterInstance.local_temp(tempdir=folder) as instance:
            yield instance


def _stored_cursor(instance: Any, name: str) -> str | None:
    """The cursor the daemon stored for sensor `name`, if it has ticked on this instance."""
    if instance.schedule_storage is None:  # a throwaway instance has ticked nothing
        return None
    for state in instance.all_instigator_state():
        if state.instigator_name == name and state.instigator_data is not None:
            return getattr(state.instigator_data, "cursor", None)
    return None


def _sql(args: argparse.Namespace) -> int:
    import duckdb

    if args.query is None:
        if sys.stdin.isatty():
            return _sql_shell()
        args.query = sys.stdin.read()
    try:
        statements = [s.query for s in duckdb.connect(":memory:").extract_statements(args.query)]
    except duckdb.Error as exc:
        raise UsageError(f"query failed: {str(exc).splitlines()[0]}") from exc
    if not statements:
        raise UsageError(
            'empty query: give a SQL statement, e.g. rootassets sql "select * from analysis.site_modality"'
        )
    settings = Settings.from_env()
    con = _open_as_of(settings, args.as_of) if args.as_of else _open_read_only(settings)
    results = []
    try:
        for statement in statements:
            cursor = con.execute(statement)
            columns = [d[0] for d in cursor.description or []]
            results.append((columns, cursor.fetchall() if columns else []))
    except duckdb.Error as exc:
        which = f" (statement {len(results) + 1} of {len(statements)})" if len(statements) > 1 else ""
        raise CliError(f"query failed{which}: {one_line(exc)}") from exc
    finally:
        con.close()
    fmt = "csv" if args.csv else "json" if args.json else "table"
    if fmt == "json" and len(results) > 1:  # one JSON document: an array of each statement's rows
        print(json.dumps([[dict(zip(c, r, strict=True)) for r in rows] for c, rows in results], default=str, indent=1))
        return 0
    for i, (columns, rows) in enumerate(results):
        if i:
            print()
        _print_rows(columns, rows, fmt)
    return 0


def _open_as_of(settings: Settings, as_of: str) -> Any:
    """The lake, read-only, as of the snapshot that `as_of` names: a release's newest refresh, or a snapshot id."""
    from rootassets.neon.identifiers import InvalidIdentifierError, validate_release
    from rootassets.warehouse.lake import LakeLocation, LakeUnavailableError, connect_lake, snapshot_of_release

    location = settings.database
    if not isinstance(location, LakeLocation):
        raise UsageError(
            "--as-of needs the DuckLake backend (ROOTASSETS_WAREHOUSE=ducklake:postgres:...): the DuckDB file keeps "
            "no snapshots, but every release's rows stay in each table (where release = 'RELEASE-2021')"
        )
    if as_of.isdigit():
        snapshot, what = int(as_of), f"snapshot {as_of}"
    else:
        try:
            release = validate_release(as_of)
        except InvalidIdentifierError as exc:
            raise UsageError(f"--as-of {as_of!r}: give a release tag (RELEASE-2021) or a snapshot id ({exc})") from None
        with _open_read_only(settings) as con:
            snapshot = snapshot_of_release(con, release)
        if snapshot is None:
            raise CliError(f"{release} was never committed to {location}: rootassets releases lists what was")
        what = f"snapshot {snapshot}, the newest commit of {release}"
    try:
        con = connect_lake(location, read_only=True, snapshot=snapshot)
    except (FileNotFoundError, LakeUnavailableError) as exc:
        raise CliError(one_line(exc)) from exc
    print(f"rootassets: the lake as of {what}", file=sys.stderr)
    return con


def _open_read_only(settings: Settings) -> Any:
    """The database opened read-only, waiting (and saying so) while a run writes; one line when it cannot be."""
    from rootassets.warehouse import WarehouseBusyError, WarehouseVersionError, connect_read_only
    from rootassets.warehouse.lake import LakeUnavailableError

    try:
        return connect_read_only(settings.database, on_wait=lambda m: print(f"rootassets: {m}", file=sys.stderr))
    except (FileNotFoundError, WarehouseBusyError, WarehouseVersionError, LakeUnavailableError, LakeConfigError) as exc:
        raise CliError(str(exc)) from exc


def _sql_shell() -> int:
    """DuckDB's own shell (installed with the project, same version as the database) on the read-only database."""
    shell = Path(sys.executable).parent / "duckdb"
    if not shell.exists():
        raise CliError(f"DuckDB's shell is not installed next to {sys.executable}: pip install -e .")
    settings = Settings.from_env()
    _open_read_only(settings).close()  # waits while a run writes; a missing or newer-format database is one line
    if isinstance(settings.database, Path):
        arguments = ["-readonly", str(settings.database)]
    else:
        from rootassets.warehouse.lake import shell_arguments

        arguments = shell_arguments(settings.database)  # an in-memory DuckDB with the lake attached read-only
    print(f"rootassets: DuckDB shell on {settings.database} (read-only; .tables lists the tables, .quit leaves)")
    sys.stdout.flush()
    os.execv(shell, [str(shell), *arguments])
    return 0  # not reached


def one_line(exc: Exception) -> str:
    """DuckDB's multi-line error (message, suggestion, the query with a caret under it) as one line."""
    lines = [line.strip() for line in str(exc).splitlines()]
    return " ".join(line for line in lines if line and not line.startswith("LINE ") and set(line) != {"^"})


def _print_rows(columns: list[str], rows: list[tuple[Any, ...]], fmt: str) -> None:
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    elif fmt == "json":
        print(json.dumps([dict(zip(columns, row, strict=True)) for row in rows], default=str, indent=1))
    else:
        from tabulate import tabulate

        print(tabulate(rows, headers=columns, tablefmt="simple"))


def _mirror(args: argparse.Namespace) -> int:
    from rootassets.neon.errors import NeonError
    from rootassets.neon.mirror import FAULT_KINDS, FaultPlan, MirrorServer

    counts: dict[str, int] = {}
    for spec in args.fault:
        kind, _, count = spec.partition("=")
        if kind not in FAULT_KINDS or not count.lstrip("-").isdigit():
            raise CliError(f"bad --fault {spec!r}: expected KIND=COUNT with KIND in {', '.join(FAULT_KINDS)}")
        counts[kind] = int(count)
    try:
        server = MirrorServer(
            args.snapshot,
            host=args.host,
            port=args.port,
            storage_port=args.storage_port,
            faults=FaultPlan(counts=counts, scope=args.fault_scope),
            require_token=not args.no_token_required,
            url_ttl_s=args.url_ttl,
            access_log=lambda line: print(f"mirror: {line}", file=sys.stderr, flush=True),
        )
    except (NeonError, OSError, ValueError) as exc:
        raise CliError(f"cannot start the mirror: {exc}") from exc
    from rootassets.neon.tokens import unsigned_token

    print(
        f"rootassets: NEON mirror of {args.snapshot} at {server.base_url}, files at {server.storage_url} "
        f"(Ctrl-C to stop)",
        flush=True,
    )
    if server.require_token:
        print(
            "rootassets: /data* needs a token; this mirror accepts any unexpired JWT-shaped token, e.g.\n"
            f"  export NEON_TOKEN={unsigned_token(time.time() + 30 * 86400)}",
            flush=True,
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _stack(args: argparse.Namespace) -> int:
    """Stack `args.path` into `args.out` and print one line per table; nothing is written on failure."""
    from rootassets.neon.errors import NeonDataError
    from rootassets.neon.stack_by_table import package_files, stack_by_table, write_stacked

    try:
        stacked = stack_by_table(package_files(args.path))
    except NeonDataError as exc:
        raise CliError(str(exc)) from exc
    if args.issue_log_from_api:
        if stacked.product is None:
            raise CliError(f"{args.path}: no NEON product code in the file names, so no issue log to ask the API for")
        from rootassets.neon.documents import issue_log_frame

        settings = Settings.from_env()
        info = _api_call(settings, lambda client: client.product(stacked.product))
        logs = [c for c in info.get("changeLogs") or [] if isinstance(c, dict)]
        stacked.tables[f"issueLog_{stacked.product.split('.')[1]}"] = issue_log_frame(logs)
        stacked.notes = [n for n in stacked.notes if not n.startswith("issueLog_")]
    try:
        written = write_stacked(stacked, args.out)
    except NeonDataError as exc:
        raise CliError(str(exc)) from exc
    for line in stacked.summary():
        print(f"rootassets: {line}")
    print(f"rootassets: {len(written)} files for {stacked.product or 'an unnamed product'} in {args.out}")
    return 0


def _ui(args: argparse.Namespace) -> int:
    """`dg dev` (webserver and daemon) on the persistent instance, from this environment's own executables, with
    the home's figures and reports served beside it (`rootassets.artifacts_server`) for the UI to show."""
    import signal
    import subprocess
    from urllib.parse import urlsplit

    from rootassets import artifacts_server

    settings = Settings.from_env()
    files = urlsplit(settings.files_url)
    files_port = args.files_port or files.port or 80
    files_url = f"{files.scheme}://{files.hostname}:{files_port}"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(settings.ensure_dagster_home()),
        "ROOTASSETS_FILES_URL": files_url,  # what runs launched from the UI write into the figures' metadata
    }
    project = Path(__file__).resolve().parent.parent  # the checkout: its pyproject.toml declares the dg project
    bin_dir = Path(sys.executable).parent
    if (project / "pyproject.toml").is_file() and (bin_dir / "dg").exists():
        command = [str(bin_dir / "dg"), "dev", "-h", args.host, "-p", str(args.port)]
    elif (bin_dir / "dagster").exists():  # an installed wheel, without the project folder
        command = [str(bin_dir / "dagster"), "dev", "-m", "rootassets.definitions", "-h", args.host]
        command += ["-p", str(args.port)]
        project = Path.cwd()
    else:
        raise CliError(f"neither dg nor dagster is installed next to {sys.executable}: pip install -e '.[dev]'")
    try:
        server = artifacts_server.start(settings.home, args.host, files_port)
    except OSError as exc:
        raise UsageError(
            f"cannot serve the figures on {args.host}:{files_port} ({exc.strerror}): give --files-port N "
            "(and ROOTASSETS_FILES_URL=http://<host>:N to the runs that draw them)"
        ) from None
    print(f"rootassets: {' '.join(command)} in {project} with DAGSTER_HOME={env['DAGSTER_HOME']}", flush=True)
    print(f"rootassets: the UI will be at http://{args.host}:{args.port}", flush=True)
    print(f"rootassets: figures and reports of {settings.home} served at {files_url}", flush=True)
    # dg dev and the processes it starts get a process group of their own, so that stopping `rootassets ui`
    # stops all of them: Dagster 1.13's webserver can outlive dg dev's own shutdown.
    child = subprocess.Popen(command, cwd=project, env=env, start_new_session=True)

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while True:  # a short wait, so that a signal another thread (polars', DuckDB's) received is acted on
            try:
                return child.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue
    except KeyboardInterrupt:
        print("rootassets: stopping the UI", flush=True)
        _stop_group(child, UI_STOP_GRACE_S)
        return 130
    finally:
        server.shutdown()


def _stop_group(child: Any, grace_s: float) -> None:
    """Ask `child`'s process group to shut down (SIGINT, as Ctrl-C would), then kill what is left of it
    after `grace_s`."""
    import signal
    import subprocess

    try:
        os.killpg(child.pid, signal.SIGINT)
    except ProcessLookupError:
        return
    try:
        child.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    time.sleep(1.0)  # what the leader stopped, still closing
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait()


if __name__ == "__main__":
    entry()
