"""``dify-ingest sync`` at 10,000 files: what each run costs Dify, and what it costs us.

Setup. A `DifySimulator` runs in its own process (multiprocessing spawn, real clock, fast
indexing), so its work is not counted as ours. A folder of ``--files`` small text files
(default 10,000, in 100 sub-folders) is synced into one knowledge base by the real CLI, each
run a child process started with a **fresh HOME** (no ledger, no cache: a new machine or a CI
runner), which reports its own peak RSS and CPU time when it exits.

Runs:

1. **first run**: every file is new.
2. **second run, fresh HOME**: nothing changed. The target: only list pages (about one per
   100 documents) and **0** counted requests.
3. **one edited file, fresh HOME**: the target is 1 create plus its share of one metadata
   write.
4. **2 GiB file**: a folder holding one 2 GiB sparse file. With the default limit (Dify's
   15 MB) it is left out before anything reads it; with ``--max-file-size 3G`` it is hashed in
   chunks and streamed to the server (which refuses it with its own limit). Target: peak RSS
   under 200 MB either way.

Measured per run: requests by route, "counted" requests (what Dify's knowledge rate limit
counts: creates, updates, deletes, metadata writes, dataset creation, retrieval), list pages,
counted requests per file, wall time, CPU seconds and peak RSS of the sync process.

    python benchmarks/bench_sync.py               # 10,000 files, about 3 minutes on 2 cores
    python benchmarks/bench_sync.py --files 1000  # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from _sim_process import SimulatorProcess

ROOT = Path(__file__).resolve().parents[1]
#: What Dify's knowledge rate limit counts (the simulator's own list, plus metadata writes).
COUNTED = {
    ("POST", "create_by_file"),
    ("POST", "create_by_text"),
    ("POST", "update_by_text"),
    ("POST", "update_by_file"),
    ("PATCH", "update_by_file"),
    ("DELETE", "delete_document"),
    ("POST", "documents_metadata"),
    ("POST", "metadata_fields"),
    ("POST", "create_dataset"),
    ("POST", "retrieve"),
}

# The child's own peak RSS is VmHWM (ru_maxrss would include the parent's at the fork).
_CHILD = """
import re, resource, sys, time
from dify_ingest_tools.cli import main
started = time.perf_counter()
code = main(sys.argv[1:])
usage = resource.getrusage(resource.RUSAGE_SELF)
peak = re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)
print(f"@@usage {peak} {usage.ru_utime + usage.ru_stime} "
      f"{time.perf_counter() - started}", file=sys.stderr)
sys.exit(code)
"""


def _serve(conn: Connection, time_scale: float) -> None:
    from dify_ingest_tools.testing import DifySimulator

    sim = DifySimulator(time_scale=time_scale)
    with sim.serve_in_thread() as base_url:
        conn.send((base_url, sim.api_key))
        while True:
            command, *args = conn.recv()
            if command == "stop":
                conn.send(None)
                return
            if command == "dataset":
                conn.send(sim.create_dataset(args[0]))
            elif command == "reset":
                sim.clear_requests()
                conn.send(None)
            elif command == "counts":
                conn.send(Counter((r.method, r.route or "-") for r in sim.requests))


def _make_folder(root: Path, files: int) -> None:
    for i in range(files):
        folder = root / f"part{i % 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"note{i:05d}.md").write_text(f"# Note {i}\n\nThe content of note {i}.\n")


def _sync(
    sim: SimulatorProcess, dataset: str, folder: Path, home: Path, *extra: str
) -> tuple[int, dict[str, Any], dict[str, float]]:
    env = {**os.environ, "HOME": str(home), "DIFY_API_KEY": sim.api_key,
           "DIFY_API_BASE_URL": sim.base_url}  # fmt: skip
    for name in ("XDG_CACHE_HOME", "DIFY_INGEST_LEDGER"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, "sync", str(folder), "--dataset", dataset, "--json",
         "--no-progress", "--concurrency", "8", *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    usage_line = next(line for line in done.stderr.splitlines() if line.startswith("@@usage"))
    _, rss_kb, cpu, wall = usage_line.split()
    report = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, report, {"rss_mb": int(rss_kb) / 1024, "cpu": float(cpu),
                                     "wall": float(wall)}  # fmt: skip


def _row(
    label: str, code: int, counts: Counter[tuple[str, str]], usage: dict[str, float], files: int
) -> dict[str, Any]:
    counted = sum(n for key, n in counts.items() if key in COUNTED)
    return {
        "run": label,
        "exit": code,
        "creates": counts[("POST", "create_by_file")],
        "metadata writes": counts[("POST", "documents_metadata")],
        "list pages": counts[("GET", "list_documents")],
        "other reads": sum(
            n for (verb, route), n in counts.items() if verb == "GET" and route != "list_documents"
        ),
        "counted": counted,
        "counted/file": round(counted / files, 4) if files else 0.0,
        "wall s": round(usage["wall"], 1),
        "CPU s": round(usage["cpu"], 1),
        "peak RSS MB": round(usage["rss_mb"]),
    }


def _table(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row[k]) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--time-scale", type=float, default=0.002, help="simulator speed-up")
    parser.add_argument("--skip-huge", action="store_true", help="leave out the 2 GiB rows")
    args = parser.parse_args()
    print(f"# bench_sync: {args.files} files, {platform.python_implementation()} "
          f"{platform.python_version()}, {os.cpu_count()} CPUs")  # fmt: skip
    sim = SimulatorProcess(_serve, args.time_scale)
    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            base = Path(scratch)
            folder = base / "handbook"
            _make_folder(folder, args.files)
            dataset = sim.call("dataset", "bench-sync")

            def run(label: str, target: Path, count: int, *extra: str) -> dict[str, Any]:
                sim.call("reset")
                home = Path(tempfile.mkdtemp(dir=base, prefix="home-"))
                code, report, usage = _sync(sim, dataset, target, home, *extra)
                row = _row(label, code, sim.call("counts"), usage, count)
                rows.append(row)
                print(f"  {label}: exit {code}, uploaded {len(report.get('uploaded', []))}, "
                      f"updated {len(report.get('updated', []))}, skipped "
                      f"{len(report.get('skipped', []))}", flush=True)  # fmt: skip
                return row

            first = run("first run", folder, args.files)
            second = run("second run, fresh HOME", folder, args.files)
            edited = folder / "part07" / "note00007.md"
            edited.write_text(edited.read_text() + "\nOne more line.\n")
            run("one edited file, fresh HOME", folder, args.files)
            if not args.skip_huge:
                huge = base / "huge"
                huge.mkdir()
                with (huge / "video.bin").open("wb") as handle:
                    handle.truncate(2 * 1024**3)
                run("2 GiB file (left out: over 15 MB)", huge, 1)
                run("2 GiB file, --max-file-size 3G (hashed, streamed)", huge, 1,
                    "--max-file-size", "3G")  # fmt: skip
    finally:
        sim.stop()
    print()
    print(_table(rows))
    print()
    ok = second["counted"] == 0 and first["creates"] == args.files
    pages = second["list pages"]
    print(f"second run: {second['counted']} counted requests (target 0), {pages} list pages for "
          f"{args.files} documents (about {args.files / max(pages, 1):.0f} per page)")  # fmt: skip
    print(f"first run: {first['creates'] / args.files:.2f} creates per file, "
          f"{first['metadata writes']} metadata writes for {args.files} files")  # fmt: skip
    huge_rows = [row for row in rows if row["run"].startswith("2 GiB")]
    if huge_rows:
        worst = max(row["peak RSS MB"] for row in huge_rows)
        print(f"2 GiB file: peak RSS {worst} MB (target < 200 MB)")
        ok = ok and worst < 200
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
