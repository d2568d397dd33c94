"""Streamable HTTP without surprises: a bearer token, Host/Origin checks on every bind, and
one line saying where the server listens.

Anyone who can reach the port can upload with the operator's Dify key, so a bind other
machines can reach needs a token (checked by the SDK's own `TokenVerifier` hook, in constant
time), and DNS-rebinding protection stays on whatever the bind: a page in a browser must not
reach a local server through a hostname it controls. Real hostnames (a reverse proxy's) are
allowed one by one.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import re
import socket
from collections.abc import Callable, Iterable
from typing import Any, Final

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from dify_ingest_tools._base.config import ENV_MCP_TOKEN

__all__ = [
    "ENV_MCP_TOKEN",
    "MIN_TOKEN_CHARS",
    "StaticTokenVerifier",
    "auth_settings",
    "check_allowed_host",
    "check_token",
    "is_loopback",
    "serve_http",
    "transport_security",
]

logger = logging.getLogger("dify_ingest_tools")

MIN_TOKEN_CHARS: Final = 16
PATH: Final = "/mcp"

_LOOPBACK_NAMES = ("localhost",)
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
# A host name, an IPv4 address or a bracketed IPv6 address, with an optional port: what a
# Host header carries. No wildcards: "*" would switch the protection off.
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::\d{1,5})?")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # what an Authorization header can carry unaltered


class StaticTokenVerifier:
    """The SDK's `TokenVerifier` for one shared secret, compared in constant time."""

    def __init__(self, token: str) -> None:
        self._token = check_token(token).encode()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(token=***)"

    async def verify_token(self, token: str) -> AccessToken | None:
        if not hmac.compare_digest(token.encode("utf-8", "replace"), self._token):
            return None
        # Every holder of the token is the same principal (sessions are tied to it).
        # The secret itself is not kept in the request scope.
        return AccessToken(token="static", client_id="dify-ingest-mcp", scopes=[])  # noqa: S106


def auth_settings() -> AuthSettings:
    """The SDK's auth settings for a static token: no OAuth server, no resource metadata.

    ``issuer_url`` is required by the model but only advertised with an OAuth provider or a
    ``resource_server_url``, neither of which a static token has.
    """
    return AuthSettings(issuer_url="http://localhost", resource_server_url=None)


def check_token(token: str) -> str:
    """The token, or a `ValueError` saying why it cannot guard a server."""
    if len(token) < MIN_TOKEN_CHARS:
        raise ValueError(
            f"the MCP auth token is too short: use at least {MIN_TOKEN_CHARS} characters "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    if not _TOKEN.fullmatch(token):
        raise ValueError(
            "the MCP auth token must be printable ASCII without spaces (an HTTP header "
            "cannot carry anything else unaltered)"
        )
    return token


def is_loopback(host: str) -> bool:
    """Whether a bind to ``host`` is reachable from this machine only."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def check_allowed_host(value: str) -> str:
    """``value`` as an allowed Host header (``name`` or ``name:port``), or a `ValueError`."""
    if not _HOST.fullmatch(value) or len(value) > 260:
        raise ValueError(
            f"not a host name: {value[:80]!r} (give a host name or address, optionally with "
            ":port, e.g. mcp.example.com or 10.0.0.5:8000; IPv6 in brackets)"
        )
    return value.lower()


def transport_security(host: str, allowed_hosts: Iterable[str] = ()) -> TransportSecuritySettings:
    """DNS-rebinding protection for a bind to ``host``: loopback names, the bound address
    itself when it is a specific one, and ``allowed_hosts``; any port unless one is given."""
    names = list(_LOOPBACK_HOSTS)
    bound = _bracketed(host)
    if host not in ("0.0.0.0", "::") and bound.lower() not in names:
        names.append(bound.lower())
    hosts: list[str] = []
    origins: list[str] = []
    for name in [*names, *(check_allowed_host(value) for value in allowed_hosts)]:
        has_port = re.search(r":\d+$", name) is not None
        # Behind a proxy on the default port the Host header has no port at all.
        forms = [name] if has_port else [name, f"{name}:*"]
        hosts += forms
        origins += [f"{scheme}://{form}" for scheme in ("http", "https") for form in forms]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=list(dict.fromkeys(hosts)),
        allowed_origins=list(dict.fromkeys(origins)),
    )


def _bracketed(host: str) -> str:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    return f"[{address}]" if address.version == 6 else str(address)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one).

    Raises:
        OSError: The address is taken, not this machine's, or not allowed.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


async def serve_http(
    server: MCPServer[Any],
    *,
    host: str,
    port: int,
    allowed_hosts: Iterable[str] = (),
    log_level: str = "WARNING",
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve ``server`` over streamable HTTP at ``http://host:port/mcp`` until stopped."""
    import uvicorn

    app = server.streamable_http_app(
        streamable_http_path=PATH,
        transport_security=transport_security(host, allowed_hosts),
        host=host,
    )
    sock = listen(host, port)
    with sock:
        config = uvicorn.Config(
            app,
            log_level=log_level.lower(),
            # A client still waiting on a call must not hold Ctrl-C up for long.
            timeout_graceful_shutdown=5,
        )
        userver = uvicorn.Server(config)
        url = f"http://{_bracketed(host)}:{sock.getsockname()[1]}{PATH}"
        running = asyncio.ensure_future(userver.serve(sockets=[sock]))
        try:
            while True:  # uvicorn has no startup callback for served sockets
                if userver.started or running.done():
                    break
                await asyncio.sleep(0.02)
            if userver.started and on_listening is not None:
                on_listening(url)
            await running
        finally:
            running.cancel()
