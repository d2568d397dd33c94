"""Waits that heal, when asked: a stalled upload of this client is sent once more by name.

Dify has no watchdog: a document can sit in ``waiting`` or ``indexing`` for ever (a worker that
died, a batch retry that queued nothing). Its create is an upsert by name, so sending the same
content again under the same name re-queues indexing under a new batch. With
``on_stall="resubmit"`` a wait does exactly that for a document this client uploaded itself
(it still holds the text, the bytes or the file path), at most ``max_resubmits`` times per
document, never for a document it did not upload, and never while Dify reports ``error``
(that is a failure, with Dify's text, not a stall).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from dify_ingest_tools.errors import IndexingStalledError
from dify_ingest_tools.events import EventCallback, IndexingEvent, dispatch
from dify_ingest_tools.models.created import CreatedDocument
from dify_ingest_tools.models.status import BatchIndexingStatus

if TYPE_CHECKING:
    from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient

OnStall: TypeAlias = Literal["raise", "resubmit"]
#: Uploads remembered per client for a resubmit (the newest; older ones cannot be healed).
MAX_KEPT = 1024
#: Text or bytes longer than this are not kept in memory (a path always is).
_MAX_KEPT_CHARS = 1_000_000


@dataclass(frozen=True)
class Upload:
    """What this client sent, enough to send it again under the same name."""

    name: str
    text: str | None = None
    content: bytes | None = None
    path: Path | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    resubmits: int = 0

    @staticmethod
    def keepable(text: str | bytes | None) -> bool:
        return text is None or len(text) <= _MAX_KEPT_CHARS

    async def send_again(
        self, client: AsyncDifyKnowledgeClient, dataset_id: str
    ) -> CreatedDocument:
        options = dict(self.options)
        if self.text is not None:
            return await client.create_document_by_text(dataset_id, self.name, self.text, **options)
        source: Any = self.path if self.path is not None else self.content
        return await client.create_document_by_file(
            dataset_id, source, filename=self.name, **options
        )


class Uploads:
    """This client's uploads by ``(dataset, batch)``, the newest `MAX_KEPT`."""

    def __init__(self, limit: int = MAX_KEPT) -> None:
        self._items: OrderedDict[tuple[str, str], Upload] = OrderedDict()
        self._limit = limit

    def remember(self, created: CreatedDocument, upload: Upload) -> None:
        key = (created.dataset_id.lower(), created.batch)
        self._items[key] = upload
        self._items.move_to_end(key)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def get(self, dataset_id: str, batch: str) -> Upload | None:
        return self._items.get((dataset_id.lower(), batch))


def check_heal_options(options: dict[str, Any]) -> tuple[OnStall, int]:
    """Take ``on_stall`` and ``max_resubmits`` out of a wait's options (checked)."""
    on_stall = options.pop("on_stall", "raise")
    max_resubmits = options.pop("max_resubmits", 1)
    if on_stall not in ("raise", "resubmit"):
        raise ValueError(f"on_stall must be 'raise' or 'resubmit', not {on_stall!r}")
    if isinstance(max_resubmits, bool) or not isinstance(max_resubmits, int):
        raise TypeError(f"max_resubmits must be an int, not {type(max_resubmits).__name__}")
    if not 0 <= max_resubmits <= 10:
        raise ValueError(f"max_resubmits must be within 0..10, not {max_resubmits!r}")
    return on_stall, max_resubmits


async def healing_wait(
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    batch: str,
    options: dict[str, Any],
    max_resubmits: int,
    wait_once: Callable[[str, dict[str, Any]], Awaitable[BatchIndexingStatus]],
    clock: Callable[[], float],
) -> BatchIndexingStatus:
    """Wait on ``batch``; when it stalls and this client can send it again, do so and go on.

    The deadline (``timeout``) bounds the whole wait, resubmits included. The returned
    status is that of the batch that finished (a resubmit's new batch).
    """
    timeout = float(options.get("timeout", 600.0))
    deadline = clock() + timeout
    on_event: EventCallback | None = options.get("on_event")
    while True:
        left = max(deadline - clock(), 0.001)
        try:
            return await wait_once(batch, {**options, "timeout": left})
        except IndexingStalledError as stalled:
            upload = client._uploads.get(dataset_id, batch)
            last = stalled.last_status
            if upload is None or upload.resubmits >= max_resubmits:
                raise
            if last is not None and last.is_failed:
                raise  # Dify reports error: a failure with its text, not a stall
            created = await upload.send_again(client, dataset_id)
            client._uploads.remember(created, replace(upload, resubmits=upload.resubmits + 1))
            if on_event is not None:
                await dispatch(
                    [on_event],
                    IndexingEvent(
                        kind="resubmitted",
                        dataset_id=dataset_id,
                        batch=batch,
                        status=last,
                        error=(
                            f"stalled: sent {upload.name!r} again by name (resubmit "
                            f"{upload.resubmits + 1} of {max_resubmits}); now batch "
                            f"{created.batch}"
                        ),
                    ),
                )
            batch = created.batch
