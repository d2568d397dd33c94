"""Import time of dify_ingest_tools and its adapters, next to what they stand on.

Each import runs in a fresh interpreter (``python -c "import ..."``), several times,
interleaved; the median is kept. Bytecode is compiled first so every side starts from .pyc
files, as an installed package does.

Rows: ``aiohttp + pydantic`` (the baseline) vs ``dify_ingest_tools``; the frameworks alone vs
our adapters (which import the framework). Target: ``import dify_ingest_tools`` <= 1.2x the
baseline, with no framework imported. The package loads its public names on first use (as
pydantic does), so a row importing both clients shows what a program using them pays.

    python benchmarks/bench_import.py [--runs 15]
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROWS = [
    ("aiohttp + pydantic", "import aiohttp, pydantic"),
    ("aiohttp + pydantic.BaseModel", "import aiohttp, pydantic; pydantic.BaseModel"),
    ("dify_ingest_tools", "import dify_ingest_tools"),
    (
        "dify_ingest_tools: both clients",
        "from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyKnowledgeClient",
    ),
    (
        "langchain_core (tools, retrievers, runnables)",
        "import langchain_core.tools, langchain_core.retrievers, langchain_core.runnables",
    ),
    ("dify_ingest_tools.langchain", "import dify_ingest_tools.langchain"),
    ("llama_index.core", "import llama_index.core"),
    ("dify_ingest_tools.llama_index", "import dify_ingest_tools.llama_index"),
]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # compare .pyc with .pyc
    return env


def _once(code: str, env: dict[str, str]) -> float | None:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
    elapsed = time.perf_counter() - started
    return elapsed if done.returncode == 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    compileall.compile_dir(str(Path(__file__).resolve().parents[1] / "dify_ingest_tools"), quiet=1)
    env = _env()
    for _, code in ROWS:  # warm the OS file cache and write any missing .pyc
        _once(code, env)
    samples: dict[str, list[float]] = {label: [] for label, _ in ROWS}
    missing: set[str] = set()
    for _ in range(args.runs):
        for label, code in ROWS:
            if label in missing:
                continue
            elapsed = _once(code, env)
            if elapsed is None:
                missing.add(label)
            else:
                samples[label].append(elapsed)
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, dify_ingest_tools; print(sorted({m.split('.')[0] "
            "for m in sys.modules if m.startswith(('langchain', 'llama_index'))}))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"median of {args.runs} fresh interpreters (includes interpreter start-up)\n")
    median = {label: statistics.median(v) * 1000 for label, v in samples.items() if v}
    print(f"{'import':<46} | {'ms':>6}")
    print("-" * 55)
    for label, _ in ROWS:
        value = f"{median[label]:6.0f}" if label in median else "  n/a (not installed)"
        print(f"{label:<46} | {value}")
    print()
    base = median["aiohttp + pydantic"]
    ours = median["dify_ingest_tools"]
    ratio = ours / base
    verdict = "PASS" if ratio <= 1.2 else "FAIL"
    print(f"{verdict}  dify_ingest_tools / (aiohttp + pydantic) = {ratio:.2f} (target <= 1.2)")
    print(
        f"      dify_ingest_tools / (aiohttp + pydantic.BaseModel) = "
        f"{ours / median['aiohttp + pydantic.BaseModel']:.2f} "
        "(pydantic loads its model machinery lazily, on first use of BaseModel)"
    )
    print(
        "      (both clients) / (aiohttp + pydantic) = "
        f"{median['dify_ingest_tools: both clients'] / base:.2f}; the package loads its names "
        "on first use (PEP 562), so this row is what a program using the client pays"
    )
    print(f"frameworks imported by `import dify_ingest_tools`: {probe.stdout.strip()}")
    for ours_label, theirs_label in (
        ("dify_ingest_tools.langchain", "langchain_core (tools, retrievers, runnables)"),
        ("dify_ingest_tools.llama_index", "llama_index.core"),
    ):
        if ours_label in median and theirs_label in median:
            print(f"{ours_label} / {theirs_label}: {median[ours_label] / median[theirs_label]:.2f}")


if __name__ == "__main__":
    main()
