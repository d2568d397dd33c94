"""Malformed ids fail with ValueError before any request; no input can change the route."""

from __future__ import annotations

import pytest

from dify_ingest_tools import AsyncDifyKnowledgeClient
from dify_ingest_tools._inputs import check_batch, check_dataset_id, path_part
from dify_ingest_tools.testing import DifySimulator

BAD_DATASETS = [
    "",
    "not-a-uuid",
    "../7789611a-7d24-4b75-ab16-a005f3cbd9b4",
    "7789611a-7d24-4b75-ab16-a005f3cbd9b4/",
    "7789611a-7d24-4b75-ab16-a005f3cbd9b4?x=1",
    "7789611a7d244b75ab16a005f3cbd9b4",
    " 7789611a-7d24-4b75-ab16-a005f3cbd9b4",
    None,
]
BAD_BATCHES = [
    "",
    " ",
    "2026 1128",
    "a/b",
    "..",
    ".",
    "x?y=1",
    "x#frag",
    "%2e%2e",
    "a\\b",
    "a\nb",
    "a\x00b",
    "9" * 300,
    123,
]


@pytest.mark.parametrize("value", BAD_DATASETS)
def test_bad_dataset_ids_are_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="dataset_id must be a UUID"):
        check_dataset_id(value)


@pytest.mark.parametrize("value", BAD_BATCHES)
def test_bad_batches_are_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="batch"):
        check_batch(value)


def test_good_values_pass() -> None:
    assert check_dataset_id("7789611A-7D24-4B75-AB16-A005F3CBD9B4")  # any case, as Werkzeug
    assert check_batch("20261128154005508280") == "20261128154005508280"
    assert check_batch("no-such-batch_1") == "no-such-batch_1"
    assert path_part("é") == "%C3%A9"


async def test_malformed_ids_send_no_request(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    for value in BAD_DATASETS:
        with pytest.raises(ValueError):
            await client.get_indexing_status(value, "20261128154005508280")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await client.create_document_by_text(value, "a.txt", "x")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await client.retrieve(value, "q")  # type: ignore[arg-type]
    for value in BAD_BATCHES:
        with pytest.raises(ValueError):
            await client.get_indexing_status(dataset_id, value)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await client.get_document(dataset_id, "../../etc")
    with pytest.raises(ValueError):
        await client.delete_document(dataset_id, "x")
    with pytest.raises(ValueError):
        await client.list_documents(dataset_id, limit=101)
    with pytest.raises(ValueError):
        await client.list_documents(dataset_id, page=0)
    with pytest.raises(ValueError):
        await client.create_document_by_text(dataset_id, "  ", "x")
    with pytest.raises(TypeError):
        await client.create_document_by_text(dataset_id, "a.txt", b"x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="top_k"):
        await client.retrieve(dataset_id, "q", top_k=0)
    assert sim.requests == []


async def test_unicode_batch_stays_one_path_segment(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    from dify_ingest_tools import DifyNotFoundError

    with pytest.raises(DifyNotFoundError):
        await client.get_indexing_status(dataset_id, "bätch-ü")
    [record] = sim.requests
    assert record.route == "indexing_status"
    assert record.path.startswith(f"/v1/datasets/{dataset_id}/documents/")
    assert record.path.endswith("/indexing-status")
