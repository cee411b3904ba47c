"""A NEON Data API v0 stand-in on 127.0.0.1, built from NEON's published API documentation.

Two origins, as NEON has: the API (`/api/v0/...`) and a storage host on
another port that serves files through signed, expiring URLs, as NEON's
cloud storage does. What it follows from the documentation
(`NEONScience/neon-data-api`: docs/content/*.md and swagger.json):

* `/releases`, `/releases/{tag}`, `/products/{dpID}` (`?release=`),
  `/data/query` (GET and POST; `release` optional: the latest release
  otherwise, PROVISIONAL only with `includeProvisional`),
  `/data/{dpID}/{site}/{month}` and `/data/{dpID}/{site}/{month}/{file}`
  (a 302 to the signed URL), and the same under `/releases/{tag}/`.
  HEAD is answered like GET without a body.
* Errors: 400 with `{"errors": [{"status", "detail"}]}` on the data
  endpoints, `{"error": {"status", "detail"}}` on `/products` (what NEON's
  own R client reads).
* A token (`X-API-Token` header or `apiToken` parameter) is required on every
  `/data*` endpoint (401 without one, or with an expired one); it is checked
  for a JWT's shape and expiry (the mirror cannot check NEON's signature).
* Rate limits as a token bucket per token (2000 burst, 8/s) or per IP (200,
  2/s): `X-RateLimit-Limit` and `X-RateLimit-Remaining` on every API answer;
  a 429 adds `X-RateLimit-Reset` (seconds until the burst is full again) and
  `RetryAfter` (seconds until the next request), with
  `{"message": "API rate limit exceeded"}`.

Faults for tests (constructor, `--fault KIND=COUNT`, or `POST /__faults`):
rate_limit (Reset and RetryAfter differ: 100 and 1 by default), server_error,
drop, truncate, bad_checksum, slow, malformed_json, hostile_ids,
expired_url (the next URLs handed out are already expired), expired_token
(the next `/data*` requests are refused as if the token had just expired).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from rootassets.neon.identifiers import MONTH_PATTERN, PRODUCT_PATTERN, SITE_PATTERN, release_sort_key
from rootassets.neon.mirror.catalogue import MirrorCatalogue
from rootassets.neon.products import PRODUCTS
from rootassets.neon.tokens import TOKEN_HEADER, TOKEN_PARAM, token_expiry

API_PREFIX = "/api/v0/"
STORAGE_BUCKET = "neon-mirror-pub"
FAULT_KINDS = (
    "rate_limit",
    "server_error",
    "drop",
    "truncate",
    "bad_checksum",
    "slow",
    "malformed_json",
    "hostile_ids",
    "expired_url",
    "expired_token",
)
HOSTILE_RELEASE = "RELEASE-2021/../../etc"
HOSTILE_SITE = "../X'"
URL_TTL_S = 7 * 24 * 3600  # "URLs ... expire 7 days after generation" (docs: data.md)
log = logging.getLogger(__name__)


@dataclass
class FaultPlan:
    """Faults to inject: each kind applies to the next `count` matching requests (-1: always)."""

    counts: dict[str, int] = field(default_factory=dict)
    scope: str = "all"  # all | json (API answers) | files (storage downloads)
    slow_s: float = 2.0
    reset_s: float = 100.0  # X-RateLimit-Reset on an injected 429
    retry_after_s: float = 1.0  # RetryAfter on an injected 429
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, is_file: bool, only: tuple[str, ...] | None = None) -> str | None:
        """The fault for this request, if any, consuming one from its budget."""
        if only is None and (self.scope == "json" and is_file or self.scope == "files" and not is_file):
            return None
        with self._lock:
            for kind in only or FAULT_KINDS:
                left = self.counts.get(kind, 0)
                if left == 0 or kind in ("expired_url", "expired_token") and only is None:
                    continue
                if kind == "bad_checksum" and not is_file:  # a checksum belongs to a file
                    continue
                if kind in ("rate_limit", "hostile_ids", "malformed_json") and is_file:
                    continue  # the storage host has no rate limit and serves no JSON
                if left > 0:
                    self.counts[kind] = left - 1
                return kind
        return None


@dataclass
class MirrorStats:
    """What the mirror saw, for tests and the mirror's log."""

    requests: int = 0
    downloads: int = 0
    token_seen: bool = False  # a token reached the API origin
    token_seen_by_storage: bool = False  # a token reached the storage origin: must never happen
    paths: list[str] = field(default_factory=list)
    storage_paths: list[str] = field(default_factory=list)
    rate_limited: int = 0


class RateLimiter:
    """NEON's documented limits: a burst that refills at a rate, per token or per IP."""

    def __init__(self, public: tuple[int, float] = (200, 2.0), token: tuple[int, float] = (2000, 8.0)) -> None:
        self.public, self.token = public, token
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, identity: str, has_token: bool) -> tuple[bool, dict[str, str]]:
        """(allowed, headers) for one request by `identity`."""
        burst, rate = self.token if has_token else self.public
        now = time.monotonic()
        with self._lock:
            level, at = self._buckets.get(identity, (float(burst), now))
            level = min(float(burst), level + (now - at) * rate)
            allowed = level >= 1.0
            if allowed:
                level -= 1.0
            self._buckets[identity] = (level, now)
        headers = {"X-RateLimit-Limit": str(burst), "X-RateLimit-Remaining": str(int(level))}
        if not allowed:
            headers["X-RateLimit-Reset"] = str(math.ceil((burst - level) / rate))
            headers["RetryAfter"] = str(max(1, math.ceil((1.0 - level) / rate)))
        return allowed, headers


class UrlSigner:
    """Signed storage URLs in the style of cloud storage (GOOG4-HMAC-SHA256 parameters)."""

    def __init__(self, ttl_s: int = URL_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._key = secrets.token_bytes(32)

    def sign(self, path: str, issued: float | None = None) -> str:
        issued = time.time() if issued is None else issued
        date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(issued))
        signature = self._signature(path, date, self.ttl_s)
        return (
            f"{path}?X-Goog-Algorithm=GOOG4-HMAC-SHA256&X-Goog-Date={date}&X-Goog-Expires={self.ttl_s}"
            f"&X-Goog-SignedHeaders=host&X-Goog-Signature={signature}"
        )

    def check(self, path: str, params: dict[str, list[str]]) -> str | None:
        """None when the URL is valid; otherwise the storage error code."""
        date = (params.get("X-Goog-Date") or [""])[0]
        expires = (params.get("X-Goog-Expires") or [""])[0]
        signature = (params.get("X-Goog-Signature") or [""])[0]
        if not (date and expires.isdigit() and signature):
            return "MissingSecurityHeader"
        if not hmac.compare_digest(signature, self._signature(path, date, int(expires))):
            return "SignatureDoesNotMatch"
        try:
            issued = time.mktime(time.strptime(date, "%Y%m%dT%H%M%SZ")) - time.timezone
        except ValueError:
            return "SignatureDoesNotMatch"
        return "ExpiredToken" if time.time() > issued + int(expires) else None

    def _signature(self, path: str, date: str, ttl: int) -> str:
        return hmac.new(self._key, f"{path}\n{date}\n{ttl}".encode(), hashlib.sha256).hexdigest()


class MirrorServer:
    """Serve a MirrorCatalogue: the API on `host:port`, files on `host:storage_port` (0: a free port)."""

    def __init__(
        self,
        snapshot: Path | str | list[Path] | MirrorCatalogue,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
        require_token: bool = True,
        storage_port: int = 0,
        rate_limiter: RateLimiter | None = None,
        url_ttl_s: int = URL_TTL_S,
        access_log: Callable[[str], None] | None = None,
    ) -> None:
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError(f"the mirror listens on loopback only, not {host!r}")
        self._snapshot = None if isinstance(snapshot, MirrorCatalogue) else snapshot
        self.catalogue = snapshot if isinstance(snapshot, MirrorCatalogue) else MirrorCatalogue(snapshot)
        self.faults = faults or FaultPlan()
        self.require_token = require_token
        self.access_log = access_log
        self.stats = MirrorStats()
        self.limiter = rate_limiter or RateLimiter()
        self.signer = UrlSigner(url_ttl_s)
        self._api = ThreadingHTTPServer((host, port), _api_handler(self))
        self._storage = ThreadingHTTPServer((host, storage_port), _storage_handler(self))
        for server in (self._api, self._storage):
            server.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def base_url(self) -> str:
        host, port = self._api.server_address[:2]
        return f"http://{host}:{port}{API_PREFIX}"

    @property
    def storage_url(self) -> str:
        host, port = self._storage.server_address[:2]
        return f"http://{host}:{port}/"

    def reload(self) -> None:
        """Re-read the snapshot folders, e.g. after a new release was added."""
        if self._snapshot is None:
            raise ValueError("this mirror serves a prebuilt catalogue; there is no folder to re-read")
        self.catalogue = MirrorCatalogue(self._snapshot)

    def start(self) -> MirrorServer:
        for server in (self._api, self._storage):
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def serve_forever(self) -> None:
        thread = threading.Thread(target=self._storage.serve_forever, daemon=True)
        thread.start()
        self._threads.append(thread)
        self._api.serve_forever()

    def stop(self) -> None:
        for server in (self._api, self._storage):
            server.shutdown()
            server.server_close()

    def __enter__(self) -> MirrorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_faults(self, plan: dict[str, Any]) -> None:
        self.faults.counts = {k: int(v) for k, v in plan.get("counts", {}).items() if k in FAULT_KINDS}
        self.faults.scope = plan.get("scope", "all")
        for name in ("slow_s", "reset_s", "retry_after_s"):
            if name in plan:
                setattr(self.faults, name, float(plan[name]))

    # -- answers (JSON bodies) ---------------------------------------------------

    def file_url(self, release: str, name: str) -> str:
        """The signed storage URL of one file (already expired while an `expired_url` fault lasts)."""
        path = f"/{STORAGE_BUCKET}/{quote(release)}/{quote(name)}"
        expired = self.faults.take(is_file=False, only=("expired_url",)) == "expired_url"
        issued = time.time() - self.signer.ttl_s - 3600 if expired else None
        return self.storage_url.rstrip("/") + self.signer.sign(path, issued)

    def releases_json(self, api: str) -> list[dict[str, Any]]:
        out = []
        for tag, date in sorted(self.catalogue.release_dates.items(), key=lambda kv: release_sort_key(kv[0])):
            out.append(
                {
                    "release": tag,
                    "uuid": _uuid(tag),
                    "generationDate": date,
                    "url": f"{api}releases/{tag}",
                    "artifacts": [],
                    "dataProducts": [
                        {
                            "productCode": code,
                            "productName": self.catalogue.name_of(code),
                            "productDescription": self.catalogue.name_of(code),
                            "productDoi": f"https://doi.org/{rels[tag].doi}",
                        }
                        for code, rels in sorted(self.catalogue.products.items())
                        if tag in rels
                    ],
                }
            )
        return out

    def product_json(self, code: str, api: str, release: str | None) -> dict[str, Any] | None:
        releases = self.catalogue.products.get(code)
        if releases is None or release is not None and release not in releases:
            return None
        chosen = [r for r in self.catalogue.releases_of(code) if release is None or r == release]
        sites = []
        for site, rels in sorted(self.catalogue.sites_of(code).items()):
            rels = {r: m for r, m in rels.items() if r in chosen}
            if not rels:
                continue
            months = sorted({m for ms in rels.values() for m in ms})
            sites.append(
                {
                    "siteCode": site,
                    "availableMonths": months,
                    "availableDataUrls": [f"{api}data/{code}/{site}/{m}" for m in months],
                    "availableReleases": [
                        {"release": r, "availableMonths": sorted(ms)}
                        for r, ms in sorted(rels.items(), key=lambda kv: release_sort_key(kv[0]))
                    ],
                }
            )
        spec = PRODUCTS.get(code)
        return {
            "productCodeLong": f"NEON.DOM.SITE.{code}",
            "productCode": code,
            "productCodePresentation": "NEON." + code.rsplit(".", 1)[0],
            "productName": self.catalogue.name_of(code),
            "productDescription": self.catalogue.name_of(code),
            "productStatus": "ACTIVE",
            "productCategory": "Level 1 Data Product",
            "productHasExpanded": False,
            "productScienceTeamAbbr": "TOS",
            "productScienceTeam": "",
            "productPublicationFormatType": "TOS Data Product Type",
            "productAbstract": "",
            "productDesignDescription": "",
            "productStudyDescription": "",
            "productBasicDescription": "",
            "productExpandedDescription": None,
            "productSensor": None,
            "productRemarks": "",
            "themes": [],
            "changeLogs": self.catalogue.change_logs.get(code, []),
            "specs": [],
            "keywords": [spec.name] if spec else [],
            "biorepositoryCollections": [],
            "releases": [
                {
                    "release": r,
                    "generationDate": self.catalogue.release_dates[r],
                    "url": f"{api}releases/{r}",
                    "productDoi": {
                        "generationDate": self.catalogue.release_dates[r],
                        "url": f"https://doi.org/{releases[r].doi}",
                    },
                }
                for r in chosen
            ],
            "siteCodes": sites,
        }

    def package_json(self, code: str, release: str, site: str, month: str) -> dict[str, Any]:
        return {
            "domainCode": self.catalogue.domains.get(site, "D00"),
            "siteCode": site,
            "month": month,
            "packageType": "basic",
            "generationDate": self.catalogue.release_dates.get(release),
            "files": [
                self.file_json(f.release, f.name) for f in self.catalogue.package_files(code, release, site, month)
            ],
        }

    def file_json(self, release: str, name: str) -> dict[str, Any]:
        f = self.catalogue.files[(release, name)]
        return {
            "name": f.name,
            "size": len(f.body),
            "md5": f.md5,
            "crc32c": f.crc32c,
            "url": self.file_url(release, f.name),
        }

    def query_json(self, params: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        """`/data/query`: (status, body)."""
        code = _one(params, "productCode")
        sites = [s for value in params.get("siteCode", []) for s in value.split(",") if s]
        start, end = _one(params, "startDateMonth"), _one(params, "endDateMonth")
        release = _one(params, "release")
        provisional = _one(params, "includeProvisional").lower() == "true"
        problems = [
            f"{name} is required"
            for name, value in (
                ("productCode", code),
                ("siteCode", sites),
                ("startDateMonth", start),
                ("endDateMonth", end),
            )
            if not value
        ]
        problems += [f"invalid month {m!r}" for m in (start, end) if m and not MONTH_PATTERN.fullmatch(m)]
        problems += [f"invalid site code {s!r}" for s in sites if not SITE_PATTERN.fullmatch(s)]
        if code and code not in self.catalogue.products:
            problems.append(f"product {code} not found")
        if release and code in self.catalogue.products and release not in self.catalogue.products[code]:
            problems.append(f"release {release} not found for product {code}")
        if _one(params, "package") not in ("", "basic", "expanded"):
            problems.append("package must be basic or expanded")
        if problems:
            return 400, _errors(400, *problems)
        by_release: dict[str, list[dict[str, Any]]] = {}
        site_months = self.catalogue.sites_of(code)
        for site in sorted(set(sites)):
            months = sorted({m for ms in site_months.get(site, {}).values() for m in ms if start <= m <= end})
            for month in months:
                chosen = release if release else self.catalogue.latest_release_with(code, site, month, provisional)
                if chosen is None or month not in site_months[site].get(chosen, set()):
                    continue
                if chosen == "PROVISIONAL" and not provisional and not release:
                    continue
                by_release.setdefault(chosen, []).append(self.package_json(code, chosen, site, month))
        return 200, {
            "data": {
                "productCode": code,
                "siteCodes": sorted(set(sites)),
                "startDate": f"{start}-01T00:00:00Z",
                "endDate": f"{end}-01T00:00:00Z",
                "packageType": _one(params, "package") or "basic",
                "releases": [
                    {"release": r, "generationDate": self.catalogue.release_dates[r], "packages": p}
                    for r, p in sorted(by_release.items(), key=lambda kv: release_sort_key(kv[0]))
                ],
            }
        }

    def month_json(self, code: str, site: str, month: str, release: str, api: str) -> tuple[int, dict[str, Any]]:
        """`/data/{dpID}/{site}/{month}`: (status, body)."""
        if code not in self.catalogue.products:
            return 400, _errors(400, f"product {code} not found")
        if not SITE_PATTERN.fullmatch(site) or site not in self.catalogue.sites_of(code):
            return 400, _errors(400, f"site {site} not found for product {code}")
        if not MONTH_PATTERN.fullmatch(month):
            return 400, _errors(400, f"invalid month {month!r}")
        chosen = release or self.catalogue.latest_release_with(code, site, month)
        if chosen is None or month not in self.catalogue.sites_of(code)[site].get(chosen, set()):
            return 400, _errors(400, f"no data for {code} at {site} in {month}" + (f" in {release}" if release else ""))
        package = self.package_json(code, chosen, site, month)
        return 200, {
            "data": {
                "productCode": code,
                "siteCode": site,
                "month": month,
                "release": chosen,
                "packages": [{"type": "basic", "url": f"{api}data/package/{code}/{site}/{month}?package=basic"}],
                "files": package["files"],
            }
        }


def _one(params: dict[str, list[str]], name: str) -> str:
    return (params.get(name) or [""])[0]


def _uuid(tag: str) -> str:
    digest = hashlib.sha256(tag.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _errors(status: int, *details: str) -> dict[str, Any]:
    return {"errors": [{"status": status, "detail": d} for d in details]}


def _with_hostile_identifiers(answer: dict[str, Any]) -> dict[str, Any]:
    """Add a release tag and a site code that break NEON's patterns (path traversal, a quote)."""
    data = answer.get("data")
    if isinstance(data, list):  # /releases
        data.append({"release": HOSTILE_RELEASE, "generationDate": "2026-01-01T00:00:00Z"})
    elif isinstance(data, dict) and "siteCodes" in data and "releases" in data:  # /products/{dpID}
        releases = [r["release"] for r in data.get("releases", [])]
        data["siteCodes"].append(
            {
                "siteCode": HOSTILE_SITE,
                "availableMonths": ["2013-08"],
                "availableReleases": [{"release": r, "availableMonths": ["2013-08"]} for r in releases],
            }
        )
    return answer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    mirror: MirrorServer
    origin = "api"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        log.debug("mirror: %s", format % args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """One access-log line per answer: origin, method, path (never the query: it holds signatures and
        tokens), status, and whether a token came with the request."""
        url = urlsplit(self.path)
        carried = bool(self.headers.get(TOKEN_HEADER)) or TOKEN_PARAM in parse_qs(url.query)
        line = f"{self.origin} {self.command} {url.path} {code} token={'yes' if carried else 'no'}"
        if self.mirror.access_log is not None:
            self.mirror.access_log(line)
        log.debug("mirror: %s", line)

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib name
        self._head_only = True
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        raise NotImplementedError

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not getattr(self, "_head_only", False):
            self.wfile.write(body)

    def _drop(self) -> None:
        self.close_connection = True
        self.connection.close()


def _api_handler(mirror: MirrorServer) -> type[BaseHTTPRequestHandler]:
    class Api(_Handler):
        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            path = urlsplit(self.path).path
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            if path == "/__faults":
                try:
                    mirror.set_faults(json.loads(raw or b"{}"))
                except (ValueError, AttributeError, TypeError) as exc:
                    return self._json(400, {"errors": [{"status": 400, "detail": f"bad fault plan: {exc}"}]})
                return self._json(200, {"data": {"counts": mirror.faults.counts}})
            if path.rstrip("/") == API_PREFIX + "data/query":
                try:
                    body = json.loads(raw or b"{}")
                    params = {k: [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in body.items()}
                except (ValueError, AttributeError):
                    return self._json(400, _errors(400, "request body is not a JSON object"))
                params["siteCode"] = params.pop("siteCodes", [])
                return self._answer(path, {**parse_qs(urlsplit(self.path).query), **params})
            self._json(404, _errors(404, f"nothing at {path}"))

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            url = urlsplit(self.path)
            if url.path == "/__stats":
                s = mirror.stats
                return self._json(
                    200,
                    {
                        "data": {
                            "requests": s.requests,
                            "downloads": s.downloads,
                            "token_seen": s.token_seen,
                            "token_seen_by_storage": s.token_seen_by_storage,
                            "rate_limited": s.rate_limited,
                        }
                    },
                )
            self._answer(url.path, parse_qs(url.query))

        def _answer(self, path: str, params: dict[str, list[str]]) -> None:
            mirror.stats.requests += 1
            mirror.stats.paths.append(path)
            token = self.headers.get(TOKEN_HEADER) or _one(params, TOKEN_PARAM) or None
            if token:
                mirror.stats.token_seen = True
            if not path.startswith(API_PREFIX):
                return self._json(404, _errors(404, f"nothing at {path}"))
            allowed, limits = mirror.limiter.take(token or self.client_address[0], token is not None)
            self._limits = limits
            fault = mirror.faults.take(is_file=False)
            if fault == "rate_limit":
                allowed = False
                limits.update(
                    {
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": f"{mirror.faults.reset_s:g}",
                        "RetryAfter": f"{mirror.faults.retry_after_s:g}",
                    }
                )
            if not allowed:
                mirror.stats.rate_limited += 1
                return self._json(429, {"message": "API rate limit exceeded"})
            if fault == "slow":
                time.sleep(mirror.faults.slow_s)
            elif fault == "server_error":
                return self._json(500, _errors(500, "injected server error"))
            elif fault == "drop":
                return self._drop()
            elif fault == "malformed_json":
                return self._send(200, b'{"data": [truncated', "application/json", limits)
            parts = [unquote(p) for p in path[len(API_PREFIX) :].strip("/").split("/")]
            release = _one(params, "release")
            if len(parts) >= 3 and parts[0] == "releases" and parts[2] in ("data", "products", "sites"):
                release, parts = parts[1], parts[2:]
            if parts and parts[0] == "data" and mirror.require_token:
                refusal = self._token_refusal(token)
                if refusal:
                    return self._json(401, _errors(401, refusal))
            api = f"http://{self.headers.get('Host', '127.0.0.1')}{API_PREFIX}"
            status, answer = self._route(parts, params, release, api)
            if status == 302:
                return self._send(302, b"", "text/plain", {**limits, "Location": answer["location"]})
            if fault == "hostile_ids" and status == 200:
                answer = _with_hostile_identifiers(answer)
            body = json.dumps(answer).encode()
            if fault == "truncate":
                return self._send(200, body[: len(body) // 2], "application/json", limits)
            self._send(status, body, "application/json", limits)

        def _token_refusal(self, token: str | None) -> str | None:
            if token is None:
                return (
                    "An API token is required for this endpoint: send it in the X-API-Token header "
                    "(see https://data.neonscience.org/data-api/authentication)"
                )
            if mirror.faults.take(is_file=False, only=("expired_token",)) == "expired_token":
                return "API token has expired"
            parts = token.split(".")
            if len(parts) != 3 or not parts[0] or not parts[1]:
                return "API token is invalid"
            exp = token_expiry(token)
            if exp is not None and exp < time.time():
                return "API token has expired"
            return None

        def _route(
            self, parts: list[str], params: dict[str, list[str]], release: str, api: str
        ) -> tuple[int, dict[str, Any]]:
            if parts == ["releases"]:
                return 200, {"data": mirror.releases_json(api)}
            if len(parts) == 2 and parts[0] == "releases":
                found = [r for r in mirror.releases_json(api) if parts[1] in (r["release"], r["uuid"])]
                return (
                    (200, {"data": found[0]})
                    if found
                    else (400, {"error": {"status": 400, "detail": f"release {parts[1]} not found"}})
                )
            if parts == ["products"]:
                listed = (mirror.product_json(code, api, release or None) for code in sorted(mirror.catalogue.products))
                return 200, {"data": [p for p in listed if p is not None]}
            if len(parts) == 2 and parts[0] == "products":
                code = parts[1]
                answer = mirror.product_json(code, api, release or None) if PRODUCT_PATTERN.fullmatch(code) else None
                if answer is None:
                    return 400, {
                        "error": {
                            "status": 400,
                            "detail": f"No data product found for {code}"
                            + (f" in release {release}" if release else ""),
                        }
                    }
                return 200, {"data": answer}
            if parts == ["data", "query"]:
                return mirror.query_json({**params, "release": [release]} if release else params)
            if len(parts) == 4 and parts[0] == "data":
                return mirror.month_json(parts[1], parts[2], parts[3], release, api)
            if len(parts) == 5 and parts[0] == "data":
                status, answer = mirror.month_json(parts[1], parts[2], parts[3], release, api)
                if status != 200:
                    return status, answer
                match = [f for f in answer["data"]["files"] if f["name"] == parts[4]]
                if not match:
                    return 400, _errors(400, f"Invalid file name specified: {parts[4]}")
                return 302, {"location": match[0]["url"]}
            return 404, _errors(404, "nothing at /" + "/".join(parts))

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json", getattr(self, "_limits", None))

    Api.mirror = mirror
    return Api


def _storage_handler(mirror: MirrorServer) -> type[BaseHTTPRequestHandler]:
    class Storage(_Handler):
        origin = "storage"

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            url = urlsplit(self.path)
            params = parse_qs(url.query)
            mirror.stats.storage_paths.append(url.path)
            if self.headers.get(TOKEN_HEADER) or TOKEN_PARAM in params or self.headers.get("Authorization"):
                mirror.stats.token_seen_by_storage = True
                log.error("mirror storage: a request carried the NEON token; it must never leave the API origin")
            parts = [unquote(p) for p in url.path.strip("/").split("/")]
            if len(parts) != 3 or parts[0] != STORAGE_BUCKET:
                return self._xml(404, "NoSuchKey", "The specified key does not exist.")
            problem = mirror.signer.check(url.path, params)
            if problem == "ExpiredToken":
                return self._xml(400, "ExpiredToken", "Invalid argument.", "Request has expired")
            if problem:
                return self._xml(403, problem, "Access denied.")
            entry = mirror.catalogue.files.get((parts[1], parts[2]))
            if entry is None:
                return self._xml(404, "NoSuchKey", "The specified key does not exist.")
            fault = mirror.faults.take(is_file=True)
            if fault == "slow":
                time.sleep(mirror.faults.slow_s)
            elif fault == "server_error":
                return self._xml(503, "ServiceUnavailable", "injected server error")
            elif fault == "drop":
                return self._drop()
            mirror.stats.downloads += 1
            body = entry.body
            if fault == "bad_checksum":
                body = body[:-2] + bytes([body[-2] ^ 0x20]) + body[-1:]
            if fault == "truncate":
                self.send_response(200)
                self.send_header("Content-Type", entry.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                return self._drop()
            md5 = base64.b64encode(bytes.fromhex(entry.md5)).decode()
            self._send(200, body, entry.content_type, {"x-goog-hash": f"md5={md5}"})

        def _xml(self, status: int, code: str, message: str, details: str = "") -> None:
            body = (
                f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message>"
                f"<Details>{details}</Details></Error>"
            ).encode()
            self._send(status, body, "application/xml")

    Storage.mirror = mirror
    return Storage
