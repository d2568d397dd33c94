"""`MetadataAPI`: a knowledge base's metadata fields and its documents' values.

Shapes follow the recordings of a real Dify 1.14.1 (``recorded/12`` and ``13``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, get_args

from dify_ingest_tools._base.inputs import check_dataset_id, check_document_id
from dify_ingest_tools.client.host import ClientHost
from dify_ingest_tools.errors import DifyAPIError
from dify_ingest_tools.models.documents import (
    BUILT_IN_METADATA_FIELDS,
    MetadataEntry,
    MetadataField,
    MetadataFieldList,
    MetadataType,
    MetadataValue,
)

if TYPE_CHECKING:
    pass


_METADATA_TYPES = get_args(MetadataType)


class MetadataAPI(ClientHost):
    """Metadata fields (create, rename, delete, built-in ones) and documents' values."""

    async def list_metadata_fields(self, dataset_id: str) -> MetadataFieldList:
        """The knowledge base's metadata fields (``GET /datasets/{id}/metadata``)."""
        check_dataset_id(dataset_id)
        url = self._url("datasets", dataset_id, "metadata")
        payload = await self._transport.json("GET", url, idempotent=True)
        return self._parse(MetadataFieldList, payload, url, "GET")

    async def create_metadata_field(
        self, dataset_id: str, name: str, type: MetadataType = "string"
    ) -> MetadataField:
        """Create a metadata field (``POST /datasets/{id}/metadata``).

        Raises:
            ValueError: A built-in name (``source``, ``document_name``, ...) or a type other
                than ``string``, ``number`` or ``time``.
            DifyAPIError: 400 "Metadata name already exists." for a taken name.
        """
        check_dataset_id(dataset_id)
        _check_field_name(name)
        if type not in _METADATA_TYPES:
            raise ValueError(f"type must be one of {', '.join(_METADATA_TYPES)}, not {type!r}")
        url = self._url("datasets", dataset_id, "metadata")
        payload = await self._transport.json(
            "POST", url, json_body={"type": type, "name": name}, idempotent=False
        )
        return self._parse(MetadataField, payload, url, "POST")

    async def rename_metadata_field(
        self, dataset_id: str, field_id: str, name: str
    ) -> MetadataField:
        """Rename a field; documents' values follow (``PATCH /datasets/{id}/metadata/{fid}``)."""
        check_dataset_id(dataset_id)
        check_document_id(field_id)
        _check_field_name(name)
        url = self._url("datasets", dataset_id, "metadata", field_id)
        payload = await self._transport.json(
            "PATCH", url, json_body={"name": name}, idempotent=True
        )
        return self._parse(MetadataField, payload, url, "PATCH")

    async def delete_metadata_field(self, dataset_id: str, field_id: str) -> None:
        """Delete a field and its values (Dify answers 204, also for an unknown field)."""
        check_dataset_id(dataset_id)
        check_document_id(field_id)
        url = self._url("datasets", dataset_id, "metadata", field_id)
        await self._transport.request("DELETE", url, idempotent=True)

    async def ensure_metadata_fields(
        self, dataset_id: str, types: Mapping[str, MetadataType]
    ) -> dict[str, MetadataField]:
        """Create the fields that do not exist yet; return every field by name.

        An existing field keeps its type (compare ``.type`` to what you asked for).
        """
        listing = await self.list_metadata_fields(dataset_id)
        fields = {field.name: field for field in listing.fields}
        for name, field_type in types.items():
            if name in fields:
                continue
            try:
                fields[name] = await self.create_metadata_field(dataset_id, name, field_type)
            except DifyAPIError as error:
                if error.status != 400 or "already exists" not in error.message:
                    raise
                # Created meanwhile by someone else: read it back.
                listing = await self.list_metadata_fields(dataset_id)
                found = listing.by_name(name)
                if found is None:
                    raise
                fields[name] = found
        return fields

    async def set_document_metadata(
        self,
        dataset_id: str,
        document_id: str,
        values: Mapping[str, MetadataValue],
        *,
        partial_update: bool = False,
        create_fields: bool = True,
    ) -> None:
        """Set one document's metadata values (see `set_documents_metadata`)."""
        await self.set_documents_metadata(
            dataset_id,
            {document_id: values},
            partial_update=partial_update,
            create_fields=create_fields,
        )

    async def set_documents_metadata(
        self,
        dataset_id: str,
        values: Mapping[str, Mapping[str, MetadataValue]],
        *,
        partial_update: bool = False,
        create_fields: bool = True,
        fields: Mapping[str, MetadataField] | None = None,
    ) -> None:
        """Set metadata values of several documents in one request.

        ``POST /datasets/{id}/documents/metadata``. Fields are addressed by name; missing
        ones are created (``str`` values as ``string`` fields, numbers as ``number``).

        Args:
            dataset_id: The knowledge base UUID.
            values: ``{document_id: {field name: value}}``.
            partial_update: Merge into the document's values; by default (as in Dify) the
                given values replace the document's whole set.
            create_fields: Create missing fields; with False a missing field is a ValueError.
            fields: The dataset's fields by name, when the caller already knows them (saves
                the listing request).

        Raises:
            ValueError: A built-in field name, a boolean or nested value, a value that does
                not fit its field's type, or a missing field with ``create_fields=False``.
            DifyAPIError: 400 "Document not found." for an unknown document.
        """
        check_dataset_id(dataset_id)
        wanted: dict[str, MetadataType] = {}
        for document_id, entries in values.items():
            check_document_id(document_id)
            for name, value in entries.items():
                _check_field_name(name)
                wanted.setdefault(name, _type_of(name, value))
        if not values:
            return
        known: Mapping[str, MetadataField]
        if fields is not None and set(wanted) <= set(fields):
            known = fields
        elif create_fields:
            known = await self.ensure_metadata_fields(dataset_id, wanted)
        else:
            listing = await self.list_metadata_fields(dataset_id)
            known = {field.name: field for field in listing.fields}
        missing = sorted(set(wanted) - set(known))
        if missing:
            raise ValueError(f"no metadata field named {', '.join(missing)} in the dataset")
        operations = []
        for document_id, entries in values.items():
            metadata_list = [
                {
                    "id": known[name].id,
                    "name": name,
                    "value": _fit(name, value, known[name].type),
                }
                for name, value in entries.items()
            ]
            operation: dict[str, Any] = {"document_id": document_id, "metadata_list": metadata_list}
            if partial_update:
                operation["partial_update"] = True
            operations.append(operation)
        url = self._url("datasets", dataset_id, "documents", "metadata")
        await self._transport.json(
            "POST", url, json_body={"operation_data": operations}, idempotent=True
        )
        for document_id in values:
            # Retrieval joins names and metadata from a cache: drop what just changed.
            self._doc_names.forget(dataset_id, document_id)

    async def get_document_metadata(self, dataset_id: str, document_id: str) -> list[MetadataEntry]:
        """A document's metadata entries, built-in ones included (``?metadata=only``).

        Values keep their types here (a number is a number), unlike in list items.
        """
        check_dataset_id(dataset_id)
        check_document_id(document_id)
        url = self._url("datasets", dataset_id, "documents", document_id)
        payload = await self._transport.json(
            "GET", url, params={"metadata": "only"}, idempotent=True
        )
        raw = payload.get("doc_metadata") if isinstance(payload, dict) else None
        return MetadataEntry.parse_list(raw)

    async def list_builtin_metadata_fields(self, dataset_id: str) -> dict[str, str]:
        """Dify's built-in fields as ``{name: type}`` (``GET .../metadata/built-in``)."""
        check_dataset_id(dataset_id)
        url = self._url("datasets", dataset_id, "metadata", "built-in")
        payload = await self._transport.json("GET", url, idempotent=True)
        items = payload.get("fields") if isinstance(payload, dict) else None
        return {
            str(item["name"]): str(item.get("type", "string"))
            for item in items or ()
            if isinstance(item, dict) and "name" in item
        }

    async def set_builtin_metadata(self, dataset_id: str, enabled: bool) -> None:
        """Switch Dify's built-in fields on or off (needed to filter on ``document_name``)."""
        check_dataset_id(dataset_id)
        action = "enable" if enabled else "disable"
        url = self._url("datasets", dataset_id, "metadata", "built-in", action)
        await self._transport.json("POST", url, idempotent=True)


def _check_field_name(name: object) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a metadata field name must be a non-empty string")
    if len(name) > 255:
        raise ValueError("a metadata field name is at most 255 characters")
    if name in BUILT_IN_METADATA_FIELDS:
        raise ValueError(
            f"{name!r} is one of Dify's built-in metadata fields "
            f"({', '.join(sorted(BUILT_IN_METADATA_FIELDS))}) and cannot be created or set"
        )


def _type_of(name: str, value: MetadataValue) -> MetadataType:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, type(None))):
        raise ValueError(
            f"metadata {name!r}: Dify stores strings and numbers only, got {type(value).__name__}"
        )
    return "number" if isinstance(value, (int, float)) else "string"


def _fit(name: str, value: MetadataValue, field_type: str) -> MetadataValue:
    """The value as its field's type wants it."""
    if value is None:
        return None
    if field_type == "number" and isinstance(value, str):
        raise ValueError(f"metadata {name!r} is a number field; got the string {value!r}")
    if field_type in ("string", "time") and not isinstance(value, str):
        return str(value)
    return value
