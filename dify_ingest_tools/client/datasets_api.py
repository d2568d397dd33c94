"""`DatasetsAPI`: knowledge bases read, found by name, created and deleted.

Bodies and shapes: `dataset_create` and `dataset_lookup`; the per-client settings cache:
`datasets`.
"""

from __future__ import annotations

import logging
from typing import Any

from dify_ingest_tools._base.inputs import check_dataset_id
from dify_ingest_tools._http.answer_errors import shape_error
from dify_ingest_tools._http.transport import short
from dify_ingest_tools.client.dataset_create import (
    DatasetPermission,
    IndexingTechnique,
    created_dataset,
    dataset_body,
)
from dify_ingest_tools.client.dataset_lookup import DATASET_PAGE, MAX_DATASET_PAGES
from dify_ingest_tools.client.dataset_lookup import ambiguous as ambiguous_name
from dify_ingest_tools.client.dataset_lookup import check_name as check_dataset_name
from dify_ingest_tools.client.dataset_lookup import missing as missing_name
from dify_ingest_tools.client.dataset_lookup import named as named_datasets
from dify_ingest_tools.client.host import ClientHost
from dify_ingest_tools.errors import DifyAPIError, DifyConnectionError

logger = logging.getLogger("dify_ingest_tools")


class DatasetsAPI(ClientHost):
    """Knowledge bases (datasets): the calls on ``/datasets`` and ``/datasets/{id}``."""

    async def get_dataset(self, dataset_id: str) -> dict[str, Any]:
        """The knowledge base's settings (``GET /datasets/{id}``), cached per client (concurrent
        first reads share one request)."""
        check_dataset_id(dataset_id)

        async def fetch() -> dict[str, Any]:
            url = self._url("datasets", dataset_id)
            payload = await self._transport.json("GET", url, idempotent=True)
            if not isinstance(payload, dict):
                raise shape_error("expected a dataset object", payload, url, "GET")
            return payload

        return await self._datasets.read(dataset_id, fetch)

    async def _readable_dataset(self, dataset_id: str) -> dict[str, Any]:
        """The dataset's settings, or ``{}`` when a reachable server cannot describe it (08)."""
        try:
            return await self.get_dataset(dataset_id)
        except (DifyAPIError, DifyConnectionError) as error:
            if isinstance(error, DifyAPIError) and error.status in (401, 403, 404):
                raise
            logger.info("could not read dataset %s settings: %s", dataset_id, short(error))
            return {}

    async def _dataset_technique(self, dataset_id: str) -> str | None:
        """The dataset's indexing technique, or None when it is not known.

        ``GET /datasets/{id}`` is not rate limited, but some self-hosted servers fail it
        (400 "Failed to request plugin daemon"); then the create is sent without the field
        and the server decides.
        """
        info = await self._readable_dataset(dataset_id)
        # Else the one this client created the dataset (or its first document) with.
        return self._datasets.known_technique(dataset_id, info) or None

    # -- knowledge bases: create, find and delete ------------------------------------------

    async def create_dataset(
        self,
        name: str,
        *,
        indexing_technique: IndexingTechnique = "economy",
        permission: DatasetPermission = "only_me",
        description: str | None = None,
    ) -> dict[str, Any]:
        """Create an empty knowledge base (``POST /datasets``); returns Dify's dataset object.

        Its ``"id"`` is what every other method takes as ``dataset_id``. Sent once, never
        retried: a retry after a lost answer would meet the first one's name
        (``409 dataset_name_duplicate``).

        Args:
            name: Unique within the workspace, 1 to 40 characters.
            indexing_technique: ``"economy"`` (keyword index, works on any workspace) or
                ``"high_quality"`` (vectors: needs a default embedding model).
            permission: ``"only_me"``, ``"all_team_members"`` or ``"partial_members"``.
            description: Shown in Dify's console (up to 400 characters).

        Raises:
            ValueError: For an invalid argument, before anything is sent.
            DifyAPIError: As Dify answered (e.g. 409 for a name already taken).
        """
        body = dataset_body(
            name,
            indexing_technique=indexing_technique,
            permission=permission,
            description=description,
        )
        url = self._url("datasets")
        payload = await self._transport.json("POST", url, json_body=body, idempotent=False)
        created = created_dataset(payload, url, "POST")
        # Retrieval defaults follow the technique even when the detail cannot be read later.
        self._datasets.remember_technique(created["id"], indexing_technique)
        return created

    async def find_dataset(self, name: str) -> dict[str, Any] | None:
        """The knowledge base called exactly ``name`` (``GET /datasets?keyword=``), or None.

        Reads the list pages (not rate limited) and keeps exact matches, case included.

        Raises:
            DifyDatasetNameError: Two or more knowledge bases have this name (their ids are in
                the message and in ``dataset_ids``): nothing is guessed.
            ValueError: A blank name (nothing is sent).
        """
        check_dataset_name(name)
        found: list[dict[str, Any]] = []
        for page in range(1, MAX_DATASET_PAGES + 1):
            url = self._url("datasets").with_query(
                keyword=name, page=str(page), limit=str(DATASET_PAGE)
            )
            payload = await self._transport.json("GET", url, idempotent=True)
            matches, more = named_datasets(payload, name, url)
            found += matches
            if not more:
                break
        if len(found) > 1:
            raise ambiguous_name(name, found)
        return found[0] if found else None

    async def dataset_id_for(
        self,
        name: str,
        *,
        create_if_missing: bool = False,
        indexing_technique: IndexingTechnique = "economy",
        permission: DatasetPermission = "only_me",
        description: str | None = None,
    ) -> str:
        """The id of the knowledge base called ``name``; with ``create_if_missing``, created
        (`create_dataset`, economy unless told otherwise) when there is none.

        Two clients creating one name at once both get the one Dify kept (the loser's
        ``409 dataset_name_duplicate`` is answered by looking the name up again).

        Raises:
            DifyDatasetNameError: No knowledge base has this name (and ``create_if_missing`` is
                False), or two or more have it.
        """
        found = await self.find_dataset(name)
        if found is not None:
            return str(found["id"])
        if not create_if_missing:
            raise missing_name(name)
        try:
            created = await self.create_dataset(
                name,
                indexing_technique=indexing_technique,
                permission=permission,
                description=description,
            )
        except DifyAPIError as error:
            if error.status != 409:
                raise
            again = await self.find_dataset(name)
            if again is None:
                raise
            return str(again["id"])
        return str(created["id"])

    async def delete_dataset(self, dataset_id: str) -> None:
        """Delete a knowledge base and its documents (``DELETE /datasets/{id}``; Dify: 204)."""
        check_dataset_id(dataset_id)
        url = self._url("datasets", dataset_id)
        await self._transport.request("DELETE", url, idempotent=False)
        # Its settings and its documents' names are gone with it.
        self._datasets.forget(dataset_id)
        self._doc_names.forget(dataset_id)
