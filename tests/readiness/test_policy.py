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
from dify_ingest_tools._http.retry import RetryPolicy, is_dify_answer, is_transient
from dify_ingest_tools.readiness.contact import AttemptClock, Contact, Reach
from dify_ingest_tools.readiness.policy import ContactBudget


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
        DifyResponseError("an HTML page", status=200, code="not_json"),
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


def test_retry_count_never_overflows() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=8.0)
    error = api(DifyServerError, 503)
    for retry in (1_023, 1_024, 10**6, 10**100):
        assert 4.0 <= policy.delay(retry, error) <= 8.0
    assert 0.25 <= policy.delay(-5, error) <= 0.5


@pytest.mark.parametrize("retry_after", [0.0, None])
def test_retry_after_zero_or_unusable_never_goes_below_the_backoff(
    retry_after: float | None,
) -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=8.0)
    rng = random.Random(3)
    limited = api(DifyRateLimitError, 429, retry_after=retry_after)
    for retry, floor in [(0, 0.25), (1, 0.5), (3, 2.0), (40, 4.0)]:
        assert policy.delay(retry, limited, rng) >= floor


def test_retry_after_wins_when_longer_and_is_bounded() -> None:
    policy = RetryPolicy(max_retry_after=10)
    assert policy.delay(0, api(DifyRateLimitError, 429, retry_after=3.0)) == 3.0
    assert policy.delay(0, api(DifyRateLimitError, 429, retry_after=999.0)) == 10
    assert policy.delay(0, api(DifyRateLimitError, 429, retry_after=1e300)) == 10


def test_knowledge_rate_limit_waits_out_difys_window() -> None:
    policy = RetryPolicy()  # defaults: the 60 s window
    rng = random.Random(1)
    limited = api(DifyRateLimitError, 403)
    for retry in (0, 1, 5, 2000):
        delay = policy.delay(retry, limited, rng)
        assert 60.0 <= delay <= 66.0  # never before the window can admit again
    assert 60.0 <= policy.knowledge_cooldown(rng) <= 66.0
    short = RetryPolicy(rate_limit_cooldown=5.0)
    assert 5.0 <= short.delay(0, limited, rng) <= 5.5
    # A 429 without Retry-After falls back to ordinary backoff.
    assert policy.delay(0, api(DifyRateLimitError, 429), rng) <= policy.backoff_base


@pytest.mark.parametrize("field", ["max_retries", "backoff_base", "rate_limit_cooldown"])
def test_negative_settings_are_rejected(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**{field: -1})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "field", ["backoff_base", "backoff_max", "rate_limit_cooldown", "max_retry_after"]
)
@pytest.mark.parametrize(
    ("value", "error"),
    [
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        (float("-inf"), ValueError),
        (True, TypeError),
        ("5", TypeError),
    ],
)
def test_non_finite_or_non_numeric_settings_are_rejected(
    field: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=field):
        RetryPolicy(**{field: value})  # type: ignore[arg-type]


def test_zero_backoff_is_refused_since_it_would_let_retries_storm() -> None:
    with pytest.raises(ValueError, match="backoff_base"):
        RetryPolicy(backoff_base=0)
    with pytest.raises(TypeError, match="max_retries"):
        RetryPolicy(max_retries=True)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_retries"):
        RetryPolicy(max_retries=2.5)  # type: ignore[arg-type]


def test_contact_budget_gives_up_after_a_few_attempts_and_seconds() -> None:
    budget = ContactBudget(attempts=3, min_seconds=2.0, seconds=10.0)
    assert not budget.exhausted(0, failing_for=0.0, silent=0.0)
    assert not budget.exhausted(2, failing_for=9.9, silent=9.9)
    # A blip is ridden out: three failures within half a second are not enough.
    assert not budget.exhausted(3, failing_for=0.5, silent=0.5)
    assert budget.time_left(3, failing_for=0.5, silent=0.5) == pytest.approx(1.5)
    assert budget.exhausted(3, failing_for=2.0, silent=0.1)
    assert budget.exhausted(0, failing_for=0.0, silent=10.0)
    assert budget.time_left(1, failing_for=4.0, silent=4.0) == pytest.approx(6.0)
    # Long queued, never out: nothing counts (the wait's own deadline still applies).
    assert budget.time_left(0, failing_for=0.0, silent=0.0) == pytest.approx(10.0)
    with pytest.raises(ValueError):
        ContactBudget(seconds=float("nan"))


REFUSED = DifyConnectionError("Cannot connect to 127.0.0.1:1: Connection refused")


def test_attempt_clock_counts_time_out_or_failing_never_time_queued() -> None:
    attempts, reach = AttemptClock(), Reach()
    attempts.queued(0.0)
    contact = Contact(attempts, reach, 0.0)
    assert contact.unanswered(15.0) == 0.0 and not contact.sent()  # 15 s in the queue
    attempts.sent(15.0)
    assert contact.unanswered(16.0) == pytest.approx(1.0)  # out for a second
    attempts.settled(16.0)
    reach.failed(16.0, REFUSED)
    attempts.queued(16.5)  # backoff counted, the next turn in the queue not
    attempts.sent(30.0)
    assert contact.unanswered(30.0) == pytest.approx(1.5)
    attempts.settled(31.0)
    assert (contact.failures(), contact.failing_for(31.0)) == (1, pytest.approx(15.0))
    assert contact.last_failure() is REFUSED
    # Dify answering anything ends the streak; a wait that begins later counts its own.
    reach.answered()
    assert contact.failures() == 0 and contact.failing_for(40.0) == 0.0
    assert contact.last_failure() is None
    reach.failed(41.0, REFUSED)
    later = Contact(attempts, reach, 42.0)
    reach.failed(43.0, REFUSED)
    assert (contact.failures(), later.failures()) == (2, 1)
    assert later.failing_for(44.0) == pytest.approx(2.0)  # from its own start


def test_only_difys_json_envelope_counts_as_reaching_dify() -> None:
    from dify_ingest_tools._http.responses import error_from_response

    assert is_dify_answer(error_from_response(404, '{"code":"not_found","message":"x"}'))
    assert is_dify_answer(error_from_response(500, '{"code":"internal","message":"x"}'))
    assert not is_dify_answer(error_from_response(502, "<html>bad gateway</html>"))
    assert not is_dify_answer(error_from_response(404, "<html>Not Found</html>"))
    assert not is_dify_answer(DifyConnectionError("refused"))
    assert not is_dify_answer(DifyResponseError("html", status=200, code="not_json"))
