"""The adapter is optional: the core never imports LangChain, and a missing one is explained."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

pytest.importorskip("langchain_core")


def test_importing_the_core_does_not_import_langchain() -> None:
    code = (
        "import sys, dify_ingest_tools, dify_ingest_tools.testing; "
        "print(sorted(m for m in sys.modules if m.startswith('langchain')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_a_missing_langchain_core_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [name for name in sys.modules if name.startswith("dify_ingest_tools.langchain")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "langchain_core", None)  # makes `import` fail

    with pytest.raises(ImportError, match=r'pip install "dify-ingest-tools\[langchain\]"'):
        importlib.import_module("dify_ingest_tools.langchain")


def test_the_public_names() -> None:
    import dify_ingest_tools.langchain as adapter

    assert set(adapter.__all__) == {
        "CUSTOM_EVENT_NAMES",
        "CUSTOM_EVENT_PREFIX",
        "DifyDocumentUploader",
        "DifyIndexingStatusTool",
        "DifyIndexingWaiter",
        "DifyKnowledgeToolkit",
        "DifyListDocumentsTool",
        "DifyRetriever",
        "DifySearchTool",
        "DifyUploadTextTool",
        "DifyVectorStore",
        "DifyWaitForIndexingTool",
        "custom_event_name",
    }
    assert adapter.custom_event_name("progress") == "dify_indexing_progress"
    assert "dify_indexing_batch_completed" in adapter.CUSTOM_EVENT_NAMES
    assert len(adapter.CUSTOM_EVENT_NAMES) == 11
    assert "dify_indexing_summarizing" in adapter.CUSTOM_EVENT_NAMES  # summaries=True
    assert "dify_indexing_resubmitted" in adapter.CUSTOM_EVENT_NAMES  # on_stall="resubmit"
    assert "dify_indexing_partial_results" in adapter.CUSTOM_EVENT_NAMES
