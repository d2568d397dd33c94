"""The value parsers every command shares (pure functions)."""

from __future__ import annotations

import argparse

import pytest

from dify_ingest_tools.cli.common import file_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1024", 1024), ("15M", 15 << 20), ("2KiB", 2048), (" 1 g ", 1 << 30), ("3kb", 3072)],
)
def test_a_size_is_bytes_or_a_binary_unit(text: str, expected: int) -> None:
    assert file_size(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "1.5M", "1T", "lots", ""])
def test_a_size_that_is_not_a_whole_positive_number_of_bytes_or_units_is_refused(
    text: str,
) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is not a size"):
        file_size(text)
