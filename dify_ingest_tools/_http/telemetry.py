"""OpenTelemetry, when it is installed: a client span per HTTP attempt, a span per wait, metrics.

Only ``opentelemetry-api`` is used (extra ``[otel]``), never the SDK: the application
chooses the providers and exporters. Without the API package nothing is imported and every
hook below is a no-op costing one attribute check. With the API but no provider configured
(neither passed in nor set globally), nothing could record a span or a measurement, so the
hooks skip the work too: that is the default on the polling hot path, where building a
no-op span per attempt cost a few percent of a status call. Once a global provider is set
(it can be set only once), the hooks report from the next attempt on.

Attempt spans follow the HTTP client semantic conventions: the span name is
``{method} {url.template}``, where the template replaces the dataset, batch, document,
segment and metadata ids (``/v1/datasets/{dataset_id}/documents/{batch}/indexing-status``),
so names and metric attributes stay low-cardinality. ``url.full`` carries the real path
but never the query string; the Authorization header is never read here, so the key cannot
leak into an attribute.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from yarl import URL

from dify_ingest_tools._base.redaction import scrub
from dify_ingest_tools._version import __version__
from dify_ingest_tools.models.outcome import Outcome

if TYPE_CHECKING:
    from dify_ingest_tools.events import IndexingEvent

_SCOPE = "dify_ingest_tools"

# Seconds; the semantic conventions' advisory boundaries for http.client.request.duration.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
_WAIT_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
_POLL_BUCKETS = (1, 2, 3, 5, 10, 20, 50, 100, 200)
_TEMPLATE_CACHE_SIZE = 4096
# Server text in span events (document errors) is cut to this, as in exceptions.
_TEXT_LIMIT = 1000

# After these path segments comes an id; the name is what the template shows instead.
_ID_AFTER = {
    "datasets": "{dataset_id}",
    "documents": "{document_id}",
    "segments": "{segment_id}",
    "child_chunks": "{child_chunk_id}",
    "metadata": "{metadata_id}",
}
# Path segments that are routes, never ids (``documents/metadata`` is a route, for example).
_ROUTES = frozenset(
    {
        "metadata",
        "indexing-status",
        "retrieve",
        "hit-testing",
        "segments",
        "documents",
        "document",
        "create-by-text",
        "create-by-file",
        "create_by_text",
        "create_by_file",
        "update-by-text",
        "update-by-file",
        "update_by_text",
        "update_by_file",
        "status",
        "built-in",
        "upload-file",
        "tags",
    }
)


def url_template(path: str) -> str:
    """The low-cardinality template of a Dify API path: ids replaced by their names.

    ``/v1/datasets/<uuid>/documents/<batch>/indexing-status`` becomes
    ``/v1/datasets/{dataset_id}/documents/{batch}/indexing-status``.
    """
    parts = path.split("/")
    out: list[str] = []
    previous = ""
    for index, part in enumerate(parts):
        name = _ID_AFTER.get(previous)
        if name is not None and part and part not in _ROUTES:
            following = parts[index + 1] if index + 1 < len(parts) else ""
            out.append("{batch}" if following == "indexing-status" else name)
        elif previous == "status" and part in ("enable", "disable", "archive", "un_archive"):
            out.append(part)
        elif previous == "status" and part:
            out.append("{action}")
        else:
            out.append(part)
        previous = part
    return "/".join(out)


def _load_api() -> tuple[Any, Any, Any] | None:
    try:
        trace = importlib.import_module("opentelemetry.trace")
        metrics = importlib.import_module("opentelemetry.metrics")
        context = importlib.import_module("opentelemetry.context")
    except ImportError:
        return None
    return trace, metrics, context


def _global_providers(trace: Any, metrics: Any) -> tuple[_Global, _Global]:
    """How to look up OpenTelemetry's global tracer and meter providers, cheaply.

    The public getters look the provider's class up in ``os.environ`` on every call while
    none is set (a miss that costs more than the rest of a hook), so the module global they
    return, once set, is read directly while it exists under its name; a later API version
    that renames it falls back on the getter (slower, as correct). The environment's
    provider is resolved when the client's tracer and meter are created, so from then on
    the global is set if it ever will be from there.
    """
    unset_meters: list[type] = [metrics.NoOpMeterProvider]
    try:
        internal = importlib.import_module("opentelemetry.metrics._internal")
        unset_meters.append(internal._ProxyMeterProvider)
    except (ImportError, AttributeError):  # pragma: no cover - depends on the API version
        internal = metrics
    found = []
    for module, name, getter, unset in (
        (
            trace,
            "_TRACER_PROVIDER",
            trace.get_tracer_provider,
            (trace.ProxyTracerProvider, trace.NoOpTracerProvider),
        ),
        (internal, "_METER_PROVIDER", metrics.get_meter_provider, tuple(unset_meters)),
    ):
        namespace = vars(module)
        found.append(_Global(namespace if name in namespace else None, name, getter, unset))
    return found[0], found[1]


@dataclass(frozen=True)
class _Global:
    namespace: dict[str, Any] | None  # the API module's globals, if it keeps it under `name`
    name: str
    getter: Any
    unset: tuple[type, ...]

    def configured(self) -> bool:
        if self.namespace is not None:
            provider = self.namespace.get(self.name)
            if provider is None:
                return False
        else:  # pragma: no cover - depends on the API version
            provider = self.getter()
        return not isinstance(provider, self.unset)


@dataclass(eq=False)
class AttemptSpan:
    """One HTTP attempt in flight: its span and what its metrics need."""

    span: Any
    attributes: dict[str, Any]
    started: float


@dataclass(eq=False)
class WaitSpan:
    """One wait in flight: its span, and the polls it saw (for the span and the histogram)."""

    span: Any
    started: float
    polls: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)

    def poll(self) -> None:
        self.polls += 1


class Telemetry:
    """The client's tracer and instruments, or nothing at all when OpenTelemetry is absent.

    Args:
        tracer_provider: A ``TracerProvider`` to use instead of the global one.
        meter_provider: A ``MeterProvider`` to use instead of the global one.
    """

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        api = _load_api()
        self.enabled = api is not None
        self._templates: dict[str, str] = {}
        self._configured = False  # sticky: a provider, once there, stays
        self._unset_globals: tuple[tuple[dict[str, Any], str], ...] = ()
        self._asked = False
        if api is None:
            return
        trace, metrics, context = api
        self._trace = trace
        self._metrics = metrics
        self._context = context
        # A provider passed in never changes; a global one can be set later, once.
        self._configured = _given(tracer_provider, trace.NoOpTracerProvider) or _given(
            meter_provider, metrics.NoOpMeterProvider
        )
        tracers, meters = _global_providers(trace, metrics)
        self._followed = tuple(
            followed
            for followed, given in ((tracers, tracer_provider), (meters, meter_provider))
            if given is None
        )
        # The globals a hook looks at while nothing is configured; any other followed one
        # (renamed in the API) is asked through its getter, every time.
        self._unset_globals = tuple(
            (followed.namespace, followed.name)
            for followed in self._followed
            if followed.namespace is not None
        )
        self._asked = any(followed.namespace is None for followed in self._followed)
        self._client_kind = trace.SpanKind.CLIENT
        self._internal_kind = trace.SpanKind.INTERNAL
        self._error = trace.Status(trace.StatusCode.ERROR)
        # get_tracer / get_meter without a provider return proxies that follow a global
        # provider set later, so a client built before the app configures OTel still reports.
        self._tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider=meter_provider)
        self._requests = meter.create_counter(
            "dify.client.requests",
            unit="{request}",
            description="HTTP attempts sent to Dify, by route and outcome.",
        )
        self._duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests.",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        self._wait_duration = meter.create_histogram(
            "dify.wait.duration",
            unit="s",
            description="How long waits for indexing took, by verdict.",
            explicit_bucket_boundaries_advisory=list(_WAIT_BUCKETS),
        )
        self._wait_polls = meter.create_histogram(
            "dify.wait.polls",
            unit="{poll}",
            description="Status observations (polls, shared or not) one wait received.",
            explicit_bucket_boundaries_advisory=list(_POLL_BUCKETS),
        )
        self._budget_wait = meter.create_histogram(
            "dify.budget.wait_time",
            unit="s",
            description="Time requests spent waiting for the request budget or a cooldown.",
        )

    @property
    def active(self) -> bool:
        """Whether anything can record: the API is installed and a provider is configured."""
        return self._configured or self._configured_now()

    def _configured_now(self) -> bool:
        """Whether a global provider has been configured since (then `_configured` sticks).

        Called by every hook while nothing is configured (each HTTP attempt, each wait): as
        long as no global provider is set, this costs two dictionary lookups.
        """
        if not self._asked:
            for namespace, name in self._unset_globals:
                if namespace.get(name) is not None:
                    break
            else:
                return False  # also when the API is absent: nothing to look at
        for provider in self._followed:
            if provider.configured():
                self._configured = True
                return True
        return False

    # -- HTTP attempts ------------------------------------------------------------------------

    def start_attempt(self, method: str, url: URL, resend_count: int) -> AttemptSpan | None:
        """Open the CLIENT span of one attempt (a child of the caller's current span)."""
        if not self._configured and not self._configured_now():  # `active`, one call less
            return None
        path = url.path
        template = self._templates.get(path)
        if template is None:
            if len(self._templates) >= _TEMPLATE_CACHE_SIZE:
                self._templates.clear()
            template = self._templates[path] = url_template(path)
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "server.address": url.host or "",
            "url.template": template,
        }
        if url.port is not None:
            attributes["server.port"] = url.port
        span_attributes = dict(attributes)
        span_attributes["url.full"] = str(url.with_query(None).with_fragment(None))
        if resend_count:
            span_attributes["http.request.resend_count"] = resend_count
        span = self._tracer.start_span(
            f"{method} {template}", kind=self._client_kind, attributes=span_attributes
        )
        return AttemptSpan(span=span, attributes=attributes, started=time.perf_counter())

    def end_attempt(
        self,
        attempt: AttemptSpan | None,
        *,
        status: int | None = None,
        error: BaseException | None = None,
        rate_limited: bool = False,
    ) -> None:
        """Close an attempt's span: status code, ``error.type`` and the request metrics.

        ``error`` is for attempts that got no usable HTTP answer (connection, timeout, a body
        over the cap); an HTTP error status is reported by ``status`` alone.
        """
        if attempt is None:
            return
        span, attributes = attempt.span, attempt.attributes
        if status is not None:
            attributes["http.response.status_code"] = status
            span.set_attribute("http.response.status_code", status)
        error_type = _error_type(status, error)
        if error_type is not None:
            attributes["error.type"] = error_type
            span.set_attribute("error.type", error_type)
            span.set_status(self._error)
        outcome = "rate_limited" if rate_limited else _outcome(status, error)
        span.end()
        elapsed = time.perf_counter() - attempt.started
        self._duration.record(elapsed, attributes)
        self._requests.add(
            1,
            {
                "http.request.method": attributes["http.request.method"],
                "url.template": attributes["url.template"],
                "dify.outcome": outcome,
            },
        )

    def record_budget_wait(self, seconds: float, reason: str) -> None:
        """Time one request waited for a budget slot (``budget``) or a cooldown (``cooldown``)."""
        if seconds > 0 and self.active:
            self._budget_wait.record(seconds, {"dify.budget.reason": reason})

    # -- waits --------------------------------------------------------------------------------

    def start_wait(
        self, dataset_id: str, batch: str, name: str = "dify.wait_for_indexing"
    ) -> WaitSpan | None:
        """Open the INTERNAL span of one wait (not yet current: see `current`)."""
        if not self.active:
            return None
        attributes = {"dify.dataset_id": dataset_id, "dify.batch": batch}
        span = self._tracer.start_span(name, kind=self._internal_kind, attributes=attributes)
        return WaitSpan(span=span, started=time.perf_counter())

    @contextlib.contextmanager
    def current(self, wait: WaitSpan) -> Iterator[None]:
        """Make the wait's span the current one for the block (attach, then detach)."""
        token = self._context.attach(self._trace.set_span_in_context(wait.span))
        try:
            yield
        finally:
            self._context.detach(token)

    def wait_event(self, wait: WaitSpan | None, event: IndexingEvent) -> None:
        """Add an `IndexingEvent` to the wait's span as a span event."""
        if wait is None:
            return
        attributes: dict[str, Any] = {}
        if event.status is not None:
            attributes["dify.completed_segments"] = event.status.completed_segments
            attributes["dify.total_segments"] = event.status.total_segments
            attributes["dify.documents"] = len(event.status.documents)
        if event.document is not None:
            attributes["dify.document_id"] = event.document.id
            attributes["dify.indexing_status"] = str(event.document.indexing_status)
            if event.document.error:
                attributes["dify.document_error"] = scrub(event.document.error, _TEXT_LIMIT)
        if event.error is not None:
            attributes["dify.error"] = scrub(event.error, _TEXT_LIMIT)
        if event.error_type is not None:
            attributes["error.type"] = event.error_type
        if event.retry_in is not None:
            attributes["dify.retry_in"] = event.retry_in
        wait.span.add_event(event.kind, attributes=attributes)

    def end_wait(
        self,
        wait: WaitSpan | None,
        *,
        outcome: Outcome | None,
        error: BaseException | None = None,
    ) -> None:
        """Close a wait's span with its verdict, poll count and duration; record metrics.

        ``outcome`` is how the wait ended (the wait's own `outcome_of`; None: it ended on a
        status that is neither ready nor failed, or on an error that says neither).
        """
        if wait is None:
            return
        elapsed = time.perf_counter() - wait.started
        verdict = _verdict(outcome, error)
        span = wait.span
        span.set_attribute("dify.wait.verdict", verdict)
        span.set_attribute("dify.wait.polls", wait.polls)
        span.set_attribute("dify.wait.duration", elapsed)
        if error is not None and verdict not in ("cancelled", "abandoned"):
            span.set_attribute("error.type", type(error).__name__)
            span.set_status(self._error)
        span.end()
        metric_attributes = {"dify.wait.verdict": verdict}
        self._wait_duration.record(elapsed, metric_attributes)
        self._wait_polls.record(wait.polls, metric_attributes)


def _given(provider: Any, noop: type) -> bool:
    """A provider passed in that can record (not None, not the API's no-op)."""
    return provider is not None and not isinstance(provider, noop)


def _error_type(status: int | None, error: BaseException | None) -> str | None:
    if error is not None:
        # A typed library error (DifyTimeoutError, DifyConnectionError, ...), or the cause.
        return type(error).__name__
    if status is not None and status >= 400:
        return str(status)
    return None


def _outcome(status: int | None, error: BaseException | None) -> str:
    if status is None:
        if isinstance(error, TimeoutError):
            return "timeout"
        if error is not None and not isinstance(error, Exception):
            return "cancelled"  # CancelledError, KeyboardInterrupt: the caller gave up
        return "connection_error"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    if error is not None:
        return "invalid_response"
    return "ok"


_VERDICTS = {
    Outcome.ready: "ready",
    Outcome.failed: "failed",
    Outcome.paused: "paused",
    Outcome.stalled: "stalled",
    Outcome.timed_out: "timeout",
    Outcome.cancelled: "cancelled",
    Outcome.empty: "empty",
    Outcome.unreachable: "error",
    Outcome.not_found: "error",
}


def _verdict(outcome: Outcome | None, error: BaseException | None) -> str:
    """How a wait ended, in one low-cardinality word (from the one `Outcome`)."""
    if isinstance(error, GeneratorExit):
        return "abandoned"  # a watch the caller stopped reading
    if outcome is None:
        return "terminal" if error is None else "error"
    return _VERDICTS[outcome]
