"""Progress bars on a real terminal: the CLI runs under a pty, its output is fed to a terminal
emulator (``pyte``), and the final screen is read back.

A clean screen is one where every line is either a whole bar line (on one row, within the
width) or a whole line the command printed; bars that were redrawn over event lines, or a
label that wrapped, leave fragments that match neither. Rows the terminal wrapped (a long
printed line) are joined back first: the emulator below records which rows it entered by
wrapping.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dify_ingest_tools import AsyncDifyKnowledgeClient, IndexingFailedError
from dify_ingest_tools.readiness.progress import ProgressBars, should_draw_bars
from dify_ingest_tools.testing import DifySimulator, DocumentScript
from tests.conftest import QUICK

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")

WIDTHS = [80, 120]
ROWS = 60
#: Longer than any bar label may be at these widths: it must be cut in the bar, whole elsewhere.
LONG_ERROR = (
    "Failed to load document (PDFium: Data format error). The file header is damaged beyond "
    "repair: export it again from the scanning software and upload the new file."
)
BAR = re.compile(r"batch \d{20}( ready| FAILED| not ready| STALLED)?: .*\]")


@dataclass
class Screen:
    """The final screen: logical lines (wrapped rows joined) and which came from one row."""

    lines: list[str]
    single_row: list[bool]
    exit_status: int | None

    def text(self) -> str:
        return "\n".join(self.lines)


def _emulator(columns: int) -> tuple[object, object]:
    pyte = pytest.importorskip("pyte")

    class WrapRecordingScreen(pyte.Screen):  # type: ignore[misc,name-defined]
        """A pyte screen that remembers which rows it entered by wrapping a long line."""

        def __init__(self, columns: int, lines: int) -> None:
            self.continued: set[int] = set()
            super().__init__(columns, lines)

        def draw(self, data: str) -> None:
            for char in data:
                wraps = self.cursor.x >= self.columns and pyte.modes.DECAWM in self.mode
                if not wraps and self.cursor.x == 0:
                    self.continued.discard(self.cursor.y)  # a new line written over it
                super().draw(char)
                if wraps:
                    self.continued.add(self.cursor.y)

        def index(self) -> None:
            if self.cursor.y == self.lines - 1:  # the screen scrolls up one row
                self.continued = {row - 1 for row in self.continued if row > 0}
            super().index()

    screen = WrapRecordingScreen(columns, ROWS)
    return screen, pyte.Stream(screen)


def _run_in_terminal(
    args: list[str], columns: int, env: dict[str, str], term: str = "xterm"
) -> Screen:
    pexpect = pytest.importorskip("pexpect")
    screen, stream = _emulator(columns)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "dify_ingest_tools.cli", *args],
        dimensions=(ROWS, columns),
        encoding="utf-8",
        env={**env, "TERM": term, "COLUMNS": str(columns), "LINES": str(ROWS)},
        timeout=60,
    )
    try:
        while True:
            try:
                stream.feed(child.read_nonblocking(65536, timeout=60))  # type: ignore[attr-defined]
            except pexpect.EOF:
                break
    finally:
        child.close()
    continued: set[int] = screen.continued  # type: ignore[attr-defined]
    lines: list[str] = []
    single: list[bool] = []
    # A wrapped row was filled to the last column: the full-width rows join exactly.
    for index, row in enumerate(screen.display):  # type: ignore[attr-defined]
        if index in continued and lines:
            lines[-1] += row
            single[-1] = False
        else:
            lines.append(row)
            single.append(True)
    kept = [(line.rstrip(), one) for line, one in zip(lines, single, strict=True) if line.strip()]
    return Screen([line for line, _ in kept], [one for _, one in kept], child.exitstatus)


def _clean_env(**dify: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DIFY_")}
    env["DIFY_INGEST_LEDGER"] = os.environ["DIFY_INGEST_LEDGER"]
    return {**env, **dify}


def _assert_clean(screen: Screen, columns: int, printed: list[re.Pattern[str]]) -> list[str]:
    """Every line is a whole bar on one row or a whole printed line; returns the bar lines."""
    bars: list[str] = []
    garbage: list[str] = []
    for line, one_row in zip(screen.lines, screen.single_row, strict=True):
        if BAR.fullmatch(line):
            assert one_row and len(line) <= columns, f"a bar wrapped: {line!r}"
            bars.append(line)
        elif not any(pattern.fullmatch(line) for pattern in printed):
            garbage.append(line)
    shown = "\n".join(garbage) + "\n---\n" + screen.text()
    assert not garbage, f"fragments on the screen:\n{shown}"
    return bars


# Lines `dify-ingest demo` prints (stdout), whole.
DEMO_LINES = [
    re.compile(p)
    for p in (
        r"Dify simulator listening on http://127\.0\.0\.1:\d+/v1 \(no API key needed\)",
        r"uploaded '[\w.-]+': batch \d{20} \(waiting\)",
        r"waiting for indexing \(progress bars on stderr\):",
        r" +\d+\.\ds  [\w-]+\.txt indexed",
        r" +\d+\.\ds  broken-scan\.pdf FAILED: Failed to load document \(PDFium: Data format "
        r"error\)\.",
        r"3 of 4 batches ready, 1 failed, in \d+\.\ds",
        r"  expected failure — Batch \d{20} of dataset [\w-]+: FAILED — .*Failed to load "
        r"document \(PDFium: Data format error\)\.",
        r"retrieve '[^']+': \d hit\(s\)",
        r"  \d\.\d\d  [\w.-]+ +'.*'",
    )
]


@pytest.mark.parametrize("columns", WIDTHS)
def test_demo_on_a_terminal_leaves_whole_bars_and_whole_event_lines(columns: int) -> None:
    screen = _run_in_terminal(["demo"], columns, _clean_env())
    assert screen.exit_status == 0, screen.text()
    bars = _assert_clean(screen, columns, DEMO_LINES)
    # One final line per batch, in upload order: three ready, the broken one FAILED.
    assert [line.split(":")[0].split(" ", 2)[-1] for line in bars] == [
        "ready",
        "ready",
        "ready",
        "FAILED",
    ], bars
    assert len({line.split()[1] for line in bars}) == 4
    # The event lines all made it, and the failure's text is whole in its own line.
    text = screen.text()
    for name in ("dify-indexing.txt", "readiness.txt", "operators.txt"):
        assert f"  {name} indexed" in text
    assert "broken-scan.pdf FAILED: Failed to load document (PDFium: Data format error)." in text


@pytest.fixture
def failing_batches() -> Iterator[tuple[DifySimulator, str, list[str], str]]:
    """Three batches on a simulator served on a port: two index, one fails with a long text."""
    sim = DifySimulator(time_scale=0.2)
    dataset_id = sim.create_dataset("terminal")
    batches = []
    for name in ("guide.txt", "broken-scan.pdf", "notes.txt"):
        script = (
            DocumentScript(fail_at="indexing", error=LONG_ERROR) if name.endswith(".pdf") else None
        )
        _, batch = sim.add_document(dataset_id, name, "alpha\n\nbeta\n\ngamma", script=script)
        batches.append(batch)
    with sim.serve_in_thread() as base_url:
        yield sim, base_url, batches, dataset_id


WAIT_LINES = [
    re.compile(p)
    for p in (
        r"Batch \d{20} of dataset [\w-]+: (ready|FAILED) — .*",
        r"  [\w-]{36}  (completed|error) +\d+/\d+ segments(  error: .*)?",
        r"dify-ingest: Batch \d{20} of dataset [\w-]+: FAILED — .*",
    )
]


@pytest.mark.parametrize("columns", WIDTHS)
def test_wait_on_a_failing_batch_on_a_terminal_leaves_whole_bars(
    columns: int, failing_batches: tuple[DifySimulator, str, list[str], str]
) -> None:
    sim, base_url, batches, dataset_id = failing_batches
    env = _clean_env(DIFY_API_KEY=sim.api_key, DIFY_API_BASE_URL=base_url)
    args = ["wait", dataset_id, *batches, "--poll-interval", "0.05"]
    screen = _run_in_terminal(args, columns, env)
    assert screen.exit_status == 1, screen.text()
    bars = _assert_clean(screen, columns, WAIT_LINES)
    assert [line.split()[1] for line in bars] == batches, bars
    failed = bars[1]
    assert failed.startswith(f"batch {batches[1]} FAILED: ") and failed.endswith("…]"), failed
    # Cut in the bar, whole in the status lines (stdout) and the one-line reason (stderr).
    assert screen.text().count(LONG_ERROR) == 3, screen.text()


def test_bars_are_drawn_only_on_a_terminal_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    leader, follower = os.openpty()
    read_end, write_end = os.pipe()
    with (
        open(follower, "w", closefd=True) as terminal,
        open(write_end, "w", closefd=True) as pipe,
    ):
        os.close(read_end)
        assert should_draw_bars(terminal)
        assert not should_draw_bars(pipe)
        assert not should_draw_bars(io.StringIO())
        assert should_draw_bars(pipe, asked=True)  # --progress
        assert not should_draw_bars(terminal, asked=False)  # --no-progress
        monkeypatch.setenv("TERM", "dumb")  # no cursor movement: no bars
        assert not should_draw_bars(terminal)
    os.close(leader)
    closed = open(os.devnull, "w")  # noqa: SIM115 - closed on purpose, then asked
    closed.close()
    assert not should_draw_bars(closed)


@pytest.mark.usefixtures("advancing")
async def test_a_failure_text_with_line_breaks_and_escapes_stays_on_the_bars_one_line(
    sim: DifySimulator, client: AsyncDifyKnowledgeClient, dataset_id: str
) -> None:
    hostile = "line one\nline two\r\x1b[2J\x1b[31mred\x07 " + "x" * 5000
    script = DocumentScript(fail_at="indexing", error=hostile)
    _, batch = sim.add_document(dataset_id, "b.txt", "a\n\nb", script=script)
    out = io.StringIO()
    with ProgressBars(file=out, ncols=200) as bars, pytest.raises(IndexingFailedError):
        await client.wait_for_indexing(dataset_id, batch, timeout=10, on_event=bars, **QUICK)
    drawn = out.getvalue()
    assert "\n" not in drawn.rstrip("\n"), drawn  # every redraw is "\r" + one line
    assert "\x1b[2J" not in drawn and "\x07" not in drawn
    final = drawn.rstrip("\n").split("\r")[-1]
    assert final.startswith(f"batch {batch} FAILED:") and "line one\\nline two" in final


@pytest.fixture
def served() -> Iterator[tuple[DifySimulator, str, str]]:
    sim = DifySimulator(time_scale=0.1)
    dataset_id = sim.create_dataset("upload")
    with sim.serve_in_thread() as base_url:
        yield sim, base_url, dataset_id


def test_upload_wait_draws_bars_on_a_terminal_and_none_into_a_pipe(
    served: tuple[DifySimulator, str, str], tmp_path: Path
) -> None:
    sim, base_url, dataset_id = served
    (tmp_path / "guide.txt").write_text("alpha\n\nbeta")
    env = _clean_env(
        DIFY_API_KEY=sim.api_key, DIFY_API_BASE_URL=base_url, DIFY_DATASET_ID=dataset_id
    )
    args = ["upload", str(tmp_path / "guide.txt"), "--wait"]
    piped = subprocess.run(
        [sys.executable, "-m", "dify_ingest_tools.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert "uploaded guide.txt" in piped.stdout
    assert "seg" not in piped.stderr and "\r" not in piped.stderr, piped.stderr
    upload_lines = [
        re.compile(r"uploaded guide\.txt: document [\w-]{36}, batch \d{20}"),
        re.compile(r" +Batch \d{20} of dataset [\w-]+: ready — .*"),
    ]
    screen = _run_in_terminal(args, 80, env)
    assert screen.exit_status == 0, screen.text()
    [bar] = _assert_clean(screen, 80, upload_lines)
    assert bar.startswith("batch ") and " ready: 100%" in bar


def test_wait_pending_draws_bars_by_the_one_terminal_rule(
    served: tuple[DifySimulator, str, str], tmp_path: Path
) -> None:
    # `wait --pending` decides like every command (`should_draw_bars`): a terminal that
    # cannot move its cursor (TERM=dumb) gets no bars, a real one does.
    sim, base_url, dataset_id = served
    env = _clean_env(
        DIFY_API_KEY=sim.api_key,
        DIFY_API_BASE_URL=base_url,
        DIFY_DATASET_ID=dataset_id,
        DIFY_INGEST_LEDGER=str(tmp_path / "ledger.db"),
    )
    for term, drawn in (("dumb", False), ("xterm", True)):
        (tmp_path / f"{term}.txt").write_text("alpha\n\nbeta")
        sent = subprocess.run(
            [
                sys.executable,
                "-m",
                "dify_ingest_tools.cli",
                "upload",
                str(tmp_path / f"{term}.txt"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert sent.returncode == 0, sent.stderr
        screen = _run_in_terminal(["wait", "--pending", "--dataset", dataset_id], 80, env, term)
        assert screen.exit_status == 0, screen.text()
        bars = [line for line in screen.lines if "%" in line and line.startswith("batch ")]
        assert bool(bars) is drawn, (term, screen.text())
