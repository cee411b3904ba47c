"""A client for the NEON Data API v0 that survives what the API does in practice.

429 waits as the API's `X-RateLimit-Reset` / `RetryAfter` headers say; 5xx,
timeouts, dropped connections and malformed bodies get bounded exponential
backoff; downloads are checked against the announced md5 (or crc32c) and
renamed into place only when they match. The token (`NEON_TOKEN`) is read
from the environment at request time, sent only to the API's own origin, and
never appears in a message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import google_crc32c
import httpx

from rootassets.neon.errors import (
    NeonApiError,
    NeonChecksumError,
    NeonContext,
    NeonRateLimitedError,
)
from rootassets.neon.identifiers import (
    validate_month,
    validate_product,
    validate_release,
    validate_site,
)

DEFAULT_API_URL = "https://data.neonscience.org/api/v0/"
TOKEN_ENV = "NEON_TOKEN"
TOKEN_HEADER = "X-API-Token"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts per request, backoff and the longest 429 wait."""

    attempts: int = 6
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    rate_limit_max_wait_s: float = 120.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for attempt 1, 2, ... (bounded)."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class NeonFileEntry:
    """A file the API offers for download, with its announced checksum."""

    name: str
    url: str
    size: int | None = None
    md5: str | None = None
    crc32c: str | None = None
    site: str | None = None
    month: str | None = None


@dataclass
class _Attempts:
    policy: RetryPolicy
    context: NeonContext
    sleep: Callable[[float], None]
    count: int = 0
    problems: list[str] = field(default_factory=list)

    def next(self, problem: str, wait_s: float | None = None) -> None:
        """Record a failed attempt and wait, or raise when the budget is spent."""
        self.count += 1
        self.problems.append(problem)
        if self.count >= self.policy.attempts:
            kind = NeonRateLimitedError if problem.startswith("HTTP 429") else NeonApiError
            raise kind(
                f"{self.context.describe()}: gave up after {self.count} attempts "
                f"({'; '.join(self.problems[-3:])})"
            )
        delay = self.policy.backoff(self.count) if wait_s is None else wait_s
        log.warning("%s: %s; retrying in %.1fs", self.context.describe(), problem, delay)
        self.sleep(delay)


class NeonClient:
    """The NEON Data API v0 (or a compatible mirror) at `base_url`."""

    def __init__(
        self,
        base_url: str | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        base = base_url or os.environ.get("NEON_API_URL") or DEFAULT_API_URL
        self.base_url = base if base.endswith("/") else base + "/"
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._http = httpx.Client(
            timeout=httpx.Timeout(self.policy.read_timeout_s, connect=self.policy.connect_timeout_s),
            follow_redirects=False,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> NeonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- endpoints -------------------------------------------------------------

    def releases(self) -> list[dict[str, Any]]:
        """`/releases`: every release with its generation date and product DOIs."""
        data = self.get_json("releases", context=NeonContext())
        return _as_list(data, "releases")

    def product(self, product: str) -> dict[str, Any]:
        """`/products/{dpID}`: releases and `siteCodes[].availableReleases`."""
        validate_product(product)
        data = self.get_json(f"products/{product}", context=NeonContext(product=product))
        if not isinstance(data, dict):
            raise NeonApiError(f"product {product}: /products answered without a product object")
        return data

    def query_files(
        self, product: str, release: str, sites: list[str], start_month: str, end_month: str
    ) -> list[dict[str, Any]]:
        """`/data/query`: every package of `product` in `release` for `sites`, in one call."""
        validate_product(product)
        validate_release(release)
        for site in sites:
            validate_site(site)
        params: list[tuple[str, str]] = [("productCode", product)]
        params += [("siteCode", s) for s in sites]
        params += [
            ("startDateMonth", validate_month(start_month)),
            ("endDateMonth", validate_month(end_month)),
            ("release", release),
            ("package", "basic"),
            ("includeProvisional", "true" if release == "PROVISIONAL" else "false"),
        ]
        context = NeonContext(product=product, release=release)
        data = self.get_json("data/query", params=params, context=context)
        if not isinstance(data, dict):
            raise NeonApiError(f"{context.describe()}: /data/query answered without a data object")
        packages: list[dict[str, Any]] = []
        for entry in data.get("releases") or []:
            if entry.get("release") == release:
                packages.extend(entry.get("packages") or [])
        return packages

    # -- transport -------------------------------------------------------------

    def get_json(
        self,
        path: str,
        params: list[tuple[str, str]] | Mapping[str, str] | None = None,
        context: NeonContext | None = None,
    ) -> Any:
        """GET a JSON endpoint and return its `data`, retrying what can be retried."""
        context = context or NeonContext()
        attempts = _Attempts(self.policy, context, self._sleep)
        url = urljoin(self.base_url, path)
        while True:
            try:
                response = self._send(url, params)
            except httpx.TransportError as exc:
                attempts.next(f"{type(exc).__name__} on {path}")
                continue
            problem, wait = self._classify(response, path)
            if problem:
                attempts.next(problem, wait)
                continue
            try:
                body = json.loads(response.content)
            except (json.JSONDecodeError, UnicodeDecodeError):
                attempts.next(f"malformed JSON from {path}")
                continue
            if not isinstance(body, dict) or "data" not in body:
                attempts.next(f"JSON from {path} has no 'data' member")
                continue
            return body["data"]

    def download(self, entry: NeonFileEntry, folder: Path, context: NeonContext) -> Path:
        """Download `entry` into `folder`, verified and atomically renamed.

        A file already present with the announced checksum is not fetched again.
        """
        name = _safe_file_name(entry.name, context)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        if target.exists() and _matches(target, entry):
            return target
        attempts = _Attempts(self.policy, context, self._sleep)
        while True:
            partial = folder / f".{name}.{os.getpid()}.part"
            try:
                response_problem = self._stream_to(entry.url, partial)
            except httpx.TransportError as exc:
                partial.unlink(missing_ok=True)
                attempts.next(f"{type(exc).__name__} while downloading")
                continue
            if response_problem:
                partial.unlink(missing_ok=True)
                attempts.next(*response_problem)
                continue
            if not _matches(partial, entry):
                partial.unlink(missing_ok=True)
                try:
                    attempts.next("checksum mismatch")
                except NeonApiError as exc:
                    raise NeonChecksumError(str(exc)) from None
                continue
            os.replace(partial, target)
            return target

    def _stream_to(self, url: str, partial: Path) -> tuple[str, float | None] | None:
        with self._stream(url) as response:
            problem, wait = self._classify(response, urlsplit(url).path)
            if problem:
                return problem, wait
            expected = response.headers.get("content-length")
            written = 0
            with partial.open("wb") as fh:
                for chunk in response.iter_bytes():
                    fh.write(chunk)
                    written += len(chunk)
            if expected is not None and expected.isdigit() and int(expected) != written:
                return f"truncated body ({written} of {expected} bytes)", None
        return None

    def _stream(self, url: str) -> Any:
        """Stream a download, following redirects by hand so the token never leaves the API origin."""
        for _ in range(5):
            request = self._http.build_request("GET", url, headers=self._headers_for(url))
            response = self._http.send(request, stream=True)
            if response.is_redirect and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                response.close()
                continue
            return _closing(response)
        raise NeonApiError(f"too many redirects fetching {urlsplit(url).path}")

    def _send(self, url: str, params: Any) -> httpx.Response:
        response = self._http.get(url, params=params, headers=self._headers_for(url))
        for _ in range(5):
            if not (response.is_redirect and "location" in response.headers):
                break
            url = urljoin(url, response.headers["location"])
            response = self._http.get(url, headers=self._headers_for(url))
        return response

    def _headers_for(self, url: str) -> dict[str, str]:
        token = os.environ.get(TOKEN_ENV)
        same_origin = urlsplit(url)[:2] == urlsplit(self.base_url)[:2]
        return {TOKEN_HEADER: token} if token and same_origin else {}

    def _classify(self, response: httpx.Response, path: str) -> tuple[str | None, float | None]:
        """Return (problem, wait) for a retryable answer, (None, None) for success; raise otherwise."""
        status = response.status_code
        if status == 429:
            return f"HTTP 429 on {path}", self._rate_limit_wait(response.headers)
        if status >= 500:
            return f"HTTP {status} on {path}", None
        if status >= 400:
            detail = _error_detail(response)
            raise NeonApiError(f"HTTP {status} on {path}: {detail}")
        return None, None

    def _rate_limit_wait(self, headers: Mapping[str, str]) -> float:
        for name in ("x-ratelimit-reset", "retryafter", "retry-after"):
            value = headers.get(name)
            if value is None:
                continue
            try:
                seconds = float(value)
            except ValueError:
                continue
            return max(0.0, min(seconds, self.policy.rate_limit_max_wait_s))
        return self.policy.backoff(1)


class _closing:
    """Context manager that closes a streamed response."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response

    def __enter__(self) -> httpx.Response:
        return self.response

    def __exit__(self, *exc: object) -> None:
        self.response.close()


def file_entries(package: Mapping[str, Any]) -> Iterator[NeonFileEntry]:
    """The files of one `/data/query` package as NeonFileEntry values."""
    site = package.get("siteCode")
    month = package.get("month")
    for f in package.get("files") or []:
        if not isinstance(f, dict) or not f.get("name") or not f.get("url"):
            continue
        size = f.get("size")
        yield NeonFileEntry(
            name=str(f["name"]),
            url=str(f["url"]),
            size=int(size) if isinstance(size, (int, float, str)) and str(size).isdigit() else None,
            md5=f.get("md5") or None,
            crc32c=f.get("crc32c") or None,
            site=site,
            month=month,
        )


def _safe_file_name(name: str, context: NeonContext) -> str:
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\x00" in name
        or name.startswith(".")
    ):
        raise NeonApiError(f"{context.describe()}: refusing unsafe file name {name!r}")
    return name


def _matches(path: Path, entry: NeonFileEntry) -> bool:
    data_md5 = hashlib.md5()
    crc = google_crc32c.Checksum()
    size = 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            data_md5.update(chunk)
            crc.update(chunk)
            size += len(chunk)
    if entry.size is not None and size != entry.size:
        return False
    if entry.md5:
        return data_md5.hexdigest() == entry.md5.lower()
    if entry.crc32c:
        return crc.hexdigest().decode() == entry.crc32c.lower().rjust(8, "0")
    return True


def _error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
        errors = body.get("errors") or [body.get("error") or body]
        return "; ".join(str(e.get("detail", e)) if isinstance(e, dict) else str(e) for e in errors)[:300]
    except (ValueError, AttributeError):
        return response.text[:300]


def _as_list(data: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(data, list):
        raise NeonApiError(f"/{what} answered without a list")
    return [d for d in data if isinstance(d, dict)]
