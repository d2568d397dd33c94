"""The docs' examples for updates, the LangChain store and the LlamaIndex index run as
written, on the simulator, with warnings as errors, and print what the pages say."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _block_under(page: str, heading: str) -> str:
    text = (DOCS / page).read_text()
    start = text.index("```python\n", text.index(heading)) + len("```python\n")
    return text[start : text.index("```", start)]


def _run(tmp_path: Path, source: str) -> str:
    script = tmp_path / "example.py"
    script.write_text(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFY_")}
    env["DIFY_INGEST_LEDGER"] = os.environ["DIFY_INGEST_LEDGER"]  # the session's throwaway one
    root = str(DOCS.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_updates_example_runs_as_written(tmp_path: Path) -> None:
    out = _run(tmp_path, _block_under("client.md", "## Updates, metadata, segments and status"))
    assert "refused: Document is not available" in out
    assert ": ready — 1/1 documents completed" in out
    assert "['Refunds: 60 days.']" in out  # the filter matched, and the update is what is found


def test_the_vectorstore_example_runs_as_written(tmp_path: Path) -> None:
    pytest.importorskip("langchain_core")
    block = _block_under("langchain.md", "## LangChain VectorStore and indexing API")
    out = _run(tmp_path, block).splitlines()
    assert out[0] == "{'num_added': 2, 'num_updated': 0, 'num_skipped': 0, 'num_deleted': 0}"
    assert out[1] == "{'num_added': 0, 'num_updated': 0, 'num_skipped': 2, 'num_deleted': 0}"
    assert out[2] == "{'num_added': 1, 'num_updated': 0, 'num_skipped': 0, 'num_deleted': 2}"
    assert out[3] == "[('a.md', 'Refunds within 60 days.')]"
    assert out[4] == "[]"


def test_the_managed_index_example_runs_as_written(tmp_path: Path) -> None:
    pytest.importorskip("llama_index.core")
    block = _block_under("llama-index.md", "## Managed index: `DifyIndex`")
    out = _run(tmp_path, block).splitlines()
    assert out == ["['k.pdf']", "[False, False]"]
