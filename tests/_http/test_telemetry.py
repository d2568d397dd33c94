"""OpenTelemetry: attempt and wait spans, events and metrics, read from in-memory exporters."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyKnowledgeClient,
    IndexingFailedError,
    IndexingTimeoutError,
)
from dify_ingest_tools._http.telemetry import url_template
from dify_ingest_tools.testing import DifySimulator, DocumentScript, Fault, ManualClock
from tests.conftest import FAST, QUICK

STATUS_TEMPLATE = "/v1/datasets/{dataset_id}/documents/{batch}/indexing-status"


class Otel:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    @property
    def providers(self) -> dict[str, Any]:
        return {"tracer_provider": self.tracer_provider, "meter_provider": self.meter_provider}

    def spans(self, kind: SpanKind | None = None) -> list[ReadableSpan]:
        spans = list(self.exporter.get_finished_spans())
        return [s for s in spans if kind is None or s.kind == kind]

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def close(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


@pytest.fixture
def otel() -> Iterator[Otel]:
    value = Otel()
    yield value
    value.close()


@pytest.fixture
async def traced(
    sim: DifySimulator, base_url: str, otel: Otel
) -> Any:  # AsyncIterator[AsyncDifyKnowledgeClient]
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url, **FAST, **otel.providers) as value:
        yield value


def _everything(otel: Otel) -> str:
    """Every name, attribute and event of every span, as one string (to look for the key)."""
    parts: list[str] = []
    for span in otel.spans():
        parts.append(span.name)
        parts.append(repr(dict(span.attributes or {})))
        for event in span.events:
            parts.append(event.name + repr(dict(event.attributes or {})))
    return "\n".join(parts)


def test_url_template_replaces_every_id() -> None:
    ds = "3f1c2a9e-0000-4000-8000-000000000001"
    doc = "8b1d2a9e-0000-4000-8000-000000000002"
    assert (
        url_template(f"/v1/datasets/{ds}/documents/20240101000000123456/indexing-status")
        == STATUS_TEMPLATE
    )
    assert url_template(f"/v1/datasets/{ds}/documents/{doc}") == (
        "/v1/datasets/{dataset_id}/documents/{document_id}"
    )
    assert url_template(f"/v1/datasets/{ds}/document/create-by-text") == (
        "/v1/datasets/{dataset_id}/document/create-by-text"
    )
    assert url_template(f"/v1/datasets/{ds}/documents/metadata") == (
        "/v1/datasets/{dataset_id}/documents/metadata"
    )
    assert url_template(f"/v1/datasets/{ds}/documents/{doc}/segments/s1") == (
        "/v1/datasets/{dataset_id}/documents/{document_id}/segments/{segment_id}"
    )
    assert url_template(f"/v1/datasets/{ds}/retrieve") == "/v1/datasets/{dataset_id}/retrieve"


async def test_a_status_call_is_one_client_span_with_http_semantic_conventions(
    sim: DifySimulator, traced: AsyncDifyKnowledgeClient, dataset_id: str, otel: Otel
) -> None:
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    await traced.get_indexing_status(dataset_id, batch)
    [span] = otel.spans(SpanKind.CLIENT)
    attributes = dict(span.attributes or {})
    assert span.name == f"GET {STATUS_TEMPLATE}"
    assert attributes["http.request.method"] == "GET"
    assert attributes["server.address"] == "127.0.0.1"
    assert isinstance(attributes["server.port"], int)
    assert attributes["url.template"] == STATUS_TEMPLATE
    assert attributes["http.response.status_code"] == 200
    assert "error.type" not in attributes
    assert dataset_id not in span.name and batch not in span.name
    assert "?" not in str(attributes.get("url.full", ""))
    assert span.status.status_code is not StatusCode.ERROR
    assert sim.api_key not in _everything(otel)


async def test_the_span_nests_under_the_callers_current_span(
    sim: DifySimulator, traced: AsyncDifyKnowledgeClient, dataset_id: str, otel: Otel
) -> None:
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    tracer = otel.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("user step") as parent:
        await traced.get_indexing_status(dataset_id, batch)
    [span] = otel.spans(SpanKind.CLIENT)
    assert span.parent is not None
    assert span.parent.span_id == parent.get_span_context().span_id


def test_the_blocking_client_nests_under_the_callers_span_too(
    sim: DifySimulator, otel: Otel
) -> None:
    dataset_id = sim.create_dataset("sync")
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    tracer = otel.tracer_provider.get_tracer("app")
    with (
        sim.serve_in_thread() as url,
        DifyKnowledgeClient(sim.api_key, url, **FAST, **otel.providers) as client,
        tracer.start_as_current_span("user step") as parent,
    ):
        client.get_indexing_status(dataset_id, batch)
    [span] = otel.spans(SpanKind.CLIENT)
    assert span.parent is not None
    assert span.parent.span_id == parent.get_span_context().span_id


async def test_a_retried_call_is_one_span_per_attempt(
    sim: DifySimulator, traced: AsyncDifyKnowledgeClient, dataset_id: str, otel: Otel
) -> None:
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    sim.inject(Fault.server_error(503), route="indexing_status")
    await traced.get_indexing_status(dataset_id, batch)
    first, second = sorted(otel.spans(SpanKind.CLIENT), key=lambda s: s.start_time or 0)
    assert dict(first.attributes or {})["http.response.status_code"] == 503
    assert dict(first.attributes or {})["error.type"] == "503"
    assert first.status.status_code is StatusCode.ERROR
    assert dict(second.attributes or {})["http.request.resend_count"] == 1
    assert dict(second.attributes or {})["http.response.status_code"] == 200
    outcomes = {
        (p.attributes["url.template"], p.attributes["dify.outcome"]): p.value
        for p in otel.points("dify.client.requests")
    }
    assert outcomes == {(STATUS_TEMPLATE, "server_error"): 1, (STATUS_TEMPLATE, "ok"): 1}
    [duration] = [
        p for p in otel.points("http.client.request.duration") if "error.type" not in p.attributes
    ]
    assert duration.count == 1


async def test_a_dropped_connection_records_error_type(
    sim: DifySimulator, base_url: str, dataset_id: str, otel: Otel
) -> None:
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    sim.inject(Fault.drop_connection(), route="indexing_status", times=-1)
    async with AsyncDifyKnowledgeClient(
        sim.api_key, base_url, max_retries=0, **otel.providers
    ) as client:
        with pytest.raises(Exception):  # noqa: B017 - the typed error is tested elsewhere
            await client.get_indexing_status(dataset_id, batch)
    [span] = otel.spans(SpanKind.CLIENT)
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "DifyConnectionError"
    assert "http.response.status_code" not in attributes
    assert span.status.status_code is StatusCode.ERROR


async def test_a_wait_that_succeeds_is_a_span_with_its_events_and_polls(
    sim: DifySimulator,
    clock: ManualClock,
    traced: AsyncDifyKnowledgeClient,
    dataset_id: str,
    otel: Otel,
) -> None:
    created = await traced.create_document_by_text(dataset_id, "a.txt", "alpha beta")
    clock.advance(60)
    await traced.wait_for_indexing(dataset_id, created.batch, timeout=10, **QUICK)
    [wait] = otel.spans(SpanKind.INTERNAL)
    attributes = dict(wait.attributes or {})
    assert wait.name == "dify.wait_for_indexing"
    assert attributes["dify.dataset_id"] == dataset_id
    assert attributes["dify.batch"] == created.batch
    assert attributes["dify.wait.verdict"] == "ready"
    assert attributes["dify.wait.polls"] >= 1
    assert attributes["dify.wait.duration"] >= 0
    kinds = [event.name for event in wait.events]
    assert "progress" in kinds and kinds[-1] == "batch_completed"
    polls = [s for s in otel.spans(SpanKind.CLIENT) if s.name.endswith("indexing-status")]
    assert polls and all(
        s.parent is not None and s.parent.span_id == wait.context.span_id for s in polls
    )
    [histogram] = otel.points("dify.wait.duration")
    assert histogram.attributes == {"dify.wait.verdict": "ready"} and histogram.count == 1
    [polls_point] = otel.points("dify.wait.polls")
    assert polls_point.sum == attributes["dify.wait.polls"]
    assert sim.api_key not in _everything(otel)


async def test_a_wait_that_fails_records_the_failure(
    sim: DifySimulator,
    clock: ManualClock,
    traced: AsyncDifyKnowledgeClient,
    dataset_id: str,
    otel: Otel,
) -> None:
    _, batch = sim.add_document(
        dataset_id, "bad.pdf", "x", script=DocumentScript(fail_at="parsing", error="bad pdf")
    )
    clock.advance(60)
    with pytest.raises(IndexingFailedError):
        await traced.wait_for_indexing(dataset_id, batch, timeout=10, **QUICK)
    [wait] = otel.spans(SpanKind.INTERNAL)
    attributes = dict(wait.attributes or {})
    assert attributes["dify.wait.verdict"] == "failed"
    assert attributes["error.type"] == "IndexingFailedError"
    assert wait.status.status_code is StatusCode.ERROR
    failed = [e for e in wait.events if e.name == "document_failed"]
    assert failed and "bad pdf" in str(dict(failed[0].attributes or {}))


async def test_a_wait_that_times_out_records_the_timeout(
    sim: DifySimulator, traced: AsyncDifyKnowledgeClient, dataset_id: str, otel: Otel
) -> None:
    _, batch = sim.add_document(
        dataset_id, "stuck.txt", "x", script=DocumentScript(stall_at="indexing")
    )
    with pytest.raises(IndexingTimeoutError):
        await traced.wait_for_indexing(dataset_id, batch, timeout=1.0, **QUICK)
    [wait] = otel.spans(SpanKind.INTERNAL)
    assert dict(wait.attributes or {})["dify.wait.verdict"] == "timeout"
    [point] = otel.points("dify.wait.duration")
    assert point.attributes == {"dify.wait.verdict": "timeout"}


def test_nothing_is_imported_without_opentelemetry() -> None:
    """With the API missing, the client works and never imports it; nor the SDK, ever."""
    script = textwrap.dedent(
        """
        import asyncio, sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    raise ImportError("blocked for the test")
                return None

        if sys.argv[1] == "blocked":
            sys.meta_path.insert(0, Block())

        from dify_ingest_tools import AsyncDifyKnowledgeClient
        from dify_ingest_tools.testing import DifySimulator

        async def main():
            sim = DifySimulator()
            ds = sim.create_dataset("x")
            _, batch = sim.add_document(ds, "a.txt", "alpha")
            async with sim.serve() as url:
                async with AsyncDifyKnowledgeClient(sim.api_key, url) as client:
                    await client.get_indexing_status(ds, batch)
                    await client.wait_for_indexing(ds, batch, timeout=30, poll_interval=0.05,
                                                   max_poll_interval=0.1)

        asyncio.run(main())
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
        """
    )
    blocked = subprocess.run(
        [sys.executable, "-c", script, "blocked"], capture_output=True, text=True, timeout=60
    )
    assert blocked.returncode == 0, blocked.stderr
    assert blocked.stdout.strip() == "[]"
    installed = subprocess.run(
        [sys.executable, "-c", script, "installed"], capture_output=True, text=True, timeout=60
    )
    assert installed.returncode == 0, installed.stderr
    assert "opentelemetry.trace" in installed.stdout
    assert "opentelemetry.sdk" not in installed.stdout


def test_the_docs_console_exporter_snippet_runs_as_written(tmp_path: Any) -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "observability.md").read_text()
    start = text.index("```python\n", text.index("## Tracing and metrics")) + len("```python\n")
    script = tmp_path / "traced.py"
    script.write_text(text[start : text.index("```", start)])
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": ":".join(sys.path),
            "DIFY_INGEST_LEDGER": os.environ["DIFY_INGEST_LEDGER"],  # the session's throwaway one
        },
    )
    assert done.returncode == 0, done.stderr
    assert '"name": "dify.wait_for_indexing"' in done.stdout
    assert '"dify.wait.verdict": "ready"' in done.stdout
    assert '"name": "ingest"' in done.stdout
    assert "ready" in done.stdout.splitlines()[-1]


def test_global_providers_set_after_the_client_report_from_the_next_attempt() -> None:
    """No provider: the hooks skip their work. Set one globally later: it is used at once."""
    script = textwrap.dedent(
        """
        import asyncio
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from dify_ingest_tools import AsyncDifyKnowledgeClient
        from dify_ingest_tools.testing import DifySimulator

        async def main():
            sim = DifySimulator()
            ds = sim.create_dataset("x")
            _, batch = sim.add_document(ds, "a.txt", "alpha")
            async with sim.serve() as url:
                async with AsyncDifyKnowledgeClient(sim.api_key, url) as client:
                    await client.get_indexing_status(ds, batch)
                    telemetry = client._transport.telemetry
                    print("before", telemetry.active)
                    exporter = InMemorySpanExporter()
                    tracers = TracerProvider()
                    tracers.add_span_processor(SimpleSpanProcessor(exporter))
                    trace.set_tracer_provider(tracers)
                    await client.get_indexing_status(ds, batch)
                    print("spans", [span.name for span in exporter.get_finished_spans()])
                    reader = InMemoryMetricReader()
                    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
                    await client.get_indexing_status(ds, batch)
                    names = {
                        metric.name
                        for resource in reader.get_metrics_data().resource_metrics
                        for scope in resource.scope_metrics
                        for metric in scope.metrics
                    }
                    print("metrics", sorted(names))

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    before, spans, names = done.stdout.splitlines()
    assert before == "before False"
    assert spans == f"spans ['GET {STATUS_TEMPLATE}']"
    assert "dify.client.requests" in names and "http.client.request.duration" in names
