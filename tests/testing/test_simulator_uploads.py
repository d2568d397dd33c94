"""create-by-file: multipart rules, supported types and unreadable files."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator

import aiohttp
import pytest

from dify_ingest_tools.testing import DifySimulator, DocumentScript, ManualClock

from .helpers import Api


async def test_a_text_file_becomes_a_document_named_after_it(
    sim: DifySimulator, api: Api, clock: ManualClock, dataset_id: str
) -> None:
    reply = await api.upload(
        dataset_id, [("file", "notes.md", b"# Notes\n\nalpha beta", "text/markdown")]
    )
    assert reply.status == 200
    document = reply.json["document"]
    upload = document["data_source_detail_dict"]["upload_file"]
    assert document["name"] == upload["name"] == "notes.md"
    assert (upload["extension"], upload["mime_type"], upload["size"]) == ("md", "text/markdown", 19)
    clock.advance(5)
    (entry,) = await api.status(dataset_id, reply.json["batch"])
    assert (entry["indexing_status"], entry["total_segments"]) == ("completed", 2)
    sim.set_retrieval_model(dataset_id, search_method="keyword_search")
    hits = await api.post(f"/v1/datasets/{dataset_id}/retrieve", json={"query": "beta"})
    assert [r["segment"]["content"] for r in hits.json["records"]] == ["alpha beta"]


@pytest.mark.parametrize(
    ("filename", "content", "error"),
    [
        ("bad.pdf", b"not a pdf at all", "Failed to load document (PDFium: Data format error)."),
        ("bad.xlsx", b"plain text", "File is not a zip file"),
    ],
)
async def test_unreadable_files_are_accepted_then_fail_while_parsing(
    api: Api, clock: ManualClock, dataset_id: str, filename: str, content: bytes, error: str
) -> None:
    reply = await api.upload(dataset_id, [("file", filename, content, "application/octet-stream")])
    assert reply.status == 200
    clock.advance(1)
    (entry,) = await api.status(dataset_id, reply.json["batch"])
    assert (entry["indexing_status"], entry["error"]) == ("error", error)
    assert entry["processing_started_at"] == entry["stopped_at"]
    assert entry["parsing_completed_at"] is None


async def test_a_corrupt_docx_reports_a_temp_path(
    api: Api, clock: ManualClock, dataset_id: str
) -> None:
    reply = await api.upload(dataset_id, [("file", "bad.docx", b"nope", "application/msword")])
    clock.advance(1)
    (entry,) = await api.status(dataset_id, reply.json["batch"])
    assert entry["error"].startswith("Package not found at '/tmp/")


async def test_a_real_pdf_header_parses(api: Api, clock: ManualClock, dataset_id: str) -> None:
    content = b"%PDF-1.4\n1 0 obj << >> stream\nHello keyword world\nendstream"
    reply = await api.upload(dataset_id, [("file", "ok.pdf", content, "application/pdf")])
    clock.advance(5)
    (entry,) = await api.status(dataset_id, reply.json["batch"])
    assert entry["indexing_status"] == "completed"


async def test_a_script_registered_for_the_file_name_applies(
    sim: DifySimulator, api: Api, clock: ManualClock, dataset_id: str
) -> None:
    sim.script("report.pdf", DocumentScript(fail_at="indexing", error="quota"))
    reply = await api.upload(dataset_id, [("file", "report.pdf", b"garbage", "application/pdf")])
    clock.advance(5)
    (entry,) = await api.status(dataset_id, reply.json["batch"])
    assert entry["error"] == "quota"  # the script's failure wins over the parser's
    sim.clear_scripts()


@pytest.mark.parametrize(
    ("parts", "status", "code", "message"),
    [
        (
            [("notfile", "x.txt", b"x", "text/plain")],
            400,
            "no_file_uploaded",
            "Please upload your file.",
        ),
        (
            [("file", "one.txt", b"1", "text/plain"), ("file2", "two.txt", b"2", "text/plain")],
            400,
            "too_many_files",
            "Only one file is allowed.",
        ),
        ([("file", "tool.exe", b"MZ", "application/octet-stream")], 400, "invalid_param", ""),
        ([("file", "README", b"x", "text/plain")], 400, "invalid_param", ""),
        (
            [("file", "", b"x", "text/plain")],
            400,
            "filename_not_exists_error",
            "The specified filename does not exist.",
        ),
    ],
)
async def test_create_by_file_rejections(
    api: Api,
    dataset_id: str,
    parts: list[tuple[str, str, bytes, str]],
    status: int,
    code: str,
    message: str,
) -> None:
    reply = await api.upload(dataset_id, parts)
    assert reply.json == {"code": code, "message": message, "status": status}


async def test_a_non_multipart_body_has_no_file(api: Api, dataset_id: str) -> None:
    reply = await api.post(f"/v1/datasets/{dataset_id}/document/create-by-file", json={})
    assert reply.json["code"] == "no_file_uploaded"


async def test_the_data_field_is_parsed_as_json(
    sim: DifySimulator, api: Api, dataset_id: str
) -> None:
    file = [("file", "a.txt", b"a", "text/plain")]
    broken = await api.upload(dataset_id, file, data="{nope")
    assert broken.json == {
        "code": "invalid_param",
        "message": "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        "status": 400,
    }
    wrong = await api.upload(dataset_id, file, data='{"indexing_technique": "cheap"}')
    assert wrong.json["message"].startswith("1 validation error for KnowledgeConfig\n")
    bare = sim.create_dataset("bare", indexing_technique=None)
    assert (await api.upload(bare, file, data=None)).json["message"] == (
        "indexing_technique is required."
    )
    # Without a technique in `data`, create-by-file takes the dataset's.
    assert (await api.upload(dataset_id, file, data=None)).status == 200
    assert (await api.upload(dataset_id, file, route="create_by_file")).status == 200


# -- the upload limit -----------------------------------------------------------------------


async def test_a_file_over_the_limit_is_answered_413_file_too_large(
    sim: DifySimulator, api: Api, dataset_id: str
) -> None:
    assert sim.max_file_size == 15 * 1024 * 1024  # Dify's UPLOAD_FILE_SIZE_LIMIT default
    sim.max_file_size = 10
    at_limit = await api.upload(dataset_id, [("file", "ten.md", b"0123456789", "text/plain")])
    assert at_limit.status == 200
    over = await api.upload(dataset_id, [("file", "eleven.md", b"0123456789+", "text/plain")])
    # The OpenAPI spec's body for FileTooLargeError.
    assert over.json == {"code": "file_too_large", "message": "File size exceeded.", "status": 413}
    listed = await api.get(f"/v1/datasets/{dataset_id}/documents")
    assert [doc["name"] for doc in listed.json["data"]] == ["ten.md"]


async def test_an_update_with_a_file_over_the_limit_is_answered_413_too(
    sim: DifySimulator, api: Api, clock: ManualClock, dataset_id: str
) -> None:
    created = await api.upload(dataset_id, [("file", "doc.md", b"small", "text/plain")])
    clock.advance(30)
    sim.max_file_size = 8
    document_id = created.json["document"]["id"]
    form = aiohttp.FormData()
    form.add_field("file", b"far too large", filename="doc.md", content_type="text/plain")
    reply = await api.request(
        "PATCH", f"/v1/datasets/{dataset_id}/documents/{document_id}", data=form
    )
    assert (reply.status, reply.json["code"]) == (413, "file_too_large")


async def test_a_huge_upload_is_never_held_whole(
    sim: DifySimulator, api: Api, dataset_id: str
) -> None:
    sim.max_file_size = 1024 * 1024
    huge = b"x" * (48 * 1024 * 1024)

    async def chunks() -> AsyncIterator[bytes]:
        view = memoryview(huge)
        for start in range(0, len(huge), 1 << 20):
            yield bytes(view[start : start + (1 << 20)])

    form = aiohttp.FormData()
    form.add_field("file", chunks(), filename="huge.md", content_type="text/plain")
    form.add_field("data", '{"indexing_technique": "economy"}')
    tracemalloc.start()
    try:
        reply = await api.post(f"/v1/datasets/{dataset_id}/document/create-by-file", data=form)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reply.status == 413
    # The client side streams 1 MiB at a time; the simulator keeps at most its 1 MiB limit.
    assert peak < 12 * 1024 * 1024, f"peak {peak / 1048576:.1f} MiB"


async def test_a_form_field_over_werkzeugs_limit_makes_the_form_unreadable(
    api: Api, dataset_id: str
) -> None:
    data = '{"indexing_technique": "economy", "x": "' + "y" * 500_000 + '"}'
    reply = await api.upload(dataset_id, [("file", "a.md", b"a", "text/plain")], data=data)
    assert reply.json["code"] == "no_file_uploaded"


def test_a_limit_below_one_byte_is_refused() -> None:
    with pytest.raises(ValueError, match="max_file_size"):
        DifySimulator(max_file_size=0)
    sim = DifySimulator()
    with pytest.raises(ValueError, match="max_file_size"):
        sim.max_file_size = -1
