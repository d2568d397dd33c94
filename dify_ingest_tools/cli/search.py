"""``dify-ingest search``: what a knowledge base returns for a query, one hit a line."""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from dify_ingest_tools._base.shown import NAME_LIMIT, SHOWN_LIMIT, shown, shown_json
from dify_ingest_tools.cli.common import EXIT_OK, check_client_args
from dify_ingest_tools.cli.dataset_name import dataset_by_name, dataset_or_name
from dify_ingest_tools.client.async_client import AsyncDifyKnowledgeClient


def add_search_command(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    parents: list[argparse.ArgumentParser],
    epilog: str,
) -> None:
    """Add ``search`` to the CLI's subcommands (a job: ``args.job``)."""
    search = commands.add_parser(
        "search", parents=parents, help="search a knowledge base", epilog=epilog
    )
    search.add_argument("query", help="what to look for (Dify allows 250 characters)")
    search.add_argument("--top-k", type=int, default=4, help="number of hits (default 4)")
    search.set_defaults(job=_search)


async def _search(args: argparse.Namespace, out: TextIO) -> int:
    dataset_id, dataset_name = dataset_or_name(args)
    check_client_args(args.api_key, args.base_url)
    async with AsyncDifyKnowledgeClient(args.api_key, args.base_url) as client:
        if dataset_name is not None:
            dataset_id = await dataset_by_name(client, args, dataset_name)
        hits = await client.retrieve(dataset_id, args.query, top_k=args.top_k)
    if args.json:
        shown_hits = [shown_json(hit.model_dump(mode="json")) for hit in hits]
        print(json.dumps(shown_hits, indent=2), file=out)
        return EXIT_OK
    print(f"{len(hits)} hit(s) for {args.query!r}", file=out)
    for hit in hits:
        score = "    -" if hit.score is None else f"{hit.score:5.2f}"
        name = shown(hit.document_name or hit.document_id or "?", NAME_LIMIT)
        text = shown(" ".join(hit.content.split()), SHOWN_LIMIT)
        print(f"{score}  {name}: {text}", file=out)
    return EXIT_OK
