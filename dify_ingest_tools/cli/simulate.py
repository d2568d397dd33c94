"""``dify-ingest simulate``: serve the Dify simulator, with documents scripted by name pattern.

``--fail 'bad*' --stall 'stuck*' --pause 'hold*' --slow 'big*=30'`` let a user rehearse
failures against a local stand-in; ``--log`` streams every request it answers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fnmatch
import re
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import IO, TYPE_CHECKING, Literal
from urllib.parse import urlencode

from dify_ingest_tools.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CLIError,
    OneLineParser,
    finite_float,
    listen_failure,
    port_number,
    wrapped,
)

if TYPE_CHECKING:
    from dify_ingest_tools.testing import DocumentScript, RequestRecord

#: Not 5001: that is Dify's own API port, and a simulator must never shadow a real server.
#: A fixed default keeps the whole setup stable across runs (the key and the seeded dataset id
#: are fixed too); ``--port 0`` picks a free port instead.
DEFAULT_PORT = 5101

RuleKind = Literal["fail", "stall", "pause", "slow"]

# The simulator's default timeline (see testing._script.DEFAULT_STAGES); kept here as names
# so parsing the options does not import the simulator.
_STAGES = ("waiting", "parsing", "splitting", "indexing")
_DEFAULT_STAGE: dict[RuleKind, str] = {"fail": "parsing", "stall": "indexing", "pause": "indexing"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class DocumentRule:
    """One ``--fail``/``--stall``/``--pause``/``--slow`` option.

    Attributes:
        kind: What happens to matching documents.
        pattern: A shell-style pattern (``fnmatch``, case-sensitive) matched against the
            document name (the file name for uploads).
        stage: Where ``fail``/``stall``/``pause`` strike.
        error: The error text of a ``fail`` rule (None: a default naming the rule).
        seconds: How long a ``slow`` document takes to index, before ``--time-scale``.
    """

    kind: RuleKind
    pattern: str
    stage: str | None = None
    error: str | None = None
    seconds: float | None = None

    def matches(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name, self.pattern)

    def describe(self, time_scale: float = 1.0) -> str:
        """One line for the banner."""
        if self.kind == "slow" and self.seconds is not None:
            scaled = "" if time_scale == 1 else f" ({self.seconds * time_scale:g}s at this scale)"
            return f"{self.pattern!r} takes {self.seconds:g}s to index{scaled}"
        verb = {"fail": "fails", "stall": "stalls", "pause": "is paused"}[self.kind]
        text = f"{self.pattern!r} {verb} at {self.stage}"
        if self.kind == "fail":
            text += f": {self.failure_text()}"
        return text

    def failure_text(self) -> str:
        return self.error or f"Simulated failure (dify-ingest simulate --fail {self.pattern!r})."


def rule_type(kind: RuleKind) -> Callable[[str], DocumentRule]:
    """An argparse ``type=`` parsing ``PATTERN[@STAGE][=VALUE]`` for one rule kind."""
    seconds = finite_float(inclusive=True, unit=" of seconds")

    def parse(text: str) -> DocumentRule:
        head, has_value, value = text.partition("=")
        pattern, has_stage, stage = head.rpartition("@") if "@" in head else (head, "", "")
        if not pattern:
            raise argparse.ArgumentTypeError(f"expected PATTERN{_syntax(kind)}, got {text!r}")
        if has_stage:
            if kind == "slow":
                raise argparse.ArgumentTypeError(f"expected PATTERN=SECONDS, got {text!r}")
            if stage not in _STAGES:
                raise argparse.ArgumentTypeError(
                    f"{stage!r} is not a stage; stages are {', '.join(_STAGES)} "
                    "(write [@] to match a literal @)"
                )
        if kind == "slow":
            if not has_value:
                raise argparse.ArgumentTypeError(f"expected PATTERN=SECONDS, got {text!r}")
            return DocumentRule(kind, pattern, seconds=seconds(value))
        if has_value and kind != "fail":
            raise argparse.ArgumentTypeError(f"expected PATTERN[@STAGE], got {text!r}")
        if has_value and not value.strip():
            raise argparse.ArgumentTypeError(f"the error text after '=' is empty in {text!r}")
        return DocumentRule(
            kind, pattern, stage=stage or _DEFAULT_STAGE[kind], error=value if has_value else None
        )

    parse.__name__ = f"--{kind} rule"
    return parse


def _syntax(kind: RuleKind) -> str:
    return {"fail": "[@STAGE][=ERROR]", "slow": "=SECONDS"}.get(kind, "[@STAGE]")


class PatternScripts:
    """A simulator ``script_resolver``: the first matching rule of each kind applies.

    A document matching several kinds combines them (e.g. slow *and* failing at indexing).

    Args:
        rules: The rules, in command-line order.
        time_scale: The simulator's ``time_scale``; ``slow`` durations are scaled by it too.
    """

    def __init__(self, rules: Sequence[DocumentRule], time_scale: float) -> None:
        from dify_ingest_tools.testing._script import DEFAULT_STAGES

        self.rules = tuple(rules)
        self._time_scale = time_scale
        self._base_seconds = sum(seconds for _, seconds in DEFAULT_STAGES)

    def _first(self, kind: RuleKind, name: str) -> DocumentRule | None:
        return next((r for r in self.rules if r.kind == kind and r.matches(name)), None)

    def __call__(self, name: str) -> DocumentScript | None:
        from dify_ingest_tools.testing import DocumentScript

        fail, stall, pause, slow = (
            self._first(kind, name) for kind in ("fail", "stall", "pause", "slow")
        )
        if fail is None and stall is None and pause is None and slow is None:
            return None
        script = DocumentScript(
            stall_at=stall.stage if stall else None, pause_at=pause.stage if pause else None
        )
        if fail is not None:
            script = replace(script, fail_at=fail.stage, error=fail.failure_text())
        if slow is not None and slow.seconds is not None:
            scale = self._time_scale * slow.seconds / self._base_seconds
            script = replace(script, time_scale=scale)
        return script


def request_logger(stream: IO[str]) -> Callable[[RequestRecord], None]:
    """A simulator request listener writing one line per request to ``stream``."""
    # Records carry the simulator clock (time.monotonic); show wall-clock time instead.
    offset = time.time() - time.monotonic()

    def log(record: RequestRecord) -> None:
        wall = record.at + offset
        stamp = time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall % 1 * 1000):03d}"
        target = record.path + (f"?{urlencode(record.query)}" if record.query else "")
        notes = [record.route or "no route"]
        if record.fault:
            notes.append(f"fault: {record.fault}")
        if not record.authorized:
            notes.append("no valid key")
        status = str(record.status) if record.status else "dropped"
        line = f"{stamp} {record.method} {target} -> {status} ({', '.join(notes)})"
        # A percent-encoded newline in a path must not forge log lines.
        stream.write(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", line) + "\n")
        stream.flush()

    return log


def add_parser(commands: argparse._SubParsersAction[OneLineParser]) -> None:
    """Register ``simulate`` and its options."""
    from dify_ingest_tools.cli.common import EXIT_CODES_HELP

    simulate = commands.add_parser(
        "simulate",
        help="serve the Dify simulator on a port, optionally with scripted failures",
        description=wrapped(
            "Serve a local stand-in for Dify's Knowledge API (as recorded from Dify 1.14.1) "
            "and script how documents behave by name pattern, to rehearse failures. "
            "PATTERN is shell-style (fnmatch, case-sensitive) on the document name; STAGE is "
            f"one of {', '.join(_STAGES)}. The first matching rule of each kind applies."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    simulate.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    simulate.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}, not Dify's 5001); 0 picks a free one",
    )
    simulate.add_argument(
        "--time-scale",
        type=finite_float(inclusive=True),
        default=1.0,
        metavar="FACTOR",
        help="multiply every simulated duration, e.g. 0.1 for ten times faster (default 1)",
    )
    simulate.add_argument(
        "--fail",
        type=rule_type("fail"),
        action="append",
        default=[],
        metavar="PATTERN[@STAGE][=ERROR]",
        help="matching documents end in `error` at STAGE (parsing) with ERROR as Dify's text",
    )
    simulate.add_argument(
        "--stall",
        type=rule_type("stall"),
        action="append",
        default=[],
        metavar="PATTERN[@STAGE]",
        help="matching documents stop at STAGE (indexing) for ever: a dead worker",
    )
    simulate.add_argument(
        "--pause",
        type=rule_type("pause"),
        action="append",
        default=[],
        metavar="PATTERN[@STAGE]",
        help="matching documents are paused at STAGE (indexing), as from Dify's console",
    )
    simulate.add_argument(
        "--slow",
        type=rule_type("slow"),
        action="append",
        default=[],
        metavar="PATTERN=SECONDS",
        help="matching documents take SECONDS to index (scaled by --time-scale)",
    )
    simulate.add_argument(
        "--log",
        nargs="?",
        const="-",
        metavar="FILE",
        help="log every request, one line each, to FILE (appended) or, without FILE, to stderr",
    )
    simulate.set_defaults(handler=run)


def _open_log(path: str | None, err: IO[str]) -> tuple[IO[str] | None, bool]:
    """The log stream, and whether this command opened it (and must close it)."""
    if path is None:
        return None, False
    if path == "-":
        return err, False
    try:
        return open(path, "a", encoding="utf-8", buffering=1), True
    except OSError as exc:
        raise CLIError(
            f"cannot open the request log {path!r}: {exc.strerror or exc}", EXIT_USAGE
        ) from None


async def run(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """Serve until Ctrl-C; the banner on ``out`` says where and how to connect."""
    from dify_ingest_tools.testing import DifySimulator, describe, serve_forever

    rules: list[DocumentRule] = [*args.fail, *args.stall, *args.pause, *args.slow]
    simulator = DifySimulator(time_scale=args.time_scale)
    if rules:
        simulator.script_resolver = PatternScripts(rules, args.time_scale)
    log, owned = _open_log(args.log, err)
    if log is not None:
        simulator.add_request_listener(request_logger(log))

    def ready(base_url: str) -> None:
        print(describe(simulator), file=out)
        if rules or log is not None:
            print(file=out)
        for rule in rules:
            print(f"  script   : {rule.describe(args.time_scale)}", file=out)
        if log is not None:
            print(f"  requests : logged to {'stderr' if args.log == '-' else args.log}", file=out)
        print("Press Ctrl-C to stop.", file=out, flush=True)

    serving = asyncio.ensure_future(serve_forever(simulator, args.host, args.port, on_ready=ready))
    loop = asyncio.get_running_loop()
    # Ctrl-C cancels the server task, so it shuts down cleanly on every Python version
    # (before 3.11, asyncio.run let KeyboardInterrupt land anywhere in the loop).
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
        loop.add_signal_handler(signal.SIGINT, serving.cancel)
    try:
        await serving
    except asyncio.CancelledError:
        raise CLIError("interrupted", EXIT_INTERRUPTED) from None
    except OSError as exc:
        raise listen_failure(args.host, args.port, exc) from None
    except UnicodeError as exc:  # the IDNA codec refuses the name before any lookup
        raise CLIError(
            f"cannot listen on {args.host!r}: not a valid host name ({exc})", EXIT_USAGE
        ) from None
    finally:
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGINT)
        if owned and log is not None:
            log.close()
    return 0  # pragma: no cover - serve_forever only ends by cancellation
