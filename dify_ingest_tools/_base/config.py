"""Where the key and base URL come from, and how they are kept out of sight."""

from __future__ import annotations

import logging
import os
import threading

from pydantic import SecretStr
from yarl import URL

ENV_API_KEY = "DIFY_API_KEY"
ENV_BASE_URL = "DIFY_API_BASE_URL"
#: The bearer token ``dify-ingest mcp`` requires over streamable HTTP (``--auth-token-env``).
ENV_MCP_TOKEN = "DIFY_INGEST_MCP_TOKEN"  # noqa: S105 - a variable name
DEFAULT_BASE_URL = "https://api.dify.ai/v1"

logger = logging.getLogger("dify_ingest_tools")

_warned_hosts: set[str] = set()
_warned_lock = threading.Lock()


def resolve_api_key(api_key: str | SecretStr | None) -> SecretStr:
    """The explicit key, else ``DIFY_API_KEY``; a clear error when neither is set."""
    if isinstance(api_key, SecretStr):
        value = api_key.get_secret_value()
    else:
        value = api_key if api_key is not None else os.environ.get(ENV_API_KEY, "")
    value = value.strip()
    if not value:
        raise ValueError(
            "No Dify API key: pass api_key=... or set the DIFY_API_KEY environment variable "
            "to a Knowledge (dataset) API key from Dify's Knowledge > API page. "
            "To try the library without one, run `dify-ingest demo` (it uses the simulator)."
        )
    if any(ch.isspace() for ch in value):
        raise ValueError("The Dify API key contains whitespace; copy it again without spaces.")
    return SecretStr(value)


def resolve_base_url(base_url: str | None) -> URL:
    """The explicit URL, else ``DIFY_API_BASE_URL``, else Dify Cloud; trailing '/' removed."""
    raw = base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    if not isinstance(raw, str):
        raise TypeError(f"base_url must be a str, got {type(raw).__name__}")
    try:
        url = URL(raw.strip().rstrip("/"))
        host = url.host
    except ValueError:  # yarl refuses some malformed hosts and ports outright
        raise ValueError(
            f"base_url is not a valid URL; use one such as {DEFAULT_BASE_URL} or "
            "http://localhost/v1"
        ) from None
    if url.scheme not in ("http", "https") or not host:
        raise ValueError(
            f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL} or "
            f"http://localhost/v1, got {public_url(url)!r}"
        )
    if url.user is not None or url.password is not None:
        # aiohttp would turn user-info into Basic auth next to our Bearer header and refuse
        # every request with a bare ValueError; Dify never uses it. The message leaves it out.
        raise ValueError(
            f"base_url must not contain a user name or password ({public_url(url)!r} had "
            "one): Dify authenticates with the API key alone; pass it as api_key"
        )
    return url.with_query(None).with_fragment(None)


def public_url(url: URL | str) -> str:
    """The URL without user-info, safe for messages and logs."""
    parsed = URL(str(url))
    if parsed.user is not None or parsed.password is not None:
        parsed = parsed.with_user(None)
    return str(parsed)


def _is_loopback(host: str) -> bool:
    import ipaddress  # only plain-http URLs get here

    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_if_plaintext(url: URL) -> None:
    """Warn once per host when the key would travel unencrypted beyond this machine."""
    host = url.host or ""
    if url.scheme != "http" or _is_loopback(host):
        return
    with _warned_lock:
        if host in _warned_hosts:
            return
        _warned_hosts.add(host)
    logger.warning(
        "Sending the Dify API key over plain http:// to %s: anyone on the network path can "
        "read it. Use https:// unless this host is on a network you trust.",
        host,
    )
