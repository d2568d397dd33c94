"""The two indexing tools' calls, once for every framework: check a batch, wait for a batch.

The tool set (`dify_ingest_tools.agent.toolkit`) calls these on the client's loop for its
``indexing_status`` and ``wait_for_indexing`` tools, which every framework renders. Keeping
the calls here, and the words in `answers`, is what makes every framework say the same thing
for the same batch: the same wait options (a paused document ends the wait at once, as only
Dify's console can resume it) and the same text.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dify_ingest_tools.agent.answers import Answer, answer_status
from dify_ingest_tools.agent.error_answers import answer_error
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.errors import DifyError
from dify_ingest_tools.events import EventCallback
from dify_ingest_tools.readiness.policy import OnPaused


def target_dataset(bound: str | None, given: str | None) -> str:
    """The dataset a tool call is about: the tool's bound one, or the one the model gave.

    Raises:
        ValueError: None was given to an unbound tool, or another one to a bound tool.
    """
    if bound is None:
        if not given:
            raise ValueError(
                "dataset_id is required: pass the id of the knowledge base the documents were "
                "uploaded to"
            )
        return given
    if given is not None and given.lower() != bound.lower():
        raise ValueError(
            f"these tools are bound to knowledge base {bound}; they cannot look at {given}"
        )
    return bound


async def check_batch(client: AsyncDifyKnowledgeClient, dataset_id: str, batch: str) -> Answer:
    """Whether the batch is ready, without waiting: one request, or none when a running wait
    of this client has a fresh snapshot of it."""
    try:
        status = await client.monitor.status(dataset_id, batch)
    except (DifyError, ValueError) as error:
        return answer_error(error, dataset_id=dataset_id, batch=batch)
    return answer_status(status)


async def wait_for_batch(
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    batch: str,
    *,
    timeout: float,
    asked: float | None = None,
    on_event: EventCallback | None = None,
    on_paused: OnPaused = "fail",
    **options: Any,
) -> Answer:
    """Wait at most ``timeout`` seconds for the batch; every way it ends is an `Answer`.

    Args:
        timeout: The wait allowed (already capped by the tool).
        asked: What the model asked for, when it asked for more than the cap.
        on_event: Receives every `IndexingEvent` of the wait.
        on_paused: ``"fail"`` (default) answers PAUSED at once; ``"wait"`` waits on.
        **options: Other wait options (``poll_interval``, ``stall_timeout``, ...).
    """
    try:
        status = await client.wait_for_indexing(
            dataset_id,
            batch,
            timeout=timeout,
            raise_on_error=True,
            on_paused=on_paused,
            on_event=on_event,
            **options,
        )
    except (DifyError, ValueError) as error:
        return answer_error(error, dataset_id=dataset_id, batch=batch, waited=timeout, asked=asked)
    answer = answer_status(status)
    if status.batch != batch:  # healed: on_stall="resubmit" sent the upload again
        healed = (
            f"Batch {batch} stalled in Dify's queue, so its document was uploaded again by "
            f"name; the new batch is {status.batch}. "
        )
        answer = replace(
            answer, text=healed + answer.text, data={**answer.data, "resubmitted_as": status.batch}
        )
    return answer
