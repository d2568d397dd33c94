"""Plain-HTTP helpers for the simulator tests (no dify_ingest_tools client involved)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from dify_ingest_tools.testing import DifySimulator

ECONOMY_DATA = '{"indexing_technique": "economy", "process_rule": {"mode": "automatic"}}'
#: Real Dify 1.14.1 exchanges, kept in the repository (tests/data/README.md).
RECORDED = Path(__file__).resolve().parents[1] / "data" / "recorded"
DEFAULT = object()


@dataclass
class Reply:
    """A response, fully read."""

    status: int
    headers: CIMultiDictProxy[str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


class Api:
    """Sends requests to a served simulator with a plain aiohttp session.

    Paths start at the server root (``/v1/...``), as in the recordings.
    """

    def __init__(self, session: aiohttp.ClientSession, base_url: str, api_key: str) -> None:
        self.session = session
        self.root = base_url.removesuffix("/v1")
        self.api_key = api_key

    async def request(
        self, method: str, path: str, *, auth: Any = DEFAULT, encoded: bool = False, **kwargs: Any
    ) -> Reply:
        headers = dict(kwargs.pop("headers", {}))
        if auth is DEFAULT:
            headers["Authorization"] = f"Bearer {self.api_key}"
        elif auth is not None:
            headers["Authorization"] = auth
        url = URL(self.root + path, encoded=encoded)
        async with self.session.request(method, url, headers=headers, **kwargs) as response:
            return Reply(response.status, response.headers, await response.text())

    async def get(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("POST", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("DELETE", path, **kwargs)

    async def create_text(
        self, dataset_id: str, name: str, text: str, **extra: Any
    ) -> dict[str, Any]:
        body = {"name": name, "text": text, "indexing_technique": "economy", **extra}
        reply = await self.post(f"/v1/datasets/{dataset_id}/document/create-by-text", json=body)
        assert reply.status == 200, reply.text
        created: dict[str, Any] = reply.json
        return created

    async def status(self, dataset_id: str, batch: str) -> list[dict[str, Any]]:
        reply = await self.get(f"/v1/datasets/{dataset_id}/documents/{batch}/indexing-status")
        assert reply.status == 200, reply.text
        data: list[dict[str, Any]] = reply.json["data"]
        return data

    async def upload(
        self,
        dataset_id: str,
        parts: list[tuple[str, str, bytes, str]],
        data: str | None = ECONOMY_DATA,
        *,
        route: str = "create-by-file",
    ) -> Reply:
        """POST create-by-file with ``(field, filename, content, content_type)`` parts."""
        form = aiohttp.FormData()
        for field, filename, content, content_type in parts:
            form.add_field(field, content, filename=filename, content_type=content_type)
        if data is not None:
            form.add_field("data", data)
        return await self.post(f"/v1/datasets/{dataset_id}/document/{route}", data=form)


async def raw_request(base_url: str, method: str, path: str, headers: dict[str, str]) -> Reply:
    """Send bytes as written: aiohttp servers see header values exactly as sent this way."""
    url = URL(base_url)
    assert url.host is not None
    assert url.port is not None
    reader, writer = await asyncio.open_connection(url.host, url.port)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {url.host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed: CIMultiDict[str] = CIMultiDict()
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed.add(name.strip(), value.strip())
    return Reply(int(status_line.split()[1]), CIMultiDictProxy(parsed), body.decode())


@asynccontextmanager
async def serving(sim: DifySimulator) -> AsyncIterator[Api]:
    """Serve ``sim`` on the current loop and yield a client for it."""
    async with sim.serve() as base_url, aiohttp.ClientSession() as session:
        yield Api(session, base_url, sim.api_key)
