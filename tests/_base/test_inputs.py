"""Malformed ids fail with ValueError before any request; no input can change the route."""

from __future__ import annotations

import pytest

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyKnowledgeClient
from dify_ingest_tools._base.inputs import check_batch, check_dataset_id, path_part
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


# -- numbers: checked at the door, one checker for every timeout, interval and count ---------

NAN, INF = float("nan"), float("inf")
BAD_NUMBERS: list[tuple[object, type[Exception]]] = [
    (NAN, ValueError),
    (INF, ValueError),
    (-INF, ValueError),
    (True, TypeError),
    ("5", TypeError),
    (None, TypeError),
]


@pytest.mark.parametrize(("value", "error"), [v for v in BAD_NUMBERS if v[0] is not None])
@pytest.mark.parametrize(
    "name",
    ["timeout", "call_timeout", "backoff_base", "backoff_max", "rate_limit_cooldown"],
)
def test_client_rejects_non_finite_or_non_numeric_settings(
    name: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=name):
        AsyncDifyKnowledgeClient("k", **{name: value})  # type: ignore[arg-type]
    with pytest.raises(error, match=name):
        DifyKnowledgeClient("k", **{name: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("max_retries", True, TypeError),
        ("max_retries", 2.5, TypeError),
        ("max_retries", -1, ValueError),
        ("max_concurrency", True, TypeError),
        ("max_concurrency", NAN, TypeError),
        ("max_concurrency", 0, ValueError),
        ("max_response_bytes", 1e9, TypeError),
        ("max_response_bytes", 0, ValueError),
        ("requests_per_minute", NAN, ValueError),
        ("requests_per_minute", INF, ValueError),
        ("requests_per_minute", True, TypeError),
        ("requests_per_minute", "5", ValueError),  # a string is a preset name
        ("timeout", 0, ValueError),
        ("timeout", -1, ValueError),
    ],
)
def test_client_rejects_bad_counts_and_limits(
    name: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        AsyncDifyKnowledgeClient("k", **{name: value})  # type: ignore[arg-type]


def test_a_request_budget_rejects_nan() -> None:
    from dify_ingest_tools.backends.request_budget import RequestBudget

    with pytest.raises(ValueError, match="requests_per_minute"):
        RequestBudget(NAN)


@pytest.mark.parametrize(
    "name",
    [
        "timeout",
        "poll_interval",
        "max_poll_interval",
        "stall_timeout",
        "not_found_grace",
        "contact_timeout",
    ],
)
@pytest.mark.parametrize(("value", "error"), [v for v in BAD_NUMBERS if v[0] is not None])
async def test_wait_options_are_checked_before_any_request(
    sim: DifySimulator,
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    name: str,
    value: object,
    error: type[Exception],
) -> None:
    options = {"poll_interval": 1.0, "max_poll_interval": 10.0, name: value}
    if name == "poll_interval" and isinstance(value, float) and value == INF:
        options["max_poll_interval"] = INF
    with pytest.raises(error, match=name):
        await client.wait_for_indexing(dataset_id, "20261128154005508280", **options)  # type: ignore[arg-type]
    with pytest.raises(error, match=name):
        await client.wait_for_batches([(dataset_id, "20261128154005508280")], **options)  # type: ignore[arg-type]
    with pytest.raises(error, match=name):
        async for _ in client.watch_indexing(dataset_id, "20261128154005508280", **options):  # type: ignore[arg-type]
            pass
    assert sim.requests == []


def test_wait_options_reject_an_infinite_poll_interval() -> None:
    from dify_ingest_tools.readiness.wait_options import WaitOptions

    with pytest.raises(ValueError, match="poll_interval"):
        WaitOptions(poll_interval=INF, max_poll_interval=INF)
    with pytest.raises(TypeError, match="raise_on_error"):
        WaitOptions(raise_on_error="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stall_timeout"):
        WaitOptions(stall_timeout=NAN)
    assert WaitOptions(stall_timeout=None).stall_timeout is None


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"top_k": True}, TypeError),
        ({"top_k": 2.0}, TypeError),
        ({"top_k": "3"}, TypeError),
        ({"top_k": 0}, ValueError),
        ({"score_threshold": NAN}, ValueError),
        ({"score_threshold": INF}, ValueError),
        ({"score_threshold": True}, TypeError),
        ({"score_threshold": "0.5"}, TypeError),
        ({"score_threshold": 1.5}, ValueError),
        ({"score_threshold": -0.1}, ValueError),
    ],
)
async def test_retrieve_checks_top_k_and_score_threshold_before_any_request(
    sim: DifySimulator,
    client: AsyncDifyKnowledgeClient,
    dataset_id: str,
    kwargs: dict[str, object],
    error: type[Exception],
) -> None:
    with pytest.raises(error, match=next(iter(kwargs))):
        await client.retrieve(dataset_id, "q", **kwargs)  # type: ignore[arg-type]
    assert sim.requests == []


async def test_a_nan_deadline_is_refused(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    with pytest.raises(ValueError, match="deadline"):
        await client.get_indexing_status(dataset_id, "20261128154005508280", deadline=NAN)
    assert sim.requests == []


@pytest.mark.parametrize(
    "url", ["https://user:pw@dify.example.com/v1", "http://admin@127.0.0.1:5001/v1"]
)
def test_base_url_with_credentials_is_refused_at_construction(url: str) -> None:
    with pytest.raises(ValueError, match="user name or password") as caught:
        AsyncDifyKnowledgeClient("k", url)
    assert "pw" not in str(caught.value) and "admin" not in str(caught.value)


@pytest.mark.parametrize("url", ["http://host:99999/v1", "http://[::1/v1", "ftp://host/v1"])
def test_malformed_base_urls_are_a_clear_value_error(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        AsyncDifyKnowledgeClient("k", url)


def test_the_checkers_accept_ordinary_values() -> None:
    from fractions import Fraction

    from dify_ingest_tools._base.inputs import check_int, check_number, check_optional_number

    assert check_number(3, "x") == 3.0 and isinstance(check_number(3, "x"), float)
    assert check_number(Fraction(1, 2), "x") == 0.5
    assert check_optional_number(None, "x") is None
    assert check_int(5, "x", minimum=1) == 5
    with pytest.raises(ValueError, match="x must be > 0"):
        check_number(0, "x", minimum=0, exclusive_minimum=True)
