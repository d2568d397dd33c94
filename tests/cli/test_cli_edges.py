"""The CLI at the edges: wrong base URLs, servers that never answer, bad numbers, leaked keys.

Every failure is one line on stderr and a documented exit code, never a traceback; the key is
never printed. Misconfigured servers are real sockets on 127.0.0.1, written here.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from aiohttp import web

from dify_ingest_tools import cli
from dify_ingest_tools.cli.common import describe_error, exit_code_for
from dify_ingest_tools.testing import DifySimulator, DocumentScript, ManualClock
from tests.cli_servers import (
    aiohttp_server,
    cli_env,
    one_error_line,
    run_cli,
    silent_server,
    unused_port,
)

DATASET = "7789611a-7d24-4b75-ab16-a005f3cbd9b4"
BATCH = "20250101000000123456"
KEY = "dataset-ThisIsTheSecretKey0042"
HTML = "<!doctype html><html><head><title>Dify</title></head><body>console</body></html>"


async def _html_page(request: web.BaseRequest) -> web.StreamResponse:
    # What the Dify web console (or any web app) answers on every path.
    return web.Response(text=HTML, content_type="text/html")


async def _nginx_404(request: web.BaseRequest) -> web.StreamResponse:
    return web.Response(
        status=404,
        text="<html><body><h1>404 Not Found</h1>nginx</body></html>",
        content_type="text/html",
    )


async def _echo_authorization(request: web.BaseRequest) -> web.StreamResponse:
    # A proxy that helpfully quotes the request's Authorization header in its error.
    header = request.headers.get("Authorization", "")
    body = {"code": "unauthorized", "message": f"Rejected header: {header}", "status": 401}
    return web.json_response(body, status=401)


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIFY_API_KEY", KEY)
    monkeypatch.delenv("DIFY_API_BASE_URL", raising=False)


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert KEY not in captured.out + captured.err
    return one_error_line(captured.err)


@pytest.fixture
def html_root() -> Iterator[str]:
    with aiohttp_server(_html_page) as root:
        yield root


@pytest.fixture
def nginx_root() -> Iterator[str]:
    with aiohttp_server(_nginx_404) as root:
        yield root


# -- status: a wrong base URL is exit 3 with what to check, fast -------------------------------


@pytest.mark.usefixtures("no_env")
def test_status_exits_3_fast_when_nothing_listens(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1"
    started = time.monotonic()
    code = cli.main(["status", DATASET, BATCH, "--base-url", url, "--timeout", "2"])
    assert code == cli.EXIT_API
    assert time.monotonic() - started < 6
    line = _one_line(capsys)
    assert "DifyConnectionError" in line and "--base-url" in line


@pytest.mark.usefixtures("no_env")
def test_status_exits_3_when_base_url_is_an_html_page(
    html_root: str, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    code = cli.main(["status", DATASET, BATCH, "--base-url", f"{html_root}/v1", "--timeout", "2"])
    assert code == cli.EXIT_API
    assert time.monotonic() - started < 6
    line = _one_line(capsys)
    assert "DifyResponseError" in line and "ending in /v1" in line


@pytest.mark.usefixtures("no_env")
def test_status_exits_3_on_a_web_servers_404_page(
    nginx_root: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["status", DATASET, BATCH, "--base-url", f"{nginx_root}/v1"]) == cli.EXIT_API
    line = _one_line(capsys)
    assert "DifyNotFoundError" in line and "ending in /v1" in line


def test_status_and_wait_exit_3_when_base_url_lacks_v1(
    monkeypatch: pytest.MonkeyPatch,
    sim: DifySimulator,
    threaded_url: str,
    dataset_id: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DIFY_API_KEY", sim.api_key)
    monkeypatch.setenv("DIFY_API_BASE_URL", threaded_url.removesuffix("/v1"))
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    assert cli.main(["status", dataset_id, batch]) == cli.EXIT_API
    assert "ending in /v1" in one_error_line(capsys.readouterr().err)
    assert cli.main(["wait", dataset_id, batch, "--timeout", "30"]) == cli.EXIT_API
    assert "ending in /v1" in one_error_line(capsys.readouterr().err)


@pytest.mark.usefixtures("no_env")
def test_status_timeout_bounds_a_server_that_never_answers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with silent_server() as root:
        started = time.monotonic()
        code = cli.main(["status", DATASET, BATCH, "--base-url", f"{root}/v1", "--timeout", "1"])
        elapsed = time.monotonic() - started
    assert code == cli.EXIT_API
    assert elapsed < 5
    line = _one_line(capsys)
    assert "DifyTimeoutError" in line and "--timeout" in line


# -- wait: a wrong base URL is exit 3 (not 4, "still indexing") --------------------------------


@pytest.mark.usefixtures("no_env")
def test_wait_exits_3_on_a_web_servers_404_page(
    nginx_root: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["wait", DATASET, BATCH, "--base-url", f"{nginx_root}/v1", "--json"])
    assert code == cli.EXIT_API
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert (payload["reason"], payload["exit_code"]) == ("error", cli.EXIT_API)
    assert "DifyNotFoundError" in one_error_line(captured.err)


@pytest.mark.usefixtures("no_env")
def test_wait_exits_3_not_4_when_nothing_listens(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1"
    started = time.monotonic()
    code = cli.main(["wait", DATASET, BATCH, "--base-url", url, "--timeout", "20", "--json"])
    assert time.monotonic() - started < 15
    assert code == cli.EXIT_API
    captured = capsys.readouterr()
    assert json.loads(captured.out)["reason"] == "error"
    assert "DifyConnectionError" in one_error_line(captured.err)


@pytest.mark.usefixtures("no_env")
def test_wait_exits_3_not_4_when_base_url_is_an_html_page(
    html_root: str, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    code = cli.main(["wait", DATASET, BATCH, "--base-url", f"{html_root}/v1", "--timeout", "20"])
    assert time.monotonic() - started < 15
    assert code == cli.EXIT_API
    assert "DifyResponseError" in one_error_line(capsys.readouterr().err)


# -- numbers are checked at the door -----------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["wait", DATASET, BATCH, "--timeout", "nan"],
        ["wait", DATASET, BATCH, "--timeout", "inf"],
        ["wait", DATASET, BATCH, "--timeout", "-1"],
        ["wait", DATASET, BATCH, "--timeout", "0"],
        ["wait", DATASET, BATCH, "--timeout", "soon"],
        ["wait", DATASET, BATCH, "--poll-interval", "nan"],
        ["wait", DATASET, BATCH, "--poll-interval=-inf"],
        ["wait", DATASET, BATCH, "--max-poll-interval", "inf"],
        ["wait", DATASET, BATCH, "--stall-timeout", "NaN"],
        ["status", DATASET, BATCH, "--timeout", "nan"],
        ["status", DATASET, BATCH, "--timeout", "1e999"],
        ["simulate", "--time-scale", "nan"],
        ["simulate", "--time-scale", "-1"],
        ["simulate", "--port", "99999"],
        ["simulate", "--port", "-1"],
        ["simulate", "--port", "http"],
        ["upload", "a.txt", "--timeout", "nan"],
        ["mcp", "--port", "99999"],
        ["mcp", "--max-wait", "inf"],
    ],
)
def test_bad_numbers_are_refused_with_one_line_before_any_request(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(args)
    assert caught.value.code == cli.EXIT_USAGE
    line = one_error_line(capsys.readouterr().err)
    option, _, value = next(a for a in args if a.startswith("--")).partition("=")
    assert f"argument {option}: expected a" in line
    assert repr(value or args[-1]) in line


@pytest.mark.usefixtures("no_env")
def test_wait_refuses_a_max_poll_interval_below_the_poll_interval(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["wait", DATASET, BATCH, "--poll-interval", "5", "--max-poll-interval", "1"])
    assert code == cli.EXIT_USAGE
    assert "--max-poll-interval must be at least --poll-interval" in _one_line(capsys)


@pytest.mark.parametrize("url", ["ftp://example.com/v1", "localhost:5001/v1", "http:///v1"])
@pytest.mark.usefixtures("no_env")
def test_a_base_url_that_is_no_http_url_is_a_usage_error_in_cli_words(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["status", DATASET, BATCH, "--base-url", url]) == cli.EXIT_USAGE
    assert "--base-url must be an http(s) URL" in _one_line(capsys)


@pytest.mark.parametrize(
    "command",
    [
        ["search", "query", "--dataset", DATASET],
        ["documents", "--dataset", DATASET],
        ["upload", "-", "--dataset", DATASET],
    ],
)
def test_every_command_asks_for_a_missing_key_in_cli_words(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DIFY_API_KEY", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO("some text"))
    assert cli.main(command) == cli.EXIT_USAGE
    line = one_error_line(capsys.readouterr().err)
    assert "--api-key" in line and "DIFY_API_KEY" in line and "api_key=" not in line


# -- the key is never printed ------------------------------------------------------------------


@pytest.mark.usefixtures("no_env")
def test_a_server_echoing_the_authorization_header_does_not_get_the_key_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with aiohttp_server(_echo_authorization) as root:
        for command in (["status", DATASET, BATCH], ["wait", DATASET, BATCH, "--json"]):
            assert cli.main([*command, "--base-url", f"{root}/v1"]) == cli.EXIT_API
            captured = capsys.readouterr()
            assert KEY not in captured.out + captured.err
            assert "Bearer [redacted]" in captured.err


def test_document_error_text_quoting_the_key_is_masked(
    monkeypatch: pytest.MonkeyPatch,
    sim: DifySimulator,
    threaded_url: str,
    dataset_id: str,
    clock: ManualClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DIFY_API_KEY", sim.api_key)
    monkeypatch.setenv("DIFY_API_BASE_URL", threaded_url)
    leak = f"worker could not index with key {sim.api_key}"
    sim.script("leak.txt", DocumentScript(fail_at="parsing", error=leak))
    _, batch = sim.add_document(dataset_id, "leak.txt", "alpha")
    clock.advance(60)
    assert cli.main(["status", dataset_id, batch, "--json"]) == cli.EXIT_FAILED
    assert cli.main(["wait", dataset_id, batch, "--json", "--no-progress"]) == cli.EXIT_FAILED
    captured = capsys.readouterr()
    assert sim.api_key not in captured.out + captured.err
    assert "worker could not index with key [redacted]" in captured.out


# -- help, internal errors ---------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["status"], ["wait"], ["demo"], ["simulate"]])
def test_help_documents_the_exit_codes(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main([*command, "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "70 ", "130 "):
        assert f"\n  {code}" in out


def test_an_os_error_is_one_line_naming_the_file_with_exit_3() -> None:
    error = PermissionError(13, "Permission denied", "/etc/dify.log")
    assert exit_code_for(error) == cli.EXIT_API
    assert describe_error(error) == "error: Permission denied: /etc/dify.log"


def test_an_unexpected_exception_is_one_line_with_exit_70() -> None:
    error = RuntimeError("boom\nsecond line")
    assert exit_code_for(error) == cli.EXIT_INTERNAL
    line = describe_error(error)
    assert "\n" not in line and "internal error" in line and "boom second line" in line


# -- as a real process: one line, never a traceback --------------------------------------------


def test_status_as_a_process_prints_one_line_when_nothing_listens() -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1"
    done = run_cli(
        "status", DATASET, BATCH, "--timeout", "2", DIFY_API_KEY=KEY, DIFY_API_BASE_URL=url
    )
    assert done.returncode == cli.EXIT_API
    assert "DifyConnectionError" in one_error_line(done.stderr)
    assert done.stdout == "" and KEY not in done.stderr


def test_wait_as_a_process_refuses_nan_with_one_line() -> None:
    done = run_cli("wait", DATASET, BATCH, "--timeout", "nan", DIFY_API_KEY=KEY)
    assert done.returncode == cli.EXIT_USAGE
    assert "--timeout" in one_error_line(done.stderr)


def test_ctrl_c_during_a_wait_exits_130_with_one_line_and_the_json_report() -> None:
    with silent_server() as root:
        process = subprocess.Popen(
            [sys.executable, "-m", "dify_ingest_tools.cli", "wait", DATASET, BATCH, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(DIFY_API_KEY=KEY, DIFY_API_BASE_URL=f"{root}/v1"),
        )
        try:
            time.sleep(1.5)  # let it import and start polling the silent server
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == cli.EXIT_INTERRUPTED
    assert one_error_line(err) == "dify-ingest: interrupted"
    assert json.loads(out)["reason"] == "interrupted"


def test_a_reader_that_goes_away_ends_the_output_quietly(
    sim: DifySimulator, threaded_url: str, dataset_id: str, clock: ManualClock
) -> None:
    _, batch = sim.add_document(dataset_id, "doc-0.txt", "alpha")
    for index in range(1, 600):  # about 300 KB of JSON: more than a pipe holds
        sim.add_document(dataset_id, f"doc-{index}.txt", "alpha", batch=batch)
    process = subprocess.Popen(
        [sys.executable, "-m", "dify_ingest_tools.cli", "status", dataset_id, batch, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(DIFY_API_KEY=sim.api_key, DIFY_API_BASE_URL=threaded_url),
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.read(1) == b"{"
    process.stdout.close()  # like `| head -c 1`
    err = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=30) == cli.EXIT_BROKEN_PIPE
    assert err == ""
