"""The ``dify-ingest`` command: every command follows one protocol (see `app`)."""

from dify_ingest_tools.cli.app import main
from dify_ingest_tools.cli.common import (
    EXIT_API,
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_NOT_READY,
    EXIT_OK,
    EXIT_USAGE,
)

__all__ = [
    "EXIT_API",
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_READY",
    "EXIT_OK",
    "EXIT_USAGE",
    "main",
]
