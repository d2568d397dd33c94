"""The package boundary: lazy import from the core, a clear error without LlamaIndex."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

pytest.importorskip("llama_index.core")

import dify_ingest_tools.llama_index as adapter


def test_the_public_names() -> None:
    assert sorted(adapter.__all__) == adapter.__all__
    assert all(getattr(adapter, name) for name in adapter.__all__)


def test_importing_the_core_never_imports_llama_index() -> None:
    code = (
        "import sys, dify_ingest_tools, dify_ingest_tools.testing; "
        "print([m for m in sys.modules if m.startswith('llama_index')])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_without_llama_index_the_import_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(sys.modules):
        if name.startswith("dify_ingest_tools.llama_index"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "llama_index.core", None)  # as if not installed
    with pytest.raises(ImportError, match=r'pip install "dify-ingest-tools\[llama-index\]"'):
        importlib.import_module("dify_ingest_tools.llama_index")
