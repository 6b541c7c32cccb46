"""Judge prompt templates: the built-in ones, custom template texts, and how each renders, asks and parses.

A template is a text with `string.Template` placeholders, split into chat messages by marker lines: a line
``[system]`` starts the system message and a line ``[user]`` the user message (a text without markers is
one user message). Its version is a short hash of that text, so editing a template changes the version
stored on every judgment it produces (`Annotation.prompt_version`).

Built-in templates (our own wording):

- ``pairwise-arena`` (default for pairwise): compares Response A and Response B on each aspect of the
  campaign and answers Arena-Hard style, ``[[A>B]]``, on the aspect's own scale.
- ``rubric-prometheus`` (default for rubric): Prometheus-style absolute grading of one response against a
  score rubric, with feedback, then ``[RESULT] n``.
- ``llmbar``: LLMBar-style choice between Output (a) and Output (b), no tie and no explanation; it rates
  the ``overall`` aspect only, as -1 or +1 whatever that aspect's scale.
- ``both-arena-prometheus`` (default for campaigns of both kinds): one prompt that shows both responses,
  compares them Arena-style on each pairwise aspect and grades each one Prometheus-style on each rubric
  criterion, answering ``overall: [[A>B]]`` and ``correctness_a: [RESULT] 3`` / ``correctness_b: [RESULT] 4``
  (``_a`` is the response shown first).

Why one combined prompt for "both" campaigns rather than the pairwise template in both orders plus the
rubric template once per response: each call then answers one whole label of the campaign's schema, so a
"both" judgment is keyed, stored, retried, resumed and paid for exactly as a pairwise one (one per judge,
prompt version, sample and order; two calls per item instead of four), its raw output is one answer, and
its rubric scores are also given in both orders, so position bias shows on them too (`label_orient` swaps
the ``_a``/``_b`` keys with the sides, `verdicts.consistency` averages them).

Placeholders, for built-in and custom texts alike (write ``$$`` for a literal dollar sign):

- every template: ``$prompt`` (the item's prompt; a list of chat messages is rendered as a transcript),
  ``$guidelines`` (the campaign's guidelines, or a note that there are none), ``$verdict_options`` (the
  allowed verdicts with their meanings and the exact answer format the parser expects);
- pairwise: ``$response_a``, ``$response_b`` (in the order *shown* to the judge), ``$aspects`` (one line
  per aspect: name and description);
- rubric: ``$response``, ``$reference`` (the reference answer, or a note that there is none),
  ``$criteria`` (each criterion with its range, description and the description of every score);
- both kinds: the pairwise placeholders, ``$reference`` and ``$criteria``.

A custom text (the `Judge.prompt_override` field) is named ``custom``; it keeps the verdict format, parser
and JSON schema of the built-in template it is based on (the judge's `prompt_template`, else the default
of its kind).
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from annotate.schema import pairwise_words

from .parsing import (
    ParseResult,
    allowed_verdicts,
    arena_verdicts,
    llmbar_aspect,
    pairwise_aspects,
    parse_output,
    per_response_criteria,
    rubric_criteria,
)
from .prompts import BOTH_ARENA_PROMETHEUS_TEXT, LLMBAR_TEXT, PAIRWISE_ARENA_TEXT, RUBRIC_PROMETHEUS_TEXT

TEMPLATE_KINDS = ("pairwise", "rubric", "both")
SYSTEM_MARKER, USER_MARKER = "[system]", "[user]"
NO_GUIDELINES = "(The campaign gives no further guidelines.)"
NO_REFERENCE = "(No reference answer is given: judge the response on its own merits.)"
PLACEHOLDERS = {
    "pairwise": frozenset({"prompt", "guidelines", "verdict_options", "response_a", "response_b", "aspects"}),
    "rubric": frozenset({"prompt", "guidelines", "verdict_options", "response", "reference", "criteria"}),
}
PLACEHOLDERS["both"] = PLACEHOLDERS["pairwise"] | {"reference", "criteria"}
REQUIRED_PLACEHOLDERS = {"pairwise": ("response_a", "response_b"), "rubric": ("response",)}
REQUIRED_PLACEHOLDERS["both"] = REQUIRED_PLACEHOLDERS["pairwise"]

Message = dict[str, str]


def text_version(text: str) -> str:
    """A short content hash: the version of a template text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def render_prompt(prompt: str | Sequence[Mapping]) -> str:
    """The item's prompt as text: a list of {role, content} messages becomes a readable transcript."""
    if isinstance(prompt, str):
        return prompt
    turns = []
    for message in prompt:
        content = message.get("content", "")
        if not isinstance(content, str):  # OpenAI-style content parts
            content = "\n".join(
                part.get("text", "") if part.get("type") == "text" else f"[{part.get('type', 'attachment')}]"
                for part in content
            )
        turns.append((str(message.get("role", "user")), content))
    if len(turns) == 1 and turns[0][0] == "user":
        return turns[0][1]
    return "\n\n".join(f"[{role.capitalize()}]\n{content}" for role, content in turns)


def _split_messages(text: str) -> list[tuple[str, str]]:
    """The (role, template text) sections of a template, in order."""
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        marker = line.strip().lower()
        if marker in (SYSTEM_MARKER, USER_MARKER):
            sections.append((marker[1:-1], []))
        elif sections:
            sections[-1][1].append(line)
        elif line.strip():
            sections.append(("user", [line]))
    return [(role, "\n".join(lines).strip("\n")) for role, lines in sections]


# ---------------------------------------------------------------------------------------------------------
# What each verdict format tells the judge


def _arena_options(aspect: Mapping) -> str:
    words = pairwise_words(aspect["scale"])
    verdicts = arena_verdicts(scale=aspect["scale"], allow_tie=aspect.get("allow_tie", True))
    lines = []
    for token, value in verdicts.items():
        meaning = words[value] if value == 0 else "Response " + words[value]
        lines.append(f"[[{token}]]: {meaning}")
    return "\n".join(lines)


def _arena_option_blocks(aspects: Sequence[Mapping]) -> list[str]:
    shapes = {(a["scale"], a.get("allow_tie", True)) for a in aspects}
    if len(shapes) == 1:
        return ["Verdict options:\n" + _arena_options(aspects[0])]
    return [f"Verdict options for {a['name']}:\n" + _arena_options(a) for a in aspects]


def _arena_verdict_options(campaign_schema: Mapping, structured: bool) -> str:
    aspects = pairwise_aspects(campaign_schema)
    blocks = _arena_option_blocks(aspects)
    if structured:
        example = {
            "reasoning": "<your comparison>",
            "verdicts": {a["name"]: "<one option, without brackets>" for a in aspects},
        }
        blocks.append("Answer with a JSON object only, of this shape:\n" + json.dumps(example, indent=2))
    else:
        lines = "\n".join(f"{a['name']}: [[verdict]]" for a in aspects)
        blocks.append(
            "Answer format: end your answer with exactly these lines, replacing [[verdict]] with one of the "
            "options above, brackets included:\n" + lines
        )
    return "\n\n".join(blocks)


def _score_range(criterion: Mapping) -> str:
    return f"<an integer from {criterion['min']} to {criterion['max']}>"


def _prometheus_verdict_options(campaign_schema: Mapping, structured: bool) -> str:
    criteria = rubric_criteria(campaign_schema)
    if structured:
        example = {"feedback": "<your feedback>", "scores": {c["name"]: _score_range(c) for c in criteria}}
        return "Answer with a JSON object only, of this shape:\n" + json.dumps(example, indent=2)
    if len(criteria) == 1:
        return (
            'Write "Feedback:" followed by your feedback, then end your answer with this line:\n'
            f"[RESULT] {_score_range(criteria[0])}"
        )
    lines = "\n".join(f"{c['name']}: [RESULT] {_score_range(c)}" for c in criteria)
    return 'Write "Feedback:" followed by your feedback, then end your answer with exactly these lines:\n' + lines


def _llmbar_verdict_options(campaign_schema: Mapping, structured: bool) -> str:
    name = llmbar_aspect(campaign_schema)["name"]
    if structured:
        example = {"verdicts": {name: '"Output (a)" or "Output (b)"'}}
        return "Answer with a JSON object only, of this shape:\n" + json.dumps(example, indent=2)
    return 'Answer with "Output (a)" or "Output (b)" only, and no other words.'


def _arena_prometheus_verdict_options(campaign_schema: Mapping, structured: bool) -> str:
    aspects, scored = pairwise_aspects(campaign_schema), per_response_criteria(campaign_schema)
    blocks = _arena_option_blocks(aspects)
    blocks.append(
        "Scores: grade Response A and Response B each on every criterion of the score rubric, with an integer "
        "in the criterion's range: <criterion>_a is the score of Response A, <criterion>_b that of Response B."
    )
    if structured:
        example = {
            "reasoning": "<your comparison and grading>",
            "verdicts": {a["name"]: "<one option, without brackets>" for a in aspects},
            "scores": {c["name"]: _score_range(c) for c in scored},
        }
        blocks.append("Answer with a JSON object only, of this shape:\n" + json.dumps(example, indent=2))
    else:
        lines = [f"{a['name']}: [[verdict]]" for a in aspects]
        lines += [f"{c['name']}: [RESULT] {_score_range(c)}" for c in scored]
        blocks.append(
            "Answer format: end your answer with exactly these lines, replacing [[verdict]] with one of the "
            "options above, brackets included, and each <...> with a score:\n" + "\n".join(lines)
        )
    return "\n\n".join(blocks)


VERDICT_OPTIONS = {
    "arena": _arena_verdict_options,
    "prometheus": _prometheus_verdict_options,
    "llmbar": _llmbar_verdict_options,
    "arena_prometheus": _arena_prometheus_verdict_options,
}


def _aspects_text(campaign_schema: Mapping, verdict_format: str) -> str:
    aspects = [llmbar_aspect(campaign_schema)] if verdict_format == "llmbar" else pairwise_aspects(campaign_schema)
    return "\n".join(
        f"- {a['name']}: {a['description']}" if a.get("description") else f"- {a['name']}" for a in aspects
    )


def _criteria_text(campaign_schema: Mapping) -> str:
    blocks = []
    for c in rubric_criteria(campaign_schema):
        head = f"{c['name']} (score {c['min']} to {c['max']})"
        if c.get("description"):
            head += f": {c['description']}"
        scores = c.get("scores") or {}
        lines = [f"- Score {v}: {scores[str(v)]}" for v in range(c["min"], c["max"] + 1) if str(v) in scores]
        blocks.append("\n".join([head, *lines]))
    return "\n\n".join(blocks)


# ---------------------------------------------------------------------------------------------------------
# JSON Schemas for structured output


def _strict_object(properties: dict, required: Sequence[str]) -> dict:
    # OpenAI's strict mode wants every property required and no others allowed.
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def _scores_object(criteria: Sequence[Mapping]) -> dict:
    # An enum of the integers rather than minimum/maximum: every structured-output backend honours enum.
    scores = {
        c["name"]: {"type": "integer", "enum": list(range(c["min"], c["max"] + 1)), "description": c["description"]}
        for c in criteria
    }
    return _strict_object(scores, list(scores))


def _json_schema(campaign_schema: Mapping, verdict_format: str) -> dict:
    if verdict_format == "prometheus":
        scores = _scores_object(rubric_criteria(campaign_schema))
        return _strict_object({"feedback": {"type": "string"}, "scores": scores}, ["feedback", "scores"])
    comparing = "arena" if verdict_format == "arena_prometheus" else verdict_format
    allowed = allowed_verdicts(campaign_schema, comparing)
    verdicts = {name: {"type": "string", "enum": list(tokens)} for name, tokens in allowed.items()}
    if verdict_format == "arena_prometheus":
        properties = {
            "reasoning": {"type": "string"},
            "verdicts": _strict_object(verdicts, list(verdicts)),
            "scores": _scores_object(per_response_criteria(campaign_schema)),
        }
        return _strict_object(properties, list(properties))
    if verdict_format == "llmbar":
        # LLMBar's judge gives no explanation, so its schema has no reasoning field.
        return _strict_object({"verdicts": _strict_object(verdicts, list(verdicts))}, ["verdicts"])
    return _strict_object(
        {"reasoning": {"type": "string"}, "verdicts": _strict_object(verdicts, list(verdicts))},
        ["reasoning", "verdicts"],
    )


# ---------------------------------------------------------------------------------------------------------
# Templates


@dataclass(frozen=True)
class JudgeTemplate:
    """A versioned judge prompt: renders the messages, describes the structured answer, parses the output."""

    name: str
    kind: str  # "pairwise", "rubric" or "both"
    verdict_format: str  # "arena", "prometheus", "llmbar" or "arena_prometheus"
    text: str
    based_on: str = ""  # for a custom text: the built-in template whose verdict format it reuses
    version: str = field(init=False)

    def __post_init__(self) -> None:
        if self.kind not in TEMPLATE_KINDS:
            raise ValueError(f"template kind {self.kind!r} is not one of {', '.join(TEMPLATE_KINDS)}")
        check_template_text(self.text, self.kind)
        object.__setattr__(self, "version", text_version(self.text))

    def render(
        self,
        *,
        campaign_schema: Mapping,
        kind: str,
        guidelines: str = "",
        prompt: str | Sequence[Mapping],
        responses: Sequence[str] | None = None,
        response: str | None = None,
        reference: str | None = None,
        structured: bool = False,
    ) -> list[Message]:
        """The chat messages for one judgment.

        `kind` is the campaign's kind (a campaign of both kinds can also be shown a pairwise or a rubric
        template, which then asks for its part of the label only); `responses` are the two responses in the
        order shown to the judge (pairwise and both kinds), `response` the one response rated (rubric). With
        `structured`, the answer format asks for the `json_schema` object.
        """
        if kind not in (self.kind, "both"):
            raise ValueError(f"template {self.name!r} judges {self.kind} labels, not a {kind} campaign")
        values = {
            "prompt": render_prompt(prompt),
            "guidelines": guidelines.strip() or NO_GUIDELINES,
            "verdict_options": VERDICT_OPTIONS[self.verdict_format](campaign_schema, structured),
        }
        if self.kind == "rubric":
            if response is None:
                raise ValueError("a rubric judgment needs the response to rate")
            values["response"] = response
        else:
            if responses is None or len(responses) != 2:
                raise ValueError(f"a {self.kind} judgment needs exactly two responses, in the order shown")
            values |= {
                "response_a": responses[0],
                "response_b": responses[1],
                "aspects": _aspects_text(campaign_schema, self.verdict_format),
            }
        if self.kind != "pairwise":
            values |= {
                "reference": (reference or "").strip() or NO_REFERENCE,
                "criteria": _criteria_text(campaign_schema),
            }
        return [
            {"role": role, "content": string.Template(body).substitute(values)}
            for role, body in _split_messages(self.text)
        ]

    def json_schema(self, campaign_schema: Mapping) -> dict:
        """A JSON Schema for the structured answer: an enum of verdicts per aspect, or of scores per criterion."""
        return _json_schema(campaign_schema, self.verdict_format)

    def response_format(self, campaign_schema: Mapping) -> dict:
        """The chat-completions `response_format` asking for `json_schema` in strict mode."""
        return {
            "type": "json_schema",
            "json_schema": {
                "name": f"{self.verdict_format}_verdict",
                "strict": True,
                "schema": self.json_schema(campaign_schema),
            },
        }

    def verdict_tokens(self, campaign_schema: Mapping) -> dict[str, list[str]]:
        """Per label key, the verdict strings the judge may answer (for logprob confidence)."""
        return {k: list(v) for k, v in allowed_verdicts(campaign_schema, self.verdict_format).items()}

    def parse(self, text: str | None, *, campaign_schema: Mapping) -> ParseResult:
        """Parse a judge's output (text or structured JSON) into a label in the order shown."""
        return parse_output(text, campaign_schema=campaign_schema, verdict_format=self.verdict_format)

    def format_answer(
        self, label: Mapping[str, int], *, campaign_schema: Mapping, structured: bool = False, reasoning: str = ""
    ) -> str:
        """An answer in exactly the format this template asks for: what a compliant judge would write."""
        allowed = allowed_verdicts(campaign_schema, self.verdict_format)
        if set(label) != set(allowed):
            raise ValueError(f"label keys {sorted(label)} are not this template's keys {sorted(allowed)}")
        tokens = {}
        for key, value in label.items():
            by_value = {v: t for t, v in allowed[key].items()}
            if value not in by_value:
                raise ValueError(f"{key}={value} is not an allowed verdict")
            tokens[key] = by_value[value]
        reasoning = reasoning or "Both responses were read in full before deciding."
        if self.verdict_format == "arena_prometheus":
            compared = allowed_verdicts(campaign_schema, "arena")
            verdicts = {k: t for k, t in tokens.items() if k in compared}
            scores = {k: v for k, v in label.items() if k not in compared}
            if structured:
                return json.dumps({"reasoning": reasoning, "verdicts": verdicts, "scores": scores})
            lines = [f"{k}: [[{t}]]" for k, t in verdicts.items()] + [f"{k}: [RESULT] {v}" for k, v in scores.items()]
            return f"{reasoning}\n\n" + "\n".join(lines)
        if structured:
            if self.verdict_format == "prometheus":
                return json.dumps({"feedback": reasoning, "scores": dict(label)})
            if self.verdict_format == "llmbar":
                return json.dumps({"verdicts": tokens})
            return json.dumps({"reasoning": reasoning, "verdicts": tokens})
        if self.verdict_format == "llmbar":
            return next(iter(tokens.values()))
        if self.verdict_format == "prometheus":
            if len(tokens) == 1:
                return f"Feedback: {reasoning} [RESULT] {next(iter(tokens.values()))}"
            return f"Feedback: {reasoning}\n\n" + "\n".join(f"{k}: [RESULT] {t}" for k, t in tokens.items())
        return f"{reasoning}\n\n" + "\n".join(f"{k}: [[{t}]]" for k, t in tokens.items())


def check_template_text(text: str, kind: str) -> None:
    """Raise ValueError unless `text` is a usable template of `kind`: known placeholders, responses present."""
    if not text.strip():
        raise ValueError("a template text cannot be empty")
    template = string.Template(text)
    if not template.is_valid():
        raise ValueError("the template text has a stray '$': write $$ for a literal dollar sign")
    used = set(template.get_identifiers())
    unknown = sorted(used - PLACEHOLDERS[kind])
    if unknown:
        raise ValueError(
            f"unknown placeholder ${unknown[0]} in a {kind} template; "
            f"use {', '.join('$' + p for p in sorted(PLACEHOLDERS[kind]))}"
        )
    missing = [p for p in REQUIRED_PLACEHOLDERS[kind] if p not in used]
    if missing:
        raise ValueError(f"a {kind} template must show the judge ${missing[0]}")
    if not any(body.strip() for _, body in _split_messages(text)):
        raise ValueError("the template text has markers but no message text")


BUILTIN_TEMPLATES: dict[str, JudgeTemplate] = {
    t.name: t
    for t in (
        JudgeTemplate("pairwise-arena", "pairwise", "arena", PAIRWISE_ARENA_TEXT),
        JudgeTemplate("rubric-prometheus", "rubric", "prometheus", RUBRIC_PROMETHEUS_TEXT),
        JudgeTemplate("llmbar", "pairwise", "llmbar", LLMBAR_TEXT),
        JudgeTemplate("both-arena-prometheus", "both", "arena_prometheus", BOTH_ARENA_PROMETHEUS_TEXT),
    )
}
DEFAULT_TEMPLATES = {"pairwise": "pairwise-arena", "rubric": "rubric-prometheus", "both": "both-arena-prometheus"}
CUSTOM = "custom"


def template_for(*, name: str, override: str, kind: str) -> JudgeTemplate:
    """The template a judge uses for `kind` labels: its built-in `name` (empty for the default), or its
    custom `override` text, which keeps the verdict format of that built-in. Raises ValueError."""
    if kind not in TEMPLATE_KINDS:
        raise ValueError(f"judge templates are for {', '.join(TEMPLATE_KINDS)} labels, not {kind!r}")
    name = name.strip() or DEFAULT_TEMPLATES[kind]
    if name not in BUILTIN_TEMPLATES:
        raise ValueError(f"unknown judge template {name!r}; built-in templates: {', '.join(sorted(BUILTIN_TEMPLATES))}")
    builtin = BUILTIN_TEMPLATES[name]
    if builtin.kind != kind:
        raise ValueError(f"template {name!r} judges {builtin.kind} labels, not {kind}")
    if not override.strip():
        return builtin
    return JudgeTemplate(CUSTOM, kind, builtin.verdict_format, override, based_on=builtin.name)
