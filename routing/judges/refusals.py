"""Judge refusals: an output that declines to judge is a parse failure with the refusal as its reason."""

from __future__ import annotations

import re

# A refusal *opens* the answer. A refusal phrase further in is usually the judge quoting a response that
# refused, which is evidence about that response, not a refusal to judge.
_REFUSAL_OPENING = re.compile(
    r"""^[\W_]*
        (?:(?:i'?m|i\s+am)\s+(?:so\s+|very\s+|truly\s+)?sorry|sorry|apologies|unfortunately)?[\s,.!:;-]*
        (?:but\s+)?(?:as\s+an\s+ai[^,.]{0,40}[,.]\s*)?
        i\s+(?:can(?:no|')?t|cannot|won'?t|will\s+not|(?:am|'m)\s+(?:unable|not\s+able)\s+to|must\s+decline
              |(?:do\s+not|don'?t)\s+feel\s+comfortable)
        \b(?:\s+\w+){0,2}?\s+
        (?:help|assist|comply|provide|fulfil|fulfill|do|engage|continue|complete|evaluate|judge|answer|respond
           |support|participate|create|generate|process|rate|compare|review)\b""",
    re.IGNORECASE | re.VERBOSE,
)
_REFUSAL_ANYWHERE = re.compile(
    r"(?:i'?m|i\s+am)\s+sorry,?\s+but\s+i|i\s+(?:can(?:no|')?t|cannot|won'?t)\s+(?:help|assist|comply)\s+with",
    re.IGNORECASE,
)


def refusal_reason(text: str) -> str | None:
    """A failure reason when the output is empty or opens with a refusal; None otherwise."""
    stripped = text.replace("\u2019", "'").strip()
    if not stripped:
        return "empty output"
    if _REFUSAL_OPENING.match(stripped):
        return f"the judge refused: {excerpt(stripped)!r}"
    return None


def reads_as_refusal(text: str) -> bool:
    """Whether an output without a verdict says somewhere that the judge will not judge."""
    return bool(_REFUSAL_ANYWHERE.search(text.replace("\u2019", "'")))


def excerpt(text: str, limit: int = 80) -> str:
    """The text on one line, cut to `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"
