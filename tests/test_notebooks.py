"""Run every notebook in ``notebooks/`` top to bottom, on the simulator, in a real kernel.

The kernel is always this test run's own interpreter (``sys.executable -m ipykernel_launcher``),
whatever kernelspecs the machine has registered, so a fresh ``pip install -e ".[dev]"`` is
enough: no ``ipykernel install`` step, and no risk of a user-level ``python3`` kernelspec
pointing at another Python that lacks this package.

The Jupyter packages are imported inside the test, not at module level, so the warnings
filters on the test also cover what they emit on import (pytest's marks do not apply during
collection, where ``filterwarnings = error`` would turn such a warning into a collection error).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from dify_ingest_tools.testing.simulator import DEFAULT_API_KEY

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 60  # seconds per cell

#: Text each notebook's outputs must contain (on the simulator).
EXPECTED: dict[str, list[str]] = {
    "01_quickstart.ipynb": [
        "Using the Dify simulator",
        "ready — 1/1 documents completed",  # status.summary() after the progress-bar wait
        "batch_completed: Batch",  # the on_event handler of wait_for_batches
        "shipping.md  ready",  # results in input order
        "Indexing failed:",
        "Failed to load document (PDFium: Data format error).",  # the failing document
        "is error: Failed to load document",  # err.failed_documents
        "completed  1/1 segments",  # the last change watch_indexing yielded
        "refund",  # the retrieval hit
        "All closed.",
    ],
    "02_langchain_agent.ipynb": [
        "Using the Dify simulator",
        "dify_indexing_batch_completed      batch_completed: Batch",  # the progress handler
        "'dify_indexing_batch_completed': 1",  # counted through astream_events
        "dify_indexing_status     args: ['batch']",  # the bound tools hide dataset_id
        "-> dify_wait_for_indexing({'batch': ",  # the scripted agent's tool calls
        "is READY: 1 of 1 document(s) completed",  # the wait tool's answer
        "ANSWER: From the knowledge base: Returns policy",  # found only once indexed
        "A restocking fee of 10% applies to opened electronics.",
        "dify_wait_for_indexing   verdict=ready",  # the artifact
        "All closed.",
    ],
    "03_llamaindex_pipeline.ipynb": [
        "Using the Dify simulator",
        "[DifyBatchIndexingEvent] batch_completed: Batch",  # the instrumentation handler
        "refunds.md   ready ",  # node metadata after pipeline.run
        "broken.md    failed",  # on_failure="mark"
        "Failed to load document (scripted failure).",
        "warranty.md ready",  # pipeline.arun
        "refunds.md   'You can ask for a full refund",  # the retriever's hit
        "sources: ['refunds.md'",  # the query engine's source nodes
        "Query: How long do I have to ask for a refund?",  # MockLLM's echoed prompt
        "get_indexing_status({'batch':",  # the agent's tool calls
        "is NOT READY yet",
        "wait_for_indexing({'batch':",
        "Agent: Here is what Dify says: Batch",
        "All closed.",
    ],
}


def _kernel_manager() -> Any:
    """An `AsyncKernelManager` whose ``python3`` kernel runs on ``sys.executable``."""
    kernelspec = pytest.importorskip("jupyter_client.kernelspec")
    manager = pytest.importorskip("jupyter_client.manager")

    class ThisInterpreter(kernelspec.KernelSpecManager):
        """Every kernel name resolves to an IPython kernel on this interpreter."""

        def get_kernel_spec(self, kernel_name: str) -> Any:
            return kernelspec.KernelSpec(
                name=kernel_name,
                display_name=f"Python {sys.version_info.major} (test interpreter)",
                language="python",
                argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            )

    return manager.AsyncKernelManager(kernel_name="python3", kernel_spec_manager=ThisInterpreter())


def _kernel_env() -> dict[str, str]:
    """This process's environment without any Dify settings, so notebooks use the simulator.

    The checkout goes first on ``PYTHONPATH`` so the kernel imports the same package as the
    tests (the editable install points there too; this also covers a plain checkout).
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("DIFY_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _output_text(output: Any) -> str:
    if output.get("output_type") == "stream":
        return str(output.get("text", ""))
    if output.get("output_type") == "error":
        return "\n".join(output.get("traceback", []))
    return str(output.get("data", {}).get("text/plain", ""))


# Warnings ignored, each only for this test (everything else stays an error):
# - jupyter_core 5.0-5.8 warn on import of jupyter_client.connect that Jupyter "is migrating
#   its paths to use standard platformdirs" unless JUPYTER_PLATFORM_DIRS is set. It is about
#   where Jupyter keeps its config, not about this package; jupyter_core 5.9 dropped it.
# - pyzmq warns on Windows, whose default asyncio loop (Proactor) lacks add_reader, that it
#   starts a helper selector thread for jupyter_client's zmq sockets. Harmless there; never
#   emitted on Linux or macOS.
@pytest.mark.filterwarnings(
    "ignore:Jupyter is migrating its paths to use standard platformdirs:DeprecationWarning"
)
@pytest.mark.filterwarnings(
    "ignore:Proactor event loop does not implement add_reader family of methods:RuntimeWarning"
)
@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks found")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_runs_on_the_simulator(path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        km=_kernel_manager(),
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(path.parent)}},
    )
    # Raises CellExecutionError (with the cell's traceback) on the first failing cell.
    # cleanup_kc: nbclient shuts down only kernels it created itself; ours must go too.
    client.execute(cleanup_kc=True, env=_kernel_env())

    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    outputs = [output for cell in code_cells for output in cell.outputs]
    errors = [_output_text(output) for output in outputs if output.output_type == "error"]
    assert not errors, errors
    text = "\n".join(_output_text(output) for output in outputs)
    missing = [wanted for wanted in EXPECTED.get(path.name, []) if wanted not in text]
    assert not missing, f"not in the outputs of {path.name}: {missing}\n---\n{text}"
    # Warnings the kernel printed into the notebook (e.g. tqdm's "IProgress not found"
    # when ipywidgets is missing, which also means text bars instead of widgets).
    stderr = "".join(
        output.get("text", "")
        for output in outputs
        if output.output_type == "stream" and output.get("name") == "stderr"
    )
    assert "Warning" not in stderr, stderr
    # The key must not leak anywhere: streams, reprs, widget state, tracebacks.
    executed = json.dumps(nbformat.from_dict(nb), default=str)
    assert DEFAULT_API_KEY not in executed
