"""``dify-ingest documents``: a knowledge base's documents, one a line (or JSON)."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from dify_ingest_tools._base.pages import PageBound
from dify_ingest_tools._base.shown import (
    ID_LIMIT,
    NAME_LIMIT,
    scrubbed_document,
    shown,
    shown_json,
)
from dify_ingest_tools.cli.common import EXIT_OK, check_client_args
from dify_ingest_tools.cli.dataset_name import dataset_by_name, dataset_or_name
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient
from dify_ingest_tools.models.documents import DifyDocument

# Dify serves at most 100 documents a page; `documents` reads at most this many pages
# (100,000 documents), whatever a server's ``has_more`` says.
_LIST_PAGE = 100
MAX_LIST_PAGES = 1_000


def add_documents_command(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    parents: list[argparse.ArgumentParser],
    epilog: str,
) -> None:
    """Add ``documents`` to the CLI's subcommands (a job: ``args.job``)."""
    documents = commands.add_parser(
        "documents",
        parents=parents,
        help="list a knowledge base's documents",
        epilog=epilog,
    )
    documents.add_argument("--status", help="only this display status (available, indexing...)")
    documents.add_argument("--keyword", help="only names containing this (case-sensitive)")
    documents.set_defaults(job=_documents)


async def _documents(args: argparse.Namespace, out: TextIO) -> int:
    dataset_id, dataset_name = dataset_or_name(args)
    # What is kept per document is already cut (a line, or a JSON object with its strings
    # cut), so a list of 1 MB names costs what a list of short ones does.
    lines: list[str] = []
    objects: list[dict[str, Any]] = []
    bound = PageBound(MAX_LIST_PAGES)
    check_client_args(args.api_key, args.base_url)
    async with AsyncDifyKnowledgeClient(args.api_key, args.base_url) as client:
        if dataset_name is not None:
            dataset_id = await dataset_by_name(client, args, dataset_name)
        for page in range(1, MAX_LIST_PAGES + 1):
            listing = await client.list_documents(
                dataset_id, status=args.status, keyword=args.keyword, page=page, limit=_LIST_PAGE
            )
            for doc in bound.new_items(listing.data[:_LIST_PAGE]):
                if args.json:
                    objects.append(_document_json(doc))
                else:
                    lines.append(_document_line(doc))
            if not bound.more(listing):
                break
    if args.json:
        print(json.dumps(objects, indent=2), file=out)
        return EXIT_OK
    print(f"{len(lines)} document(s) in knowledge base {dataset_id}", file=out)
    for line in lines:
        print(line, file=out)
    if bound.capped:
        print(
            f"(stopped after {MAX_LIST_PAGES} pages: the server still said there were more)",
            file=out,
        )
    return EXIT_OK


def _document_line(doc: DifyDocument) -> str:
    status = shown(doc.display_status or str(doc.indexing_status or "-"), ID_LIMIT)
    return f"  {shown(doc.id, ID_LIMIT)}  {status:<10} {shown(doc.name, NAME_LIMIT)}"


def _document_json(doc: DifyDocument) -> dict[str, Any]:
    shown_doc: dict[str, Any] = shown_json(scrubbed_document(doc).model_dump(mode="json"))
    return shown_doc
