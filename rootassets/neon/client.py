"""A client for the NEON Data API v0 that survives what the API does in practice.

A 429 waits what `RetryAfter` asks (the seconds until the next request), not
`X-RateLimit-Reset` (the seconds until the whole burst refills); when
`X-RateLimit-Remaining` reaches 0 the client slows down by itself. 5xx,
timeouts, dropped connections and malformed bodies get bounded exponential
backoff. Files come from signed storage URLs on another host: an expired URL
is reported as `NeonUrlExpiredError` so the caller can ask for a fresh one.
Downloads are checked against the announced md5 (or crc32c), renamed into
place only when they match, and kept in a content-addressed cache (by md5),
so a file unchanged between releases is fetched once. The token
(`NEON_TOKEN`) is read from the environment at request time, sent only to the
API's own origin, and never appears in a message; a 401 is a NeonTokenError.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
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
    NeonRequestRefusedError,
    NeonTokenError,
    NeonUrlExpiredError,
)
from rootassets.neon.identifiers import (
    validate_month,
    validate_product,
    validate_release,
    validate_site,
)
from rootassets.neon.tokens import TOKEN_ENV, TOKEN_HEADER, WHERE_TO_GET, current_token

DEFAULT_API_URL = "https://data.neonscience.org/api/v0/"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts per request, backoff and the longest 429 wait."""

    attempts: int = 6
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    rate_limit_max_wait_s: float = 120.0
    exhausted_pause_s: float = 1.0  # pause before the next request once X-RateLimit-Remaining is 0
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
                f"{self.context.describe()}: gave up after {self.count} attempts ({'; '.join(self.problems[-3:])})"
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
        self._pause_s = 0.0  # owed before the next API request (the burst is used up)
        self.waits: list[tuple[str, float]] = []  # (why, seconds) of every wait, for reports and tests
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

    def products(self, release: str | None = None) -> list[dict[str, Any]]:
        """`/products`: every data product (its availability within `release` when given)."""
        params = {"release": validate_release(release)} if release else None
        return _as_list(self.get_json("products", params=params, context=NeonContext(release=release)), "products")

    def product(self, product: str) -> dict[str, Any]:
        """`/products/{dpID}`: releases and `siteCodes[].availableReleases`."""
        validate_product(product)
        data = self.get_json(f"products/{product}", context=NeonContext(product=product))
        if not isinstance(data, dict):
            raise NeonApiError(f"product {product}: /products answered without a product object")
        return data

    def month_files(self, product: str, site: str, month: str, release: str) -> dict[str, Any]:
        """`/data/{dpID}/{site}/{month}?release=`: one site-month's files (fresh signed URLs)."""
        validate_product(product)
        validate_site(site)
        validate_month(month)
        validate_release(release)
        context = NeonContext(product=product, release=release, site=site, month=month)
        data = self.get_json(
            f"data/{product}/{site}/{month}", params={"release": release, "package": "basic"}, context=context
        )
        if not isinstance(data, dict):
            raise NeonApiError(f"{context.describe()}: /data answered without a data object")
        return data

    def query_files(
        self,
        product: str,
        release: str,
        sites: list[str],
        start_month: str,
        end_month: str,
        package: str = "basic",
    ) -> list[dict[str, Any]]:
        """`/data/query`: every package (`basic` or `expanded`) of `product` in `release` for `sites`, in one
        call."""
        if package not in ("basic", "expanded"):
            raise ValueError(f"package must be basic or expanded, not {package!r}")
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
            ("package", package),
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
        attempts = _Attempts(self.policy, context, lambda s: self._wait("retry", s))
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

    def download(self, entry: NeonFileEntry, folder: Path, context: NeonContext, cache: Path | None = None) -> Path:
        """Download `entry` into `folder`, verified and atomically renamed.

        A file already present with the announced checksum is not fetched again;
        with `cache` (a folder of files named by md5) neither is a file any earlier
        download already holds, whatever its name or release. An expired signed
        URL raises NeonUrlExpiredError (ask the API for a fresh one).
        """
        name = _safe_file_name(entry.name, context)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        if target.exists() and _matches(target, entry):
            return target
        cached = cached_copy(cache, entry)
        if cached is not None:
            _link_or_copy(cached, target)
            return target
        attempts = _Attempts(self.policy, context, lambda s: self._wait("retry", s))
        while True:
            partial = folder / f".{name}.{os.getpid()}.part"
            try:
                response_problem = self._stream_to(entry.url, partial, context)
            except httpx.TransportError as exc:
                partial.unlink(missing_ok=True)
                attempts.next(f"{type(exc).__name__} while downloading")
                continue
            except NeonApiError:
                partial.unlink(missing_ok=True)
                raise
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
            if cache is not None and entry.md5:
                _link_or_copy(target, cache_path(cache, entry.md5))
            return target

    def _stream_to(self, url: str, partial: Path, context: NeonContext) -> tuple[str, float | None] | None:
        with self._stream(url) as response:
            if _is_expired_url(response):
                raise NeonUrlExpiredError(f"{context.describe()}: the signed download URL has expired")
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
            if self._same_origin(url):
                self._pace()
            request = self._http.build_request("GET", url, headers=self._headers_for(url))
            response = self._http.send(request, stream=True)
            if self._same_origin(url):
                self._note_limits(response)
            if response.is_redirect and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                response.close()
                continue
            return _closing(response)
        raise NeonApiError(f"too many redirects fetching {urlsplit(url).path}")

    def _wait(self, why: str, seconds: float) -> None:
        self.waits.append((why, seconds))
        self._sleep(seconds)

    def _pace(self) -> None:
        if self._pause_s > 0:
            pause, self._pause_s = self._pause_s, 0.0
            log.info("NEON API: rate-limit burst used up; pausing %.1fs before the next request", pause)
            self._wait("X-RateLimit-Remaining: 0", pause)

    def _note_limits(self, response: httpx.Response) -> None:
        remaining = response.headers.get("x-ratelimit-remaining")
        if response.status_code != 429 and remaining is not None and remaining.strip() in ("0", "-0"):
            retry = _seconds(response.headers.get("retryafter")) or _seconds(response.headers.get("retry-after"))
            self._pause_s = min(retry or self.policy.exhausted_pause_s, self.policy.rate_limit_max_wait_s)

    def _send(self, url: str, params: Any) -> httpx.Response:
        self._pace()
        response = self._http.get(url, params=params, headers=self._headers_for(url))
        self._note_limits(response)
        for _ in range(5):
            if not (response.is_redirect and "location" in response.headers):
                break
            url = urljoin(url, response.headers["location"])
            response = self._http.get(url, headers=self._headers_for(url))
        return response

    def _same_origin(self, url: str) -> bool:
        return urlsplit(url)[:2] == urlsplit(self.base_url)[:2]

    def _headers_for(self, url: str) -> dict[str, str]:
        """The token goes to the API's own origin only (never to the storage host a URL points to)."""
        token = current_token()
        return {TOKEN_HEADER: token} if token and self._same_origin(url) else {}

    def _classify(self, response: httpx.Response, path: str) -> tuple[str | None, float | None]:
        """Return (problem, wait) for a retryable answer, (None, None) for success; raise otherwise."""
        status = response.status_code
        if status == 429:
            return f"HTTP 429 on {path}", self._rate_limit_wait(response.headers)
        if status == 401 or status == 403 and self._same_origin(str(response.url)):
            detail = _error_detail(response)
            raise NeonTokenError(
                f"HTTP {status} on {path}: the NEON API refused {TOKEN_ENV} ({detail}); {WHERE_TO_GET}, "
                f"export {TOKEN_ENV} and run again"
            )
        if status >= 500:
            return f"HTTP {status} on {path}", None
        if status >= 400:
            detail = _error_detail(response)
            raise NeonRequestRefusedError(f"HTTP {status} on {path}: {detail}")
        return None, None

    def _rate_limit_wait(self, headers: Mapping[str, str]) -> float:
        """RetryAfter (seconds until the next request) first; X-RateLimit-Reset (until the whole burst
        refills) only when no RetryAfter is given."""
        for name in ("retryafter", "retry-after", "x-ratelimit-reset"):
            seconds = _seconds(headers.get(name))
            if seconds is not None:
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


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _is_expired_url(response: httpx.Response) -> bool:
    """Cloud storage answers an expired signed URL with 400 (or 403) and the code ExpiredToken."""
    if response.status_code not in (400, 403):
        return False
    response.read()
    return b"ExpiredToken" in response.content or b"Request has expired" in response.content


def cache_path(cache: Path, md5: str) -> Path:
    md5 = md5.lower()
    if len(md5) != 32 or any(c not in "0123456789abcdef" for c in md5):
        raise NeonApiError(f"refusing a malformed md5 {md5[:40]!r} as a cache key")
    return cache / md5[:2] / md5


def cached_copy(cache: Path | None, entry: NeonFileEntry) -> Path | None:
    """The cached file with `entry`'s md5, if one is there and still matches."""
    if cache is None or not entry.md5:
        return None
    path = cache_path(cache, entry.md5)
    return path if path.exists() and _matches(path, entry) else None


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.link")
    partial.unlink(missing_ok=True)
    try:
        os.link(source, partial)
    except OSError:
        shutil.copyfile(source, partial)
    os.replace(partial, target)


def _safe_file_name(name: str, context: NeonContext) -> str:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name or name.startswith("."):
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
