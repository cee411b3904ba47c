"""The real client against the project's NEON mirror on 127.0.0.1: round trip and faults."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from rootassets.neon.api_source import ApiSource
from rootassets.neon.client import NeonClient, NeonFileEntry, RetryPolicy
from rootassets.neon.errors import NeonApiError, NeonChecksumError, NeonContext, NeonRateLimitedError
from rootassets.neon.mirror import MirrorServer
from rootassets.neon.products import ROOT_MEGAPIT, SOIL_MEGAPIT
from rootassets.neon.snapshot import SnapshotSource
from rootassets_tests.conftest import FAST_RETRIES, RELEASE, make_token

pytestmark = pytest.mark.network


def set_faults(mirror: MirrorServer, scope: str = "all", **counts: int) -> None:
    body = json.dumps({"counts": counts, "scope": scope, "slow_s": 1.0, "reset_s": 100, "retry_after_s": 0.05})
    httpx.post(mirror.base_url.replace("/api/v0/", "/__faults"), content=body).raise_for_status()


def frames_equal(a: SnapshotSource | ApiSource, b: SnapshotSource | ApiSource, product) -> None:
    left, right = a.load_product(product, RELEASE).tables, b.load_product(product, RELEASE).tables
    assert left.keys() == right.keys()
    for name in left:
        # publicationDate is a stacking client's column (NEON's own files lack it); publication_date carries it
        x = left[name].frame.drop("source_file", "publicationDate", strict=False).sort("uid")
        y = right[name].frame.drop("source_file", "publicationDate", strict=False).sort("uid").select(x.columns)
        assert x.equals(y), name


def test_round_trip_snapshot_mirror_client_stacking(tmp_path: Path, snapshot: Path, client: NeonClient) -> None:
    api = ApiSource(client, tmp_path / "downloads")
    assert api.releases() == [RELEASE]
    for product in (ROOT_MEGAPIT, SOIL_MEGAPIT):
        frames_equal(SnapshotSource(snapshot), api, product)


def test_discovery_is_one_query_per_product_and_release(
    tmp_path: Path, mirror: MirrorServer, client: NeonClient
) -> None:
    ApiSource(client, tmp_path).load_product(SOIL_MEGAPIT, RELEASE)
    queries = [p for p in mirror.stats.paths if p.endswith("/data/query")]
    assert len(queries) == 1
    assert not [p for p in mirror.stats.paths if p.count("/data/") and "query" not in p and "files" not in p]


def test_downloads_are_cached_by_checksum(tmp_path: Path, mirror: MirrorServer, client: NeonClient) -> None:
    api = ApiSource(client, tmp_path)
    api.load_product(SOIL_MEGAPIT, RELEASE)
    first = mirror.stats.downloads
    api.load_product(SOIL_MEGAPIT, RELEASE)
    assert mirror.stats.downloads == first


@pytest.mark.parametrize(
    ("fault", "count", "scope"),
    [
        ("rate_limit", 4, "all"),
        ("server_error", 4, "all"),
        ("drop", 4, "all"),
        ("truncate", 4, "files"),
        ("truncate", 3, "json"),
        ("bad_checksum", 4, "files"),
        ("malformed_json", 4, "json"),
        ("slow", 2, "all"),
    ],
)
def test_transient_faults_are_survived_with_correct_data(
    tmp_path: Path, snapshot: Path, mirror: MirrorServer, fault: str, count: int, scope: str
) -> None:
    policy = RetryPolicy(attempts=6, backoff_base_s=0.01, backoff_max_s=0.05, read_timeout_s=0.5)
    set_faults(mirror, scope=scope, **{fault: count})
    waits: list[float] = []
    with NeonClient(mirror.base_url, policy=policy, sleep=waits.append) as c:
        frames_equal(SnapshotSource(snapshot), ApiSource(c, tmp_path), SOIL_MEGAPIT)
    assert len(waits) >= count
    if fault == "rate_limit":
        assert waits[:count] == [0.05] * count  # waited what RetryAfter asked, not X-RateLimit-Reset (100 s)
    assert not list(tmp_path.rglob("*.part"))


@pytest.mark.parametrize(
    ("fault", "scope", "error", "message"),
    [
        ("rate_limit", "all", NeonRateLimitedError, r"gave up after 6 attempts \(HTTP 429"),
        ("server_error", "all", NeonApiError, r"HTTP 500"),
        ("drop", "all", NeonApiError, r"gave up after 6 attempts"),
        ("malformed_json", "json", NeonApiError, r"malformed JSON"),
        (
            "bad_checksum",
            "files",
            NeonChecksumError,
            r"product DP1\.00096\.001, release RELEASE-2021, site \w{4}, "
            r"month \d{4}-\d{2}, file NEON\..*checksum mismatch",
        ),
        ("truncate", "files", NeonApiError, r"file NEON\..*truncated body|file NEON\..*RemoteProtocolError"),
    ],
)
def test_persistent_faults_fail_clearly(
    tmp_path: Path, mirror: MirrorServer, client: NeonClient, fault: str, scope: str, error: type, message: str
) -> None:
    set_faults(mirror, scope=scope, **{fault: -1})
    with pytest.raises(error, match=message):
        ApiSource(client, tmp_path).load_product(SOIL_MEGAPIT, RELEASE)
    assert not list(tmp_path.rglob("*.part"))


def test_every_request_has_a_timeout(tmp_path: Path, mirror: MirrorServer) -> None:
    set_faults(mirror, slow=-1)
    policy = RetryPolicy(attempts=2, backoff_base_s=0.01, read_timeout_s=0.2)
    with NeonClient(mirror.base_url, policy=policy) as c, pytest.raises(NeonApiError, match="ReadTimeout"):
        c.releases()


def test_token_is_sent_as_header_and_never_in_errors(
    tmp_path: Path, mirror: MirrorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = make_token()
    monkeypatch.setenv("NEON_TOKEN", secret)
    with NeonClient(mirror.base_url, policy=FAST_RETRIES) as c:
        c.releases()
        assert mirror.stats.token_seen
        set_faults(mirror, server_error=-1)
        with pytest.raises(NeonApiError) as info:
            c.product("DP1.00096.001")
    assert secret not in str(info.value)


def test_token_is_not_sent_to_another_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEON_TOKEN", "tok")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "api.example":
            return httpx.Response(302, headers={"location": "http://storage.example/file.csv"})
        return httpx.Response(200, content=b"a\n1\n")

    client = NeonClient("http://api.example/api/v0/", policy=FAST_RETRIES, transport=httpx.MockTransport(handler))
    entry = NeonFileEntry(name="file.csv", url="http://api.example/api/v0/data/file.csv")
    client.download(entry, Path(__import__("tempfile").mkdtemp()), NeonContext())
    assert seen[0].headers.get("X-API-Token") == "tok"
    assert "X-API-Token" not in seen[1].headers


@pytest.mark.parametrize("name", ["../evil.csv", "a/b.csv", "..", ".hidden", ""])
def test_unsafe_file_names_from_the_api_are_refused(tmp_path: Path, name: str) -> None:
    client = NeonClient("http://127.0.0.1:9/api/v0/", policy=FAST_RETRIES)
    ctx = NeonContext(product="DP1.10066.001", release=RELEASE, site="BART", month="2013-08", file=name)
    with pytest.raises(NeonApiError, match="refusing unsafe file name"):
        client.download(NeonFileEntry(name=name, url="http://127.0.0.1:9/x"), tmp_path / "dl", ctx)
    assert list(tmp_path.rglob("*")) == []


def test_unknown_product_is_a_clear_error(client: NeonClient) -> None:
    with pytest.raises(NeonApiError, match=r"HTTP 400 on .*products/DP1\.99999\.001"):
        client.product("DP1.99999.001")


def test_hostile_identifiers_from_the_api_never_reach_a_path(
    tmp_path: Path, mirror: MirrorServer, client: NeonClient
) -> None:
    from rootassets.neon.identifiers import InvalidIdentifierError
    from rootassets.neon.mirror import HOSTILE_RELEASE

    set_faults(mirror, scope="json", hostile_ids=-1)
    api = ApiSource(client, tmp_path / "downloads")
    assert HOSTILE_RELEASE not in api.releases()  # listed by the API, ignored by the client
    with pytest.raises(InvalidIdentifierError, match=r"invalid NEON site code \"\.\./X'\""):
        api.load_product(SOIL_MEGAPIT, RELEASE)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not (tmp_path.parent / "etc").exists()


def test_a_long_download_says_how_far_it_is(
    tmp_path: Path, client: NeonClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rootassets.neon import api_source

    monkeypatch.setattr(api_source, "PROGRESS_EVERY_S", 0.0)  # every file counts as "a while" here
    messages: list[str] = []
    ApiSource(client, tmp_path, report=messages.append).load_product(SOIL_MEGAPIT, RELEASE)
    summary = next(m for m in messages if "files to download" in m)
    total = int(summary.split(": ")[1].split(" files")[0])
    steps = [m for m in messages if re.search(r": \d+/\d+ files, [\d.]+/[\d.]+ MB", m)]
    assert len(steps) == total and total > 1
    assert steps[0].startswith(f"{SOIL_MEGAPIT.code} {RELEASE}: 1/{total} files")
    assert steps[-1].endswith("(done)") and f"{total}/{total} files" in steps[-1]


def test_download_progress_is_said_only_every_interval() -> None:
    from rootassets.neon.api_source import DownloadProgress
    from rootassets.neon.client import NeonFileEntry

    now = [0.0]
    said: list[str] = []
    entries = [NeonFileEntry(name=f"f{i}.csv", url="u", size=2_000_000) for i in range(5)]
    progress = DownloadProgress("DP1.00094.001 RELEASE-2024", entries, said.append, every_s=10, clock=lambda: now[0])
    for step in (1, 2, 12, 13, 14):  # seconds at which each file is done
        now[0] = step
        progress.advance(entries[0])
    assert said == [
        "DP1.00094.001 RELEASE-2024: 3/5 files, 6.0/10.0 MB",
        "DP1.00094.001 RELEASE-2024: 5/5 files, 10.0/10.0 MB (done)",
    ]
    quick: list[str] = []
    fast = DownloadProgress("x", entries[:2], quick.append, every_s=10, clock=lambda: 0.0)
    fast.advance(entries[0])
    fast.advance(entries[1])
    assert quick == []  # a short download says nothing beyond its summary
