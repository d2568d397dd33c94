"""The exception hierarchy, built immutable with its context.

Which class an HTTP response becomes is decided in `dify_ingest_tools._http.responses`.

```
DifyError
├── DifyAPIError                      HTTP answered with an error (.status .code .message .url)
│   ├── DifyAuthenticationError       401
│   ├── DifyPermissionError           403 (API access disabled, plan limits, ...)
│   ├── DifyRateLimitError            429, and Dify Cloud's 403 knowledge rate limit
│   ├── DifyNotFoundError             404 (.resource tells dataset / documents / document / route)
│   ├── DifyServerError               5xx, JSON or a proxy's HTML page
│   ├── DifyDocumentNotAvailableError 400: the document cannot take that change right now
│   └── DifyResponseError             2xx whose body is not the JSON we expect
├── DifyConnectionError               the request never got an HTTP answer
│   └── DifyTimeoutError              ... because it ran out of time (also a TimeoutError)
├── DifyClientClosedError             the client was closed (also a RuntimeError)
├── DifyDocumentConflictError         a write would replace a document its writer does not own
└── IndexingError                     a wait ended without the batch being ready (.last_status)
    ├── IndexingFailedError           a document ended in `error`
    │   └── IndexingPausedError       a document is paused (with on_paused="fail")
    ├── IndexingTimeoutError          the deadline passed (also a TimeoutError)
    ├── IndexingStalledError          nothing changed for stall_timeout seconds
    └── IndexingEmptyError            completed, but a document produced no chunks (on_empty)
```
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from dify_ingest_tools._base.redaction import safe_body, scrub

if TYPE_CHECKING:
    from dify_ingest_tools.models.status import BatchIndexingStatus, DocumentIndexingStatus

# Dify Cloud answers its per-workspace knowledge rate limit with 403 `forbidden`, not 429, and
# sends no Retry-After (contract §c). Only the message tells it from a fatal 403.
RATE_LIMIT_MESSAGE = (
    "Sorry, you have reached the knowledge base request rate limit of your subscription."
)
RATE_LIMIT_MARKER = "request rate limit"

_E = TypeVar("_E", bound="DifyError")

NotFoundResource = Literal["dataset", "documents", "document", "route", "unknown"]

# Everything a server sends that we show goes through `scrub` in the constructors below
# (`dify_ingest_tools._base.redaction`): bounded, with the API key redacted.


class _Keep(enum.Enum):
    KEEP = "keep"


_KEEP = _Keep.KEEP


class DifyError(Exception):
    """Base class of every error this library raises.

    Errors are built once, with their context: their attributes cannot be changed after
    construction. `with_context` makes a new error of the same class with more context (one
    poll loop's error, shared by every wait on the batch, gets each waiter's own).

    Attributes:
        last_status: For errors raised by a wait, the last observed batch status (or None).
    """

    @property
    def last_status(self) -> BatchIndexingStatus | None:
        status: BatchIndexingStatus | None = self.__dict__.get("_last_status")
        return status

    def with_context(
        self: _E,
        *,
        hint: str | _Keep | None = _KEEP,
        last_status: BatchIndexingStatus | _Keep | None = _KEEP,
        retry_after: float | _Keep | None = _KEEP,
    ) -> _E:
        """A new error of this class, as this one but with the context given.

        This error is left as it is; raise the new one ``from`` it. Only context the class
        carries can be given (``hint``: API and connection errors; ``retry_after``: rate
        limits; ``last_status``: every error).

        Raises:
            TypeError: For context this class does not carry.
        """
        given = {
            name: value
            for name, value in (
                ("hint", hint),
                ("last_status", last_status),
                ("retry_after", retry_after),
            )
            if value is not _KEEP
        }
        for name in given:
            if not isinstance(getattr(type(self), name, None), property):
                raise TypeError(f"{type(self).__name__} carries no {name}")
        if isinstance(hint, str):
            given["hint"] = scrub(hint)
        state = self.__dict__.copy()
        if "__notes__" in state:
            state["__notes__"] = list(state["__notes__"])
        state.update({f"_{name}": value for name, value in given.items()})
        return _rebuild(type(self), self.args, state)

    def __setattr__(self, name: str, value: Any) -> None:
        # Set once, in the constructor: an error raised to several waiters (one poll loop's)
        # must not show one waiter's context to another.
        if not name.startswith("_") and (
            name in self.__dict__ or isinstance(getattr(type(self), name, None), property)
        ):
            raise AttributeError(
                f"{type(self).__name__}.{name} cannot be changed after the error is built "
                "(with_context makes a new one)"
            )
        super().__setattr__(name, value)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not pickle by default; errors cross process pools.
        return (_rebuild, (type(self), self.args, self.__dict__.copy()))


class DifyAPIError(DifyError):
    """Dify (or a proxy in front of it) answered with an HTTP error.

    Attributes:
        status: The HTTP status code.
        code: Dify's error code (``not_found``, ``unauthorized``, ...), or one derived from the
            status when the body was not Dify's JSON envelope (an HTML page from a proxy).
        message: Dify's message (for non-JSON bodies a short description), with the API key
            and any ``Bearer`` credential redacted and cut to 2,000 characters
            (``…[cut, N characters]``).
        url: The request URL. It never contains the API key (the key only travels in a header).
        method: The request method.
        body: The decoded JSON body, or the raw text, redacted and cut to about 8,000
            characters.
        hint: What to check next, when the library can tell (e.g. "is base_url the API root
            ending in /v1?"); part of ``str(error)``.
        from_dify: True when the body was Dify's own JSON error envelope
            (``{"code", "message", "status"}``): the request reached Dify's API. False for a
            proxy's or a web server's page, and for 2xx bodies that could not be used.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str,
        url: str = "",
        method: str = "",
        body: Any = None,
        hint: str | None = None,
        from_dify: bool = False,
    ) -> None:
        message = scrub(message)
        self.status = status
        self.code = scrub(code, 100)
        self.message = message
        self.url = url
        self.method = method
        self.body = safe_body(body)
        self._hint = scrub(hint) if hint else hint
        self.from_dify = from_dify
        super().__init__(message)

    @property
    def hint(self) -> str | None:
        hint: str | None = self.__dict__.get("_hint")
        return hint

    def _describe(self) -> str:
        where = f" [{self.method} {self.url}]" if self.url else ""
        text = self.message or "(Dify sent no message)"
        hint = f" {self.hint}" if self.hint else ""
        return f"{text} (HTTP {self.status}, code {self.code!r}){where}{hint}"

    def __str__(self) -> str:
        return self._describe()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, code={self.code!r}, "
            f"message={self.message!r}, url={self.url!r})"
        )


def _rebuild(cls: type[_E], args: tuple[Any, ...], state: dict[str, Any]) -> _E:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, *args)
    return error


class DifyAuthenticationError(DifyAPIError):
    """401: the API key is missing, malformed or not a valid *dataset* key."""


class DifyPermissionError(DifyAPIError):
    """403: the key may not do this (dataset API access disabled, a plan limit, ...)."""


class DifyRateLimitError(DifyAPIError):
    """429, or Dify Cloud's 403 knowledge-base rate limit. Transient: cool down and retry.

    Attributes:
        retry_after: Seconds to wait as the server asked (``Retry-After``), or None when the
            server did not say. Dify's own 403 rate limit never says; its window is 60 s.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self._retry_after = retry_after
        super().__init__(message, **kw)

    @property
    def retry_after(self) -> float | None:
        retry_after: float | None = self.__dict__.get("_retry_after")
        return retry_after

    @property
    def is_knowledge_rate_limit(self) -> bool:
        """True for Dify Cloud's per-workspace knowledge rate limit (a 403)."""
        return self.status == 403


class DifyNotFoundError(DifyAPIError):
    """404. ``resource`` says what was missing.

    * ``"dataset"`` — ``Dataset not found.``: wrong dataset id, or a dataset of another workspace.
    * ``"documents"`` — ``Documents not found.``: the batch is unknown, belongs to another
      dataset, its documents were deleted, or it is not visible *yet* (right after creation).
    * ``"document"`` — ``Document not found.`` for a document id.
    * ``"route"`` — an HTML 404 page: the path did not match any route (wrong base URL, or a
      server that does not have this endpoint).
    """

    def __init__(self, message: str, *, resource: NotFoundResource = "unknown", **kw: Any) -> None:
        self.resource = resource
        super().__init__(message, **kw)

    @property
    def is_dataset_missing(self) -> bool:
        return self.resource == "dataset"

    @property
    def is_batch_missing(self) -> bool:
        return self.resource == "documents"


class DifyServerError(DifyAPIError):
    """5xx from Dify or a proxy in front of it. Transient for reads."""


class DifyDocumentNotAvailableError(DifyAPIError):
    """400: the document cannot take this change now.

    Dify refuses updates of a document that is not ``available`` (still indexing, paused,
    disabled, archived or failed: ``invalid_param`` "Document is not available"), and status
    changes of a document locked by a recent one or still indexing (``invalid_action``
    "... is being indexed, please try again later" / "... is not completed."). Waiting can
    clear the first kinds, never a disabled or archived document. Methods retry it only when
    asked (``retry_unavailable=``).
    """


class DifyResponseError(DifyAPIError):
    """A 2xx answer whose body is not JSON, or not the shape this endpoint returns."""


class DifyConnectionError(DifyError):
    """No HTTP answer: DNS, refused or dropped connection, TLS failure.

    Attributes:
        message: What went wrong (redacted and bounded like `DifyAPIError.message`).
        url: The request URL, without secrets.
        method: The request method.
        hint: What to check next (e.g. whether anything listens at ``base_url``), or None;
            part of ``str(error)``.
    """

    def __init__(
        self, message: str, *, url: str = "", method: str = "", hint: str | None = None
    ) -> None:
        self.url = url
        self.method = method
        self.message = scrub(message)
        self._hint = scrub(hint) if hint else hint
        super().__init__(self.message)

    @property
    def hint(self) -> str | None:
        hint: str | None = self.__dict__.get("_hint")
        return hint

    def __str__(self) -> str:
        where = f" [{self.method} {self.url}]" if self.url else ""
        hint = f" {self.hint}" if self.hint else ""
        return f"{self.message}{where}{hint}"


class DifyTimeoutError(DifyConnectionError, TimeoutError):
    """The request got no complete answer within its time budget."""


class DifyClientClosedError(DifyError, RuntimeError):
    """The client was closed: every call in flight ends with this, and later calls are refused.

    Closing a client (``aclose``/``close``, or leaving its ``with`` block) ends its running
    waits, watches and requests within moments, from any thread. Also a `RuntimeError`, which
    is what a closed client raised before this class existed.
    """


class DifyDocumentConflictError(DifyError):
    """A write named a document that its writer did not create, and was refused.

    Raised before anything of the write was sent: the document, its content and its metadata
    are untouched. The stores (``DifyVectorStore``, ``DifyIndex``) own only the documents they
    marked; replacing another one takes ``overwrite_foreign=True``.

    Attributes:
        message: What was refused and how to opt in.
        dataset_id: The knowledge base.
        document_id: The Dify id of the document that was left alone.
        name: Its name (the key the write asked for).
    """

    def __init__(self, message: str, *, dataset_id: str, document_id: str, name: str) -> None:
        self.message = message
        self.dataset_id = dataset_id
        self.document_id = document_id
        self.name = name
        super().__init__(message)


class DifyDatasetNameError(DifyError, LookupError):
    """A knowledge base named by its name is not there, or the name is not unique.

    Raised by `find_dataset` / `dataset_id_for` (and what uses them: the stores'
    ``from_documents(..., name=...)``, the CLI's ``--dataset-name``) before anything is written.

    Attributes:
        name: The name asked for (matched exactly, case included).
        dataset_ids: The ids of the knowledge bases with that name: none (not found) or two
            and more (ambiguous: use ``dataset_id=``).
    """

    def __init__(self, message: str, *, name: str, dataset_ids: tuple[str, ...] = ()) -> None:
        self.message = message
        self.name = name
        self.dataset_ids = dataset_ids
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.__dict__.copy()))


class IndexingError(DifyError):
    """A wait ended without the batch being ready.

    Attributes:
        last_status: The last observed batch status, or None when none was observed.
    """

    def __init__(self, message: str, *, last_status: BatchIndexingStatus | None = None) -> None:
        self._last_status = last_status
        super().__init__(message)


class IndexingFailedError(IndexingError):
    """At least one document of the batch ended in ``error`` (or was paused, if asked to fail)."""

    @property
    def failed_documents(self) -> tuple[DocumentIndexingStatus, ...]:
        return self.last_status.failed_documents if self.last_status else ()


class IndexingPausedError(IndexingFailedError):
    """A document of the batch is paused and the wait was asked to stop (``on_paused="fail"``).

    A subclass of `IndexingFailedError`, so code that treats "not indexed" as a failure keeps
    working, while paused is its own answer: only Dify's console resumes the document.
    """


class IndexingTimeoutError(IndexingError, TimeoutError):
    """The wait's deadline passed. Dify is still indexing server-side and may finish later."""


class IndexingStalledError(IndexingError):
    """Nothing observable changed for ``stall_timeout`` seconds: the indexing worker may be down."""


class IndexingEmptyError(IndexingError):
    """Dify reported the batch ``completed``, but a document produced no chunks (0 segments:
    empty or whitespace-only text, a pipeline that extracted nothing): indexed, but nothing
    will be found. Raised by waits with ``on_empty="raise"`` (the default).

    Attributes:
        last_status: The completed batch; ``last_status.empty_documents`` names the documents.
    """

    @property
    def empty_documents(self) -> tuple[DocumentIndexingStatus, ...]:
        return self.last_status.empty_documents if self.last_status else ()
