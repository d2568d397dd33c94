"""``dify-ingest simulate``: ports, one-line failures, scripted documents and the request log."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyKnowledgeClient,
    IndexingStalledError,
    cli,
)
from dify_ingest_tools.cli import app
from dify_ingest_tools.cli.simulate import DEFAULT_PORT, PatternScripts, rule_type
from dify_ingest_tools.testing import DifySimulator, ManualClock
from tests.cli_servers import cli_env, one_error_line, run_cli


def test_simulate_does_not_default_to_difys_own_port() -> None:
    args = app._parser().parse_args(["simulate"])
    assert args.port == DEFAULT_PORT != 5001


# -- as a real process ------------------------------------------------------------------------


@contextmanager
def simulate(*args: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """``dify-ingest simulate ARGS`` until its banner is printed; stopped with Ctrl-C after."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dify_ingest_tools.cli", "simulate", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        assert process.stdout is not None
        banner: list[str] = []
        while not banner or banner[-1] != "Press Ctrl-C to stop.":
            line = process.stdout.readline()
            assert line, f"simulate ended early: {process.communicate(timeout=10)}"
            banner.append(line.rstrip("\n"))
        yield process, banner
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _field(banner: list[str], name: str) -> str:
    return next(line.split(": ", 1)[1].strip() for line in banner if line.strip().startswith(name))


def test_simulate_with_port_0_prints_the_port_it_picked_and_stops_on_ctrl_c() -> None:
    with simulate("--port", "0") as (process, banner):
        base_url = _field(banner, "base URL")
        key = _field(banner, "API key")
        port = int(base_url.rsplit(":", 1)[1].split("/")[0])
        assert port not in (0, 5001)
        dataset = banner[banner.index("  datasets :") + 1].split()[0]
        request = urllib.request.Request(
            f"{base_url}/datasets/{dataset}/documents", headers={"Authorization": f"Bearer {key}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["total"] == 0
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == cli.EXIT_INTERRUPTED
        assert process.stderr is not None
        assert one_error_line(process.stderr.read()) == "dify-ingest: interrupted"


def test_simulate_on_a_busy_port_is_one_line_and_exit_3() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = run_cli("simulate", "--port", str(port), timeout=30)
    assert done.returncode == cli.EXIT_API
    line = one_error_line(done.stderr)
    assert f"cannot listen on 127.0.0.1:{port}" in line and "already in use" in line
    assert "--port 0" in line


def test_simulate_on_an_address_of_another_machine_is_one_line_and_exit_3() -> None:
    done = run_cli("simulate", "--host", "192.0.2.1", "--port", "0", timeout=30)  # TEST-NET-1
    assert done.returncode == cli.EXIT_API
    assert "not an address of this machine" in one_error_line(done.stderr)


def test_simulate_on_a_host_name_that_does_not_resolve_is_one_line_and_exit_3() -> None:
    # glibc refuses a name with a space without asking any DNS server (checked with strace).
    done = run_cli("simulate", "--host", "no such host", "--port", "0", timeout=30)
    assert done.returncode == cli.EXIT_API
    assert "cannot resolve host 'no such host'" in one_error_line(done.stderr)


def test_simulate_with_an_out_of_range_port_is_one_line_and_exit_2() -> None:
    done = run_cli("simulate", "--port", "99999", timeout=30)
    assert done.returncode == cli.EXIT_USAGE
    assert "expected a port number 0-65535, got '99999'" in one_error_line(done.stderr)


def test_simulate_with_an_invalid_host_name_is_one_line_and_exit_2() -> None:
    done = run_cli("simulate", "--host", "a" * 64 + ".example", "--port", "0", timeout=30)
    assert done.returncode == cli.EXIT_USAGE
    assert "not a valid host name" in one_error_line(done.stderr)


def test_simulate_rehearses_scripted_failures_and_logs_every_request(tmp_path: Path) -> None:
    log = tmp_path / "requests.log"
    with simulate(
        "--port", "0", "--time-scale", "0.05", "--fail", "bad*=Scripted breakage.",
        "--stall", "stuck*@parsing", "--log", str(log),
    ) as (_process, banner):  # fmt: skip
        assert "  script   : 'bad*' fails at parsing: Scripted breakage." in banner
        assert "  script   : 'stuck*' stalls at parsing" in banner
        base_url, key = _field(banner, "base URL"), _field(banner, "API key")
        dataset = banner[banner.index("  datasets :") + 1].split()[0]
        with DifyKnowledgeClient(key, base_url) as client:
            good = client.create_document_by_text(dataset, "good.txt", "alpha")
            bad = client.create_document_by_text(dataset, "bad-scan.txt", "beta")
            stuck = client.create_document_by_text(dataset, "stuck.txt", "gamma")
            wait = {"timeout": 10, "poll_interval": 0.02, "raise_on_error": False}
            statuses = client.wait_for_batches([good, bad], **wait)
            assert [s.verdict for s in statuses] == ["ready", "failed"]
            assert statuses[1].documents[0].error == "Scripted breakage."
            with pytest.raises(IndexingStalledError):
                client.wait_for_indexing(
                    dataset, stuck.batch, timeout=10, poll_interval=0.02, stall_timeout=0.5
                )
    lines = log.read_text().splitlines()
    creates = [line for line in lines if "create-by-text -> 200" in line]
    assert len(creates) == 3
    assert any("indexing-status -> 200 (indexing_status)" in line for line in lines)


@pytest.mark.parametrize("log_to", ["stderr", "file"])
def test_simulate_request_log_has_one_line_per_request_and_no_key(
    log_to: str, tmp_path: Path
) -> None:
    path = tmp_path / "requests.log"
    option = ["--log"] if log_to == "stderr" else ["--log", str(path)]
    with simulate("--port", "0", *option) as (process, banner):
        base_url, key = _field(banner, "base URL"), _field(banner, "API key")
        dataset = banner[banner.index("  datasets :") + 1].split()[0]
        with DifyKnowledgeClient(key, base_url) as client:
            client.create_document_by_text(dataset, "a.txt", "alpha")
        forged = urllib.request.Request(f"{base_url}/x%0Aforged%20line")
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(forged, timeout=10)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == cli.EXIT_INTERRUPTED
        assert process.stderr is not None
        stderr = process.stderr.read()
    text = stderr if log_to == "stderr" else path.read_text()
    lines = text.splitlines()
    assert any(
        f"POST /v1/datasets/{dataset}/document/create-by-text -> 200 (create_by_text)" in line
        for line in lines
    )
    assert any(
        "GET /v1/x\\x0aforged line -> 404 (no route, no valid key)" in line for line in lines
    )
    assert not any(line.startswith("forged") for line in lines)
    assert key not in text


def test_simulate_refuses_an_unwritable_log_file_with_one_line(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "requests.log"
    done = run_cli("simulate", "--port", "0", "--log", str(target), timeout=30)
    assert done.returncode == cli.EXIT_USAGE
    assert "cannot open the request log" in one_error_line(done.stderr)


# -- the rules, against the simulator on a manual clock ---------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--fail", "bad*@cleaning", "'cleaning' is not a stage"),
        ("--fail", "@parsing", "expected PATTERN[@STAGE][=ERROR]"),
        ("--fail", "bad*=", "the error text after '=' is empty"),
        ("--stall", "stuck*=5", "expected PATTERN[@STAGE]"),
        ("--pause", "hold*@nowhere", "'nowhere' is not a stage"),
        ("--slow", "big*", "expected PATTERN=SECONDS"),
        ("--slow", "big*@indexing=3", "expected PATTERN=SECONDS"),
        ("--slow", "big*=nan", "finite number of seconds >= 0"),
        ("--slow", "big*=-1", "finite number of seconds >= 0"),
    ],
)
def test_bad_document_rules_are_usage_errors(
    option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["simulate", f"{option}={value}"])
    assert caught.value.code == cli.EXIT_USAGE
    line = one_error_line(capsys.readouterr().err)
    assert f"argument {option}:" in line and message in line


def _scripted(sim: DifySimulator, *rules: tuple[str, str], time_scale: float = 1.0) -> None:
    parsed = [rule_type(kind)(text) for kind, text in rules]  # type: ignore[arg-type]
    sim.script_resolver = PatternScripts(parsed, time_scale)


async def _statuses(
    client: AsyncDifyKnowledgeClient, dataset_id: str, batches: dict[str, str]
) -> dict[str, str]:
    result = {}
    for name, batch in batches.items():
        status = await client.get_indexing_status(dataset_id, batch)
        result[name] = str(status.documents[0].indexing_status)
    return result


async def test_rules_fail_stall_and_pause_documents_by_name_pattern(
    sim: DifySimulator, clock: ManualClock, dataset_id: str, client: AsyncDifyKnowledgeClient
) -> None:
    _scripted(
        sim,
        ("fail", "bad*.pdf@indexing=Parser gave up."),
        ("fail", "bad*"),
        ("stall", "stuck*"),
        ("pause", "hold*@splitting"),
    )
    names = ["bad-scan.pdf", "bad-notes.txt", "stuck.txt", "hold.txt", "fine.txt", "BAD.txt"]
    batches = {name: sim.add_document(dataset_id, name, "alpha")[1] for name in names}
    clock.advance(60)
    assert await _statuses(client, dataset_id, batches) == {
        "bad-scan.pdf": "error",
        "bad-notes.txt": "error",
        "stuck.txt": "indexing",
        "hold.txt": "paused",
        "fine.txt": "completed",
        "BAD.txt": "completed",  # patterns are case-sensitive
    }
    scan = await client.get_indexing_status(dataset_id, batches["bad-scan.pdf"])
    notes = await client.get_indexing_status(dataset_id, batches["bad-notes.txt"])
    assert scan.documents[0].error == "Parser gave up."  # the first matching rule wins
    assert notes.documents[0].error == "Simulated failure (dify-ingest simulate --fail 'bad*')."


async def test_slow_documents_take_their_seconds_scaled_by_the_time_scale(
    sim: DifySimulator, clock: ManualClock, dataset_id: str, client: AsyncDifyKnowledgeClient
) -> None:
    _scripted(sim, ("slow", "big*=30"), ("fail", "big-bad*@indexing"), time_scale=0.1)
    batches = {name: sim.add_document(dataset_id, name, "a")[1] for name in ("big.txt", "big-bad")}
    clock.advance(2.9)
    assert "completed" not in (await _statuses(client, dataset_id, batches)).values()
    clock.advance(0.2)  # 30 s of simulated time at a tenth of the speed: 3 s
    assert await _statuses(client, dataset_id, batches) == {
        "big.txt": "completed",
        "big-bad": "error",
    }


def test_simulate_in_process_serves_scripts_logs_and_stops_on_sigint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import threading
    import time

    from tests.cli_servers import unused_port

    port, log = unused_port(), tmp_path / "requests.log"
    seen: dict[str, int] = {}

    def drive() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:  # the SIGINT handler is installed before the server listens
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/probe", timeout=5)
            except urllib.error.HTTPError as error:
                seen["status"] = error.code
                break
            except OSError:  # not listening yet
                time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    driver = threading.Thread(target=drive)
    driver.start()
    try:
        code = cli.main(["simulate", "--port", str(port), "--log", str(log), "--fail", "bad*"])
    finally:
        driver.join(30)
    assert code == cli.EXIT_INTERRUPTED
    captured = capsys.readouterr()
    assert f"base URL : http://127.0.0.1:{port}/v1" in captured.out
    assert "script   : 'bad*' fails at parsing" in captured.out
    assert captured.err == "dify-ingest: interrupted\n"
    assert seen == {"status": 404}
    assert "GET /v1/probe -> 404 (no route, no valid key)" in log.read_text()
