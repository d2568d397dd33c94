"""Keyword retrieval: scores, limits, partial hits while indexing, validation."""

from __future__ import annotations

from typing import Any

import pytest

from dify_ingest_tools.testing import DifySimulator, ManualClock

from .helpers import Api

TEXT = "\n\n".join(
    [
        "alpha beta gamma",
        "alpha beta",
        "alpha",
        "delta epsilon",
        "alpha zeta",
        "alpha eta",
    ]
)


def keyword(**settings: Any) -> dict[str, Any]:
    """A complete keyword-search model (Dify refuses a partial one, recording 17)."""
    return {
        "search_method": "keyword_search",
        "reranking_enable": False,
        "score_threshold_enabled": False,
        **settings,
    }


async def retrieve(api: Api, dataset_id: str, **body: Any) -> dict[str, Any]:
    body.setdefault("retrieval_model", keyword())
    reply = await api.post(f"/v1/datasets/{dataset_id}/retrieve", json=body)
    assert reply.status == 200, reply.text
    result: dict[str, Any] = reply.json
    return result


@pytest.fixture
def document_id(sim: DifySimulator, clock: ManualClock, dataset_id: str) -> str:
    document_id, _ = sim.add_document(dataset_id, "greek.txt", TEXT)
    clock.advance(5)
    return document_id


async def test_scores_are_the_share_of_query_words_found(
    api: Api, dataset_id: str, document_id: str
) -> None:
    model = keyword(top_k=3)
    result = await retrieve(api, dataset_id, query="Alpha beta gamma", retrieval_model=model)
    assert result["query"] == "Alpha beta gamma"
    records = result["records"]
    assert [(r["segment"]["content"], r["score"]) for r in records] == [
        ("alpha beta gamma", 1.0),
        ("alpha beta", pytest.approx(2 / 3)),
        ("alpha", pytest.approx(1 / 3)),
    ]
    segment = records[0]["segment"]
    assert segment["document_id"] == document_id
    # As on Dify 1.14.1 (06, 12): the record names no document, only its id.
    assert segment["document"] == dict.fromkeys(
        ("id", "data_source_type", "name", "doc_type", "doc_metadata")
    )
    assert (segment["position"], segment["status"]) == (1, "completed")
    assert (records[0]["child_chunks"], records[0]["files"], records[0]["tsne_position"]) == (
        [],
        [],
        None,
    )


async def test_top_k_defaults(
    sim: DifySimulator, api: Api, dataset_id: str, document_id: str
) -> None:
    # No retrieval_model: the dataset's stored one (top_k 2 for a new dataset, recording 00),
    # once its search method is one an economy dataset can run (06b, after a PATCH).
    sim.set_retrieval_model(dataset_id, search_method="keyword_search")
    assert (
        len((await retrieve(api, dataset_id, query="alpha", retrieval_model=None))["records"]) == 2
    )
    # A retrieval_model without top_k: Dify's fallback of 4.
    assert len((await retrieve(api, dataset_id, query="alpha"))["records"]) == 4


async def test_an_economy_dataset_refuses_vector_searches_and_partial_models(
    api: Api, dataset_id: str, document_id: str
) -> None:
    path = f"/v1/datasets/{dataset_id}/retrieve"
    # Made through the API, it stores semantic_search: a bare retrieve uses it (recording 17).
    for model in (
        None,
        keyword(search_method="semantic_search"),
        keyword(search_method="hybrid_search"),
    ):
        reply = await api.post(path, json={"query": "alpha", "retrieval_model": model})
        assert reply.json == {
            "code": "invalid_param",
            "message": "Default model not found for text-embedding",
            "status": 400,
        }
    partial = await api.post(path, json={"query": "alpha", "retrieval_model": {"top_k": 3}})
    assert partial.status == 400
    assert partial.json["message"].startswith("3 validation errors for HitTestingPayload\n")
    for field in ("search_method", "reranking_enable", "score_threshold_enabled"):
        assert f"retrieval_model.{field}\n  Field required [type=missing" in partial.json["message"]
    # Hostile: a null, a list and a string where the model's fields go.
    for hostile in ({"search_method": None}, {"top_k": [1]}, {"reranking_enable": "x"}):
        reply = await api.post(path, json={"query": "alpha", "retrieval_model": hostile})
        assert reply.status == 400 and reply.json["code"] == "invalid_param"


async def test_score_threshold(api: Api, dataset_id: str, document_id: str) -> None:
    model = keyword(top_k=10, score_threshold_enabled=True, score_threshold=0.6)
    records = (await retrieve(api, dataset_id, query="alpha beta", retrieval_model=model))[
        "records"
    ]
    assert [r["segment"]["content"] for r in records] == ["alpha beta gamma", "alpha beta"]
    ignored = keyword(top_k=10, score_threshold_enabled=False, score_threshold=0.9)
    records = (await retrieve(api, dataset_id, query="alpha beta", retrieval_model=ignored))[
        "records"
    ]
    assert len(records) == 5


async def test_no_match_and_hit_testing_alias(api: Api, dataset_id: str, document_id: str) -> None:
    reply = await api.post(
        f"/v1/datasets/{dataset_id}/hit-testing",
        json={"query": "zzzqqq", "retrieval_model": keyword()},
    )
    assert reply.json == {"query": "zzzqqq", "records": []}
    assert (await retrieve(api, dataset_id, query="!!!"))["records"] == []


async def test_partial_hits_while_indexing(
    sim: DifySimulator, api: Api, clock: ManualClock, dataset_id: str
) -> None:
    sim.add_document(dataset_id, "greek.txt", TEXT)
    model = keyword(top_k=10)
    clock.advance(0.5)  # splitting: nothing is searchable yet
    assert (await retrieve(api, dataset_id, query="alpha", retrieval_model=model))["records"] == []
    clock.advance(0.5)  # a third of the way into indexing: the first buckets are done
    partial = (await retrieve(api, dataset_id, query="alpha", retrieval_model=model))["records"]
    (entry,) = (await api.get(f"/v1/datasets/{dataset_id}/documents")).json["data"]
    assert entry["indexing_status"] == "indexing"
    assert 0 < len(partial) < 5
    clock.advance(1)
    assert (
        len((await retrieve(api, dataset_id, query="alpha", retrieval_model=model))["records"]) == 5
    )


async def test_a_recreated_document_serves_old_segments_until_it_parses(
    sim: DifySimulator, api: Api, clock: ManualClock, dataset_id: str
) -> None:
    sim.add_document(dataset_id, "note.txt", "old words")
    clock.advance(5)
    sim.add_document(dataset_id, "note.txt", "new words")
    old = (await retrieve(api, dataset_id, query="old"))["records"]
    assert [r["segment"]["content"] for r in old] == ["old words"]
    clock.advance(0.25)  # parsing: the old segments are gone, the new ones not there yet
    assert (await retrieve(api, dataset_id, query="words"))["records"] == []
    clock.advance(5)
    assert (await retrieve(api, dataset_id, query="old"))["records"] == []
    assert len((await retrieve(api, dataset_id, query="new"))["records"]) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"query": ""}, "Query or attachment_ids is required"),
        (
            {},
            "1 validation error for HitTestingPayload\nquery\n  Field required [type=missing, "
            "input_value={}, input_type=dict]\n    For further information visit "
            "https://errors.pydantic.dev/2.12/v/missing",
        ),
        (
            {"query": "q" * 251},
            "1 validation error for HitTestingPayload\nquery\n  String should have at most 250 "
            "characters [type=string_too_long, input_value='qqqqqqqqqqqqqqqqqqqqqqqq..."
            "qqqqqqqqqqqqqqqqqqqqqqq', input_type=str]\n    For further information visit "
            "https://errors.pydantic.dev/2.12/v/string_too_long",
        ),
    ],
)
async def test_retrieve_validation(
    api: Api, dataset_id: str, body: dict[str, Any], message: str
) -> None:
    reply = await api.post(f"/v1/datasets/{dataset_id}/retrieve", json=body)
    assert reply.json == {"code": "invalid_param", "message": message, "status": 400}


async def test_retrieval_model_must_be_an_object(api: Api, dataset_id: str) -> None:
    reply = await api.post(
        f"/v1/datasets/{dataset_id}/retrieve", json={"query": "a", "retrieval_model": "keyword"}
    )
    assert reply.status == 400
    assert "retrieval_model\n  Input should be a valid dictionary" in reply.json["message"]
