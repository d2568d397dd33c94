"""Checks on caller-supplied values, done before any request.

Numbers (`check_number`, `check_int`) are checked once, here, for every timeout, interval,
grace, threshold and count the library takes: NaN never compares, so ``timeout=nan`` would
never end; ``inf`` turns a poll gap into a busy loop or a sleep for ever; ``True`` is an
``int`` to Python but never what a caller meant; a string would fail later, far from its cause.

Dify routes ``dataset_id`` through Werkzeug's ``uuid`` converter and ``batch`` through its
``string`` converter (anything without ``/``). We are stricter: nothing a caller passes may
change which route a request reaches, so hostile values fail here with a ValueError.
"""

from __future__ import annotations

import math
import re
from numbers import Real
from urllib.parse import quote

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Real batches are 20 digits; console batches are similar. Leave room, but bound it.
_MAX_BATCH_LENGTH = 256
_FORBIDDEN_IN_BATCH = frozenset("/?#%\\")


def _check_uuid(value: object, what: str) -> str:
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise ValueError(
            f"{what} must be a UUID like 7789611a-7d24-4b75-ab16-a005f3cbd9b4, got {value!r:.80}"
        )
    return value


def check_dataset_id(value: object) -> str:
    """Return ``value`` if it is a UUID string, else raise ValueError."""
    return _check_uuid(value, "dataset_id")


def check_document_id(value: object) -> str:
    """Return ``value`` if it is a UUID string, else raise ValueError."""
    return _check_uuid(value, "document_id")


def check_batch(value: object) -> str:
    """Return ``value`` if it is a safe batch id, else raise ValueError.

    A batch is the string ``create-by-text`` / ``create-by-file`` returned (20 digits on
    current servers). Rejected: empty, whitespace or control characters, ``/ ? # % \\``,
    ``.`` / ``..`` (URL normalisation would remove them) and anything over 256 characters.
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"batch must be a non-empty string, got {value!r:.80}")
    if len(value) > _MAX_BATCH_LENGTH:
        raise ValueError(f"batch is {len(value)} characters long; Dify batches are 20 digits")
    bad = [ch for ch in value if ch in _FORBIDDEN_IN_BATCH or ch.isspace() or not ch.isprintable()]
    if bad or value in (".", ".."):
        raise ValueError(
            f"batch {value!r:.80} contains characters that cannot be part of a Dify batch id "
            "(no whitespace, '/', '?', '#', '%' or '\\'); pass the `batch` string that "
            "create-by-text or create-by-file returned"
        )
    return value


def path_part(value: str) -> str:
    """Percent-encode one path segment (after the checks above, a belt-and-braces step)."""
    return quote(value, safe="")


def check_number(
    value: object,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> float:
    """Return ``value`` as a finite float, or raise.

    Args:
        value: What the caller passed.
        name: The parameter's name, for the message.
        minimum: The smallest accepted value (inclusive unless ``exclusive_minimum``).
        maximum: The largest accepted value (inclusive).
        exclusive_minimum: Require ``value > minimum`` (e.g. a timeout must be > 0).

    Raises:
        TypeError: ``value`` is a bool, a string or anything but a real number.
        ValueError: ``value`` is NaN, infinite or out of range.
    """
    # Plain floats and ints (nearly every call) skip the slower check against the ABC.
    if (
        type(value) is not float
        and type(value) is not int
        and (isinstance(value, bool) or not isinstance(value, Real))
    ):
        raise TypeError(f"{name} must be a number of seconds or a count, got {value!r:.80}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {number!r}")
    if minimum is not None:
        if exclusive_minimum and number <= minimum:
            raise ValueError(f"{name} must be > {minimum:g}, got {number:g}")
        if not exclusive_minimum and number < minimum:
            raise ValueError(f"{name} must be >= {minimum:g}, got {number:g}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{name} must be <= {maximum:g}, got {number:g}")
    return number


def check_optional_number(
    value: object,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> float | None:
    """`check_number`, letting None through (an optional setting left unset)."""
    if value is None:
        return None
    return check_number(
        value, name, minimum=minimum, maximum=maximum, exclusive_minimum=exclusive_minimum
    )


def check_int(
    value: object, name: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Return ``value`` if it is a true integer in range (bools and floats refused), else raise.

    Raises:
        TypeError: ``value`` is a bool, a float, a string or anything but an integer.
        ValueError: ``value`` is out of range.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r:.80}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value
