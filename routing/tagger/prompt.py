"""The tagger's versioned prompt text (the questions of `routing.tagger.questions`) and the parser of its JSON answer.

The prompt's version is a short hash of its text (as for judge templates), so rewording a question, or
changing the list of subjects, changes the version and the cache asks again. The parser never raises: an
answer that holds no usable JSON object, misses a key, has a wrong type or a value out of range is a
failure with its reason.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from routing.judges.templates import render_prompt, text_version
from routing.tagger.questions import LEVELS, SUBJECTS, TAG_KEYS

TEMPLATE_TEXT = """[system]
You tag prompts sent to an AI assistant for a team that decides which answers need a human reviewer. You \
answer with one JSON object and nothing else.
[user]
Read the prompt below, then answer six questions about it.

1. subject: the subject of expertise the prompt needs most, exactly one of: $subjects.
2. expertise_level: how much expertise a person needs to tell a good answer from a bad one, an integer from \
1 (none: anyone can) to 5 (a specialist of the subject).
3. open_endedness: an integer from 1 (there is one correct answer) to 5 (many different answers are \
equally good, as in creative writing).
4. safety_concern: an integer from 1 (no concern) to 5 (an answer could cause serious harm: dangerous, \
illegal, or a medical, legal or financial risk to the asker).
5. complexity_of_intents: an integer from 1 (one simple request) to 5 (many intertwined requests or \
constraints to satisfy together).
6. format_constraints: how many explicit constraints on the form of the answer the prompt sets (length, \
structure, style, language, output format), an integer from 0 to 10.

Answer with exactly this JSON object, filled in:
{"subject": "...", "expertise_level": 1, "open_endedness": 1, "safety_concern": 1, \
"complexity_of_intents": 1, "format_constraints": 0}

[The start of the prompt]
$prompt
[The end of the prompt]
"""
PROMPT_VERSION = text_version(TEMPLATE_TEXT)
MAX_OBJECT_STARTS = 200  # braces tried as the start of an object: a long garbage answer stays cheap to reject
_FENCED = re.compile(r"```(?:json)?\s*(.*?)```", re.S | re.I)


def tagger_messages(prompt: str | Sequence[Mapping]) -> list[dict[str, str]]:
    """The chat messages that ask about one prompt (a text, or a list of chat messages shown as a transcript)."""
    system, _, user = TEMPLATE_TEXT.removeprefix("[system]\n").partition("\n[user]\n")
    values = {"subjects": ", ".join(SUBJECTS), "prompt": render_prompt(prompt)}
    return [
        {"role": "system", "content": string.Template(system).substitute(values)},
        {"role": "user", "content": string.Template(user).substitute(values)},
    ]


def response_format() -> dict:
    """The `json_schema` response format (strict) for endpoints that support structured output."""
    properties: dict[str, dict] = {"subject": {"type": "string", "enum": list(SUBJECTS)}}
    properties |= {key: {"type": "integer", "minimum": low, "maximum": high} for key, (low, high) in LEVELS.items()}
    schema = {"type": "object", "properties": properties, "required": list(TAG_KEYS), "additionalProperties": False}
    return {"type": "json_schema", "json_schema": {"name": "prompt_tags", "strict": True, "schema": schema}}


@dataclass(frozen=True)
class ParsedTags:
    """The tags of one answer, or None and the reason they could not be read."""

    tags: dict | None
    failure: str = ""

    @property
    def ok(self) -> bool:
        return self.tags is not None


def _excerpt(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[:limit] + "…")


def _json_object(text: str) -> dict | None:
    """The answer's JSON object: the whole text, a ```json fence, or a {...} in the prose around it (a model may
    explain itself before or after, or repeat the format it was shown): the first that holds every tag, else
    the first that holds any, else the first object."""
    objects = []
    for candidate in [text.strip(), *(m.group(1).strip() for m in _FENCED.finditer(text))]:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            objects.append(value)
    decoder = json.JSONDecoder()
    starts = [i for i, char in enumerate(text) if char == "{"][:MAX_OBJECT_STARTS]
    for start in starts:
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, dict):
            objects.append(value)
    for wanted in (lambda o: set(TAG_KEYS) <= set(o), lambda o: bool(set(TAG_KEYS) & set(o)), lambda o: True):
        found = next((o for o in objects if wanted(o)), None)
        if found is not None:
            return found
    return None


def _level_problem(key: str, value: object) -> str:
    low, high = LEVELS[key]
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{key} must be an integer from {low} to {high}, not {value!r}"
    if not low <= value <= high:
        return f"{key} {value} is out of range ({low} to {high})"
    return ""


def parse_tags(text: str | None) -> ParsedTags:
    """The tags in a tagger's answer (see the module docstring); never raises."""
    if not text or not text.strip():
        return ParsedTags(None, "the answer is empty")
    found = _json_object(text)
    if found is None:
        return ParsedTags(None, f"no JSON object in the answer: {_excerpt(text)}")
    missing = [key for key in TAG_KEYS if key not in found]
    if missing:
        return ParsedTags(None, f"the answer lacks {', '.join(missing)}: {_excerpt(text)}")
    problems = []
    subject = found["subject"]
    if not isinstance(subject, str):
        problems.append(f"subject must be a string, not {subject!r}")
    elif subject.strip().lower() not in SUBJECTS:
        problems.append(f"subject {subject!r} is not one of the listed subjects")
    problems += [problem for key in LEVELS if (problem := _level_problem(key, found[key]))]
    if problems:
        return ParsedTags(None, "; ".join(problems))
    return ParsedTags({"subject": subject.strip().lower(), **{key: found[key] for key in LEVELS}})
