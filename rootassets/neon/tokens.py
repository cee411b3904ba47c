"""The NEON API token: where it comes from, and whether it is still good.

Since June 2026 NEON requires a token for `/data*` and every download. It is
read from `NEON_TOKEN` when needed, never stored. NEON tokens are JWTs; their
expiry (`exp`) is read with the standard library, as NEON's own Python client
does, so a run refuses an expired token before it downloads anything and warns
when the token is about to expire.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time

from rootassets.neon.errors import NeonTokenError

TOKEN_ENV = "NEON_TOKEN"
TOKEN_HEADER = "X-API-Token"
TOKEN_PARAM = "apiToken"
WHERE_TO_GET = "create one under My Account > API Tokens at https://data.neonscience.org/myaccount"
WARN_WITHIN_S = 7 * 24 * 3600
log = logging.getLogger(__name__)


def token_expiry(token: str) -> float | None:
    """The `exp` claim (Unix seconds) of a JWT-shaped token, or None if it has none or is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None


def current_token() -> str | None:
    """NEON_TOKEN from the environment (blank counts as unset)."""
    token = (os.environ.get(TOKEN_ENV) or "").strip()
    return token or None


def require_token(now: float | None = None) -> str:
    """The token, or a one-line NeonTokenError naming NEON_TOKEN when it is missing or expired."""
    token = current_token()
    if token is None:
        raise NeonTokenError(
            f"{TOKEN_ENV} is not set: NEON requires an API token for data downloads since June 2026; "
            f"{WHERE_TO_GET}, then export {TOKEN_ENV}=<token>"
        )
    expires_at = token_expiry(token)
    if expires_at is None:
        return token
    left = expires_at - (time.time() if now is None else now)
    when = "expiry " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(expires_at))
    if left <= 0:
        raise NeonTokenError(f"{TOKEN_ENV} has expired ({when}); {WHERE_TO_GET} and export {TOKEN_ENV} again")
    if left < WARN_WITHIN_S:
        log.warning("%s expires in %.1f days (%s); renew it soon: %s", TOKEN_ENV, left / 86400, when, WHERE_TO_GET)
    return token


def unsigned_token(expires_at: float, subject: str = "rootassets-mirror") -> str:
    """A JWT-shaped token without a signature, for the local mirror (which checks shape and expiry only)."""

    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'sub': subject, 'exp': int(expires_at)})}."
