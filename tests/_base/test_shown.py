"""`_base.shown.shown`: the one way text from Dify or the file system is made safe to show."""

from __future__ import annotations

import pytest

from dify_ingest_tools._base.redaction import register_secret
from dify_ingest_tools._base.shown import shown

SECRET = "shown-test-secret-4b1d9e"


@pytest.fixture(autouse=True)
def _secret() -> None:
    register_secret(SECRET)


def test_controls_bidi_and_lone_surrogates_are_written_as_escapes() -> None:
    text = "a\x1b[2Jb\x07c\rd\ne\tf\x9bg\u202eh\udcffi\x7f"
    assert shown(text, 200) == "a\\x1b[2Jb\\x07c\\rd\\ne\\tf\\x9bg\\u202eh\\udcffi\\x7f"


def test_a_long_text_is_cut_to_the_limit_marker_included() -> None:
    result = shown("x" * 1_000_000, 200)
    assert len(result) == 200 and result.endswith("…[cut, 1,000,000 characters]")


def test_escapes_count_toward_the_limit() -> None:
    assert len(shown("\x07" * 500, 120)) <= 120


@pytest.mark.parametrize("offset", range(170, 205, 3))
def test_a_key_that_straddles_the_cut_leaves_no_part_of_itself(offset: int) -> None:
    result = shown("x" * offset + SECRET + "y" * 10_000, 200)
    assert not any(SECRET[:n] in result for n in range(6, len(SECRET) + 1))


def test_the_key_and_bearer_credentials_are_redacted() -> None:
    result = shown(f"key {SECRET}; Authorization: Bearer abc.def-123", 200)
    assert SECRET not in result and "abc.def-123" not in result
    assert result.count("[redacted]") == 2


def test_nothing_and_short_clean_text_pass_unchanged() -> None:
    assert shown(None) == "" and shown("") == ""
    assert shown("refunds.md", 120) == "refunds.md"
