"""The README's self-contained example runs as written (the newcomer's first ten minutes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _block_after(marker: str) -> str:
    text = README.read_text()
    start = text.index("```python\n", text.index(marker)) + len("```python\n")
    return text[start : text.index("```", start)]


def test_the_simulator_quick_start_runs_as_written(tmp_path: Path) -> None:
    script = tmp_path / "quick_start.py"
    script.write_text(_block_after("No Dify server at hand?"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFY_")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # its pending ledger stays in tmp_path
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert ": ready — 1/1 documents completed" in done.stdout
    assert "Refunds are possible within 30 days." in done.stdout


def _run_snippet(tmp_path: Path, marker: str) -> subprocess.CompletedProcess[str]:
    """Run the README's Python block after ``marker`` on the simulator, with this checkout."""
    script = tmp_path / "snippet.py"
    script.write_text(_block_after(marker))
    root = str(README.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFY_")}
    env["DIFY_INGEST_LEDGER"] = os.environ["DIFY_INGEST_LEDGER"]  # the session's throwaway one
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    # `dify-ingest` runs this checkout. A shim, since MCP's stdio client starts servers with a
    # minimal environment (no PYTHONPATH) and an installed script may be another checkout's.
    shims = tmp_path / "bin"
    shims.mkdir()
    shim = shims / "dify-ingest"
    shim.write_text(
        f'#!/bin/sh\nDIFY_INGEST_LEDGER="{env["DIFY_INGEST_LEDGER"]}" PYTHONPATH="{root}" '
        f'exec "{sys.executable}" -m dify_ingest_tools.cli "$@"\n'
    )
    shim.chmod(0o755)
    env["PATH"] = os.pathsep.join([str(shims), env.get("PATH", "")])
    return subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )


def test_the_agent_toolkit_snippet_runs_as_written(tmp_path: Path) -> None:
    done = _run_snippet(tmp_path, "## Agent toolkit")
    assert done.returncode == 0, done.stderr
    assert "Uploaded 'returns.md'" in done.stdout and "is READY" in done.stdout
    assert "[1] returns.md (score" in done.stdout and "restocking fee" in done.stdout
    assert "- returns.md (id " in done.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="the dify-ingest shim is a POSIX script")
def test_the_mcp_client_snippet_runs_as_written(tmp_path: Path) -> None:
    done = _run_snippet(tmp_path, "Driving it from Python")
    assert done.returncode == 0, done.stderr
    assert "['upload_text', 'indexing_status', 'wait_for_indexing', 'search'" in done.stdout
    assert "100.0% " in done.stdout and "\nready\n" in done.stdout
    assert "a.md" in done.stdout
