"""Chaos: 500 waits over 200 batches while a quarter of all answers are faults.

Every wait must end with its script's verdict or its typed error, none may overshoot its
deadline by more than 1 s, and nothing may be left running or open afterwards. Seeded, so a
failure replays exactly.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections import Counter
from typing import Any

import pytest

from dify_ingest_tools import (
    AsyncDifyKnowledgeClient,
    DifyNotFoundError,
    IndexingFailedError,
    IndexingStalledError,
    IndexingTimeoutError,
)
from dify_ingest_tools.testing import DifySimulator, DocumentScript, Fault
from tests.conftest import FAST

pytestmark = pytest.mark.chaos

SEED = 20261128
BATCHES = 200
WAITS = 500
TIMEOUT = 5.0
FAULTS = (
    Fault.server_error(500),
    Fault.proxy_html(502),
    Fault.proxy_html(503),
    Fault.proxy_html(504),
    Fault.too_many_requests(retry_after=0),
    Fault.knowledge_rate_limit(),
    Fault.drop_connection(),
    Fault.malformed_json(),
    Fault.latency(0.6),  # past the client's 0.3 s request timeout
)
STAGES = ("parsing", "splitting", "indexing")


def plan(rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """What each batch will do: ready, fail, stall (two ways), or never exist."""
    kinds = ["ready"] * 12 + ["fail"] * 4 + ["stall"] * 2 + ["deadline"] + ["missing"]
    out = []
    for index in range(BATCHES):
        kind = kinds[index % len(kinds)]
        out.append((kind, {"stage": rng.choice(STAGES), "scale": rng.uniform(0.01, 0.1)}))
    return out


async def test_waits_end_correctly_under_random_faults(capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(SEED)
    sim = DifySimulator(seed=SEED)
    dataset_id = sim.create_dataset("chaos")
    expected: dict[str, str] = {}
    batch_index: dict[str, int] = {}
    for index, (kind, params) in enumerate(plan(rng)):
        if kind == "missing":
            expected[f"2099{index:016d}"] = kind
            continue
        if kind == "ready":
            script = DocumentScript(time_scale=params["scale"])
        elif kind == "fail":
            script = DocumentScript(
                time_scale=params["scale"], fail_at=params["stage"], error=f"chaos failure {index}"
            )
        else:  # stall / deadline: the worker "dies" in some stage
            script = DocumentScript(time_scale=params["scale"], stall_at=params["stage"])
        _, batch = sim.add_document(dataset_id, f"doc-{index}.txt", f"text {index}", script=script)
        expected[batch] = kind
        batch_index[batch] = index
    batches = list(expected)
    targets = batches + [rng.choice(batches) for _ in range(WAITS - len(batches))]
    sim.random_faults = FAULTS
    sim.fault_rate = 0.25

    async def one(client: AsyncDifyKnowledgeClient, batch: str) -> tuple[str, str, float]:
        kind = expected[batch]
        options: dict[str, Any] = {
            "timeout": 2.0 if kind == "deadline" else TIMEOUT,
            "poll_interval": 0.02,
            "max_poll_interval": 0.2,
            "not_found_grace": 0.5,
        }
        if kind == "stall":
            options["stall_timeout"] = 1.5
        started = time.monotonic()
        try:
            status = await client.wait_for_indexing(dataset_id, batch, **options)
            outcome = "ready" if status.is_completed else f"returned {status.verdict}"
        except IndexingFailedError as error:
            index = batch_index[batch]
            outcome = "fail" if f"chaos failure {index}" in str(error) else f"bad fail: {error}"
        except IndexingStalledError:
            outcome = "stall"
        except IndexingTimeoutError:
            outcome = "deadline"
        except DifyNotFoundError as error:
            outcome = "missing" if error.resource == "documents" else f"bad 404: {error}"
        except Exception as error:
            outcome = f"unexpected {type(error).__name__}: {error}"
        overshoot = time.monotonic() - started - options["timeout"]
        return kind, outcome, overshoot

    with sim.serve_in_thread() as base_url:
        async with AsyncDifyKnowledgeClient(
            sim.api_key, base_url, timeout=0.3, max_concurrency=32, **FAST
        ) as client:
            results = await asyncio.gather(*(one(client, batch) for batch in targets))
            session = client._transport.session
        sim.fault_rate = 0.0
        faults = Counter(record.fault for record in sim.requests if record.fault)
        total = len(sim.requests)

    wrong = [(kind, outcome) for kind, outcome, _ in results if kind != outcome]
    overshoot = max(over for _, _, over in results)
    verdicts = Counter(outcome for _, outcome, _ in results)
    with capsys.disabled():
        print(
            f"\nchaos: {len(results)} waits over {len(expected)} batches; {total} requests, "
            f"{sum(faults.values())} faults injected ({dict(faults)}); verdicts {dict(verdicts)}; "
            f"max overshoot {max(overshoot, 0.0):.2f}s"
        )
    assert not wrong, wrong[:5]
    assert sum(faults.values()) >= 0.2 * total
    assert overshoot <= 1.0
    # Nothing left behind: no task of ours, a closed session, no unclosed-resource warnings.
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert leftovers == []
    assert session is not None and session.closed
    gc.collect()
