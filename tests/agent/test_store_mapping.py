"""The store core's pure parts: how a key becomes a Dify name, and how a store's writes wait."""

from __future__ import annotations

import pytest

from dify_ingest_tools.agent.store import write_waits
from dify_ingest_tools.agent.store_mapping import MAX_KEY_LENGTH, field_name_for, fit_key


def test_a_key_that_fits_is_its_own_dify_name() -> None:
    assert fit_key("docs/handbook.pdf") == "docs/handbook.pdf"
    assert fit_key("k" * MAX_KEY_LENGTH) == "k" * MAX_KEY_LENGTH


def test_a_long_key_is_shortened_with_a_hash_that_tells_keys_apart() -> None:
    first, second = "p" * 300 + "/a.pdf", "p" * 300 + "/b.pdf"
    assert len(fit_key(first)) == MAX_KEY_LENGTH
    assert fit_key(first) == fit_key(first)
    assert fit_key(first) != fit_key(second)
    assert fit_key(first).startswith("p" * 100)


def test_metadata_keys_that_clash_with_difys_or_the_marks_fields_are_prefixed() -> None:
    assert field_name_for("source") == "lc_source"
    assert field_name_for("lc_id") == "lc_lc_id"
    assert field_name_for("team") == "team"


def test_write_waits_are_the_clients_wait_options() -> None:
    options = write_waits(
        timeout=30.0,
        poll_interval=0.5,
        max_poll_interval=2.0,
        stall_timeout=None,
        on_empty="warn",
        summaries=True,
    )
    assert options == {
        "timeout": 30.0,
        "poll_interval": 0.5,
        "max_poll_interval": 2.0,
        "stall_timeout": None,
        "on_empty": "warn",
        "summaries": True,
    }


@pytest.mark.parametrize(
    ("timeout", "on_empty", "message"),
    [(0.0, "raise", "timeout must be > 0"), (5.0, "ignore", "on_empty")],
)
def test_write_waits_refuse_a_bad_timeout_or_on_empty(
    timeout: float, on_empty: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        write_waits(
            timeout=timeout,
            poll_interval=1.0,
            max_poll_interval=10.0,
            stall_timeout=None,
            on_empty=on_empty,  # type: ignore[arg-type]
            summaries=False,
        )
