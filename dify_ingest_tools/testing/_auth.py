"""The dataset API key check, with the quirks of Dify's header parsing (recording 04)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

MISSING_BEARER = "Authorization header must be provided and start with 'Bearer'"
WRONG_SCHEME = "Authorization scheme must be 'Bearer'"
UNKNOWN_KEY = "Access token is invalid"
# Dify unpacks `header.split(None, 1)` into two names; "Bearer " (trailing space) passes the
# "contains a space" test, splits into one item and the ValueError becomes a 400.
UNPACK_ERROR = "not enough values to unpack (expected 2, got 1)"


@dataclass(frozen=True)
class AuthFailure:
    """Why a request was rejected: the status (401 or 400) and Dify's message."""

    status: int
    message: str


def check_authorization(header: str | None, keys: Collection[str]) -> AuthFailure | None:
    """Validate an ``Authorization`` header the way Dify's ``validate_and_get_api_token`` does.

    Args:
        header: The raw header value (``None`` when absent).
        keys: The accepted dataset API keys.

    Returns:
        ``None`` when the key is accepted, else the failure to report.
    """
    if not header or " " not in header:
        return AuthFailure(401, MISSING_BEARER)
    parts = header.split(None, 1)
    if len(parts) != 2:
        return AuthFailure(400, UNPACK_ERROR)
    scheme, token = parts
    # A lower-case "bearer" and a double space were both accepted by the real server.
    if scheme.lower() != "bearer":
        return AuthFailure(401, WRONG_SCHEME)
    if token not in keys:
        return AuthFailure(401, UNKNOWN_KEY)
    return None
