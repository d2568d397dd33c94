"""The API key never shows: not in reprs, errors, logs or URLs; plain http is warned about."""

from __future__ import annotations

import logging
import pickle

import pytest

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyAPIError,
    DifyConnectionError,
    DifyKnowledgeClient,
)
from dify_ingest_tools._base import config as _config
from dify_ingest_tools.testing import DifySimulator, Fault

from .conftest import FAST

SECRET = "dataset-TOPSECRET0123456789abcdef"


@pytest.fixture
def secret_sim(clock: object) -> DifySimulator:
    return DifySimulator(api_key=SECRET, clock=clock)  # type: ignore[arg-type]


async def test_key_is_absent_from_reprs_errors_and_logs(
    secret_sim: DifySimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dataset_id = secret_sim.create_dataset("secret")
    texts: list[str] = []
    async with (
        secret_sim.serve() as base_url,
        AsyncDifyKnowledgeClient(SECRET, base_url, max_retries=1, **FAST) as client,
    ):
        texts += [repr(client), str(client), repr(client.api_key), str(client.api_key)]
        texts.append(repr(vars(client).get("_api_key")))
        created = await client.create_document_by_text(dataset_id, "s.txt", "secret stuff")
        texts += [repr(created), created.model_dump_json()]
        status = await client.get_indexing_status(dataset_id, created.batch)
        texts += [repr(status), status.summary(), status.model_dump_json()]
        failures: list[BaseException] = []
        for fault in (
            Fault.server_error(500),
            Fault.proxy_html(502),
            Fault.malformed_json(),
            Fault.drop_connection(),
            Fault.knowledge_rate_limit(),
        ):
            secret_sim.inject(fault, route="indexing_status", times=-1)
            try:
                await client.get_indexing_status(dataset_id, created.batch)
            except (DifyAPIError, DifyConnectionError) as error:
                failures.append(error)
            secret_sim.clear_faults()
        for bad_key in ("dataset-wrong", SECRET + "x"):
            async with AsyncDifyKnowledgeClient(bad_key, base_url) as other:
                try:
                    await other.get_indexing_status(dataset_id, created.batch)
                except DifyAPIError as error:
                    failures.append(error)
    assert len(failures) == 7
    for error in failures:
        texts += [str(error), repr(error), repr(pickle.loads(pickle.dumps(error)))]
        cause = error.__cause__
        while cause is not None:
            texts += [str(cause), repr(cause)]
            cause = cause.__cause__
        if isinstance(error, DifyAPIError):
            texts.append(repr(error.body))
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.args) for record in caplog.records]
    assert any("retry" in record.getMessage() for record in caplog.records)
    assert any("->" in record.getMessage() for record in caplog.records)  # debug lines exist
    for text in texts:
        assert SECRET not in text
        assert "TOPSECRET" not in text


def test_blocking_client_repr_hides_the_key() -> None:
    client = DifyKnowledgeClient(SECRET, "https://api.dify.ai/v1")
    try:
        assert SECRET not in repr(client) and SECRET not in repr(client.async_client)
        assert SECRET not in str(vars(client))
    finally:
        client.close()


def test_user_info_in_base_url_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError, match="user name or password") as caught:
        AsyncDifyKnowledgeClient(SECRET, "https://user:s3cr3tpw@dify.example.com/v1")
    assert "s3cr3tpw" not in str(caught.value) and "user" not in str(caught.value).split("(")[1]
    with pytest.raises(ValueError, match="user name or password"):
        DifyKnowledgeClient(SECRET, "https://user@dify.example.com/v1")


def test_plain_http_to_a_remote_host_warns_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_config, "_warned_hosts", set())
    caplog.set_level(logging.WARNING, logger="dify_ingest_tools")
    AsyncDifyKnowledgeClient(SECRET, "http://dify.internal.example/v1")
    AsyncDifyKnowledgeClient(SECRET, "http://dify.internal.example/v1")
    AsyncDifyKnowledgeClient(SECRET, "http://127.0.0.1:5001/v1")
    AsyncDifyKnowledgeClient(SECRET, "http://localhost/v1")
    AsyncDifyKnowledgeClient(SECRET, "http://[::1]:8080/v1")
    AsyncDifyKnowledgeClient(SECRET, "https://dify.internal.example/v1")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "dify.internal.example" in warnings[0].getMessage()
    assert SECRET not in warnings[0].getMessage()


def test_missing_key_message_mentions_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIFY_API_KEY", raising=False)
    with pytest.raises(ValueError) as caught:
        AsyncDifyKnowledgeClient(None, "https://api.dify.ai/v1")
    assert "dify-ingest demo" in str(caught.value)


def test_cli_output_never_shows_the_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dify_ingest_tools import cli

    sim = DifySimulator(api_key=SECRET, time_scale=0.01)
    dataset_id = sim.create_dataset("secret")
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    with sim.serve_in_thread() as base_url:
        monkeypatch.setenv("DIFY_API_KEY", SECRET)
        monkeypatch.setenv("DIFY_API_BASE_URL", base_url)
        runs = [
            ["status", dataset_id, batch, "--json"],
            ["wait", dataset_id, batch, "--json", "--poll-interval", "0.01"],
            ["wait", dataset_id, batch, "--poll-interval", "0.01"],
            ["status", dataset_id, "20991231235959000000"],
            ["status", dataset_id, batch, "--api-key", SECRET + "-wrong"],
            ["status", "not-a-uuid", batch],
        ]
        outputs = []
        for argv in runs:
            cli.main(argv)
            captured = capsys.readouterr()
            outputs += [captured.out, captured.err]
    assert any('"is_completed": true' in text for text in outputs)
    for text in outputs:
        assert "TOPSECRET" not in text
