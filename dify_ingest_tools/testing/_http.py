"""Building responses that look like Dify's, byte for byte where the recordings show it."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

#: Every response of the recorded server carried these (recordings, all files).
SERVER_HEADERS = {"X-Version": "1.14.1", "X-Env": "PRODUCTION"}
#: flask-cors adds this to responses produced by a view; Werkzeug's HTML 404 and the 405
#: produced by routing do not carry it (03, 03b).
CORS_HEADERS = {"Access-Control-Allow-Origin": "*"}
#: Werkzeug's default 404 page, returned for any path that matches no route (03).
WERKZEUG_404_HTML = (
    "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n"
    "<p>The requested URL was not found on the server. If you entered the URL manually please "
    "check your spelling and try again.</p>\n"
)
JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"


def encode_json(payload: Any) -> bytes:
    """Serialise like flask-restx: compact separators and a trailing newline."""
    return (json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def json_response(
    payload: Any,
    status: int = 200,
    *,
    cors: bool = True,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A JSON response with the recorded ``Content-Type: application/json`` (no charset)."""
    all_headers = {**SERVER_HEADERS, **(CORS_HEADERS if cors else {}), **(headers or {})}
    all_headers["Content-Type"] = JSON_TYPE
    return web.Response(status=status, body=encode_json(payload), headers=all_headers)


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """Dify's error envelope, keys in the order the server sends them."""
    return {"code": code, "message": message, "status": status}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    cors: bool = True,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A ``{"code", "message", "status"}`` error response."""
    return json_response(error_body(status, code, message), status, cors=cors, headers=headers)


def unauthorized(message: str) -> web.Response:
    """A 401; newer Dify adds ``WWW-Authenticate`` to every 401 (04)."""
    return error_response(
        401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="api"'}
    )


def invalid_param(message: str) -> web.Response:
    """A 400 ``invalid_param``: how Dify renders any ``ValueError``, pydantic's included."""
    return error_response(400, "invalid_param", message)


def not_found(message: str) -> web.Response:
    """A JSON 404 raised by a view (as opposed to the HTML 404 of routing)."""
    return error_response(404, "not_found", message)


def html_not_found() -> web.Response:
    """Werkzeug's HTML 404 for a path no route matches, sent before any auth check (03)."""
    return web.Response(
        status=404,
        body=WERKZEUG_404_HTML.encode(),
        headers={**SERVER_HEADERS, "Content-Type": HTML_TYPE},
    )


def method_not_allowed(allowed: list[str]) -> web.Response:
    """The JSON 405 flask-restx sends when the path matches but the method does not (03b)."""
    methods = sorted({*allowed, "OPTIONS"} | ({"HEAD"} if "GET" in allowed else set()))
    return error_response(
        405,
        "method_not_allowed",
        "The method is not allowed for the requested URL.",
        cors=False,
        headers={"Allow": ", ".join(methods)},
    )


def preflight(request: web.BaseRequest, allowed: list[str]) -> web.Response:
    """flask-cors' answer to an ``OPTIONS`` preflight: 200, empty ``text/html`` (03b)."""
    headers = {
        **SERVER_HEADERS,
        "Content-Type": HTML_TYPE,
        "Access-Control-Allow-Origin": request.headers.get("Origin", "*"),
        "Access-Control-Allow-Methods": ", ".join(sorted({*allowed, "OPTIONS"})),
    }
    requested = request.headers.get("Access-Control-Request-Headers")
    if requested:
        headers["Access-Control-Allow-Headers"] = requested
    return web.Response(status=200, body=b"", headers=headers)


def no_content() -> web.Response:
    """The empty 204 of a successful delete (still labelled JSON, as recorded in 09-15)."""
    return web.Response(
        status=204, headers={**SERVER_HEADERS, **CORS_HEADERS, "Content-Type": JSON_TYPE}
    )
