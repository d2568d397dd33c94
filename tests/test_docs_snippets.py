"""Every ```python block of the docs site runs on its own, as a reader would paste it.

Each block runs in a fresh interpreter (warnings as errors) against a simulator serving on a
loopback port, with the three settings the pages tell readers to set: ``DIFY_API_KEY``,
``DIFY_API_BASE_URL`` and ``DIFY_DATASET_ID`` (a knowledge base of its own per block). A block
marked ``<!-- no-test -->`` right above it is left out: keep those for what cannot run here
(a desktop app's configuration, code that needs a real Dify).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from dify_ingest_tools.testing import DifySimulator

from .snippets import ROOT, Snippet, python_blocks, run_snippet

DOCS = ROOT / "docs"
SNIPPETS = [s for page in sorted(DOCS.rglob("*.md")) for s in python_blocks(page)]

#: The settings a snippet may read; one name per concept on every page.
SETTINGS = {"DIFY_API_KEY", "DIFY_API_BASE_URL", "DIFY_DATASET_ID", "REDIS_URL"}


#: What some blocks must print, keyed by a line of their source: the page says it, so check it.
PRINTS = {
    "spec = DifyKnowledgeToolSpec(client=client, dataset_id=dataset_id)  # LlamaIndex": [
        "Uploaded 'returns.md'",
        "is READY",
        "[1] returns.md (score",
        "restocking fee",
        "- returns.md (id ",
    ],
    'server = StdioServerParameters(command="dify-ingest", args=["mcp", "--simulator"])': [
        "['upload_text', 'indexing_status', 'wait_for_indexing', 'search'",
        "100.0% ",
        "\nready\n",
        "a.md",
    ],
    'sim.script("held.md", DocumentScript(pause_at="indexing"))': [
        "fine.md: ready | ",
        "held.md: paused | ",
        "broken.md: failed | ",
        "Unsupported file.",
    ],
    "toolkit = DifyKnowledgeToolkit(\n": ["[1] faq.md (score"],
}


@pytest.fixture(scope="module")
def simulator() -> Iterator[tuple[DifySimulator, str]]:
    sim = DifySimulator(time_scale=0.05)  # a document indexes in a few hundred ms
    with sim.serve_in_thread() as base_url:
        yield sim, base_url


def _redis_url() -> str | None:
    url = os.environ.get("DIFY_INGEST_TEST_REDIS_URL")
    if url is None and os.environ.get("DIFY_INGEST_REQUIRE_REDIS") == "1":
        pytest.fail("DIFY_INGEST_REQUIRE_REDIS=1 but DIFY_INGEST_TEST_REDIS_URL is not set")
    return url


@pytest.mark.parametrize("snippet", [s for s in SNIPPETS if not s.skipped], ids=lambda s: s.id)
def test_the_docs_snippet_runs_on_its_own(
    snippet: Snippet, simulator: tuple[DifySimulator, str], tmp_path: Path
) -> None:
    sim, base_url = simulator
    env = {
        "DIFY_API_KEY": sim.api_key,
        "DIFY_API_BASE_URL": base_url,
        "DIFY_DATASET_ID": sim.create_dataset(f"docs {snippet.id}"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    if "REDIS_URL" in snippet.source:
        redis_url = _redis_url()
        if redis_url is None:
            pytest.skip("needs a redis-server: set DIFY_INGEST_TEST_REDIS_URL")
        env["REDIS_URL"] = redis_url
    done = run_snippet(tmp_path, snippet.source, env)
    assert done.returncode == 0, f"{snippet.id} failed:\n{done.stderr}"
    assert "Traceback" not in done.stderr
    assert sim.api_key not in done.stdout + done.stderr  # the key is never shown
    for line, expected in PRINTS.items():
        if line in snippet.source:
            missing = [text for text in expected if text not in done.stdout]
            assert missing == [], f"{snippet.id} printed:\n{done.stdout}"


def test_the_pages_hold_the_snippets_and_few_are_left_out() -> None:
    pages = {s.page.name for s in SNIPPETS}
    assert {"getting-started.md", "waiting.md", "langchain.md", "llama-index.md"} <= pages
    assert len(SNIPPETS) >= 20
    assert sum(s.skipped for s in SNIPPETS) <= 3
    sources = "".join(s.source for s in SNIPPETS if not s.skipped)
    assert [line for line in PRINTS if line not in sources] == []


def test_every_snippet_reads_the_one_name_of_each_setting() -> None:
    lookup = re.compile(r"""(?:environ(?:\.get)?[\[(]|getenv\()\s*["'](\w+)["']""")
    read = {(s.id, name) for s in SNIPPETS for name in lookup.findall(s.source)}
    assert read, "no snippet reads a setting: the pattern is broken"
    assert {(where, name) for where, name in read if name not in SETTINGS} == set()
    pages = [*DOCS.rglob("*.md"), ROOT / "README.md"]
    stray = [
        p.name for p in pages if re.search(r"\$DATASET_ID|[\"']DATASET_ID[\"']", p.read_text())
    ]
    assert stray == []
