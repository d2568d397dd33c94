"""Header parameters read the way Dify's form parser (Werkzeug 3.1) reads them.

What Dify stores as a file's name depends on these rules, not on the RFCs (recording 11):

- a quoted ``filename="..."`` is taken verbatim: percent escapes stay (aiohttp's default
  ``my%20notes.txt`` is stored as such); only ``\\\\``, ``\\"`` and ``%22`` are unescaped;
- ``filename*=charset'lang'value`` is percent-decoded (ASCII, UTF-8 and ISO-8859-1 only; any
  other charset leaves the value as sent) and stored under ``filename``;
- a parameter given twice keeps the later value, whichever form it has (``filename*`` then a
  plain ``filename`` gives the plain one);
- ``key*0=``, ``key*1=``, ... are joined;
- malformed parts are skipped, and non-ASCII token characters end a bare value.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["parse_options_header"]

_TCHARS = r"[\w!#$%&'*+\-.^`|~]+"
_KEY = re.compile(rf"({_TCHARS})=", re.ASCII)
_BARE_VALUE = re.compile(_TCHARS, re.ASCII)
_CHARSET_VALUE = re.compile(
    r"([\w!#$%&*+\-.^`|~]*)'[\w!#$%&*+\-.^`|~]*'([\w!#$%&'*+\-.^`|~]+)", re.ASCII
)
_CONTINUATION = re.compile(r"\*(\d+)$", re.ASCII)
_CHARSETS = frozenset({"ascii", "us-ascii", "utf-8", "iso-8859-1"})


def parse_options_header(value: str | None) -> tuple[str, dict[str, str]]:
    """``("form-data", {"name": ..., "filename": ...})`` for a Content-Disposition value."""
    if value is None:
        return "", {}
    head, _, rest = value.partition(";")
    head, rest = head.strip(), rest.strip()
    if not head or not rest:
        return head, {}
    options: dict[str, str] = {}
    encoding: str | None = None
    accepted: str | None = None
    for key, raw in _raw_parameters(rest):
        if key.endswith("*"):
            key = key[:-1]
            match = _CHARSET_VALUE.match(raw)
            if match:
                encoding, raw = match.group(1).lower(), match.group(2)
            # No (or an empty) charset marker: the last accepted charset carries over, across
            # keys too, as in Werkzeug.
            if not encoding:
                encoding = accepted
            if encoding in _CHARSETS:
                accepted = encoding
                raw = unquote(raw, encoding=encoding)
        if raw and raw[0] == raw[-1] == '"':
            # HTTP escapes a quote with a backslash, HTML forms with %22: both are undone.
            raw = raw[1:-1].replace("\\\\", "\\").replace('\\"', '"').replace("%22", '"')
        continued = _CONTINUATION.search(key)
        if continued:
            key = key[: continued.start()]
            options[key] = options.get(key, "") + raw
        else:
            options[key] = raw
    return head, options


def _raw_parameters(rest: str) -> list[tuple[str, str]]:
    """``(lower-case key, value as written)`` for each well-formed ``key=value`` part."""
    parts: list[tuple[str, str]] = []
    while True:
        key = _KEY.match(rest)
        if key is not None:
            name = key.group(1).lower()
            rest = rest[key.end() :]
            token = _BARE_VALUE.match(rest)
            if token is not None:
                parts.append((name, token.group()))
            elif rest[:1] == '"':
                end = _closing_quote(rest)
                if end is not None:
                    parts.append((name, rest[: end + 1]))
                    rest = rest[end + 1 :]
        semicolon = rest.find(";")
        if semicolon == -1:
            return parts
        rest = rest[semicolon + 1 :].lstrip()


def _closing_quote(text: str) -> int | None:
    """The index of the quote ending the quoted string ``text`` starts with, if any."""
    pos = 1
    while pos < len(text):
        if text[pos : pos + 2] in ("\\\\", '\\"'):
            pos += 2
        elif text[pos] == '"':
            return pos
        else:
            pos += 1
    return None
