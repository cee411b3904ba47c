"""A NEON-compatible API on 127.0.0.1 (two origins: the API and a storage host), for offline runs and tests.

See `rootassets.neon.mirror.server` for what it follows from NEON's API documentation.
"""

from rootassets.neon.mirror.catalogue import TEST_DOI_PREFIX, MirrorCatalogue, MirrorFile
from rootassets.neon.mirror.server import (
    API_PREFIX,
    FAULT_KINDS,
    HOSTILE_RELEASE,
    HOSTILE_SITE,
    FaultPlan,
    MirrorServer,
    MirrorStats,
    RateLimiter,
)

__all__ = [
    "API_PREFIX",
    "FAULT_KINDS",
    "HOSTILE_RELEASE",
    "HOSTILE_SITE",
    "TEST_DOI_PREFIX",
    "FaultPlan",
    "MirrorCatalogue",
    "MirrorFile",
    "MirrorServer",
    "MirrorStats",
    "RateLimiter",
]
