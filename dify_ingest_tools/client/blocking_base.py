"""What the generated blocking parts (`blocking`, `blocking_more`) stand on.

The attributes `DifyKnowledgeClient` sets (`bridge`), declared for the type checker, and the
one helper every generated forward may call. Written by hand: `twin` generates only methods.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from dify_ingest_tools.models.created import CreatedDocument

if TYPE_CHECKING:
    from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
    from dify_ingest_tools.client.bridge import LoopThread

T = TypeVar("T")


def listed(value: Any) -> Any:
    """An iterable argument as a list (a str or one created document stays itself).

    Materialised on the caller's thread, so a generator is not consumed from the loop's.
    """
    if isinstance(value, (str, bytes, CreatedDocument)):
        return value
    return list(value)


class BlockingBase:
    """The blocking client's async client, worker loop and ``_run``, as the parts use them."""

    if TYPE_CHECKING:
        _async: AsyncDifyKnowledgeClient
        _worker: LoopThread

        def _run(self, coro: Coroutine[Any, Any, T]) -> T: ...
