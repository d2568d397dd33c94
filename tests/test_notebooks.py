"""Run every notebook in ``notebooks/`` top to bottom in a real kernel: on the simulator, as
against a real server (the simulator behind ``DIFY_*`` settings, so the notebooks take their
real-Dify branch), and against a real Dify when ``DIFY_API_KEY`` and ``DIFY_API_BASE_URL``
(optionally ``DIFY_DATASET_ID``) are set.

As against a real server, each notebook runs on a fresh scratch knowledge base it makes and
deletes (no ``DIFY_DATASET_ID``), and twice on one shared knowledge base given as
``DIFY_DATASET_ID``: every notebook's runs go into the same one, and before each second run
it holds other people's documents, named like the notebooks' own and matching their searches
better. Each run must leave that knowledge base as it found it, and never write to others'
documents.

The kernel is always this test run's own interpreter (``sys.executable -m ipykernel_launcher``),
whatever kernelspecs the machine has registered, so a fresh ``pip install -e ".[dev]"`` is
enough: no ``ipykernel install`` step, and no risk of a user-level ``python3`` kernelspec
pointing at another Python that lacks this package.

The Jupyter packages are imported inside the test, not at module level, so the warnings
filters on the test also cover what they emit on import (pytest's marks do not apply during
collection, where ``filterwarnings = error`` would turn such a warning into a collection error).
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dify_ingest_tools.testing import DifySimulator
from dify_ingest_tools.testing.simulator import DEFAULT_API_KEY

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 60  # seconds per cell

#: The run id every notebook puts in the names of the documents it uploads.
RUN = "[0-9a-f]{8}"
Wanted = str | re.Pattern[str]  # a text the outputs contain, or a pattern they match

#: Text each notebook's outputs must contain (on the simulator).
EXPECTED: dict[str, list[Wanted]] = {
    "01_quickstart.ipynb": [
        "Using the Dify simulator",
        "ready — 1/1 documents completed",  # status.summary() after the progress-bar wait
        "batch_completed: Batch",  # the on_event handler of wait_for_batches
        "shipping.md  ready",  # results in input order
        "Indexing failed:",
        "Failed to load document (PDFium: Data format error).",  # the failing document
        "FAILED: ",  # its progress bar (the widget's text form, refreshed when it closed)
        " ready: 100%",  # a ready bar's text form shows its final count, not "0seg"
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
        "-> dify_search({'query': ",  # the toolkit's search tool, no hand-written one
        "is READY: 1 of 1 document(s) completed",  # the wait tool's answer
        "ANSWER: From the knowledge base: Returns policy",  # found only once indexed
        "A restocking fee of 10% applies to opened electronics.",
        "dify_wait_for_indexing   verdict=ready",  # the artifact
        "All closed.",
    ],
    "05_mcp_server.ipynb": [
        "upload_text        (name, text, wait_seconds)",  # list_tools
        "is READY: 1 of 1 document(s) completed",  # the wait's answer
        "progress 100.0%",  # MCP progress notifications
        "outcome: ready",
        # The search hit of its own document (named with the run's id).
        re.compile(rf"returns-policy-{RUN}\.md: Opened electronics carry a 10% restocking fee"),
        "isError: False | outcome: not_found",
        "isError: True",
        "query: must contain some text",
        "All closed.",
    ],
    "03_llamaindex_pipeline.ipynb": [
        "Using the Dify simulator",
        "[DifyBatchIndexingEvent] batch_completed: Batch",  # the instrumentation handler
        re.compile(rf"refunds-{RUN}\.md +ready  \(completed\)"),  # node metadata: verdict
        re.compile(rf"broken-{RUN}\.md +failed \(error\)"),  # on_failure="mark"
        "Failed to load document (scripted failure).",
        re.compile(rf"warranty-{RUN}\.md ready \(completed\)"),  # pipeline.arun
        re.compile(rf"refunds-{RUN}\.md +'You can ask for a full refund"),  # the retriever's hit
        re.compile(rf"sources: \['refunds-{RUN}\.md'"),  # the query engine's source nodes
        "Query: How long do I have to ask for a refund?",  # MockLLM's echoed prompt
        "get_indexing_status({'batch':",  # the agent's tool calls
        "is NOT READY yet",
        "wait_for_indexing({'batch':",
        "Agent: Here is what Dify says: Batch",
        "All closed.",
    ],
    "04_sync_and_update.ipynb": [
        "Using the Dify simulator",
        "'num_added': 3, 'num_updated': 0, 'num_skipped': 0, 'num_deleted': 0}",
        re.compile(rf"refunds-{RUN}\.md -> Refunds: ask within 30 days"),  # when index() returns
        "'num_added': 0, 'num_updated': 0, 'num_skipped': 3, 'num_deleted': 0} | requests: "
        "{'creates': 0, 'updates': 0, 'deletes': 0}",  # the second sync uploads nothing
        "{'creates': 0, 'updates': 1, 'deletes': 0}",  # the edit: one update in place
        re.compile(rf"shipping-{RUN}\.md -> Shipping: express parcels"),
        "{'creates': 0, 'updates': 0, 'deletes': 1}",  # the removed file
        "warranty hits: []",
        re.compile(rf"sources: \['shipping-{RUN}\.md'\]"),  # DifyIndex's query engine
        "deleted: 2",
        "All closed.",
    ],
}

SCRATCH_CREATED = "Created a scratch knowledge base; the last cell deletes it."
SCRATCH_DELETED = "Deleted the scratch knowledge base."

#: Text each notebook's outputs must contain against a real server (whatever it indexes).
EXPECTED_REAL: dict[str, list[Wanted]] = {
    "01_quickstart.ipynb": ["Using a real Dify server.", "shipping.md  ready", "All closed."],
    "02_langchain_agent.ipynb": ["Using a real Dify server.", "is READY", "All closed."],
    "03_llamaindex_pipeline.ipynb": [
        "Using a real Dify server.",
        re.compile(rf"refunds-{RUN}\.md +ready  \(completed\)"),
        re.compile(rf"warranty-{RUN}\.md ready \(completed\)"),
        "wait_for_indexing({'batch':",
        "All closed.",
    ],
    "05_mcp_server.ipynb": ["is READY: 1 of 1 document(s) completed", "All closed."],
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


def _kernel_env(dify: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment with only the given Dify settings (none: the simulator).

    The checkout goes first on ``PYTHONPATH`` so the kernel imports the same package as the
    tests (the editable install points there too; this also covers a plain checkout).
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("DIFY_")}
    env["DIFY_INGEST_LEDGER"] = os.environ["DIFY_INGEST_LEDGER"]  # the session's throwaway one
    env.update(dify or {})
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
def _execute(path: Path, env: dict[str, str]) -> tuple[Any, str]:
    """Run the notebook; fail on any error or warning output. Returns it and its text."""
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
    client.execute(cleanup_kc=True, env=env)

    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    outputs = [output for cell in code_cells for output in cell.outputs]
    errors = [_output_text(output) for output in outputs if output.output_type == "error"]
    assert not errors, errors
    # Warnings the kernel printed into the notebook (e.g. tqdm's "IProgress not found"
    # when ipywidgets is missing, which also means text bars instead of widgets).
    stderr = "".join(
        output.get("text", "")
        for output in outputs
        if output.output_type == "stream" and output.get("name") == "stderr"
    )
    assert "Warning" not in stderr, stderr
    # A busy kernel may send one print() as several stream messages: streams are joined as
    # they were written, other outputs on lines of their own.
    text = "".join(
        _output_text(output) if output.output_type == "stream" else f"\n{_output_text(output)}\n"
        for output in outputs
    )
    return nb, text


def _assert_says(name: str, text: str, wanted: list[Wanted]) -> None:
    missing = [
        line
        for line in wanted
        if (line not in text if isinstance(line, str) else not line.search(text))
    ]
    assert not missing, f"not in the outputs of {name}: {missing}\n---\n{text}"


def _bar_styles(nb: Any) -> list[str]:
    """The final style of every progress-bar widget the notebook drew."""
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    return [
        model["state"].get("bar_style", "")
        for model in state.get("state", {}).values()
        if model.get("model_name") == "FloatProgressModel"
    ]


# Warnings ignored, each only for these tests (everything else stays an error):
# - jupyter_core 5.0-5.8 warn on import of jupyter_client.connect that Jupyter "is migrating
#   its paths to use standard platformdirs" unless JUPYTER_PLATFORM_DIRS is set. It is about
#   where Jupyter keeps its config, not about this package; jupyter_core 5.9 dropped it.
# - pyzmq warns on Windows, whose default asyncio loop (Proactor) lacks add_reader, that it
#   starts a helper selector thread for jupyter_client's zmq sockets. Harmless there; never
#   emitted on Linux or macOS.
kernel_warnings = [
    pytest.mark.filterwarnings(
        "ignore:Jupyter is migrating its paths to use standard platformdirs:DeprecationWarning"
    ),
    pytest.mark.filterwarnings(
        "ignore:Proactor event loop does not implement add_reader family of methods:RuntimeWarning"
    ),
    pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks found"),
    pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS]),
]


def _marked(test: Any) -> Any:
    for mark in reversed(kernel_warnings):
        test = mark(test)
    return test


@_marked
def test_notebook_runs_on_the_simulator(path: Path) -> None:
    nb, text = _execute(path, _kernel_env())
    _assert_says(path.name, text, EXPECTED.get(path.name, []))
    if path.name == "01_quickstart.ipynb":
        # The failed batch's bar ends red ("danger"), the ready ones green ("success").
        styles = _bar_styles(nb)
        assert "danger" in styles and "success" in styles, styles
    # The key must not leak anywhere: streams, reprs, widget state, tracebacks.
    nbformat = pytest.importorskip("nbformat")
    executed = json.dumps(nbformat.from_dict(nb), default=str)
    assert DEFAULT_API_KEY not in executed


@dataclass
class StandIn:
    """A simulator behind DIFY_* settings, and the settings the kernel gets."""

    sim: DifySimulator
    dataset_id: str
    env: dict[str, str]


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    """A simulator behind DIFY_* settings without ``DIFY_DATASET_ID``: the notebooks'
    real-Dify branch runs against it, with no scripted failures and nothing the notebooks
    set up for a simulator, and each makes (and removes) a scratch knowledge base."""
    sim = DifySimulator(time_scale=0.3)
    dataset_id = sim.create_dataset("real-server-mode")
    with sim.serve_in_thread() as base_url:
        env = {"DIFY_API_KEY": sim.api_key, "DIFY_API_BASE_URL": base_url}
        yield StandIn(sim, dataset_id, env)


@_marked
def test_notebook_runs_as_against_a_real_server_on_a_scratch_knowledge_base(
    path: Path, stand_in: StandIn
) -> None:
    nb, text = _execute(path, _kernel_env(stand_in.env))
    _assert_says(path.name, text, EXPECTED_REAL.get(path.name, []))
    nbformat = pytest.importorskip("nbformat")
    assert stand_in.env["DIFY_API_KEY"] not in json.dumps(nbformat.from_dict(nb), default=str)
    sim = stand_in.sim
    created = sim.requests_for("create_dataset", "POST")
    deleted = sim.requests_for("delete_dataset", "DELETE")
    # The notebook made its own knowledge base, used it, and removed it in its last cell.
    _assert_says(path.name, text, [SCRATCH_CREATED, SCRATCH_DELETED])
    assert text.index(SCRATCH_DELETED) < text.index("All closed.")
    assert [r.status for r in created] == [200] and [r.status for r in deleted] == [204]
    assert sim.dataset_ids == [stand_in.dataset_id]
    assert not [r.path for r in sim.requests if stand_in.dataset_id in r.path]  # not touched


#: Someone else's documents in the shared knowledge base: named like the notebooks' own, with
#: no metadata of theirs, and matching every notebook's searches with every word (so that on
#: the simulator they outrank the notebooks' own documents).
FOREIGN_TEXT = (
    "Refund policy: ask for a refund within 30 days; how long do I have to ask. Restocking "
    "fee on opened electronics. Express shipping. Warranty. Colleague's notes."
)
FOREIGN_NAMES = ["refunds.md", "shipping.md", "returns-policy.md", "handbook/shipping.md"]


#: What each notebook must still find on the shared knowledge base, where others' documents
#: match its searches better than its own (on the simulator; a real Dify does not rank).
EXPECTED_SHARED: dict[str, list[Wanted]] = {
    "01_quickstart.ipynb": [re.compile(r"hit\(s\), [1-9]\d* from this run's documents")],
    "02_langchain_agent.ipynb": ["ANSWER: From the knowledge base: Returns policy"],
    "03_llamaindex_pipeline.ipynb": [
        re.compile(r"hit\(s\), [1-9]\d* from this run's documents"),
        re.compile(rf"sources: \[[^\]]*'refunds-{RUN}\.md'"),  # in any order
    ],
    "04_sync_and_update.ipynb": [
        re.compile(rf"refunds-{RUN}\.md -> Refunds: ask within 30 days"),
        "warranty hits: []",
        re.compile(rf"sources: \['shipping-{RUN}\.md'\]"),
        "deleted: 2",
    ],
    "05_mcp_server.ipynb": [
        re.compile(rf"returns-policy-{RUN}\.md: Opened electronics carry a 10% restocking fee"),
    ],
}


@dataclass
class SharedKnowledgeBase:
    """One simulator knowledge base every notebook runs in, twice, as on a real Dify."""

    sim: DifySimulator
    dataset_id: str
    env: dict[str, str]
    foreign: dict[str, str]  # id -> name of the documents the notebooks must leave alone

    def documents(self) -> dict[str, str]:
        """Every document in the knowledge base (id -> name), over HTTP."""
        from dify_ingest_tools import DifyKnowledgeClient

        with DifyKnowledgeClient(self.sim.api_key, self.env["DIFY_API_BASE_URL"]) as client:
            listing = client.list_documents(self.dataset_id, limit=100)
        assert not listing.has_more
        return {doc.id: doc.name for doc in listing.data}

    def seed(self) -> None:
        """Put someone else's documents in (once): the knowledge base is no longer empty."""
        if self.foreign:
            return
        from dify_ingest_tools import DifyKnowledgeClient

        with DifyKnowledgeClient(self.sim.api_key, self.env["DIFY_API_BASE_URL"]) as client:
            made = [
                client.create_document_by_text(self.dataset_id, name, FOREIGN_TEXT)
                for name in FOREIGN_NAMES
            ]
            statuses = client.wait_for_batches(made, timeout=60)
        assert all(status.is_completed for status in statuses)
        self.foreign.update({doc.document_id: doc.name for doc in made})


@pytest.fixture(scope="module")
def shared_knowledge_base() -> Iterator[SharedKnowledgeBase]:
    """A knowledge base given as ``DIFY_DATASET_ID``, kept across every notebook's runs."""
    sim = DifySimulator(time_scale=0.3)
    dataset_id = sim.create_dataset("shared")
    with sim.serve_in_thread() as base_url:
        env = {
            "DIFY_API_KEY": sim.api_key,
            "DIFY_API_BASE_URL": base_url,
            "DIFY_DATASET_ID": dataset_id,
        }
        yield SharedKnowledgeBase(sim, dataset_id, env, {})


@_marked
def test_notebook_runs_twice_on_one_shared_knowledge_base(
    path: Path, shared_knowledge_base: SharedKnowledgeBase
) -> None:
    shared = shared_knowledge_base
    sim = shared.sim
    nbformat = pytest.importorskip("nbformat")
    for run in (1, 2):
        if run == 2:
            shared.seed()  # the second run meets other people's documents
            assert shared.documents(), "the second run must be on a non-empty knowledge base"
        before = shared.documents()
        sim.clear_requests()
        nb, text = _execute(path, _kernel_env(shared.env))
        _assert_says(path.name, text, EXPECTED_REAL.get(path.name, []))
        _assert_says(path.name, text, EXPECTED_SHARED[path.name])
        assert shared.env["DIFY_API_KEY"] not in json.dumps(nbformat.from_dict(nb), default=str)
        # It used the given knowledge base, deleted exactly what it uploaded, and wrote to
        # nothing else: the documents are the ones it found, under the same names.
        assert shared.documents() == before, (
            f"run {run} of {path.name} left the knowledge base changed"
        )
        assert sim.requests_for("create_dataset", "POST") == []
        assert sim.requests_for("delete_dataset", "DELETE") == []
        assert "scratch" not in text
        writes = [r for r in sim.requests if r.method in ("POST", "PATCH", "PUT", "DELETE")]
        touched = [r.path for r in writes for doc in shared.foreign if doc in r.path]
        assert touched == [], f"run {run} of {path.name} wrote to others' documents"
        # Nobody else's passage is shown as the notebook's own (notebook 02 prints the search
        # tool's whole answer, as its model reads it).
        if path.name != "02_langchain_agent.ipynb":
            assert "Colleague's notes" not in text, text


LIVE = {name: os.environ.get(name, "") for name in ("DIFY_API_KEY", "DIFY_API_BASE_URL")}
# Optional: without it every notebook makes a scratch knowledge base and deletes it.
if os.environ.get("DIFY_DATASET_ID"):
    LIVE["DIFY_DATASET_ID"] = os.environ["DIFY_DATASET_ID"]


@pytest.mark.live
@pytest.mark.skipif(
    not all(LIVE.values()),
    reason="set DIFY_API_KEY and DIFY_API_BASE_URL (and optionally DIFY_DATASET_ID) to run "
    "against a real Dify",
)
@_marked
def test_notebook_runs_against_a_real_dify(path: Path) -> None:
    nb, text = _execute(path, _kernel_env(LIVE))
    _assert_says(path.name, text, EXPECTED_REAL.get(path.name, []))
    nbformat = pytest.importorskip("nbformat")
    assert LIVE["DIFY_API_KEY"] not in json.dumps(nbformat.from_dict(nb), default=str)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(requirements: list[str], extras: dict[str, list[str]]) -> set[str]:
    """Distribution names the requirements install, following this project's own extras."""
    names: set[str] = set()
    for requirement in requirements:
        match = re.match(r"\s*([A-Za-z0-9_.-]+)\s*(?:\[([^\]]*)\])?", requirement)
        assert match, requirement
        name = _canonical(match.group(1))
        if name == "dify-ingest-tools":
            for extra in filter(None, (e.strip() for e in (match.group(2) or "").split(","))):
                names |= _requirement_names(extras[extra], extras)
        else:
            names.add(name)
    return names


def _imported_modules(path: Path) -> set[str]:
    nbformat = pytest.importorskip("nbformat")
    modules: set[str] = set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT  # cells may `await`
        tree = compile(cell.source, path.name, "exec", flags=flags)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules


def test_the_notebooks_extra_installs_what_running_the_notebooks_needs() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    provided = _requirement_names(extras["notebooks"], extras)
    provided |= _requirement_names(project["dependencies"], extras)
    # Something to open them in and to run them headless, a kernel, and widget bars.
    assert {"jupyterlab", "nbconvert", "ipykernel", "ipywidgets"} <= provided
    # Every third-party module a notebook imports comes with the extra.
    distributions = importlib.metadata.packages_distributions()
    for path in NOTEBOOKS:
        for module in sorted(_imported_modules(path) - set(sys.stdlib_module_names)):
            if module == "dify_ingest_tools":
                continue
            installers = {_canonical(name) for name in distributions.get(module, [])}
            assert installers & provided, f"{path.name} imports {module}: not in [notebooks]"
