"""The monitor on its own: what it depends on, and how its dataset sweeps spend requests."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import dify_ingest_tools
from dify_ingest_tools import AsyncDifyKnowledgeClient, IndexingMonitor, StatusSource
from dify_ingest_tools.testing import DifySimulator

PACKAGE = Path(dify_ingest_tools.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            modules.add(node.module or "")
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def test_the_monitor_and_the_waits_never_import_the_client() -> None:
    for name in ("monitor.py", "waiting.py", "_policy.py", "models.py", "errors.py"):
        imported = _imported_modules(PACKAGE / name)
        assert not imported & {"client", "_sync", "_transport", "_status_source"}, (name, imported)
    # And at run time: importing the waits loads no client code.
    code = (
        "import sys, dify_ingest_tools.waiting; "
        "assert not {'dify_ingest_tools.client', 'dify_ingest_tools._transport'} & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_clients_bookkeeping_lives_in_its_own_modules() -> None:
    client_source = (PACKAGE / "client.py").read_text()
    for private in ("_uploaded", "_dataset_cache", "_techniques", "_fetch_status", "_list_page"):
        assert private not in client_source, private
    assert {"_pending", "_datasets", "_status_source"} <= _imported_modules(PACKAGE / "client.py")


async def test_a_monitor_is_built_on_a_status_source_not_on_a_client(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    with pytest.raises(TypeError, match=r"client\.monitor"):
        IndexingMonitor(client)  # type: ignore[arg-type]
    source: StatusSource = client._source
    monitor = IndexingMonitor(source, max_concurrency=2)
    _, batch = sim.add_document(dataset_id, "a.txt", "alpha")
    status = await monitor.fetch(dataset_id, batch)
    assert status.batch == batch and monitor.active_batches == 0
    with pytest.raises(ValueError, match="batch"):
        await monitor.fetch(dataset_id, "not a batch")
    await monitor.aclose()
    with pytest.raises(ValueError, match="max_concurrency"):
        IndexingMonitor(source, max_concurrency=0)
