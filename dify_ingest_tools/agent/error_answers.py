"""What an agent reads when a wait ends without READY, or a call fails: answers and tool errors.

The other half of `dify_ingest_tools.agent.answers` (the `Answer` type and a batch's status):
a wait that ran out of time, stalled or failed is an answer the model can act on; any other
API error, and arguments that do not fit a tool, are tool errors with Dify's message and what
to do next. The server's URL and address never appear; its text is bounded.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from dify_ingest_tools.agent.answers import (
    Answer,
    answer_status,
    bounded,
    build_answer,
    progress_line,
    sentence,
)
from dify_ingest_tools.errors import (
    DifyAPIError,
    DifyAuthenticationError,
    DifyConnectionError,
    DifyError,
    DifyNotFoundError,
    DifyPermissionError,
    DifyRateLimitError,
    DifyResponseError,
    DifyServerError,
    IndexingEmptyError,
    IndexingError,
    IndexingFailedError,
    IndexingStalledError,
    IndexingTimeoutError,
)

# What `waiting` appends to a hint when Dify never answered: "(The wait for batch B gave up
# after N failed poll(s) in S s without one answer from Dify's API.)".
_WAIT_TALLY = re.compile(
    r"\s*\(The wait for batch \S+ gave up after .*? without one answer from Dify's API\.?\)"
)


def _without_address(message: str, url: str) -> str:
    """``message`` without the server's host and port (aiohttp's connection errors name them:
    "Cannot connect to host h:p ... [Connect call failed ('h', p)]")."""
    host = urlsplit(url).hostname
    if not host:
        return message
    name = re.escape(host)
    message = re.sub(rf"\(\s*'{name}',\s*\d+[^)]*\)", "the server", message)
    return re.sub(rf"\[?{name}\]?(:\d+)?", "the server", message, flags=re.IGNORECASE)


# -- how a wait ended ------------------------------------------------------------------------


def _timeout(
    error: IndexingTimeoutError,
    waited: float | None,
    asked: float | None,
    dataset_id: str | None,
    batch: str | None,
) -> Answer:
    status = error.last_status
    failed_poll = error.__cause__
    if (
        status is None
        and isinstance(failed_poll, DifyError)
        and not (isinstance(failed_poll, DifyNotFoundError) and failed_poll.is_batch_missing)
    ):
        # Dify never answered a poll (down, rate limiting): "not reported yet" would hide
        # why. (A batch not visible yet is what a fresh upload looks like: that says so.)
        return _api_error(failed_poll, dataset_id, batch)
    after = f" after {waited:g} s" if waited is not None else ""
    if status is None:
        text = (
            f"Still not ready{after}: Dify has not reported the batch yet. It may still be "
            "starting; wait again."
        )
    else:
        text = (
            f"Still indexing{after}: batch {status.batch} of dataset {status.dataset_id} has "
            f"{progress_line(status)}. Dify keeps working server-side; wait again later before "
            "retrieving."
        )
    if waited is not None and asked is not None and asked > waited:
        text += f" (This tool waits at most {waited:g} s per call.)"
    return build_answer(
        text,
        "timeout",
        status=status,
        dataset_id=dataset_id,
        batch=batch,
        error=error,
        waited_seconds=waited,
    )


def _stalled(error: IndexingStalledError, dataset_id: str | None, batch: str | None) -> Answer:
    status = error.last_status
    where = answer_status(status).text if status is not None else "No status was observed."
    text = (
        "Indexing appears STALLED: nothing changed for a long time, so Dify's indexing worker "
        f"may be down. {where}"
    )
    return build_answer(
        text, "stalled", status=status, dataset_id=dataset_id, batch=batch, error=error
    )


def _failed(error: IndexingFailedError, dataset_id: str | None, batch: str | None) -> Answer:
    if error.last_status is not None:
        return replace(answer_status(error.last_status), error=error)
    text = sentence(bounded(str(error)))
    return build_answer(text, "failed", dataset_id=dataset_id, batch=batch, error=error)


# -- errors ---------------------------------------------------------------------------------------


def _advice(error: DifyError, dataset_id: str | None, batch: str | None) -> str:
    if isinstance(error, DifyAuthenticationError):
        return (
            "Dify rejected the API key. Changing the tool arguments will not help: tell the "
            "user to check the Knowledge API key (DIFY_API_KEY)."
        )
    if isinstance(error, DifyRateLimitError):
        return "Dify is rate limiting requests: wait about a minute before calling this again."
    if isinstance(error, DifyPermissionError):
        return (
            f"The API key may not access dataset {dataset_id} (its API access may be disabled "
            "in Dify's console, or a plan limit was reached). Retrying will not help: tell the "
            "user."
        )
    if isinstance(error, DifyNotFoundError):
        if error.is_dataset_missing:
            return f"There is no dataset {dataset_id}: check dataset_id."
        if error.is_batch_missing:
            return (
                f"Dify does not know batch {batch} in dataset {dataset_id}. Pass the exact "
                "`batch` string the upload returned; a new batch can take a few seconds to "
                "appear, so check again shortly."
            )
        return "Dify's API was not found at the configured base URL: tell the user."
    if isinstance(error, DifyConnectionError | DifyServerError | DifyResponseError):
        return "Dify could not be reached or answered badly: try again in a little while."
    return "Try again in a little while; if it keeps failing, tell the user."


def _api_error(error: DifyError, dataset_id: str | None, batch: str | None) -> Answer:
    details: dict[str, Any] = {"type": type(error).__name__}
    # What to check, when the library knows (e.g. a base URL that is not Dify's API root).
    hint_text = getattr(error, "hint", None)
    url = str(getattr(error, "url", "") or "")
    hint = ""
    if isinstance(hint_text, str) and hint_text:
        # The wait's tally of failed polls varies from call to call and tells a model nothing
        # the answer does not: every framework is to say the same words for the same failure.
        hint_text = _WAIT_TALLY.sub("", _without_address(hint_text, url))
        hint = f" {sentence(bounded(hint_text))}"
    if isinstance(error, DifyAPIError):
        message = bounded(error.message)
        head = (
            f"Dify error (HTTP {error.status}, code {error.code!r}): "
            f"{sentence(message) if message else 'no message.'}{hint}"
        )
        details.update(status=error.status, code=error.code, message=message)
    elif isinstance(error, DifyConnectionError):
        # The message, not str(): that adds the request's method and URL, which a model
        # cannot act on (and the user configured).
        message = bounded(_without_address(error.message, error.url))
        head = f"Could not reach Dify: {sentence(message)}{hint}"
        details.update(message=message)
    else:
        message = bounded(str(error))
        head = f"Dify error: {sentence(message)}{hint}"
        details.update(message=message)
    # An id Dify does not know is an answer: the model can fix (or re-check) the id it passed.
    # Any other 404 means the base URL is not Dify's API: only the user can fix that.
    not_found = isinstance(error, DifyNotFoundError) and error.resource in ("dataset", "documents")
    return build_answer(
        f"{head} {_advice(error, dataset_id, batch)}",
        "not_found" if not_found else "error",
        is_error=not not_found,
        status=error.last_status,
        dataset_id=dataset_id,
        batch=batch,
        error=error,
        details=details,
    )


def answer_error(
    error: DifyError | ValueError,
    *,
    dataset_id: str | None = None,
    batch: str | None = None,
    waited: float | None = None,
    asked: float | None = None,
) -> Answer:
    """The answer for anything a check or a wait raised.

    Args:
        error: What was raised: a wait's `IndexingTimeoutError`, `IndexingStalledError` or
            `IndexingFailedError` (answers), a `DifyError` (a tool error with Dify's status,
            code, message and advice) or a ``ValueError`` (an invalid argument).
        dataset_id: The knowledge base the call was about.
        batch: The batch the call was about.
        waited: For a timeout: how long the wait was allowed to take (seconds).
        asked: For a timeout: how long the caller (the model) asked to wait; when more than
            ``waited``, the answer says the tool's cap.
    """
    if isinstance(error, IndexingTimeoutError):
        return _timeout(error, waited, asked, dataset_id, batch)
    if isinstance(error, IndexingStalledError):
        return _stalled(error, dataset_id, batch)
    if isinstance(error, IndexingFailedError):
        return _failed(error, dataset_id, batch)
    if isinstance(error, IndexingEmptyError) and error.last_status is not None:
        return replace(answer_status(error.last_status), error=error)
    if isinstance(error, DifyError):
        return _api_error(error, dataset_id, batch)
    text = f"Invalid argument: {sentence(bounded(str(error)))}"
    return build_answer(
        text,
        "invalid",
        is_error=True,
        dataset_id=dataset_id,
        batch=batch,
        error=error,
        details={"type": type(error).__name__, "message": bounded(str(error))},
    )


# -- the texts alone (what the adapters of earlier versions called) ---------------------------


def timeout_answer(error: IndexingTimeoutError, waited: float) -> str:
    """What a bounded wait says when time ran out (Dify keeps indexing server-side)."""
    return _timeout(error, waited, None, None, None).text


def stalled_answer(error: IndexingStalledError) -> str:
    """What a wait says when nothing moved for the stall timeout."""
    return _stalled(error, None, None).text


def failure_answer(error: IndexingFailedError) -> str:
    """What a wait says when a document failed (or was paused with on_paused="fail")."""
    return _failed(error, None, None).text


def error_answer(error: DifyError, *, dataset_id: str | None, batch: str | None) -> str:
    """What went wrong talking to Dify (its message, status and code) and what to do next."""
    if isinstance(error, IndexingError):
        return answer_error(error, dataset_id=dataset_id, batch=batch).text
    return _api_error(error, dataset_id, batch).text


def arguments_answer(error: ValidationError) -> str:
    """What the model reads when its arguments do not fit a tool's schema (in every
    framework: LangChain validates them itself, with this text)."""
    return f"Invalid arguments: {_problems(error)}. Fix them and call the tool again."


def _problems(error: ValidationError) -> str:
    """Pydantic's errors as one line a model can act on (no input values echoed back)."""
    parts = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "arguments"
        message = problem["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
