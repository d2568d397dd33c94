"""Creating a knowledge base (``POST /datasets``): the body, checked before anything is sent,
and the answer's shape (recording ``00_create_dataset_economy.json``).

Kept out of `client` so the client only sends: what Dify accepts is said here once, for the
async and the blocking client alike.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from yarl import URL

from dify_ingest_tools._http.answer_errors import shape_error

IndexingTechnique = Literal["economy", "high_quality"]
"""``economy``: keyword index, no embedding model needed; ``high_quality``: vectors (the
workspace needs a default embedding model)."""
DatasetPermission = Literal["only_me", "all_team_members", "partial_members"]
"""Who in the workspace sees the knowledge base in Dify's console."""

# Dify's DatasetCreatePayload bounds (a longer value is a 400 `invalid_param`).
_MAX_NAME = 40
_MAX_DESCRIPTION = 400


def dataset_body(
    name: str,
    *,
    indexing_technique: str,
    permission: str,
    description: str | None,
) -> dict[str, Any]:
    """The JSON body of ``POST /datasets``.

    Raises:
        ValueError: For a blank or too long name or description, or an unknown technique or
            permission (nothing is sent).
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name must be a non-empty string")
    if len(name) > _MAX_NAME:
        raise ValueError(f"name must be at most {_MAX_NAME} characters (Dify's limit)")
    techniques = get_args(IndexingTechnique)
    if indexing_technique not in techniques:
        raise ValueError(f"indexing_technique must be one of {', '.join(techniques)}")
    permissions = get_args(DatasetPermission)
    if permission not in permissions:
        raise ValueError(f"permission must be one of {', '.join(permissions)}")
    body: dict[str, Any] = {
        "name": name,
        "indexing_technique": indexing_technique,
        "permission": permission,
    }
    if description is not None:
        if len(description) > _MAX_DESCRIPTION:
            raise ValueError(f"description must be at most {_MAX_DESCRIPTION} characters")
        body["description"] = description
    return body


def created_dataset(payload: Any, url: URL, method: str) -> dict[str, Any]:
    """The dataset object Dify answered, checked to carry the new ``id``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("id"), str) or not payload["id"]:
        raise shape_error("expected a dataset object with an id", payload, url, method)
    return payload
