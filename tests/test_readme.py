"""The README's quick starts run as written (the newcomer's first ten minutes).

Each block runs in a fresh interpreter with this checkout and no ``DIFY_*`` setting: the README
promises they run as is, on the built-in simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .snippets import ROOT, python_blocks, run_snippet

README = ROOT / "README.md"


def _block_under(heading: str) -> str:
    """The README's first Python block after ``heading``."""
    text = README.read_text(encoding="utf-8")
    line = text.count("\n", 0, text.index(heading)) + 1
    return next(block.source for block in python_blocks(README) if block.line > line)


def test_every_readme_snippet_is_one_of_the_quick_starts() -> None:
    assert len(python_blocks(README)) == 3
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 250


def test_the_agent_tools_quick_start_runs_as_written(tmp_path: Path) -> None:
    pytest.importorskip("langchain_core")
    done = run_snippet(tmp_path, _block_under("### An agent's tools"))
    assert done.returncode == 0, done.stderr
    assert "Uploaded 'returns.md'" in done.stdout and "is READY" in done.stdout
    assert "[1] returns.md (score" in done.stdout and "restocking fee" in done.stdout


def test_the_ingestion_pipeline_quick_start_runs_as_written(tmp_path: Path) -> None:
    pytest.importorskip("langchain_core")
    done = run_snippet(tmp_path, _block_under("### An ingestion pipeline"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["['ready', 'ready']", "Refunds within 30 days."]


def test_the_notebook_quick_start_runs_as_written(tmp_path: Path) -> None:
    done = run_snippet(
        tmp_path, _block_under("### A notebook"), {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    )
    assert done.returncode == 0, done.stderr
    assert ": ready — 1/1 documents completed" in done.stdout
    assert "Refunds are possible within 30 days." in done.stdout


def test_the_two_commands_are_unchanged() -> None:
    text = README.read_text(encoding="utf-8")
    assert 'pip install -e ".[all]" && dify-ingest demo\n' in text
    assert 'pip install -e ".[dev]" && pytest\n' in text
