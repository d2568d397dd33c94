"""``dify-ingest upload | search | documents | mcp``: the whole job from a shell.

Registered on the main parser by `register`; each command (one module each: `cli.upload`,
`cli.search`, `cli.documents`, `cli.mcp`) is a coroutine taking the parsed arguments and
stdout, and `cli.main` maps exceptions to the exit codes:

0 success (``upload --wait``: every document ready) · 1 indexing failed (``upload --wait``)
· 2 usage error (bad arguments, no file matched, two files that would be one document) · 3 API,
auth or connection error (an upload Dify rejected included; a misconfiguration ends ``upload``
at its first answer) · 4 not ready (``upload --wait`` ran out of time, or a document is
paused) · 130 interrupted.
"""

from __future__ import annotations

import argparse
import os

from dify_ingest_tools.cli.dataset_name import ENV_DATASET_ID, add_dataset_name
from dify_ingest_tools.cli.documents import add_documents_command
from dify_ingest_tools.cli.mcp import add_mcp_command
from dify_ingest_tools.cli.search import add_search_command
from dify_ingest_tools.cli.upload import add_upload_command

_EXIT_CODES = (
    "Exit codes: 0 success, 1 indexing failed, 2 usage error (or two files that would be one "
    "document), 3 API/auth/connection error (or an upload Dify rejected), 4 not ready (still "
    "indexing or paused), 130 interrupted."
)


def register(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    common: argparse.ArgumentParser,
) -> None:
    """Add ``upload``, ``search``, ``documents`` and ``mcp`` to the CLI's subcommands.

    Args:
        commands: The main parser's subparsers.
        common: The parent parser holding ``--api-key`` / ``--base-url``.
    """
    dataset = argparse.ArgumentParser(add_help=False)
    dataset.add_argument(
        "--dataset",
        "--dataset-id",
        dest="dataset",
        default=os.environ.get(ENV_DATASET_ID),
        help=f"knowledge base (dataset) UUID (default: ${ENV_DATASET_ID})",
    )
    add_dataset_name(dataset)
    dataset.add_argument("--json", action="store_true", help="print the result as JSON")
    add_upload_command(commands, [common, dataset], _EXIT_CODES)
    add_search_command(commands, [common, dataset], _EXIT_CODES)
    add_documents_command(commands, [common, dataset], _EXIT_CODES)
    add_mcp_command(commands, common)
