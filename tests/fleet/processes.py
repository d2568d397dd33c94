"""Run ``tests.fleet.worker`` in real child processes and collect their JSON answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def start(spec: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fleet.worker", json.dumps(spec)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_all(specs: list[dict[str, Any]], timeout: float = 60.0) -> list[dict[str, Any]]:
    """Start every worker at once; return their answers in order (fail on a crash)."""
    processes = [start(spec) for spec in specs]
    answers = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=timeout)
            assert process.returncode == 0, f"worker failed ({process.returncode}):\n{err}"
            answers.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return answers
