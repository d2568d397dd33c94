"""Finding a knowledge base by its name (``GET /datasets?keyword=``).

Dify filters the list with ``name ILIKE '%keyword%'`` (a substring, any case, ``%``/``_`` as
wildcards), so the pages are filtered here again on the exact name. Names are unique per
workspace when created (``409 dataset_name_duplicate``), yet two can still share one (a rename
in the console, names differing only in what a proxy normalises): then nothing is guessed.
Belongs with the client's dataset resource (``client/`` in the layer map).
"""

from __future__ import annotations

from typing import Any

from yarl import URL

from dify_ingest_tools._http.answer_errors import shape_error
from dify_ingest_tools.errors import DifyDatasetNameError

DATASET_PAGE = 100  # Dify caps the page at 100
MAX_DATASET_PAGES = 100  # 10,000 knowledge bases of one keyword, whatever has_more says


def check_name(name: object) -> str:
    """The name, if it is one a knowledge base can have."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if not name.strip():
        raise ValueError("name must be a non-empty string")
    if any(ord(char) < 32 for char in name):
        raise ValueError("name must not contain control characters")
    return name


def named(payload: Any, name: str, url: URL) -> tuple[list[dict[str, Any]], bool]:
    """The page's knowledge bases called exactly ``name``, and whether more pages follow."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise shape_error("expected {'data': [...], 'has_more': ...}", payload, url, "GET")
    found = [
        item
        for item in data
        if isinstance(item, dict) and item.get("name") == name and isinstance(item.get("id"), str)
    ]
    return found, bool(payload.get("has_more")) and bool(data)


def ambiguous(name: str, datasets: list[dict[str, Any]]) -> DifyDatasetNameError:
    ids = tuple(str(item["id"]) for item in datasets)
    return DifyDatasetNameError(
        f"{len(ids)} knowledge bases are named {name!r}: {', '.join(ids)}; pass the id of the "
        "one you mean (dataset_id= / --dataset) or rename one in Dify",
        name=name,
        dataset_ids=ids,
    )


def missing(name: str) -> DifyDatasetNameError:
    return DifyDatasetNameError(
        f"no knowledge base is named {name!r} (names match exactly, case included); pass "
        "create_if_missing=True (--create-if-missing) to create it",
        name=name,
    )
