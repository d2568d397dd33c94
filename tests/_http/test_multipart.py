"""File uploads keep their names exactly: on the simulator (which parses as Werkzeug does) and
on the wire, as a stand-in server sees the part headers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import BodyPartReader, web

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyKnowledgeClient
from dify_ingest_tools.testing import DifySimulator
from tests.conftest import FAST

DS = "7789611a-7d24-4b75-ab16-a005f3cbd9b4"

NAMES = [
    "my notes résumé.txt",  # the recorded case (11): a space and accents
    "plain name with spaces.md",
    "会議メモ 2026.txt",
    "📄 emoji.txt",
    "it's 'quoted'.txt",
    "100% done.txt",
    "a%20b.txt",  # percent escapes are part of the name, never decoded
    "say %22hi%22.txt",  # Werkzeug would turn a quoted %22 into a quote
    "e\u0301cole.txt",  # decomposed accents stay decomposed
    "x" * 196 + ".txt",  # 200 characters, Dify's limit
]


@pytest.mark.parametrize("name", NAMES)
async def test_a_file_is_stored_under_exactly_its_name(
    client: AsyncDifyKnowledgeClient, dataset_id: str, name: str
) -> None:
    created = await client.create_document_by_file(dataset_id, b"alpha beta", filename=name)
    assert created.name == name
    assert created.document["data_source_detail_dict"]["upload_file"]["name"] == name
    assert (await client.get_document(dataset_id, created.document_id)).name == name


async def test_a_path_gives_its_file_name(
    client: AsyncDifyKnowledgeClient, dataset_id: str, tmp_path: Path
) -> None:
    path = tmp_path / "my notes résumé.txt"
    path.write_text("alpha beta", encoding="utf-8")
    created = await client.create_document_by_file(dataset_id, path)
    assert created.name == "my notes résumé.txt"
    listed = await client.list_documents(dataset_id, keyword="résumé")
    assert [item.name for item in listed.data] == ["my notes résumé.txt"]


async def test_a_text_document_and_a_file_of_the_same_name_are_one_document(
    client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    text = await client.create_document_by_text(dataset_id, "my notes résumé.txt", "alpha")
    file = await client.create_document_by_file(
        dataset_id, b"alpha beta", filename="my notes résumé.txt"
    )
    assert file.document_id == text.document_id and file.batch != text.batch
    again = await client.create_document_by_text(dataset_id, "my notes résumé.txt", "gamma")
    assert again.document_id == text.document_id
    assert (await client.list_documents(dataset_id)).total == 1


def test_the_blocking_client_keeps_names_too(
    sync_client: DifyKnowledgeClient, dataset_id: str
) -> None:
    created = sync_client.create_document_by_file(dataset_id, b"alpha", filename="ß ü.txt")
    assert created.name == "ß ü.txt"


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ('say "hi".txt', "Dify refuses"),
        ("back\\slash.txt", "Dify refuses"),
        ("dir/file.txt", "Dify refuses"),
        ("what?.txt", "Dify refuses"),
        ("a:b.txt", "Dify refuses"),
        ("two\r\nlines.txt", "control character"),
        ("new\nline.txt", "control character"),
        ("nul\x00.txt", "control character"),
        ("tab\t.txt", "control character"),
        ("x" * 197 + ".txt", "at most 200"),
        ("bad\udcff.txt", "not valid Unicode"),
        ("", "non-empty"),
        ("   ", "non-empty"),
    ],
)
async def test_a_name_dify_would_refuse_or_change_fails_before_any_request(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, name: str, words: str
) -> None:
    sim.clear_requests()
    with pytest.raises(ValueError, match=words):
        await client.create_document_by_file(dataset_id, b"alpha", filename=name)
    assert sim.requests_for("create_by_file") == []


async def test_a_path_with_a_refused_name_fails_before_any_request(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str, tmp_path: Path
) -> None:
    path = tmp_path / "what?.txt"
    path.write_bytes(b"alpha")
    with pytest.raises(ValueError, match="Dify refuses"):
        await client.create_document_by_file(dataset_id, path)
    assert sim.requests_for("create_by_file") == []


async def test_a_text_name_longer_than_dify_keeps_fails_before_any_request(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    with pytest.raises(ValueError, match="at most 200"):
        await client.create_document_by_text(dataset_id, "n" * 201, "alpha")
    assert sim.requests_for("create_by_text") == []
    created = await client.create_document_by_text(dataset_id, "n" * 200, "alpha")
    assert created.name == "n" * 200


# -- on the wire ---------------------------------------------------------------------------


class Recorder:
    """A stand-in create-by-file that records each part's raw headers and content."""

    def __init__(self) -> None:
        self.parts: list[tuple[dict[str, str], bytes]] = []
        self.failures = 0  # answer this many requests with a 503 first
        self.base_url = ""

    async def create(self, request: web.Request) -> web.Response:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            assert isinstance(part, BodyPartReader)
            self.parts.append((dict(part.headers), bytes(await part.read())))
        if self.failures:
            self.failures -= 1
            return web.json_response({"code": "unavailable", "message": "x"}, status=503)
        document = {"id": "d1", "name": "n", "indexing_status": "waiting"}
        return web.json_response({"document": document, "batch": "20261201160036915133"})

    async def send(self, name: str, **options: Any) -> None:
        async with AsyncDifyKnowledgeClient("k", self.base_url, **options) as client:
            await client.create_document_by_file(
                DS, b"alpha", filename=name, indexing_technique="economy"
            )


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    recorder = Recorder()
    app = web.Application()
    app.router.add_post("/v1/datasets/{dataset}/document/create-by-file", recorder.create)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    recorder.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    yield recorder
    await runner.cleanup()


async def test_the_file_name_goes_out_as_raw_utf8_as_browsers_send_it(
    recorder: Recorder,
) -> None:
    await recorder.send("my notes résumé.txt")
    (file_headers, content), (data_headers, data) = recorder.parts
    assert file_headers["Content-Disposition"] == (
        'form-data; name="file"; filename="my notes résumé.txt"'
    )
    assert file_headers["Content-Type"] == "text/plain"
    assert content == b"alpha"
    assert data_headers["Content-Disposition"] == 'form-data; name="data"'
    assert json.loads(data)["indexing_technique"] == "economy"


async def test_a_name_holding_percent_22_also_gets_a_filename_star(recorder: Recorder) -> None:
    await recorder.send("say %22hi%22.txt")
    assert recorder.parts[0][0]["Content-Disposition"] == (
        'form-data; name="file"; filename="say %22hi%22.txt"; '
        "filename*=UTF-8''say%20%2522hi%2522.txt"
    )


async def test_a_retried_upload_sends_the_same_parts_again(recorder: Recorder) -> None:
    recorder.failures = 1
    await recorder.send("n.md", retry_creates=True, **FAST)
    first, second = recorder.parts[0:2], recorder.parts[2:4]
    assert first == second
    assert first[0][0]["Content-Disposition"] == 'form-data; name="file"; filename="n.md"'
