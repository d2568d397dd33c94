"""``--dataset-name NAME`` (and ``--create-if-missing``): a command's knowledge base by name.

For the commands that take ``--dataset`` (upload, search, documents, sync): the knowledge
base called exactly NAME (`AsyncDifyKnowledgeClient.dataset_id_for`), created when missing
with ``--create-if-missing`` (economy, or the command's ``--indexing-technique``). An explicit
``--dataset`` and ``--dataset-name`` together are refused; a ``$DIFY_DATASET_ID`` default
gives way to the name. A name that matches nothing, or two knowledge bases, ends the command
with `DifyDatasetNameError` (exit 3) and the ids.
"""

from __future__ import annotations

import argparse
import os
from typing import cast

from dify_ingest_tools.cli.common import CLIError
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.client.dataset_create import IndexingTechnique

ENV_DATASET_ID = "DIFY_DATASET_ID"


def add_dataset_name(parser: argparse.ArgumentParser) -> None:
    """Add ``--dataset-name`` and ``--create-if-missing`` to a parser."""
    parser.add_argument(
        "--dataset-name",
        metavar="NAME",
        help="the knowledge base by its exact name, instead of --dataset",
    )
    parser.add_argument(
        "--create-if-missing",
        action="store_true",
        help="with --dataset-name: create the knowledge base (economy) when none has that name",
    )


def check_dataset_name_args(args: argparse.Namespace, env: str | None = None) -> str | None:
    """The name asked for (None: the command uses ``--dataset``); refuses both together.

    Args:
        args: The parsed arguments (``dataset``, ``dataset_name``, ``create_if_missing``).
        env: The environment variable ``--dataset`` defaults to, which a name overrides.
    """
    name: str | None = getattr(args, "dataset_name", None)
    if name is None:
        if getattr(args, "create_if_missing", False):
            raise CLIError("--create-if-missing needs --dataset-name")
        return None
    if not name.strip():
        raise CLIError("--dataset-name needs a name")
    given = getattr(args, "dataset", None)
    if given and not (env is not None and given == os.environ.get(env)):
        raise CLIError("pass --dataset or --dataset-name, not both")
    return name


def dataset_or_name(args: argparse.Namespace) -> tuple[str, str | None]:
    """``(dataset_id, None)``, or ``("", name)`` for ``--dataset-name`` (looked up later)."""
    name = check_dataset_name_args(args, ENV_DATASET_ID)
    if name is not None:
        return "", name
    if not args.dataset:
        raise ValueError(f"--dataset is required (or set {ENV_DATASET_ID})")
    return str(args.dataset), None


async def dataset_by_name(
    client: AsyncDifyKnowledgeClient, args: argparse.Namespace, name: str, *, dry_run: bool = False
) -> str:
    """The id of the knowledge base called ``name`` (created if asked, except in a dry run)."""
    technique = cast("IndexingTechnique", getattr(args, "indexing_technique", None) or "economy")
    create = bool(getattr(args, "create_if_missing", False))
    if dry_run and create and await client.find_dataset(name) is None:
        raise CLIError(
            f"no knowledge base is named {name!r} and a dry run creates nothing: run without "
            "--dry-run to create it"
        )
    return await client.dataset_id_for(name, create_if_missing=create, indexing_technique=technique)
