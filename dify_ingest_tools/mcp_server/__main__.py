"""``python -m dify_ingest_tools.mcp_server [options]``: the same as ``dify-ingest mcp``."""

import sys

from ..cli import main

if __name__ == "__main__":
    raise SystemExit(main(["mcp", *sys.argv[1:]]))
