"""A small NEON-compatible API server on 127.0.0.1 that serves a local snapshot.

It splits the snapshot's stacked tables into NEON-named per-site files with
their md5 and crc32c and a variables file, and answers `/releases`,
`/products/{dpID}`, `/data/query`, `/data/{dpID}/{site}/{month}` and file
downloads, so the real client runs end to end with no internet. Faults can
be switched on (by constructor, command line or `POST /__faults`) to test
the client: bursts of 429, 500s, dropped connections, truncated bodies,
wrong checksums, slow and malformed responses.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import google_crc32c
import polars as pl

from rootassets.neon.identifiers import NeonFileName
from rootassets.neon.products import PRODUCTS, ProductSpec
from rootassets.neon.snapshot import SnapshotSource

API_PREFIX = "/api/v0/"
FAULT_KINDS = ("rate_limit", "server_error", "drop", "truncate", "bad_checksum", "slow", "malformed_json",
               "hostile_ids")
HOSTILE_RELEASE = "RELEASE-2021/../../etc"
HOSTILE_SITE = "../X'"
_DATE_COLUMNS = ("endDate", "collectDate", "setDate")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MirrorFile:
    name: str
    product: str
    release: str
    site: str
    month: str
    body: bytes

    @property
    def md5(self) -> str:
        return hashlib.md5(self.body).hexdigest()

    @property
    def crc32c(self) -> str:
        return google_crc32c.Checksum(self.body).hexdigest().decode()


@dataclass
class FaultPlan:
    """Faults to inject: each kind applies to the next `count` matching requests (-1: always)."""

    counts: dict[str, int] = field(default_factory=dict)
    scope: str = "all"  # all | json | files
    slow_s: float = 2.0
    reset_s: float = 0.2
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, is_file: bool) -> str | None:
        """The fault for this request, if any, consuming one from its budget."""
        if self.scope == "json" and is_file or self.scope == "files" and not is_file:
            return None
        with self._lock:
            for kind in FAULT_KINDS:
                left = self.counts.get(kind, 0)
                if left == 0:
                    continue
                if kind == "bad_checksum" and not is_file:  # a checksum belongs to a file
                    continue
                if left > 0:
                    self.counts[kind] = left - 1
                return kind
        return None


@dataclass
class MirrorStats:
    requests: int = 0
    downloads: int = 0
    token_seen: bool = False
    paths: list[str] = field(default_factory=list)


class MirrorCatalogue:
    """Everything the mirror serves, built once from a snapshot."""

    def __init__(self, snapshot: Path | str) -> None:
        source = SnapshotSource(snapshot)
        self.files: dict[tuple[str, str], MirrorFile] = {}
        self.release_dates: dict[str, str] = {}
        # product -> site -> release -> months
        self.availability: dict[str, dict[str, dict[str, set[str]]]] = {}
        self.domains: dict[str, str] = {}
        generated = source.release_info()
        for release in source.releases():
            self.release_dates[release] = generated.get(release, "2000-01-01T00:00:00Z")
            for product in PRODUCTS.values():
                if (source.root / release / product.code).is_dir():
                    self._add_product(source, product, release)

    def _add_product(self, source: SnapshotSource, product: ProductSpec, release: str) -> None:
        load = source.load_product(product, release)
        frames = {name: t.frame for name, t in load.tables.items() if t.frame.height}
        for frame in frames.values():
            if "domainID" in frame.columns:
                for site, domain in frame.select("site_id", "domainID").drop_nulls().unique().iter_rows():
                    self.domains.setdefault(site, domain)
        site_month = _site_months(frames)
        variables = _variables_csv(frames)
        packages: set[tuple[str, str]] = set()
        newest: dict[tuple[str, str], str] = {}
        for table, frame in frames.items():
            for (site, publication), part in frame.group_by(["site_id", "publication_date"], maintain_order=True):
                month = site_month[site]
                stamp = publication.strftime("%Y%m%dT%H%M%SZ") if publication else "20000101T000000Z"
                name = NeonFileName(
                    domain=self.domains.get(site, "D00"), site=site, product=product.code,
                    table=table, month=month, package="basic", publication=stamp,
                ).render()
                body = _neon_csv(part.drop("site_id", "publication_date", "source_file"))
                self.files[(release, name)] = MirrorFile(name, product.code, release, site, month, body)
                packages.add((site, month))
                newest[(site, month)] = max(stamp, newest.get((site, month), ""))
        for (site, month), stamp in newest.items():
            name = NeonFileName(
                domain=self.domains.get(site, "D00"), site=site, product=product.code,
                table="variables", month=None, package=None, publication=stamp,
            ).render()
            self.files[(release, name)] = MirrorFile(name, product.code, release, site, month, variables)
        sites = self.availability.setdefault(product.code, {})
        for site, month in packages:
            sites.setdefault(site, {}).setdefault(release, set()).add(month)

    def package_files(self, product: str, release: str, site: str, month: str) -> list[MirrorFile]:
        return sorted(
            (f for (rel, _), f in self.files.items()
             if rel == release and f.product == product and f.site == site and f.month == month),
            key=lambda f: f.name,
        )


def _site_months(frames: dict[str, pl.DataFrame]) -> dict[str, str]:
    """One package month per site: the earliest sampling month in any table."""
    months: dict[str, str] = {}
    for frame in frames.values():
        column = next((c for c in _DATE_COLUMNS if c in frame.columns), None)
        if column is None:
            continue
        per_site = frame.group_by("site_id").agg(pl.col(column).min().cast(pl.String).str.slice(0, 7))
        for site, month in per_site.iter_rows():
            if month and (site not in months or month < months[site]):
                months[site] = month
    for frame in frames.values():
        for site in frame["site_id"].unique().to_list():
            months.setdefault(site, "2000-01")
    return months


def _neon_csv(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_csv(
        buffer, null_value="NA", date_format="%Y-%m-%d", datetime_format="%Y-%m-%dT%H:%M:%SZ"
    )
    return buffer.getvalue()


def _neon_type(dtype: pl.DataType) -> str:
    if dtype.is_float():
        return "real"
    if dtype.is_integer():
        return "integer"
    if dtype.is_temporal():
        return "dateTime"
    return "string"


def _variables_csv(frames: dict[str, pl.DataFrame]) -> bytes:
    rows = [
        {"table": table, "fieldName": name, "description": "", "dataType": _neon_type(dtype),
         "units": "", "downloadPkg": "basic", "pubFormat": ""}
        for table, frame in frames.items()
        for name, dtype in frame.schema.items()
        if name not in ("site_id", "publication_date", "source_file")
    ]
    return _neon_csv(pl.DataFrame(rows))


class MirrorServer:
    """Serve a MirrorCatalogue over HTTP on `host:port` (port 0 picks a free one)."""

    def __init__(
        self,
        snapshot: Path | str | MirrorCatalogue,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
    ) -> None:
        self._snapshot = None if isinstance(snapshot, MirrorCatalogue) else Path(snapshot)
        self.catalogue = snapshot if isinstance(snapshot, MirrorCatalogue) else MirrorCatalogue(snapshot)
        self.faults = faults or FaultPlan()
        self.stats = MirrorStats()
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{API_PREFIX}"

    def reload(self) -> None:
        """Re-read the snapshot folder, e.g. after a new release was added to it."""
        if self._snapshot is None:
            raise ValueError("this mirror serves a prebuilt catalogue; there is no folder to re-read")
        self.catalogue = MirrorCatalogue(self._snapshot)

    def start(self) -> MirrorServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> MirrorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answers ---------------------------------------------------------------

    def releases_json(self) -> dict[str, Any]:
        return {"data": [
            {"release": tag, "generationDate": date,
             "dataProducts": [{"productCode": code} for code, sites in self.catalogue.availability.items()
                              if any(tag in rels for rels in sites.values())]}
            for tag, date in sorted(self.catalogue.release_dates.items())
        ]}

    def product_json(self, code: str) -> dict[str, Any] | None:
        sites = self.catalogue.availability.get(code)
        if sites is None:
            return None
        releases = sorted({r for rels in sites.values() for r in rels})
        return {"data": {
            "productCode": code,
            "productName": PRODUCTS[code].name if code in PRODUCTS else code,
            "releases": [{"release": r, "generationDate": self.catalogue.release_dates[r]} for r in releases],
            "siteCodes": [
                {"siteCode": site,
                 "availableMonths": sorted({m for ms in rels.values() for m in ms}),
                 "availableReleases": [{"release": r, "availableMonths": sorted(ms)} for r, ms in sorted(rels.items())]}
                for site, rels in sorted(sites.items())
            ],
        }}

    def query_json(self, params: dict[str, list[str]], root: str) -> dict[str, Any] | None:
        code = (params.get("productCode") or [""])[0]
        release = (params.get("release") or [""])[0]
        start = (params.get("startDateMonth") or ["0000-00"])[0]
        end = (params.get("endDateMonth") or ["9999-99"])[0]
        sites = params.get("siteCode") or []
        availability = self.catalogue.availability.get(code)
        if availability is None or release not in self.catalogue.release_dates:
            return None
        packages = []
        for site in sorted(set(sites)):
            for month in sorted(availability.get(site, {}).get(release, set())):
                if start <= month <= end:
                    packages.append(self._package(code, release, site, month, root))
        return {"data": {
            "productCode": code, "siteCodes": sorted(set(sites)), "packageType": "basic",
            "releases": [{"release": release, "generationDate": self.catalogue.release_dates[release],
                          "packages": packages}],
        }}

    def _package(self, code: str, release: str, site: str, month: str, root: str) -> dict[str, Any]:
        return {
            "domainCode": self.catalogue.domains.get(site, "D00"), "siteCode": site, "month": month,
            "packageType": "basic",
            "files": [
                {"name": f.name, "size": len(f.body), "md5": f.md5, "crc32c": f.crc32c,
                 "url": f"{root}files/{quote(release)}/{quote(f.name)}"}
                for f in self.catalogue.package_files(code, release, site, month)
            ],
        }


def _with_hostile_identifiers(answer: dict[str, Any]) -> dict[str, Any]:
    """Add a release tag and a site code that break NEON's patterns (path traversal, a quote)."""
    data = answer.get("data")
    if isinstance(data, list):  # /releases
        data.append({"release": HOSTILE_RELEASE, "generationDate": "2026-01-01T00:00:00Z"})
    elif isinstance(data, dict) and "siteCodes" in data:  # /products/{dpID}
        releases = [r["release"] for r in data.get("releases", [])]
        data["siteCodes"].append({"siteCode": HOSTILE_SITE, "availableMonths": ["2013-08"],
                                  "availableReleases": [{"release": r, "availableMonths": ["2013-08"]} for r in releases]})
    return answer


def _handler_for(mirror: MirrorServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            log.debug("mirror: %s", format % args)

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            if urlsplit(self.path).path != "/__faults":
                return self._json(404, {"errors": [{"detail": "not found"}]})
            length = int(self.headers.get("content-length") or 0)
            try:
                plan = json.loads(self.rfile.read(length) or b"{}")
                mirror.faults.counts = {k: int(v) for k, v in plan.get("counts", {}).items() if k in FAULT_KINDS}
                mirror.faults.scope = plan.get("scope", "all")
                mirror.faults.slow_s = float(plan.get("slow_s", mirror.faults.slow_s))
                mirror.faults.reset_s = float(plan.get("reset_s", mirror.faults.reset_s))
            except (ValueError, AttributeError) as exc:
                return self._json(400, {"errors": [{"detail": f"bad fault plan: {exc}"}]})
            self._json(200, {"data": {"counts": mirror.faults.counts}})

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            url = urlsplit(self.path)
            path = url.path
            if path == "/__stats":
                s = mirror.stats
                return self._json(200, {"data": {"requests": s.requests, "downloads": s.downloads,
                                                  "token_seen": s.token_seen}})
            mirror.stats.requests += 1
            mirror.stats.paths.append(path)
            if self.headers.get("X-API-Token"):
                mirror.stats.token_seen = True
            if not path.startswith(API_PREFIX):
                return self._json(404, {"errors": [{"detail": "not found"}]})
            rest = path[len(API_PREFIX):]
            is_file = rest.startswith("files/")
            fault = mirror.faults.take(is_file)
            if fault == "slow":
                time.sleep(mirror.faults.slow_s)
            elif fault == "rate_limit":
                reset = f"{mirror.faults.reset_s:g}"
                return self._send(429, b'{"errors":[{"detail":"rate limited"}]}', "application/json",
                                  {"X-RateLimit-Reset": reset, "RetryAfter": reset, "X-RateLimit-Remaining": "0"})
            elif fault == "server_error":
                return self._json(500, {"errors": [{"detail": "injected server error"}]})
            elif fault == "drop":
                self.close_connection = True
                self.connection.close()
                return None
            elif fault == "malformed_json" and not is_file:
                return self._send(200, b'{"data": [truncated', "application/json")
            root = f"http://{self.headers.get('Host', '127.0.0.1')}{API_PREFIX}"
            if is_file:
                return self._file(rest, fault)
            answer = self._route(rest, parse_qs(url.query), root)
            if fault == "hostile_ids" and answer is not None:
                answer = _with_hostile_identifiers(answer)
            if answer is None:
                return self._json(400, {"errors": [{"detail": f"nothing at {path}"}]})
            body = json.dumps(answer).encode()
            if fault == "truncate":
                return self._send(200, body[: len(body) // 2], "application/json")
            self._send(200, body, "application/json")

        def _route(self, rest: str, params: dict[str, list[str]], root: str) -> dict[str, Any] | None:
            parts = rest.strip("/").split("/")
            if parts == ["releases"]:
                return mirror.releases_json()
            if len(parts) == 2 and parts[0] == "products":
                return mirror.product_json(parts[1])
            if parts == ["data", "query"]:
                return mirror.query_json(params, root)
            if len(parts) == 4 and parts[0] == "data":
                release = (params.get("release") or [""])[0]
                return {"data": mirror._package(parts[1], release, parts[2], parts[3], root)}
            return None

        def _file(self, rest: str, fault: str | None) -> None:
            parts = rest.split("/")
            key = (parts[1], parts[2]) if len(parts) == 3 else None
            entry = mirror.catalogue.files.get(key) if key else None
            if entry is None:
                return self._json(404, {"errors": [{"detail": "no such file"}]})
            mirror.stats.downloads += 1
            body = entry.body
            if fault == "bad_checksum":
                body = body[:-2] + bytes([body[-2] ^ 0x20]) + body[-1:]
            if fault == "truncate":
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.close()
                return None
            self._send(200, body, "text/csv")

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json")

        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler
