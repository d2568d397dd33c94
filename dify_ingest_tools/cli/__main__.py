"""``python -m dify_ingest_tools.cli``: the ``dify-ingest`` command."""

from dify_ingest_tools.cli.app import main

if __name__ == "__main__":
    raise SystemExit(main())
