"""The CLI, run through main() against the simulator."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Coroutine
from typing import Any

import pytest

from dify_ingest_tools import cli
from dify_ingest_tools.cli import app
from dify_ingest_tools.testing import DifySimulator, DocumentScript, ManualClock


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, sim: DifySimulator, threaded_url: str) -> None:
    monkeypatch.setenv("DIFY_API_KEY", sim.api_key)
    monkeypatch.setenv("DIFY_API_BASE_URL", threaded_url)


@pytest.mark.usefixtures("env")
def test_status_exit_codes_follow_the_verdict(
    sim: DifySimulator, clock: ManualClock, dataset_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha beta")
    assert cli.main(["status", dataset_id, batch]) == cli.EXIT_NOT_READY
    assert "still indexing" in capsys.readouterr().out
    clock.advance(60)
    assert cli.main(["status", dataset_id, batch]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "ready" in out and "completed" in out
    sim.script("bad.pdf", DocumentScript(fail_at="parsing", error="Failed to parse"))
    _, bad = sim.add_document(dataset_id, "bad.pdf", "x")
    clock.advance(60)
    assert cli.main(["status", dataset_id, bad]) == cli.EXIT_FAILED
    assert "error: Failed to parse" in capsys.readouterr().out


@pytest.mark.usefixtures("env")
def test_status_json(
    sim: DifySimulator, clock: ManualClock, dataset_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    clock.advance(60)
    assert cli.main(["status", dataset_id, batch, "--json"]) == cli.EXIT_OK
    payload = json.loads(capsys.readouterr().out)
    assert payload["batch"] == batch and payload["is_completed"] is True
    assert payload["documents"][0]["indexing_status"] == "completed"


@pytest.mark.usefixtures("env")
def test_status_errors_exit_3_with_a_message_and_no_key(
    sim: DifySimulator, dataset_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["status", dataset_id, "20991231235959000000"]) == cli.EXIT_API
    err = capsys.readouterr().err
    assert "Documents not found." in err and sim.api_key not in err
    code = cli.main(["status", dataset_id, "1", "--api-key", "dataset-wrong"])
    assert code == cli.EXIT_API
    err = capsys.readouterr().err
    assert "DifyAuthenticationError" in err and "dataset-wrong" not in err


@pytest.mark.usefixtures("env")
def test_usage_errors_exit_2_with_one_line(
    dataset_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["status", "not-a-uuid", "1"]) == cli.EXIT_USAGE
    assert "dataset_id must be a UUID" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        cli.main(["status"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("dify-ingest status: error: the following arguments are required")


@pytest.mark.parametrize("command", ["status", "wait"])
def test_missing_key_is_a_usage_error_in_cli_words(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    monkeypatch.delenv("DIFY_API_KEY", raising=False)
    code = cli.main([command, "7789611a-7d24-4b75-ab16-a005f3cbd9b4", "1"])
    assert code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "--api-key" in err and "DIFY_API_KEY" in err and "api_key=" not in err
    assert err.count("\n") == 1


def test_demo_runs_on_the_embedded_simulator(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DIFY_API_KEY", raising=False)
    assert cli.main(["demo", "--progress"]) == cli.EXIT_OK
    captured = capsys.readouterr()
    out = captured.out
    assert "ready" in captured.err  # the progress bars went to stderr
    assert "progress bars on stderr" in out
    assert "Dify simulator listening on http://127.0.0.1:" in out
    for name in app.DEMO_DOCUMENTS:
        assert f"uploaded {name!r}" in out and f"{name} indexed" in out
    assert f"{app.BROKEN_NAME} FAILED: {app.BROKEN_ERROR}" in out
    assert "3 of 4 batches ready, 1 failed" in out and "expected failure" in out
    assert "hit(s)" in out and "dify-indexing.txt" in out


@pytest.mark.usefixtures("env")
def test_demo_against_a_given_dataset(
    clock: ManualClock, dataset_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Pointed at a "real" Dify: here the threaded simulator, whose clock the test drives.
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.05):
            clock.advance(1.0)

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        assert cli.main(["demo", "--dataset-id", dataset_id]) == cli.EXIT_OK
    finally:
        stop.set()
        ticker.join()
    assert "simulator" not in capsys.readouterr().out.splitlines()[0]


FAST_WAIT = ["--poll-interval", "0.01", "--no-progress"]


def test_demo_draws_no_bars_when_stderr_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DIFY_API_KEY", raising=False)
    assert cli.main(["demo"]) == cli.EXIT_OK  # pytest's capture is not a terminal
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "readiness.txt indexed" in captured.out and "progress bars" not in captured.out
    assert cli.main(["demo", "--no-progress"]) == cli.EXIT_OK
    assert capsys.readouterr().err == ""


@pytest.mark.usefixtures("env", "ticker")
def test_wait_exit_codes_and_json(
    sim: DifySimulator, dataset_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, one = sim.add_document(dataset_id, "a.txt", "alpha")
    _, two = sim.add_document(dataset_id, "b.txt", "beta")
    assert cli.main(["wait", dataset_id, one, two, "--json", *FAST_WAIT]) == cli.EXIT_OK
    payload = json.loads(capsys.readouterr().out)
    assert (payload["reason"], payload["exit_code"]) == ("ready", 0)
    assert [p["batch"] for p in payload["batches"]] == [one, two]
    assert all(p["is_completed"] and p["observed"] for p in payload["batches"])
    sim.script("bad.pdf", DocumentScript(fail_at="parsing", error="Failed to parse"))
    _, bad = sim.add_document(dataset_id, "bad.pdf", "x")
    assert cli.main(["wait", dataset_id, one, bad, *FAST_WAIT]) == cli.EXIT_FAILED
    out = capsys.readouterr().out
    assert "FAILED" in out and "error: Failed to parse" in out and "ready" in out


@pytest.mark.usefixtures("env")
def test_wait_timeout_stall_and_api_errors(
    sim: DifySimulator, dataset_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, batch = sim.add_document(dataset_id, "slow.txt", "alpha")  # the clock never moves
    code = cli.main(["wait", dataset_id, batch, "--timeout", "0.2", *FAST_WAIT])
    assert code == cli.EXIT_NOT_READY
    assert "IndexingTimeoutError" in capsys.readouterr().err
    code = cli.main(["wait", dataset_id, batch, "--stall-timeout", "0.1", *FAST_WAIT])
    assert code == cli.EXIT_NOT_READY
    assert "IndexingStalledError" in capsys.readouterr().err
    code = cli.main(["wait", dataset_id, batch, "--api-key", "dataset-wrong", *FAST_WAIT])
    assert code == cli.EXIT_API
    assert cli.main(["wait", dataset_id, "a/b", *FAST_WAIT]) == cli.EXIT_USAGE
    with pytest.raises(SystemExit) as caught:
        cli.main(["wait", dataset_id, batch, "--poll-interval", "0"])
    assert caught.value.code == cli.EXIT_USAGE


def _wait_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = cli.main(["wait", *args, "--json", *FAST_WAIT])
    captured = capsys.readouterr()
    payload: dict[str, Any] = json.loads(captured.out)  # one JSON object, whatever happened
    assert payload["exit_code"] == code
    assert captured.err.count("\n") == (0 if code == cli.EXIT_OK else 1)
    return code, payload


@pytest.mark.usefixtures("env")
def test_wait_json_says_why_it_stopped_on_timeout_and_stall_with_the_last_status(
    sim: DifySimulator, clock: ManualClock, dataset_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, batch = sim.add_document(dataset_id, "slow.txt", "alpha")
    clock.advance(0.3)  # parsing, and then the clock stands still
    code, payload = _wait_json([dataset_id, batch, "--timeout", "0.3"], capsys)
    assert (code, payload["reason"]) == (cli.EXIT_NOT_READY, "timeout")
    assert "Timed out after 0.3s" in payload["message"]
    [seen] = payload["batches"]
    assert seen["observed"] is True and seen["batch"] == batch
    assert seen["documents"][0]["indexing_status"] == "parsing"
    code, payload = _wait_json([dataset_id, batch, "--stall-timeout", "0.2"], capsys)
    assert (code, payload["reason"]) == (cli.EXIT_NOT_READY, "stalled")
    assert payload["batches"][0]["documents"][0]["indexing_status"] == "parsing"


@pytest.mark.usefixtures("env", "ticker")
def test_wait_json_reports_failures_with_dify_error_text(
    sim: DifySimulator, dataset_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sim.script("bad.pdf", DocumentScript(fail_at="parsing", error="Failed to parse"))
    _, good = sim.add_document(dataset_id, "good.txt", "alpha")
    _, bad = sim.add_document(dataset_id, "bad.pdf", "x")
    code, payload = _wait_json([dataset_id, good, bad], capsys)
    assert (code, payload["reason"]) == (cli.EXIT_FAILED, "failed")
    verdicts = [p["verdict"] for p in payload["batches"]]
    assert verdicts == ["ready", "failed"]
    assert payload["batches"][1]["documents"][0]["error"] == "Failed to parse"


@pytest.mark.usefixtures("env")
def test_wait_json_reports_a_paused_document(
    sim: DifySimulator, clock: ManualClock, dataset_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sim.script("held.txt", DocumentScript(pause_at="indexing"))
    _, batch = sim.add_document(dataset_id, "held.txt", "alpha")
    clock.advance(60)
    code, payload = _wait_json([dataset_id, batch, "--on-paused", "fail"], capsys)
    assert (code, payload["reason"]) == (cli.EXIT_NOT_READY, "paused")
    assert payload["batches"][0]["documents"][0]["indexing_status"] == "paused"
    # By default a paused document is waited on, and a stall timeout ends the wait.
    code, payload = _wait_json([dataset_id, batch, "--stall-timeout", "0.2"], capsys)
    assert (code, payload["reason"]) == (cli.EXIT_NOT_READY, "stalled")


@pytest.mark.usefixtures("env")
def test_wait_json_reports_api_errors_with_nothing_observed(
    sim: DifySimulator, dataset_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    code, payload = _wait_json([dataset_id, batch, "--api-key", "dataset-wrong-key"], capsys)
    assert (code, payload["reason"]) == (cli.EXIT_API, "error")
    assert "DifyAuthenticationError" in payload["message"] and "--api-key" in payload["message"]
    assert payload["batches"] == [{"dataset_id": dataset_id, "batch": batch, "observed": False}]
    assert "dataset-wrong-key" not in json.dumps(payload)


@pytest.mark.usefixtures("env", "ticker")
def test_wait_draws_progress_bars_on_stderr_only_when_asked_or_on_a_terminal(
    sim: DifySimulator, dataset_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    fast = ["--poll-interval", "0.01"]
    assert cli.main(["wait", dataset_id, batch, *fast, "--progress"]) == cli.EXIT_OK
    captured = capsys.readouterr()
    assert f"batch {batch} ready" in captured.err
    assert "ready" in captured.out and "seg/s" not in captured.out
    assert cli.main(["wait", dataset_id, batch, *fast]) == cli.EXIT_OK
    captured = capsys.readouterr()
    assert captured.err == "" and "ready" in captured.out


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(coro: Coroutine[object, object, int]) -> int:
        coro.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(app.asyncio, "run", interrupted)
    assert cli.main(["status", "7789611a-7d24-4b75-ab16-a005f3cbd9b4", "1"]) == cli.EXIT_INTERRUPTED


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_demo_draws_bars_by_default_when_stderr_is_a_terminal() -> None:
    import os
    import pty
    import subprocess

    from tests.cli_servers import cli_env

    controller, terminal = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:  # a terminal's buffer is small: keep reading while the demo runs
        while True:
            try:
                data = os.read(controller, 4096)
            except OSError:  # the terminal side closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "dify_ingest_tools.cli", "demo"],
            stdout=subprocess.PIPE,
            stderr=terminal,
            timeout=60,
            env=cli_env(),
        )
    finally:
        os.close(terminal)
        reader.join(10)
        os.close(controller)
    assert done.returncode == cli.EXIT_OK
    drawn = b"".join(chunks).decode(errors="replace")
    assert "ready" in drawn and "seg" in drawn
    assert b"progress bars on stderr" in done.stdout
