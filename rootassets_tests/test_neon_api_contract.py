"""The mirror against NEON's published API documentation, and the project's client against that mirror.

`DocClient` is written only from NEONScience/neon-data-api (docs/content/authentication.md,
rate-limiting.md, endpoints/products.md, data.md, data-query.md, releases.md and swagger.json),
not from `rootassets.neon.client`: if the mirror drifts from the documented API, it fails.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import polars as pl
import pytest

from rootassets.neon.api_source import ApiSource
from rootassets.neon.client import NeonClient, RetryPolicy
from rootassets.neon.errors import NeonApiError, NeonTokenError
from rootassets.neon.mirror import FaultPlan, MirrorCatalogue, MirrorServer, RateLimiter
from rootassets.neon.products import ROOT_MEGAPIT, SOIL_MEGAPIT
from rootassets.neon.tokens import unsigned_token
from rootassets_tests.conftest import FAST_RETRIES, RELEASE, make_token

pytestmark = pytest.mark.network
SITES = ("BART", "KONZ")
PRODUCTS = ("DP1.10066.001", "DP1.00096.001")


class DocClient:
    """A NEON API client as its documentation describes it, and nothing more."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base  # .../api/v0/
        self.token = token
        self.http = httpx.Client(timeout=30)

    def get(self, path: str, **params: Any) -> httpx.Response:
        # authentication.md: "include it as a header or query parameter" (X-API-Token / apiToken)
        return self.http.get(self.base + path, params=params, headers={"X-API-Token": self.token})

    def files(self, product: str, sites: tuple[str, ...], release: str) -> list[dict[str, Any]]:
        info = self.get(f"products/{product}").json()["data"]  # products.md: siteCodes[].availableReleases
        months = sorted(
            {
                m
                for s in info["siteCodes"]
                if s["siteCode"] in sites
                for r in s["availableReleases"]
                if r["release"] == release
                for m in r["availableMonths"]
            }
        )
        # data-query.md: productCode, siteCode (repeatable), startDateMonth, endDateMonth, release
        answer = self.http.get(
            self.base + "data/query",
            headers={"X-API-Token": self.token},
            params=[
                ("productCode", product),
                *[("siteCode", s) for s in sites],
                ("startDateMonth", months[0]),
                ("endDateMonth", months[-1]),
                ("release", release),
            ],
        )
        assert answer.status_code == 200, answer.text
        return [
            f
            for r in answer.json()["data"]["releases"]
            if r["release"] == release
            for p in r["packages"]
            for f in p["files"]
        ]

    def download(self, entry: dict[str, Any]) -> bytes:
        # data.md: URLs are signed cloud-storage URLs; the token is for the API, not for storage
        body = self.http.get(entry["url"]).content
        assert len(body) == entry["size"] and hashlib.md5(body).hexdigest() == entry["md5"]
        return body


def _published_table(body: bytes) -> pl.DataFrame:
    return pl.read_csv(io.BytesIO(body), infer_schema=False, null_values=["NA", ""])


def _normalized(frame: pl.DataFrame) -> pl.DataFrame:
    """Values compared as NEON means them: dates to the day, datetimes to the minute, numbers as numbers."""
    out = []
    for name in frame.columns:
        col = pl.col(name)
        text = col.cast(pl.String)
        out.append(
            pl.when(text.str.contains(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}"))
            .then(text.str.replace(" ", "T").str.slice(0, 16))
            .when(text.str.contains(r"^-?\d+(\.\d+)?(e-?\d+)?$"))
            .then(text.cast(pl.Float64, strict=False).round(10).cast(pl.String))
            .otherwise(text)
            .alias(name)
        )
    return frame.select(out)


@pytest.fixture()
def doc_mirror(catalogue: MirrorCatalogue) -> Any:
    with MirrorServer(catalogue) as server:
        yield server


def test_a_client_written_from_the_documentation_gets_the_snapshot_rows(
    doc_mirror: MirrorServer, snapshot: Path
) -> None:
    client = DocClient(doc_mirror.base_url, make_token())
    for product in PRODUCTS:
        entries = client.files(product, SITES, RELEASE)
        tables: dict[str, list[pl.DataFrame]] = {}
        for entry in entries:
            parts = entry["name"].split(".")
            if parts[6] in ("variables", "readme"):
                continue
            tables.setdefault(parts[6], []).append(_published_table(client.download(entry)))
        assert {"mpr_perrootsample", "mgp_perhorizon"} & set(tables)
        for table, frames in tables.items():
            got = pl.concat(frames, how="diagonal_relaxed")
            expected = pl.read_csv(
                snapshot / RELEASE / product / f"{table}.csv", infer_schema=False, null_values=["NA", ""]
            )
            expected = expected.drop([c for c in expected.columns if c in ("", "release", "publicationDate")])
            site = (
                pl.col("siteID")
                if "siteID" in expected.columns
                else pl.col("depthIncrementID").str.split(".").list.first()
            )
            expected = expected.filter(site.is_in(SITES))
            assert got.columns == expected.columns, table
            assert _normalized(got).sort("uid").equals(_normalized(expected).sort("uid")), table
    assert not doc_mirror.stats.token_seen_by_storage


def test_documented_shapes_status_codes_and_headers(doc_mirror: MirrorServer) -> None:
    base, token = doc_mirror.base_url, make_token()
    releases = httpx.get(base + "releases")  # releases.md: no token needed
    assert releases.status_code == 200
    assert "x-ratelimit-limit" in releases.headers and "x-ratelimit-remaining" in releases.headers
    release = releases.json()["data"][0]
    assert {"release", "uuid", "generationDate", "artifacts", "dataProducts"} <= set(release)
    assert all(dp["productDoi"] for dp in release["dataProducts"])
    product = httpx.get(base + "products/DP1.10066.001").json()["data"]
    assert {"productCode", "productName", "changeLogs", "releases", "siteCodes", "specs", "themes"} <= set(product)
    assert all(set(r["productDoi"]) == {"generationDate", "url"} for r in product["releases"])
    assert {"siteCode", "availableMonths", "availableDataUrls", "availableReleases"} <= set(product["siteCodes"][0])
    unknown = httpx.get(base + "products/DP1.99999.001")
    assert unknown.status_code == 400 and unknown.json()["error"]["status"] == 400
    head = httpx.head(base + "products/DP1.10066.001")
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0

    auth = {"X-API-Token": token}
    month = product["siteCodes"][0]["availableMonths"][0]
    site = product["siteCodes"][0]["siteCode"]
    data = httpx.get(base + f"data/DP1.10066.001/{site}/{month}", headers=auth).json()["data"]
    assert {"productCode", "siteCode", "month", "release", "packages", "files"} <= set(data)
    assert {"name", "size", "md5", "crc32c", "url"} <= set(data["files"][0])
    assert urlsplit(data["files"][0]["url"]).port != urlsplit(base).port  # files live on another origin
    redirect = httpx.get(base + f"data/DP1.10066.001/{site}/{month}/{data['files'][0]['name']}", headers=auth)
    assert (
        redirect.status_code == 302
        and urlsplit(redirect.headers["location"]).port == urlsplit(doc_mirror.storage_url).port
    )
    via_param = httpx.get(base + f"data/DP1.10066.001/{site}/{month}", params={"apiToken": token})
    assert via_param.status_code == 200
    for path, params in (
        (f"data/DP1.10066.001/ZZZZ/{month}", {}),
        ("data/DP1.99999.001/BART/2013-08", {}),
        ("data/query", {"productCode": "DP1.10066.001"}),
        (
            "data/query",
            {
                "productCode": "DP1.99999.001",
                "siteCode": "BART",
                "startDateMonth": "2013-01",
                "endDateMonth": "2013-12",
            },
        ),
    ):
        answer = httpx.get(base + path, params=params, headers=auth)
        assert answer.status_code == 400 and answer.json()["errors"][0]["detail"], path
    posted = httpx.post(
        base + "data/query",
        headers=auth,
        json={
            "productCode": "DP1.10066.001",
            "siteCodes": ["BART"],
            "startDateMonth": "2010-01",
            "endDateMonth": "2030-12",
            "release": RELEASE,
        },
    )
    assert posted.status_code == 200 and posted.json()["data"]["releases"][0]["release"] == RELEASE
    no_release = httpx.get(
        base + "data/query",
        headers=auth,
        params={
            "productCode": "DP1.10066.001",
            "siteCode": "BART",
            "startDateMonth": "2010-01",
            "endDateMonth": "2030-12",
        },
    )
    assert no_release.status_code == 200  # data-query.md: release is optional


def test_data_endpoints_require_a_valid_token(doc_mirror: MirrorServer) -> None:
    base = doc_mirror.base_url
    path = "data/query?productCode=DP1.10066.001&siteCode=BART&startDateMonth=2013-01&endDateMonth=2013-12"
    assert httpx.get(base + path).status_code == 401
    assert httpx.get(base + path, headers={"X-API-Token": "not-a-token"}).status_code == 401
    expired = unsigned_token(time.time() - 60)
    answer = httpx.get(base + path, headers={"X-API-Token": expired})
    assert answer.status_code == 401 and "expired" in answer.json()["errors"][0]["detail"]
    assert httpx.get(base + "products/DP1.10066.001").status_code == 200  # metadata needs none
    with MirrorServer(doc_mirror.catalogue, require_token=False) as open_mirror:
        assert httpx.get(open_mirror.base_url + path).status_code == 200


def test_signed_urls_expire_and_refuse_tampering(doc_mirror: MirrorServer) -> None:
    auth = {"X-API-Token": make_token()}
    files = httpx.get(
        doc_mirror.base_url + "data/query",
        headers=auth,
        params={
            "productCode": "DP1.00096.001",
            "siteCode": "BART",
            "startDateMonth": "2010-01",
            "endDateMonth": "2030-12",
        },
    ).json()["data"]["releases"][0]["packages"][0]["files"]
    assert httpx.get(files[0]["url"]).status_code == 200
    assert httpx.get(files[0]["url"].replace("X-Goog-Expires=604800", "X-Goog-Expires=999999999")).status_code == 403
    doc_mirror.set_faults({"counts": {"expired_url": 1}})
    stale = httpx.get(
        doc_mirror.base_url + "data/query",
        headers=auth,
        params={
            "productCode": "DP1.00096.001",
            "siteCode": "BART",
            "startDateMonth": "2010-01",
            "endDateMonth": "2030-12",
        },
    ).json()["data"]["releases"][0]["packages"][0]["files"][0]
    answer = httpx.get(stale["url"])
    assert answer.status_code == 400 and b"ExpiredToken" in answer.content


def test_the_real_rate_limit_is_survived_by_slowing_down(
    tmp_path: Path, catalogue: MirrorCatalogue, neon_token: str
) -> None:
    """A burst of 3 refilled at 2/s with a token: the client pauses at Remaining 0 (or waits a 429's
    RetryAfter) and still gets every file of both products."""
    limiter = RateLimiter(public=(1, 1.0), token=(3, 2.0))
    with (
        MirrorServer(catalogue, rate_limiter=limiter) as server,
        NeonClient(server.base_url, policy=FAST_RETRIES) as client,
    ):
        for _ in range(4):  # the third answer says Remaining 0: the fourth request waits first
            client.releases()
        api = ApiSource(client, tmp_path)
        assert api.load_product(SOIL_MEGAPIT, RELEASE).tables["mgp_perhorizon"].frame.height == 346
        assert api.load_product(ROOT_MEGAPIT, RELEASE).tables["mpr_perrootsample"].frame.height == 2913
        assert server.stats.rate_limited == 0  # it slowed down before the API had to refuse it
        reasons = {why for why, _ in client.waits}
        assert "X-RateLimit-Remaining: 0" in reasons
        assert all(seconds <= 1.0 for _, seconds in client.waits)


def test_a_429_burst_waits_retry_after_not_reset(tmp_path: Path, mirror: MirrorServer) -> None:
    """rate-limiting.md's example 429: X-RateLimit-Reset 100, RetryAfter 1. Three in a row cost ~3 s."""
    mirror.set_faults({"counts": {"rate_limit": 3}, "scope": "json", "reset_s": 100, "retry_after_s": 1})
    with NeonClient(mirror.base_url, policy=RetryPolicy(attempts=6)) as client:
        started = time.monotonic()
        client.releases()
        elapsed = time.monotonic() - started
    assert [s for why, s in client.waits if why == "retry"] == [1.0, 1.0, 1.0]
    assert 2.9 <= elapsed < 10, elapsed


def test_missing_or_expired_token_fails_before_any_download(
    tmp_path: Path, mirror: MirrorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEON_TOKEN")
    with NeonClient(mirror.base_url, policy=FAST_RETRIES) as client:
        with pytest.raises(NeonTokenError, match=r"^NEON_TOKEN is not set: .*https://data\.neonscience\.org/myaccount"):
            ApiSource(client, tmp_path).load_product(ROOT_MEGAPIT, RELEASE)
        monkeypatch.setenv("NEON_TOKEN", unsigned_token(time.time() - 3600))
        with pytest.raises(NeonTokenError, match=r"^NEON_TOKEN has expired"):
            ApiSource(client, tmp_path).load_product(ROOT_MEGAPIT, RELEASE)
    assert not [p for p in mirror.stats.paths if "/data" in p]
    assert not list(tmp_path.rglob("*"))


def test_a_token_near_expiry_is_warned_about(
    tmp_path: Path, mirror: MirrorServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token = unsigned_token(time.time() + 2 * 86400)
    monkeypatch.setenv("NEON_TOKEN", token)
    with caplog.at_level(logging.WARNING), NeonClient(mirror.base_url, policy=FAST_RETRIES) as client:
        ApiSource(client, tmp_path).load_product(SOIL_MEGAPIT, RELEASE)
    warned = [r.getMessage() for r in caplog.records if "NEON_TOKEN expires in" in r.getMessage()]
    assert warned and token not in " ".join(r.getMessage() for r in caplog.records)


def test_a_token_expiring_mid_run_is_refused_clearly(tmp_path: Path, mirror: MirrorServer) -> None:
    mirror.set_faults({"counts": {"expired_token": -1}})
    with (
        NeonClient(mirror.base_url, policy=FAST_RETRIES) as client,
        pytest.raises(NeonTokenError, match=r"HTTP 401 .*refused NEON_TOKEN \(API token has expired\)"),
    ):
        ApiSource(client, tmp_path).load_product(SOIL_MEGAPIT, RELEASE)
    assert not list(tmp_path.rglob("*.part"))


def test_an_expired_signed_url_is_asked_for_again_once(tmp_path: Path, mirror: MirrorServer, snapshot: Path) -> None:
    mirror.set_faults({"counts": {"expired_url": 2}})
    with NeonClient(mirror.base_url, policy=FAST_RETRIES) as client:
        load = ApiSource(client, tmp_path).load_product(SOIL_MEGAPIT, RELEASE)
    assert load.tables["mgp_perhorizon"].frame.height == 346
    requery = [p for p in mirror.stats.paths if re.search(r"/data/DP1\.00096\.001/[A-Z]{4}/\d{4}-\d{2}$", p)]
    assert len(requery) == 2  # one fresh /data/{dp}/{site}/{month} per expired URL
    mirror.set_faults({"counts": {"expired_url": -1}})
    with (
        NeonClient(mirror.base_url, policy=FAST_RETRIES) as client,
        pytest.raises(NeonApiError, match=r"file NEON\..*signed download URL has expired"),
    ):
        ApiSource(client, tmp_path / "again").load_product(ROOT_MEGAPIT, RELEASE)


def test_the_token_never_reaches_the_storage_origin(tmp_path: Path, mirror: MirrorServer) -> None:
    with NeonClient(mirror.base_url, policy=FAST_RETRIES) as client:
        ApiSource(client, tmp_path).load_product(ROOT_MEGAPIT, RELEASE)
    assert mirror.stats.token_seen and mirror.stats.downloads > 0
    assert not mirror.stats.token_seen_by_storage


def test_files_unchanged_between_releases_are_fetched_once(tmp_path: Path, snapshot: Path, neon_token: str) -> None:
    from rootassets_tests.planted import copy_release, plant_release

    root = tmp_path / "snapshot"
    copy_release(snapshot, root)
    plant_release(root, RELEASE, "RELEASE-2022", drop_site="ABBY", flatten_site="KONZ", flatten_below_cm=50)
    with MirrorServer(root) as server, NeonClient(server.base_url, policy=FAST_RETRIES) as client:
        api = ApiSource(client, tmp_path / "downloads")
        api.load_product(SOIL_MEGAPIT, RELEASE)
        first = server.stats.downloads
        messages: list[str] = []
        api.report = messages.append
        api.load_product(SOIL_MEGAPIT, "RELEASE-2022")
        refetched = server.stats.downloads - first
    # every soil file but ABBY's dropped rows is byte-identical in the planted release: nothing is fetched again
    assert refetched == 0, refetched
    assert any("0 files to download" in m and "already in the download cache" in m for m in messages)


def test_every_api_answer_carries_the_rate_limit_headers(doc_mirror: MirrorServer) -> None:
    for path in ("releases", "products/DP1.10066.001", "products/DP1.99999.001", "data/query"):
        answer = httpx.get(doc_mirror.base_url + path)
        assert "x-ratelimit-limit" in answer.headers and "x-ratelimit-remaining" in answer.headers, path
    doc_mirror.set_faults({"counts": {"rate_limit": 1}})
    limited = httpx.get(doc_mirror.base_url + "releases")
    assert limited.status_code == 429
    assert (limited.headers["x-ratelimit-reset"], limited.headers["retryafter"]) == ("100", "1")
    assert json.loads(limited.content) == {"message": "API rate limit exceeded"}


def test_the_mirror_listens_on_loopback_only(catalogue: MirrorCatalogue) -> None:
    with pytest.raises(ValueError, match="loopback only"):
        MirrorServer(catalogue, host="0.0.0.0", faults=FaultPlan())


def test_any_product_folder_it_is_given_is_served(tmp_path: Path, snapshot: Path) -> None:
    """A product the platform does not declare (here a copy of real pit rows under another product code)."""
    import shutil

    folder = tmp_path / RELEASE / "DP1.00097.001"
    folder.mkdir(parents=True)
    shutil.copy(snapshot / RELEASE / "DP1.00096.001" / "mgp_permegapit.csv", folder / "mgp_permegapit.csv")
    with MirrorServer(tmp_path) as server:
        product = httpx.get(server.base_url + "products/DP1.00097.001").json()["data"]
        assert len(product["siteCodes"]) == 47
        site = product["siteCodes"][0]
        files = httpx.get(
            server.base_url + f"data/DP1.00097.001/{site['siteCode']}/{site['availableMonths'][0]}",
            headers={"X-API-Token": make_token()},
        ).json()["data"]["files"]
    assert any(".mgp_permegapit." in f["name"] for f in files)
