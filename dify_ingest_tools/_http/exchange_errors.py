"""The typed error for an exchange that got no complete HTTP answer: a timeout, a refused or
broken connection, a failed TLS handshake, a host name that did not resolve.

Each names the host and port tried and says what to check (base_url, a proxy, the network).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
from typing import NoReturn

import aiohttp
from yarl import URL

from dify_ingest_tools._base.config import public_url
from dify_ingest_tools.errors import DifyConnectionError, DifyTimeoutError


def raise_exchange_error(
    exc: asyncio.TimeoutError | aiohttp.ClientError,
    url: URL,
    method: str,
    timeout: aiohttp.ClientTimeout,
) -> NoReturn:
    """Raise the typed error for an exchange that got no complete HTTP answer."""
    if isinstance(exc, asyncio.TimeoutError):
        raise DifyTimeoutError(
            f"no complete answer within {timeout.total or 0:.1f}s",
            url=public_url(url),
            method=method,
            hint=(
                "The server accepted the connection but did not answer in time: check "
                "base_url (a firewall or proxy that swallows requests looks like this), "
                "or raise timeout for a slow server."
            ),
        ) from exc
    if isinstance(exc, aiohttp.ClientResponseError):
        # Its repr carries the request headers (and so the key): do not chain it.
        raise DifyConnectionError(
            f"malformed HTTP answer ({exc.status}: {exc.message})",
            url=public_url(url),
            method=method,
            hint="Something answered that does not speak HTTP properly: check base_url's "
            "scheme (http:// or https://) and port.",
        ) from None
    raise DifyConnectionError(
        _connection_message(exc),
        url=public_url(url),
        method=method,
        hint=_connection_hint(exc, url),
    ) from exc


# aiohttp's "Connect call failed ('10.0.0.5', 443)": the address a host name resolved to.
_TRIED = re.compile(r"\('([^']+)',\s*(\d+)")


def _connection_message(exc: aiohttp.ClientError) -> str:
    """What failed, naming the host and port tried and why, in words (not aiohttp's
    "Cannot connect to host h:p ssl:default [...]")."""
    if not isinstance(exc, aiohttp.ClientConnectorError) or isinstance(
        exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError)
    ):
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    host = f"[{exc.host}]" if ":" in exc.host else exc.host
    where = f"{host}:{exc.port}" if exc.port is not None else host
    os_error = exc.os_error
    detail = os_error.strerror or str(os_error) or type(os_error).__name__
    reason = detail
    if isinstance(os_error.errno, int) and os_error.errno > 0:
        reason = os.strerror(os_error.errno)  # "Connection refused", not "Connect call failed"
    tried = _TRIED.search(detail)
    if tried is not None and (tried[1], tried[2]) != (exc.host, str(exc.port)):
        reason += f" (tried {tried[1]}:{tried[2]})"
    return f"Cannot connect to {where}: {reason}"


# aiohttp >= 3.10 has its own class; before, a DNS failure is a connector error on a gaierror.
_DNS_ERRORS: tuple[type[BaseException], ...] = tuple(
    cls for cls in (getattr(aiohttp, "ClientConnectorDNSError", None),) if cls is not None
)


def _connection_hint(exc: aiohttp.ClientError, url: URL) -> str:
    where = f"{url.host}:{url.port}" if url.port else str(url.host)
    if isinstance(exc, _DNS_ERRORS) or isinstance(getattr(exc, "os_error", None), socket.gaierror):
        return f"The host name {url.host!r} did not resolve: check base_url's host."
    if isinstance(exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError)):
        return (
            "The TLS handshake failed: check base_url's scheme (https:// vs http://) and "
            "the server's certificate."
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return (
            f"Nothing accepted the connection at {where}: is Dify running there, and is "
            "base_url right (the API root ending in /v1, e.g. https://api.dify.ai/v1)?"
        )
    return "The connection broke before a complete answer: check base_url, proxies and the network."
