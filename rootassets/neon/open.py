"""Choose the NEON source from settings: a local snapshot, or the API (or a mirror)."""

from __future__ import annotations

from pathlib import Path

from rootassets.neon.api_source import ApiSource
from rootassets.neon.client import NeonClient, RetryPolicy
from rootassets.neon.identifiers import RELEASE_PATTERN
from rootassets.neon.snapshot import SnapshotSource
from rootassets.neon.source import NeonSource


def open_source(
    snapshot: Path | str | None,
    api_url: str,
    download_dir: Path | str,
    policy: RetryPolicy | None = None,
) -> NeonSource:
    """A SnapshotSource when `snapshot` is set, else an ApiSource on `api_url`."""
    if snapshot:
        return SnapshotSource(snapshot)
    return ApiSource(NeonClient(api_url, policy=policy), download_dir)


def latest_release(source: NeonSource) -> str:
    """The newest numbered release the source offers (PROVISIONAL is not a release)."""
    tags = [t for t in source.releases() if t != "PROVISIONAL" and RELEASE_PATTERN.fullmatch(t)]
    if not tags:
        raise LookupError(f"{source.describe()} offers no NEON release")
    return tags[-1]
