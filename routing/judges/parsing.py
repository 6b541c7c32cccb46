"""Judge-output parsers: turn a judge's text (or structured JSON) into a label, or say why not.

Three verdict formats, one per built-in template family:

- ``arena``: Arena-Hard style ``[[A>B]]``; the number of ``>`` is the strength (1 to 3), ``[[A=B]]`` a tie.
  With several aspects, one line per aspect: ``helpfulness: [[A>B]]``.
- ``prometheus``: Prometheus style feedback ending in ``[RESULT] 4``; with several criteria, one line per
  criterion: ``correctness: [RESULT] 3``.
- ``llmbar``: LLMBar style ``Output (a)`` / ``Output (b)``, no tie; it rates the ``overall`` aspect only.
- ``arena_prometheus`` (campaigns of both kinds): an ``arena`` line per pairwise aspect and a ``prometheus``
  line per rubric criterion and response, ``correctness_a: [RESULT] 3`` for the response shown first and
  ``correctness_b`` for the other; the two parts are parsed as their own formats and merged into one label.

Rules shared by all of them: the **last** verdict in the text wins (judges restate the options before
answering); a verdict outside the schema (``[[A>>B]]`` on a scale of 1, a tie where ties are not allowed, a
score out of range) is a failure, never clamped; an empty output, a refusal, or a missing aspect is a failure
with a reason. Labels come back in the order the responses were *shown*; mapping them to the item's own order
is `routing.judges.verdicts.verdict_to_item`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from routing.judges.refusals import excerpt, reads_as_refusal, refusal_reason

FORMATS = ("arena", "prometheus", "llmbar", "arena_prometheus")
OVERALL = "overall"


@dataclass(frozen=True)
class ParseResult:
    """What a judge output says: a label, or the reason there is none.

    `verdicts` holds the verdict text exactly as found per key (``"A>>B"``, ``"4"``, ``"Output (a)"``) and
    `spans` its [start, end) character offsets in the parsed text: together they locate the verdict among
    the output's token logprobs (`routing.judges.verdicts.logprob_confidence`).
    """

    label: dict[str, int] | None
    failure: str | None = None
    verdicts: dict[str, str] = field(default_factory=dict)
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)
    reasoning: str = ""

    @property
    def ok(self) -> bool:
        return self.label is not None


def failed(reason: str) -> ParseResult:
    return ParseResult(label=None, failure=reason)


# ---------------------------------------------------------------------------------------------------------
# Verdict vocabularies


def arena_token(value: int) -> str:
    """The Arena-style verdict for a pairwise value in display order: -2 -> "A>>B", 0 -> "A=B", 1 -> "B>A"."""
    if value == 0:
        return "A=B"
    if not 1 <= abs(value) <= 3:
        raise ValueError(f"pairwise value {value} is outside -3..3")
    return ("A" + ">" * -value + "B") if value < 0 else ("B" + ">" * value + "A")


def arena_verdicts(*, scale: int, allow_tie: bool) -> dict[str, int]:
    """The verdicts an aspect allows, strongest-for-A first: {"A>>B": -2, "A>B": -1, "A=B": 0, ...}."""
    values = [v for v in range(-scale, scale + 1) if v != 0 or allow_tie]
    return {arena_token(v): v for v in values}


LLMBAR_TOKENS = {"Output (a)": -1, "Output (b)": 1}


def pairwise_aspects(campaign_schema: Mapping) -> list[dict]:
    try:
        return list(campaign_schema["pairwise"]["aspects"])
    except (KeyError, TypeError):
        raise ValueError("the campaign schema has no pairwise aspects") from None


def rubric_criteria(campaign_schema: Mapping) -> list[dict]:
    try:
        return list(campaign_schema["rubric"]["criteria"])
    except (KeyError, TypeError):
        raise ValueError("the campaign schema has no rubric criteria") from None


def per_response_criteria(campaign_schema: Mapping) -> list[dict]:
    """A campaign of both kinds rates each rubric criterion for each response: `<criterion>_a` for the response
    shown first, `<criterion>_b` for the other (the label keys of `annotate.schema.label_keys`)."""
    return [
        {**c, "name": c["name"] + suffix, "response": suffix[1:].upper()}
        for c in rubric_criteria(campaign_schema)
        for suffix in ("_a", "_b")
    ]


def per_response_schema(campaign_schema: Mapping) -> dict:
    """The rubric part of a campaign of both kinds as a rubric schema whose criteria are the per-response keys."""
    return {"rubric": {"criteria": per_response_criteria(campaign_schema)}}


def llmbar_aspect(campaign_schema: Mapping) -> dict:
    """The one aspect an LLMBar-style judge rates: `overall`, which every pairwise schema has."""
    for aspect in pairwise_aspects(campaign_schema):
        if aspect["name"] == OVERALL:
            return aspect
    raise ValueError("an LLMBar-style judge rates the 'overall' aspect, and this schema has none")


def allowed_verdicts(campaign_schema: Mapping, verdict_format: str) -> dict[str, dict[str, int]]:
    """Per label key, every verdict string the format allows and the value it stands for (display order)."""
    if verdict_format == "arena":
        return {
            a["name"]: arena_verdicts(scale=a["scale"], allow_tie=a.get("allow_tie", True))
            for a in pairwise_aspects(campaign_schema)
        }
    if verdict_format == "prometheus":
        return {c["name"]: {str(v): v for v in range(c["min"], c["max"] + 1)} for c in rubric_criteria(campaign_schema)}
    if verdict_format == "llmbar":
        return {llmbar_aspect(campaign_schema)["name"]: dict(LLMBAR_TOKENS)}
    if verdict_format == "arena_prometheus":
        return allowed_verdicts(campaign_schema, "arena") | allowed_verdicts(
            per_response_schema(campaign_schema), "prometheus"
        )
    raise ValueError(f"unknown verdict format {verdict_format!r}; choose one of {', '.join(FORMATS)}")


def _no_verdict(text: str, expected: str) -> ParseResult:
    if reads_as_refusal(text):
        return failed(f"no verdict; the output reads as a refusal: {excerpt(text.strip())!r}")
    return failed(f"no verdict found (expected {expected})")


# ---------------------------------------------------------------------------------------------------------
# Which key a verdict belongs to


def _name_pattern(name: str) -> str:
    # "instruction_following" is also written "Instruction following" or "instruction-following".
    return r"[\s_-]+".join(re.escape(part) for part in name.split("_"))


def _attribution(names: list[str]) -> tuple[re.Pattern, re.Pattern]:
    alternatives = "|".join(f"(?P<k{i}>{_name_pattern(n)})" for i, n in enumerate(names))
    # The name right before the verdict ("**helpfulness**: [[A>B]]"), or else the name opening the line.
    right_before = re.compile(rf"(?<![a-z0-9])(?:{alternatives})[\s*_`'\"():=\-]*$", re.IGNORECASE)
    line_start = re.compile(rf"^[\W_]*(?:{alternatives})(?![a-z0-9])", re.IGNORECASE)
    return right_before, line_start


def _key_for(text: str, start: int, names: list[str], patterns: tuple[re.Pattern, re.Pattern]) -> str | None:
    line = text[text.rfind("\n", 0, start) + 1 : start]
    for pattern in patterns:
        match = pattern.search(line)
        if match:
            index = next(int(k[1:]) for k, v in match.groupdict().items() if v is not None)
            return names[index]
    return None


def _assign(text: str, hits: list[re.Match], names: list[str]) -> dict[str, re.Match]:
    """The last hit per key. A single key takes the last hit anywhere; several keys need their names."""
    if len(names) == 1:
        return {names[0]: hits[-1]} if hits else {}
    patterns = _attribution(names)
    chosen: dict[str, re.Match] = {}
    for hit in hits:
        key = _key_for(text, hit.start(), names, patterns)
        if key is not None:
            chosen[key] = hit  # later hits replace earlier ones: the last verdict wins
    return chosen


# ---------------------------------------------------------------------------------------------------------
# Text parsers

# Anything in double brackets made only of A, B, <, >, = and spaces is meant as a verdict, well-formed or not;
# other bracketed text ("[[1]]", wiki links) is not.
_ARENA = re.compile(r"\[\[\s*([ABab<>=][ABab<>= ]{0,10}?)\s*\]\]")
_ARENA_SHAPE = re.compile(r"^([AB])(>{1,3}|<{1,3}|=)([AB])$")


def arena_value(token: str) -> int | None:
    """The display-order value of an Arena verdict ("A>>B" -> -2, "B<A" -> -1); None if malformed."""
    compact = re.sub(r"\s+", "", token.strip().strip("[]")).upper()
    match = _ARENA_SHAPE.match(compact)
    if not match:
        return None
    left, relation, right = match.groups()
    if left == right:
        return None
    if relation == "=":
        return 0
    winner = left if relation[0] == ">" else right
    return -len(relation) if winner == "A" else len(relation)


def _check_pairwise(name: str, token: str, value: int | None, aspect: Mapping) -> str | None:
    if value is None:
        return f"malformed verdict {token!r} for {name!r}"
    scale = aspect["scale"]
    if abs(value) > scale:
        return f"verdict {token!r} for {name!r} is outside the aspect's scale (\u00b1{scale})"
    if value == 0 and not aspect.get("allow_tie", True):
        return f"verdict {token!r} for {name!r} is a tie, which this aspect does not allow"
    return None


def _finish(
    text: str,
    found: dict[str, re.Match],
    names: list[str],
    values: dict[str, int],
    problems: list[str],
) -> ParseResult:
    verdicts = {k: m.group(1) for k, m in found.items() if m.group(1) is not None}
    spans = {k: m.span(1) for k, m in found.items() if m.group(1) is not None}
    missing = [n for n in names if n not in found]
    if missing:
        problems.append("no verdict for " + ", ".join(repr(n) for n in missing))
    first = min((m.start() for m in found.values()), default=len(text))
    reasoning = text[: text.rfind("\n", 0, first) + 1 or first].strip()  # up to the first verdict's line
    if problems:
        return ParseResult(None, "; ".join(problems), verdicts, spans, reasoning)
    return ParseResult({n: values[n] for n in names}, None, verdicts, spans, reasoning)


def _parse_marked(text: str, *, specs: dict[str, Mapping], pattern: re.Pattern, expected: str, check) -> ParseResult:
    """The verdict formats with a marker per key: the last marker found for each key, each range-checked
    by `check(name, match, spec) -> (value, problem)`."""
    refused = refusal_reason(text)
    if refused:
        return failed(refused)
    names = list(specs)
    hits = list(pattern.finditer(text))
    if not hits:
        return _no_verdict(text, expected)
    found = _assign(text, hits, names)
    values: dict[str, int] = {}
    problems: list[str] = []
    for name, match in found.items():
        value, problem = check(name, match, specs[name])
        if problem:
            problems.append(problem)
        else:
            values[name] = value
    return _finish(text, found, names, values, problems)


def _check_arena(name: str, match: re.Match, aspect: Mapping) -> tuple[int | None, str | None]:
    value = arena_value(match.group(1))
    return value, _check_pairwise(name, match.group(1), value, aspect)


def parse_arena(text: str, *, campaign_schema: Mapping) -> ParseResult:
    """Parse ``[[A>B]]``-style verdicts, one per pairwise aspect of the schema."""
    aspects = {a["name"]: a for a in pairwise_aspects(campaign_schema)}
    return _parse_marked(text, specs=aspects, pattern=_ARENA, expected="a verdict such as [[A>B]]", check=_check_arena)


_RESULT = re.compile(r"\[RESULT\][\s:*\-]*\(?\s*(-?\d+(?:\.\d+)?)?", re.IGNORECASE)


def _check_score(name: str, token: str | None, criterion: Mapping) -> tuple[int | None, str | None]:
    if token is None:
        return None, f"no score after [RESULT] for {name!r}"
    if not re.fullmatch(r"-?\d+", token):
        return None, f"score {token!r} for {name!r} is not an integer"
    value = int(token)
    if not criterion["min"] <= value <= criterion["max"]:
        return None, f"score {value} for {name!r} is outside {criterion['min']}..{criterion['max']}"
    return value, None


def parse_prometheus(text: str, *, campaign_schema: Mapping) -> ParseResult:
    """Parse ``[RESULT] n`` scores, one per rubric criterion of the schema."""
    criteria = {c["name"]: c for c in rubric_criteria(campaign_schema)}
    return _parse_marked(
        text,
        specs=criteria,
        pattern=_RESULT,
        expected="a score such as [RESULT] 3",
        check=lambda name, match, criterion: _check_score(name, match.group(1), criterion),
    )


def _merged(comparison: ParseResult, scores: ParseResult, *, reasoning: str) -> ParseResult:
    """The two parts of a "both" answer as one result: a label only when both parts gave theirs."""
    verdicts, spans = comparison.verdicts | scores.verdicts, comparison.spans | scores.spans
    problems = list(dict.fromkeys(p.failure for p in (comparison, scores) if p.failure))  # a refusal fails both
    if problems:
        return ParseResult(None, "; ".join(problems), verdicts, spans, reasoning)
    return ParseResult(comparison.label | scores.label, None, verdicts, spans, reasoning)  # type: ignore[operator]


def parse_arena_prometheus(text: str, *, campaign_schema: Mapping) -> ParseResult:
    """Parse a "both" answer: ``[[A>B]]`` per pairwise aspect and ``<criterion>_a: [RESULT] n`` per response."""
    comparison = parse_arena(text, campaign_schema=campaign_schema)
    scores = parse_prometheus(text, campaign_schema=per_response_schema(campaign_schema))
    # The reasoning runs up to the first verdict line of either part.
    reasoning = min((r for r in (comparison.reasoning, scores.reasoning) if r), key=len, default="")
    return _merged(comparison, scores, reasoning=reasoning)


# LLMBar answers are either the bare choice or a short explanation ending in "Therefore, Output (a) is
# better." Explanations mention both outputs, so a mention counts only as a conclusion ("... is better"),
# an explicit choice ("I choose Output (b)"), or a line that opens with it (the bare answer); the
# strongest kind found wins, and within a kind the last one.
_OUTPUT = r"output\s*\(\s*([ab])\s*\)"
_LLMBAR_KINDS = (
    re.compile(
        _OUTPUT + r"\W{0,3}\s*(?:is|was|seems|appears)\s+(?:clearly\s+|slightly\s+|much\s+)?(?:the\s+)?better",
        re.IGNORECASE,
    ),
    re.compile(
        r"(?:choose|chose|select|pick|prefer|answer(?:\s+is)?|verdict(?:\s+is)?|winner(?:\s+is)?|better\s+one\s+is)"
        r"[\s:*\"']*" + _OUTPUT,
        re.IGNORECASE,
    ),
    re.compile(r"(?:^|\n)[\s*#>\"'-]*" + _OUTPUT, re.IGNORECASE),
)


def parse_llmbar(text: str, *, campaign_schema: Mapping) -> ParseResult:
    """Parse an ``Output (a)`` / ``Output (b)`` answer into {"overall": -1 | +1} (display order)."""
    refused = refusal_reason(text)
    if refused:
        return failed(refused)
    name = llmbar_aspect(campaign_schema)["name"]
    for pattern in _LLMBAR_KINDS:
        hits = list(pattern.finditer(text))
        if hits:
            match = hits[-1]
            letter = match.group(1).lower()
            start = text.lower().rfind("output", match.start(), match.start(1))
            span = (start, text.index(")", match.end(1)) + 1)
            reasoning = text[: match.start()].strip()
            return ParseResult(
                {name: -1 if letter == "a" else 1}, None, {name: text[span[0] : span[1]]}, {name: span}, reasoning
            )
    return _no_verdict(text, '"Output (a)" or "Output (b)"')


# ---------------------------------------------------------------------------------------------------------
# Structured (JSON) output

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def _load_json(text: str) -> tuple[object, int] | None:
    """The JSON object in `text` and its offset: bare, inside ```json fences, or the outermost {...}."""
    stripped = text.strip()
    candidates = [(stripped, text.find(stripped[:1]) if stripped else 0)]
    candidates += [(m.group(1), m.start(1)) for m in _FENCE.finditer(text)]
    first, last = text.find("{"), text.rfind("}")
    if 0 <= first < last:
        candidates.append((text[first : last + 1], first))
    for candidate, offset in candidates:
        try:
            return json.loads(candidate), offset
        except ValueError:
            continue
    return None


def looks_structured(text: str) -> bool:
    """True when the output is a JSON object, bare or fenced: parse it as structured output."""
    stripped = text.strip()
    return stripped.startswith("{") or bool(re.match(r"```(?:json|JSON)?\s*\n?\s*\{", stripped))


def _value_span(text: str, key: str, value: str, after: int) -> tuple[int, int] | None:
    pattern = re.compile(rf'"{re.escape(key)}"\s*:\s*"?({re.escape(value)})')
    match = pattern.search(text, after)
    return match.span(1) if match else None


def parse_structured(text: str, *, campaign_schema: Mapping, verdict_format: str) -> ParseResult:
    """Parse a JSON answer written to the template's `json_schema` (tolerating ```json fences)."""
    if verdict_format == "arena_prometheus":  # {"reasoning", "verdicts": {aspect: "A>B"}, "scores": {key: n}}
        comparison = parse_structured(text, campaign_schema=campaign_schema, verdict_format="arena")
        scores = parse_structured(
            text, campaign_schema=per_response_schema(campaign_schema), verdict_format="prometheus"
        )
        return _merged(comparison, scores, reasoning=comparison.reasoning)
    refused = refusal_reason(text)
    if refused:
        return failed(refused)
    loaded = _load_json(text)
    if loaded is None:
        return failed(f"output is not valid JSON: {excerpt(text.strip())!r}")
    data, offset = loaded
    if not isinstance(data, dict):
        return failed(f"output is JSON but not an object: {excerpt(text.strip())!r}")
    container_key = "scores" if verdict_format == "prometheus" else "verdicts"
    answers = data.get(container_key, data)
    if not isinstance(answers, dict):
        return failed(f"{container_key!r} is not an object")
    reasoning = data.get("feedback" if verdict_format == "prometheus" else "reasoning", "")
    reasoning = reasoning if isinstance(reasoning, str) else json.dumps(reasoning)
    allowed = allowed_verdicts(campaign_schema, verdict_format)
    specs: dict[str, Mapping] = {}
    if verdict_format == "arena":
        specs = {a["name"]: a for a in pairwise_aspects(campaign_schema)}
    elif verdict_format == "prometheus":
        specs = {c["name"]: c for c in rubric_criteria(campaign_schema)}
    values: dict[str, int] = {}
    verdicts: dict[str, str] = {}
    spans: dict[str, tuple[int, int]] = {}
    problems: list[str] = []
    for name in allowed:
        if name not in answers:
            problems.append(f"no verdict for {name!r}")
            continue
        raw = answers[name]
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            problems.append(f"verdict for {name!r} is {raw!r}, not a string or number")
            continue
        token = raw if isinstance(raw, str) else json.dumps(raw)
        verdicts[name] = token
        span = _value_span(text, name, token, offset)
        if span:
            spans[name] = span
        if verdict_format == "arena":
            value = arena_value(token)
            problem = _check_pairwise(name, token, value, specs[name])
        elif verdict_format == "prometheus":
            score = token if not isinstance(raw, float) or not raw.is_integer() else str(int(raw))
            value, problem = _check_score(name, score.strip(), specs[name])
        else:
            normalised = re.sub(r"\s+", " ", token.strip()).lower()
            value = {k.lower(): v for k, v in LLMBAR_TOKENS.items()}.get(normalised)
            problem = None if value is not None else f"verdict {token!r} for {name!r} is not Output (a) or (b)"
        if problem:
            problems.append(problem)
        else:
            values[name] = value  # type: ignore[assignment]
    if problems:
        return ParseResult(None, "; ".join(problems), verdicts, spans, reasoning)
    return ParseResult(values, None, verdicts, spans, reasoning)


TEXT_PARSERS = {
    "arena": parse_arena,
    "prometheus": parse_prometheus,
    "llmbar": parse_llmbar,
    "arena_prometheus": parse_arena_prometheus,
}


def parse_output(text: str | None, *, campaign_schema: Mapping, verdict_format: str) -> ParseResult:
    """Parse a judge's output in `verdict_format`; a JSON object is read as structured output."""
    if verdict_format not in TEXT_PARSERS:
        raise ValueError(f"unknown verdict format {verdict_format!r}; choose one of {', '.join(FORMATS)}")
    if text is None:
        return failed("empty output")
    if looks_structured(text):
        return parse_structured(text, campaign_schema=campaign_schema, verdict_format=verdict_format)
    return TEXT_PARSERS[verdict_format](text, campaign_schema=campaign_schema)
