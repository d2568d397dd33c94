"""A Dify that answers with hostile strings: 1 MB names, ANSI escapes, BEL, CR/LF, the key.

One aiohttp handler serves every endpoint the tools and the CLI read (dataset detail, create,
indexing status, document list and detail, retrieve). Every name, passage and error it sends
holds a clear-screen escape, a BEL, a CR and LF, and the client's own API key; the first
document's name and every passage are about 1 MB. Its list says ``has_more: true`` on every
page (``total`` as configured), the way a broken server did.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

#: The key the tests' clients send. It looks like no Dify key: only the client's own
#: registration of its key can redact it.
KEY = "hostile-test-key-7f3a9c2e41d0"
DS = "7789611a-7d24-4b75-ab16-a005f3cbd9b4"
BATCH = "20261128154005508280"
DOC = "5c2a1d6e-0a6b-4f57-9c57-1c1e4a9e4f11"
#: Clear screen, red, BEL, a carriage return and a forged line, then the key.
NASTY = f"\x1b[2J\x1b[31m\x07\rforged\nline {KEY} \u202eevil "
BIG_NAME = NASTY + "N" * 1_000_000
BIG_TEXT = NASTY + "passage " * 130_000
ERROR = f"Authorization: Bearer {KEY} {NASTY}" + "E" * 5_000
#: What must never reach a terminal or a model.
RAW_CONTROLS = ("\x1b", "\x07", "\r", "\u202e")


def _doc_id(page: int, number: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{page}/{number}"))


@dataclass
class HostileDify:
    """The handler, and what it saw (``list_pages``: the document-list requests)."""

    total: int = 250
    per_page: int = 25
    same_page: bool = False  # answer every page with page 1's documents
    big: bool = True  # 1 MB and 50 KB names in the list (False: short hostile ones)
    stuck: bool = True  # the batch holds a document in a hostile, never-ending status
    list_pages: int = 0
    segment_pages: int = 0
    paths: list[str] = field(default_factory=list)

    def _document(self, doc_id: str, name: str) -> dict[str, Any]:
        return {
            "id": doc_id,
            "name": name,
            "indexing_status": "error",
            "display_status": "error",
            "error": ERROR,
            "enabled": True,
            "archived": False,
            "created_at": 1764300000,
            "completed_segments": 0,
            "total_segments": 1,
        }

    def _list(self, request: web.BaseRequest) -> dict[str, Any]:
        self.list_pages += 1
        page = 1 if self.same_page else int(request.query.get("page", "1"))
        long, short = (BIG_NAME, NASTY + "n" * 50_000) if self.big else (NASTY, NASTY)
        data = [
            self._document(_doc_id(page, n), long if n == 0 else short)
            for n in range(self.per_page)
        ]
        return {"data": data, "has_more": True, "limit": 100, "total": self.total, "page": page}

    def _segments(self, request: web.BaseRequest) -> dict[str, Any]:
        self.segment_pages += 1
        page = 1 if self.same_page else int(request.query.get("page", "1"))
        data = [
            {"id": _doc_id(page, n), "position": n + 1, "document_id": DOC, "content": NASTY}
            for n in range(100)  # always a full page: Dify's has_more is len(data) == limit
        ]
        return {"data": data, "has_more": True, "limit": 100, "total": self.total, "page": page}

    def _status(self) -> dict[str, Any]:
        documents = [
            {
                "id": _doc_id(0, n),
                "indexing_status": "error",
                "error": ERROR,
                "completed_segments": 0,
                "total_segments": 1,
            }
            for n in range(30)
        ]
        if self.stuck:
            documents.append({"id": DOC, "indexing_status": NASTY + "x" * 10_000})
        return {"data": documents}

    def _retrieve(self) -> dict[str, Any]:
        records = [
            {
                "score": 0.9 - n / 10,
                "segment": {
                    "id": _doc_id(9, n),
                    "position": n + 1,
                    "content": BIG_TEXT,
                    "document_id": DOC,
                    "document": {"id": DOC, "name": BIG_NAME, "data_source_type": "upload_file"},
                },
            }
            for n in range(4)
        ]
        return {"query": {"content": "q"}, "records": records}

    def _created(self) -> dict[str, Any]:
        document = self._document(DOC, BIG_NAME)
        document["indexing_status"] = "waiting"
        return {"document": document, "batch": BATCH}

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        self.paths.append(path)
        if path.endswith("/segments"):
            body: Any = self._segments(request)
        elif path.endswith("/retrieve"):
            body = self._retrieve()
        elif "/document/create" in path:
            body = self._created()
        elif path.endswith("/indexing-status"):
            body = self._status()
        elif path.endswith(f"/datasets/{DS}/documents"):
            body = self._list(request)
        elif "/documents/" in path:
            body = self._document(path.rsplit("/", 1)[-1], BIG_NAME)
        elif path.endswith(f"/datasets/{DS}"):
            body = {
                "id": DS,
                "name": NASTY + "kb",
                "indexing_technique": "high_quality",
                "retrieval_model_dict": {"search_method": "semantic_search", "top_k": 4},
                "document_count": self.total,
            }
        else:
            return web.json_response({"code": "not_found", "message": NASTY}, status=404)
        return web.Response(text=json.dumps(body), content_type="application/json")


def strings(value: Any) -> list[str]:
    """Every string in a JSON value (keys too)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in (str(key), *strings(item))]
    if isinstance(value, list | tuple):
        return [s for item in value for s in strings(item)]
    return []
