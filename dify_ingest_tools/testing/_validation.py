"""Request validation that fails with the text pydantic would produce.

Dify 1.14.1 validates payloads with pydantic models and sends ``str(ValidationError)`` as the
message of a 400 ``invalid_param`` (02b, 06). The simulator must not depend on pydantic, so it
rebuilds that text for the few checks it makes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: The pydantic version in the recorded server's error links (02b).
_DOCS_URL = "https://errors.pydantic.dev/2.12/v/"
_MISSING = object()


@dataclass(frozen=True)
class FieldError:
    """One pydantic error line: where, what, and the offending input."""

    loc: str
    msg: str
    type: str
    input_value: Any


def _short_repr(value: Any) -> str:
    # pydantic-core cuts reprs longer than 50 characters to their first 25 and last 24.
    text = repr(value)
    return text if len(text) <= 50 else f"{text[:25]}...{text[-24:]}"


def validation_message(model: str, errors: Sequence[FieldError]) -> str:
    """Render errors exactly like ``str(pydantic.ValidationError)``."""
    count = len(errors)
    lines = [f"{count} validation error{'s' if count != 1 else ''} for {model}"]
    for error in errors:
        if error.loc:
            lines.append(error.loc)
        lines.append(
            f"  {error.msg} [type={error.type}, input_value={_short_repr(error.input_value)}, "
            f"input_type={type(error.input_value).__name__}]"
        )
        lines.append(f"    For further information visit {_DOCS_URL}{error.type}")
    return "\n".join(lines)


class Payload:
    """Collects field errors for one payload model, in field order.

    Args:
        model: The pydantic model name Dify uses (it appears in the message).
        data: The decoded JSON body.
    """

    def __init__(self, model: str, data: Any) -> None:
        self.model = model
        self.data = data
        self.errors: list[FieldError] = []
        if not isinstance(data, dict):
            self.errors.append(
                FieldError(
                    "",
                    f"Input should be a valid dictionary or instance of {model}",
                    "model_type",
                    data,
                )
            )

    def _get(self, name: str) -> Any:
        if not isinstance(self.data, dict):
            return _MISSING
        return self.data.get(name, _MISSING)

    def _missing(self, name: str) -> None:
        self.errors.append(FieldError(name, "Field required", "missing", self.data))

    def string(
        self,
        name: str,
        *,
        required: bool = True,
        nullable: bool = False,
        min_length: int | None = None,
        max_length: int | None = None,
    ) -> str | None:
        """A ``str`` field; returns the value, or ``None`` when absent, null or invalid."""
        value = self._get(name)
        if value is _MISSING:
            if required and isinstance(self.data, dict):
                self._missing(name)
            return None
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            self.errors.append(
                FieldError(name, "Input should be a valid string", "string_type", value)
            )
            return None
        if min_length is not None and len(value) < min_length:
            unit = "character" if min_length == 1 else "characters"
            self.errors.append(
                FieldError(
                    name,
                    f"String should have at least {min_length} {unit}",
                    "string_too_short",
                    value,
                )
            )
            return None
        if max_length is not None and len(value) > max_length:
            unit = "character" if max_length == 1 else "characters"
            self.errors.append(
                FieldError(
                    name,
                    f"String should have at most {max_length} {unit}",
                    "string_too_long",
                    value,
                )
            )
            return None
        return value

    def literal(self, name: str, choices: Sequence[str], *, required: bool = False) -> str | None:
        """A ``Literal[...] | None`` field; ``required`` makes absence an error (null is fine)."""
        value = self._get(name)
        if value is _MISSING:
            if required and isinstance(self.data, dict):
                self._missing(name)
            return None
        if value is None:
            return None
        if value not in choices:
            quoted = [repr(choice) for choice in choices]
            expected = (
                quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
            )
            self.errors.append(
                FieldError(name, f"Input should be {expected}", "literal_error", value)
            )
            return None
        return str(value)

    def mapping(self, name: str) -> dict[str, Any] | None:
        """An optional nested model field; must be an object (or null) when present."""
        value = self._get(name)
        if value is _MISSING or value is None:
            return None
        if not isinstance(value, dict):
            self.errors.append(
                FieldError(
                    name,
                    "Input should be a valid dictionary or object to extract fields from",
                    "model_attributes_type",
                    value,
                )
            )
            return None
        return value

    def require(self, name: str, value: dict[str, Any] | None, fields: Sequence[str]) -> None:
        """Fields a nested model (``value``, read from ``name``) must carry (recording 17)."""
        if value is None:
            return
        for field in fields:
            if field not in value:
                self.errors.append(
                    FieldError(f"{name}.{field}", "Field required", "missing", value)
                )

    def message(self) -> str | None:
        """The pydantic-style message, or ``None`` when the payload is valid."""
        return validation_message(self.model, self.errors) if self.errors else None
