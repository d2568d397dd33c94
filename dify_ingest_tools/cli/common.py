"""What every ``dify-ingest`` command shares: exit codes, value checks, one-line errors, redaction.

A command never shows a traceback: `run_command` turns whatever ends it into one line on
stderr and an exit code, and every line the CLI writes passes through `RedactingStream`.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import math
import os
import re
import socket
import sys
import textwrap
from collections.abc import Callable, Iterable
from typing import IO, Any, NoReturn, cast

from dify_ingest_tools._base.config import ENV_API_KEY, ENV_BASE_URL
from dify_ingest_tools._base.shown import escaped, shown
from dify_ingest_tools.errors import (
    DifyAuthenticationError,
    DifyConnectionError,
    DifyError,
    DifyNotFoundError,
    DifyResponseError,
    DifyTimeoutError,
)
from dify_ingest_tools.models.outcome import Outcome
from dify_ingest_tools.readiness.policy import outcome_of

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_API = 3
EXIT_NOT_READY = 4
#: sysexits' EX_SOFTWARE: a bug in this program, not in the user's setup.
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
#: What a shell reports for a writer killed by SIGPIPE (Python ignores the signal).
EXIT_BROKEN_PIPE = 141

EXIT_CODES_HELP = """\
exit codes:
  0    ready / success
  1    indexing failed (a document ended in `error`)
  2    usage error: bad arguments, no API key, malformed id
  3    API, auth, connection or configuration error (wrong --base-url, nothing
       listening, an HTML page instead of Dify's API, bad key, unknown dataset or
       batch, simulate cannot listen)
  4    not ready: still indexing at --timeout, stalled, paused, or empty (indexed,
       but a document produced no chunks: nothing will be found; see --on-empty)
  70   internal error (a bug: please report it)
  130  interrupted (Ctrl-C)"""

#: Longest line the CLI prints for one error; server text beyond it is cut and marked.
MAX_LINE = 2000
_SHORTEST_SECRET = 8
#: The library's own marker for redacted text (errors.scrub), so output reads the same.
REDACTED = "[redacted]"
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+")
# What `RedactingStream(escape=True)` escapes: controls but the line's own newline and tabs.
_UNSAFE_OUTPUT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def wrapped(text: str) -> str:
    """A help paragraph wrapped for the terminal (the help keeps the epilog's own layout)."""
    return textwrap.fill(" ".join(text.split()), width=79)


class CLIError(Exception):
    """A failure the CLI explains itself: ``message`` is printed as is, with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        self.exit_code = exit_code
        super().__init__(message)


class OneLineParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose usage errors are one line on stderr (exit 2)."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(EXIT_USAGE, f"{self.prog}: error: {text} (see '{self.prog} --help')\n")


# -- values ----------------------------------------------------------------------------------


def finite_float(
    *, minimum: float = 0.0, inclusive: bool = False, unit: str = ""
) -> Callable[[str], float]:
    """An argparse ``type=`` for a finite number above ``minimum`` (NaN and ±inf refused)."""
    bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
    what = f"a finite number{unit} {bound}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = "number"  # what argparse names in its own messages
    return parse


#: Seconds for a timeout or an interval: finite and > 0.
seconds = finite_float(unit=" of seconds")


def port_number(text: str) -> int:
    """An argparse ``type=`` for a TCP port: 0 (any free port) to 65535."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return value


_SIZE = re.compile(r"\s*(\d+)\s*([KMG]?)(?:i?B)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def file_size(text: str) -> int:
    """An argparse ``type=`` for ``--max-file-size``: bytes, or K/M/G (binary, as Dify counts
    its limit in MiB)."""
    match = _SIZE.fullmatch(text)
    if match is None or int(match[1]) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size: give bytes, or a number with K, M or G (e.g. 15M)"
        )
    return int(match[1]) * _UNITS[match[2].upper()]


def require_api_key(api_key: str | None) -> None:
    """Fail in the CLI's own words when no key is given (the library speaks ``api_key=``)."""
    if (api_key if api_key is not None else os.environ.get(ENV_API_KEY, "")).strip():
        return
    raise CLIError(
        f"no Dify API key: pass --api-key KEY or set {ENV_API_KEY} to a Knowledge (dataset) "
        "API key from Dify's Knowledge > API page. To try without one, run `dify-ingest demo`."
    )


def check_client_args(api_key: str | None, base_url: str | None) -> None:
    """`require_api_key` and `check_base_url`: what a command checks before making a client."""
    require_api_key(api_key)
    check_base_url(base_url)


def check_base_url(base_url: str | None) -> None:
    """Refuse a ``--base-url`` that is not an http(s) URL, in the CLI's own words."""
    from yarl import URL

    raw = base_url if base_url is not None else os.environ.get(ENV_BASE_URL)
    if not raw:
        return
    where = "--base-url" if base_url is not None else ENV_BASE_URL
    try:
        url = URL(raw.strip())
    except ValueError:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise CLIError(
            f"{where} must be an http(s) URL of Dify's API root, such as "
            "https://api.dify.ai/v1 or http://localhost/v1"
        )


# -- errors ----------------------------------------------------------------------------------


#: The CLI's word for each way a wait ends (``--json``'s ``reason``), from the one `Outcome`.
STOP_REASONS: dict[Outcome, str] = {
    Outcome.ready: "ready",
    Outcome.failed: "failed",
    Outcome.paused: "paused",
    Outcome.stalled: "stalled",
    Outcome.timed_out: "timeout",
    Outcome.cancelled: "interrupted",
    Outcome.empty: "empty",
    Outcome.unreachable: "error",
    Outcome.not_found: "error",
}


def stop_reason(error: BaseException | None) -> str:
    """Why a wait stopped, in one word: ready, failed, timeout, stalled, paused, error, ..."""
    if error is None:
        return "ready"
    outcome = outcome_of(error=error)
    return STOP_REASONS[outcome] if outcome is not None else "error"


def exit_code_for(error: BaseException) -> int:
    """The documented exit code for whatever ended a command (see `EXIT_CODES_HELP`)."""
    if isinstance(error, CLIError):
        return error.exit_code
    if isinstance(error, (KeyboardInterrupt, asyncio.CancelledError)):
        return EXIT_INTERRUPTED
    reason = stop_reason(error)
    if reason in ("timeout", "stalled", "paused", "empty"):
        return EXIT_NOT_READY
    if reason == "failed":
        return EXIT_FAILED
    if isinstance(error, DifyError):
        return EXIT_API
    if isinstance(error, (ValueError, TypeError)):
        return EXIT_USAGE
    if isinstance(error, (OSError, TimeoutError)):
        return EXIT_API
    return EXIT_INTERNAL


def _cli_hint(error: BaseException) -> str | None:
    """What to check, in the CLI's words (options and variables, not ``base_url=``)."""
    base_url = f"--base-url / {ENV_BASE_URL}"
    api_root = "Dify's API root ending in /v1, e.g. https://api.dify.ai/v1"
    if isinstance(error, DifyAuthenticationError):
        return (
            f"Check --api-key / {ENV_API_KEY}: it must be a Knowledge (dataset) API key "
            "(dataset-...), not an app key."
        )
    if isinstance(error, DifyNotFoundError) and error.resource == "route":
        return f"Check {base_url}: it must be {api_root}."
    if isinstance(error, DifyNotFoundError) and error.resource == "dataset":
        return "Check the dataset id, and that the key belongs to the dataset's workspace."
    if isinstance(error, DifyResponseError):
        return (
            f"This does not look like Dify's Knowledge API: check {base_url} ({api_root}; "
            "not the web console)."
        )
    if isinstance(error, DifyTimeoutError):
        return (
            f"No answer in time: check {base_url} (a firewall or proxy that swallows requests "
            "looks like this), or allow more with --timeout."
        )
    if isinstance(error, DifyConnectionError):
        return f"Is Dify running there? Check {base_url}: it must be {api_root}."
    return None


def _with_hint(error: DifyError) -> str:
    """``str(error)`` with its hint in the CLI's words where the CLI has its own."""
    text = str(error)
    hint = getattr(error, "hint", None)
    cli_hint = _cli_hint(error)
    if cli_hint is None:
        return text if not hint or hint in text else f"{text} {hint}"
    if hint and text.rstrip().endswith(hint.strip()):
        # The library's hint names its arguments (base_url=...); say the same for the CLI.
        text = text.rstrip()[: -len(hint.strip())].rstrip()
    return f"{text} {cli_hint}"


def describe_error(error: BaseException) -> str:
    """One line for stderr: the error's type and text, and what to check."""
    if isinstance(error, CLIError):
        text = str(error)
    elif isinstance(error, (KeyboardInterrupt, asyncio.CancelledError)):
        text = "interrupted"
    elif isinstance(error, DifyError):
        text = f"{type(error).__name__}: {_with_hint(error)}"
    elif isinstance(error, (ValueError, TypeError)):
        text = f"error: {error}"
    elif isinstance(error, OSError):
        text = f"error: {error.strerror or error}"
        if error.filename:
            text += f": {error.filename}"
    else:
        text = (
            f"internal error, please report it: {type(error).__name__}: {error} "
            "(set DIFY_INGEST_DEBUG=1 for the traceback)"
        )
    return one_line(text)


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """``text`` on one line (newlines and runs of spaces collapsed, other control characters
    escaped, credentials redacted: `_base.shown.shown`), cut to ``limit``."""
    return shown(" ".join(text.split()), limit)


def run_command(command: Callable[[], int], err: Callable[[], IO[str]]) -> int:
    """Run ``command`` and turn anything that ends it into one stderr line and an exit code.

    Args:
        command: The command; returns its exit code.
        err: Gives the stream for that line (a `RedactingStream` over stderr).
    """
    try:
        return command()
    except SystemExit:
        raise
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more can be said; keep Python's shutdown
        # flush of stdout from complaining too.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except BaseException as error:
        stream = err()
        with _quiet():
            if os.environ.get("DIFY_INGEST_DEBUG") and not isinstance(error, KeyboardInterrupt):
                import traceback

                traceback.print_exc(file=stream)
            print(f"dify-ingest: {describe_error(error)}", file=stream, flush=True)
        return exit_code_for(error)


class _quiet:
    """Ignore a broken stream while reporting: the exit code still tells the story."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        return kind is not None and issubclass(kind, OSError)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def listen_failure(host: str, port: int, error: OSError) -> CLIError:
    """A one-line explanation of why a server could not listen on ``host:port``."""
    where = f"{host}:{port}"
    code = error.errno
    if code == errno.EADDRINUSE:
        why = f"port {port} is already in use; pick another with --port, or --port 0 for a free one"
    elif code == errno.EADDRNOTAVAIL:
        why = f"{host} is not an address of this machine (try --host 127.0.0.1)"
    elif code == errno.EACCES:
        why = "permission denied (ports below 1024 need privileges; try --port 0)"
    elif isinstance(error, socket.gaierror):
        why = f"cannot resolve host {host!r} ({error.strerror or error})"
    else:
        why = str(error.strerror or error)
    return CLIError(f"cannot listen on {where}: {why}", EXIT_API)


# -- redaction -------------------------------------------------------------------------------


class RedactingStream:
    """A text stream that masks secrets (and any ``Bearer <token>``) in everything written.

    The last defence for the key: a server or proxy that echoes the ``Authorization`` header
    into an error body or a document's error text does not get it printed by the CLI.
    """

    def __init__(
        self, stream: IO[str], secrets: Iterable[str] = (), *, escape: bool = False
    ) -> None:
        self._stream = stream
        self._escape = escape
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted(
            {s for s in secrets if len(s) >= _SHORTEST_SECRET}, key=len, reverse=True
        )

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        text = _BEARER.sub(r"\1 " + REDACTED, text)
        if self._escape and _UNSAFE_OUTPUT.search(text):
            # The last defence for the terminal: no command writes a control character to
            # stdout on purpose (JSON escapes its own), so one that gets here came from a
            # server or a file name that missed `_base.shown.shown`.
            text = _UNSAFE_OUTPUT.sub(lambda match: escaped(match.group()), text)
        return text

    def write(self, text: str) -> int:
        self._stream.write(self.redact(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        isatty = getattr(self._stream, "isatty", None)
        return bool(isatty and isatty())

    def __getattr__(self, name: str) -> Any:
        # fileno, encoding, ... for tqdm's terminal probing.
        return getattr(self._stream, name)


def redacted(stream: IO[str], secrets: Iterable[str] = (), *, escape: bool = False) -> IO[str]:
    """``stream`` behind a `RedactingStream`, typed as the stream it stands for (``escape``:
    control characters other than newline and tab are written as escapes)."""
    return cast(IO[str], RedactingStream(stream, secrets, escape=escape))
