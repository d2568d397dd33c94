"""Transport retry decisions, without a loop."""

from __future__ import annotations

import random

import pytest

from dify_ingest_tools import (
    DifyAPIError,
    DifyAuthenticationError,
    DifyConnectionError,
    DifyNotFoundError,
    DifyPermissionError,
    DifyRateLimitError,
    DifyResponseError,
    DifyServerError,
    DifyTimeoutError,
)
from dify_ingest_tools._policy import RetryPolicy, is_transient


def api(cls: type[DifyAPIError], status: int, **kw: object) -> DifyAPIError:
    return cls("m", status=status, code="c", **kw)  # type: ignore[arg-type]


def test_transient_failures() -> None:
    assert is_transient(DifyConnectionError("refused"))
    assert is_transient(DifyTimeoutError("slow"))
    assert is_transient(api(DifyServerError, 502))
    assert is_transient(api(DifyRateLimitError, 429))
    assert is_transient(api(DifyRateLimitError, 403))
    truncated = DifyResponseError("cut", status=200, code="invalid_json")
    assert is_transient(truncated)
    for fatal in (
        api(DifyAuthenticationError, 401),
        api(DifyPermissionError, 403),
        api(DifyNotFoundError, 404),
        api(DifyAPIError, 400),
        api(DifyResponseError, 200),
    ):
        assert not is_transient(fatal)


def test_should_retry_respects_idempotency_and_budget() -> None:
    policy = RetryPolicy(max_retries=2)
    error = api(DifyServerError, 500)
    assert policy.should_retry(0, error, idempotent=True)
    assert policy.should_retry(1, error, idempotent=True)
    assert not policy.should_retry(2, error, idempotent=True)
    assert not policy.should_retry(0, error, idempotent=False)
    assert not policy.should_retry(0, api(DifyNotFoundError, 404), idempotent=True)


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_max=4.0)
    rng = random.Random(7)
    error = api(DifyServerError, 500)
    for retry, step in [(0, 1.0), (1, 2.0), (2, 4.0), (5, 4.0)]:
        delays = [policy.delay(retry, error, rng) for _ in range(200)]
        assert min(delays) >= step / 2 and max(delays) <= step
        assert len(set(delays)) > 1  # jittered
    assert 0.0 < policy.delay(0, error) <= 1.0  # default rng


def test_retry_after_wins_and_is_bounded() -> None:
    policy = RetryPolicy(max_retry_after=10)
    assert policy.delay(0, api(DifyRateLimitError, 429, retry_after=3.0)) == 3.0
    assert policy.delay(4, api(DifyRateLimitError, 429, retry_after=0.0)) == 0.0
    assert policy.delay(0, api(DifyRateLimitError, 429, retry_after=999.0)) == 10


def test_knowledge_rate_limit_cools_down_longer() -> None:
    policy = RetryPolicy(rate_limit_cooldown=5.0, max_retry_after=60)
    rng = random.Random(1)
    limited = api(DifyRateLimitError, 403)
    first = policy.delay(0, limited, rng)
    assert 4.0 <= first <= 5.0
    assert 16.0 <= policy.delay(2, limited, rng) <= 20.0
    assert policy.delay(9, limited, rng) <= 60
    # A 429 without Retry-After falls back to ordinary backoff.
    assert policy.delay(0, api(DifyRateLimitError, 429), rng) <= policy.backoff_base


@pytest.mark.parametrize("field", ["max_retries", "backoff_base", "rate_limit_cooldown"])
def test_negative_settings_are_rejected(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**{field: -1})  # type: ignore[arg-type]
