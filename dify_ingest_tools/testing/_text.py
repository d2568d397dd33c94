"""Text helpers: cutting a document into segments, and the words keyword retrieval matches on."""

from __future__ import annotations

import re
from collections import Counter

#: Roughly what Dify's automatic rules produce (500-token chunks of ~1 character per token for
#: the recorded English text: 3017 characters gave 8 segments in 01a).
SEGMENT_CHARS = 500

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_WORD = re.compile(r"\w+")


def split_segments(text: str, count: int | None = None) -> list[str]:
    """Cut a document's text into segment contents.

    Args:
        text: The document text.
        count: Force this many segments (words spread evenly; contents may be empty when there
            are fewer words than segments). ``None`` splits on blank lines and cuts long
            paragraphs at word boundaries to about :data:`SEGMENT_CHARS`.

    Returns:
        The segment contents, in order. Empty or whitespace-only text gives ``[]`` unless
        ``count`` says otherwise.
    """
    if count is not None:
        words = text.split()
        return [
            " ".join(words[i * len(words) // count : (i + 1) * len(words) // count])
            for i in range(count)
        ]
    segments: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        words = paragraph.split()
        current = ""
        for word in words:
            while len(word) > SEGMENT_CHARS:
                if current:
                    segments.append(current)
                    current = ""
                segments.append(word[:SEGMENT_CHARS])
                word = word[SEGMENT_CHARS:]
            if current and len(current) + 1 + len(word) > SEGMENT_CHARS:
                segments.append(current)
                current = word
            else:
                current = f"{current} {word}" if current else word
        if current:
            segments.append(current)
    return segments


def terms(text: str) -> set[str]:
    """The distinct lower-cased words of a text (what keyword retrieval compares)."""
    return {match.lower() for match in _WORD.findall(text)}


def keywords(text: str, limit: int = 10) -> list[str]:
    """The most frequent words of a segment, like the ``keywords`` of a keyword-table segment."""
    counts = Counter(word for word in _WORD.findall(text) if len(word) > 1)
    return [word for word, _ in counts.most_common(limit)]
