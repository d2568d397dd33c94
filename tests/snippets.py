"""Run documentation snippets as a reader would: a fresh interpreter, this checkout, a shell.

Shared by the README test and the docs-site test. A snippet runs with warnings as errors, in
its own temporary folder, with ``dify-ingest`` on ``PATH`` meaning this checkout, and with no
``DIFY_*`` setting of the caller's leaking in (only those the test passes).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The HTML comment that, right above a fenced block, keeps it out of the test run.
NO_TEST = "<!-- no-test -->"

_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Snippet:
    """One fenced ```python block of a Markdown page."""

    page: Path
    line: int  # of the opening fence, 1-based
    source: str
    skipped: bool  # marked <!-- no-test -->

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT).as_posix()}:{self.line}"


def python_blocks(page: Path) -> list[Snippet]:
    """Every ```python block of ``page``, in order, with whether it is marked no-test."""
    text = page.read_text(encoding="utf-8")
    blocks = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        blocks.append(
            Snippet(
                page=page,
                line=text.count("\n", 0, match.start()) + 1,
                source=match.group(1),
                skipped=before == NO_TEST,
            )
        )
    return blocks


def run_snippet(
    tmp_path: Path, source: str, env_extra: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``source`` as a script in ``tmp_path`` with this checkout and ``env_extra``."""
    script = tmp_path / "snippet.py"
    script.write_text(source, encoding="utf-8")
    root = str(ROOT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFY_")}
    env["DIFY_INGEST_LEDGER"] = os.environ["DIFY_INGEST_LEDGER"]  # the session's throwaway one
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    env.update(env_extra or {})
    # `dify-ingest` runs this checkout. A shim, since MCP's stdio client starts servers with a
    # minimal environment (no PYTHONPATH) and an installed script may be another checkout's.
    shims = tmp_path / "bin"
    shims.mkdir(exist_ok=True)
    shim = shims / "dify-ingest"
    shim.write_text(
        f'#!/bin/sh\nDIFY_INGEST_LEDGER="{env["DIFY_INGEST_LEDGER"]}" PYTHONPATH="{root}" '
        f'exec "{sys.executable}" -m dify_ingest_tools.cli "$@"\n'
    )
    shim.chmod(0o755)
    env["PATH"] = os.pathsep.join([str(shims), env.get("PATH", "")])
    return subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=tmp_path,
    )
