"""Errors of the NEON access layer; each names what it was working on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NeonContext:
    """What an operation concerns, so that an error can say it."""

    product: str | None = None
    release: str | None = None
    site: str | None = None
    month: str | None = None
    file: str | None = None

    def describe(self) -> str:
        parts = [
            f"{label} {value}"
            for label, value in (
                ("product", self.product),
                ("release", self.release),
                ("site", self.site),
                ("month", self.month),
                ("file", self.file),
            )
            if value
        ]
        return ", ".join(parts) or "no context"


class NeonError(RuntimeError):
    """Base of every failure in rootassets.neon."""


class NeonApiError(NeonError):
    """The API could not be reached or answered with something unusable."""


class NeonRequestRefusedError(NeonApiError):
    """The API answered a request with a 4xx error other than a token problem (an unknown product, say)."""


class NeonRateLimitedError(NeonApiError):
    """The API kept answering 429 beyond the retry budget."""


class NeonChecksumError(NeonApiError):
    """A downloaded file never matched the checksum the API announced."""


class NeonDataError(NeonError):
    """A NEON file is unreadable or breaks its structure (names file, row, field)."""


class UnsafeArchiveError(NeonDataError):
    """A zip entry points outside its archive (an absolute path, `..`) or is a symbolic link."""


class NeonTokenError(NeonApiError):
    """NEON_TOKEN is missing, expired or refused by the API (the message names NEON_TOKEN, never its value)."""


class NeonUrlExpiredError(NeonApiError):
    """A signed download URL had expired; a fresh one must be asked of the API."""
