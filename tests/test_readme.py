"""The README's self-contained example runs as written (the newcomer's first ten minutes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _block_after(marker: str) -> str:
    text = README.read_text()
    start = text.index("```python\n", text.index(marker)) + len("```python\n")
    return text[start : text.index("```", start)]


def test_the_simulator_quick_start_runs_as_written(tmp_path: Path) -> None:
    script = tmp_path / "quick_start.py"
    script.write_text(_block_after("No Dify server at hand?"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFY_")}
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert ": ready — 1/1 documents completed" in done.stdout
    assert "Refunds are possible within 30 days." in done.stdout
