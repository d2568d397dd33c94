"""A file given as a path is streamed from disk: bounded memory, re-read per attempt, refused
when too large before any request, and a clear error when it changes while it is sent."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web

from dify_ingest_tools import AsyncDifyKnowledgeClient, CreatedDocument, DifyAPIError
from dify_ingest_tools._http.multipart import DEFAULT_MAX_FILE_SIZE, FileChangedError
from dify_ingest_tools.backends.ledger import ledger_scope
from dify_ingest_tools.testing import DifySimulator, Fault
from tests.conftest import FAST

DS = "7789611a-7d24-4b75-ab16-a005f3cbd9b4"
MiB = 1024 * 1024


def sparse(path: Path, size: int) -> Path:
    """A file of ``size`` zero bytes that takes no disk space (as ``truncate -s`` makes)."""
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def stored_size(created: CreatedDocument) -> int:
    """The size Dify recorded for the uploaded file."""
    return int(created.document["data_source_detail_dict"]["upload_file"]["size"])


# The child uploads and reports its own peak RSS: only the client is in that process.
_CHILD = textwrap.dedent(
    """
    import asyncio, json, resource, sys
    from dify_ingest_tools import AsyncDifyKnowledgeClient

    async def main() -> None:
        key, base_url, dataset_id, path = sys.argv[1:5]
        async with AsyncDifyKnowledgeClient(
            key, base_url, max_file_size=None, timeout=300, ledger=False
        ) as client:
            created = await client.create_document_by_file(dataset_id, path)
        # VmHWM is this process image's own peak; ru_maxrss also counts the parent's RSS at
        # fork time (it survives exec), which would measure the test runner instead.
        try:
            with open("/proc/self/status") as status:
                hwm = [line for line in status if line.startswith("VmHWM:")][0]
            peak = int(hwm.split()[1]) * 1024
        except (OSError, IndexError):
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        size = created.document["data_source_detail_dict"]["upload_file"]["size"]
        print(json.dumps({"name": created.name, "size": size, "peak_rss": peak}))

    asyncio.run(main())
    """
)


def test_a_300_mb_file_is_uploaded_in_bounded_memory(tmp_path: Path) -> None:
    size = 300 * MiB
    path = sparse(tmp_path / "large.pdf", size)  # not parsed: the simulator keeps no text
    sim = DifySimulator(time_scale=0.02, max_file_size=size)
    dataset_id = sim.create_dataset("large")
    with sim.serve_in_thread() as url:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, sim.api_key, url, dataset_id, str(path)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    print(f"peak RSS of a 300 MiB upload: {report['peak_rss'] / MiB:.1f} MiB")
    assert report["name"] == "large.pdf"
    assert report["peak_rss"] < 150 * MiB
    assert report["size"] == size  # every byte arrived


async def test_a_file_over_the_limit_is_refused_before_any_request(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, tmp_path: Path
) -> None:
    path = sparse(tmp_path / "big.md", DEFAULT_MAX_FILE_SIZE + 1)
    with pytest.raises(ValueError, match=r"big\.md is 15,728,641 bytes, over the upload limit"):
        await client.create_document_by_file(dataset_id, path)
    with pytest.raises(ValueError, match="over the upload limit of 10 bytes"):
        async with AsyncDifyKnowledgeClient(
            sim.api_key, client.base_url, max_file_size=10
        ) as small:
            await small.create_document_by_file(dataset_id, b"x" * 11, filename="b.md")
    assert sim.requests == []


async def test_a_file_at_the_limit_is_sent(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, tmp_path: Path
) -> None:
    path = sparse(tmp_path / "exact.pdf", DEFAULT_MAX_FILE_SIZE)
    created = await client.create_document_by_file(dataset_id, path)
    assert created.name == "exact.pdf"
    assert stored_size(created) == DEFAULT_MAX_FILE_SIZE


async def test_the_simulator_refuses_a_larger_file_as_dify_does(
    sim: DifySimulator, base_url: str, dataset_id: str, tmp_path: Path
) -> None:
    path = sparse(tmp_path / "big.md", DEFAULT_MAX_FILE_SIZE + 1)
    async with AsyncDifyKnowledgeClient(sim.api_key, base_url, max_file_size=None) as client:
        with pytest.raises(DifyAPIError) as caught:
            await client.create_document_by_file(dataset_id, path)
        assert not (await client.list_documents(dataset_id)).data
    error = caught.value
    assert (error.status, error.code, error.message) == (
        413,
        "file_too_large",
        "File size exceeded.",
    )


async def test_a_retried_create_streams_the_file_again(
    sim: DifySimulator, base_url: str, dataset_id: str, tmp_path: Path
) -> None:
    path = tmp_path / "notes.md"
    path.write_bytes(b"alpha beta " * 50_000)
    sim.inject(Fault.server_error(503), route="create_by_file")
    async with AsyncDifyKnowledgeClient(
        sim.api_key, base_url, retry_creates=True, **FAST
    ) as client:
        created = await client.create_document_by_file(dataset_id, path)
    assert [r.status for r in sim.requests_for(route="create_by_file")] == [503, 200]
    assert created.name == "notes.md"
    assert stored_size(created) == path.stat().st_size


# -- a file that changes while it is sent -------------------------------------------------


class ChangingServer:
    """A create-by-file that, once the first bytes arrive, runs ``change`` on the file."""

    def __init__(self) -> None:
        self.change: Callable[[], None] = lambda: None
        self.answer_first = 0  # answer this many requests with a 503 (after the change)
        self.requests = 0
        self.base_url = ""

    async def create(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        await request.content.readany()
        self.change()
        if self.answer_first:
            self.answer_first -= 1
            return web.json_response({"code": "unavailable", "message": "x"}, status=503)
        await request.read()  # the client gives up mid-body: this raises
        document = {"id": "d1", "name": "n", "indexing_status": "waiting"}
        return web.json_response({"document": document, "batch": "20261201160036915133"})


@pytest.fixture
async def changing() -> AsyncIterator[ChangingServer]:
    server = ChangingServer()
    app = web.Application(client_max_size=1024**3)
    app.router.add_post("/v1/datasets/{dataset}/document/create-by-file", server.create)
    runner = web.AppRunner(app, shutdown_timeout=0.1, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    server.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    yield server
    await runner.cleanup()


def shrink(path: Path) -> None:
    os.truncate(path, MiB)


def grow(path: Path) -> None:
    with path.open("ab") as handle:
        handle.write(b"more")


@pytest.mark.parametrize("change", [shrink, grow])
async def test_a_file_that_changes_while_it_is_sent_is_a_clear_error(
    changing: ChangingServer, tmp_path: Path, change: Callable[[Path], None]
) -> None:
    path = sparse(tmp_path / "moving.md", 12 * MiB)
    changing.change = lambda: change(path)
    async with AsyncDifyKnowledgeClient("k", changing.base_url, timeout=60) as client:
        with pytest.raises(
            FileChangedError, match="changed size while it was being uploaded"
        ) as caught:
            await client.create_document_by_file(DS, path, indexing_technique="economy")
    assert isinstance(caught.value, OSError)
    assert str(path) in str(caught.value)
    assert changing.requests == 1


async def test_a_file_that_vanishes_before_a_retry_is_not_sent_again(
    changing: ChangingServer, tmp_path: Path
) -> None:
    path = tmp_path / "gone.md"
    path.write_bytes(b"short")
    changing.change = path.unlink
    changing.answer_first = 1
    async with AsyncDifyKnowledgeClient(
        "k", changing.base_url, retry_creates=True, **FAST
    ) as client:
        with pytest.raises(FileNotFoundError):
            await client.create_document_by_file(DS, path, indexing_technique="economy")
    assert changing.requests == 1


async def test_the_ledger_records_the_hash_of_the_streamed_bytes(
    sim: DifySimulator, base_url: str, dataset_id: str, tmp_path: Path
) -> None:
    path = tmp_path / "hashed.md"
    path.write_bytes(b"gamma " * 100_000)
    async with AsyncDifyKnowledgeClient(
        sim.api_key, base_url, ledger=tmp_path / "ledger.db"
    ) as client:
        created = await client.create_document_by_file(dataset_id, path)
        ledger = client.ledger
        assert ledger is not None
        entry = (await ledger.latest(ledger_scope(base_url, sim.api_key), dataset_id))["hashed.md"]
    assert entry.batch == created.batch
    assert entry.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, "15M"])
def test_a_bad_max_file_size_is_refused_by_the_client(limit: object) -> None:
    with pytest.raises((ValueError, TypeError), match="max_file_size"):
        AsyncDifyKnowledgeClient("k", "http://127.0.0.1:9/v1", max_file_size=limit)  # type: ignore[arg-type]
