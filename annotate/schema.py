"""Label schemas: what a campaign asks for, its presets, and the one function that validates a label.

A schema is plain JSON stored on the campaign:

    {"pairwise": {"aspects": [{"name": "overall", "scale": 2, "allow_tie": true,
                                "description": "..."}, ...]},
     "rubric": {"criteria": [{"name": "helpfulness", "min": 0, "max": 4,
                               "description": "...", "scores": {"0": "...", ..., "4": "..."}}]},
     "justification": "none" | "optional" | "required",
     "confidence": false | true}

Pairwise values are integers on a symmetric scale: negative favours response A, 0 is a tie,
positive favours response B; `scale` is the width (1, 2 or 3). Rubric values are integers in
[min, max]. A label is a dict {aspect or criterion name: int}. When a campaign has both kinds,
each rubric criterion is rated for both responses, as `<criterion>_a` and `<criterion>_b`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

KINDS = ("pairwise", "rubric", "both")
JUSTIFICATION_MODES = ("none", "optional", "required")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
OVERALL = "overall"
CONFIDENCE_LEVELS = (1, 2, 3, 4, 5)


class SchemaError(ValueError):
    """A label schema that cannot be used; the message names the offending field."""


class LabelError(ValueError):
    """A label that does not fit its schema; `field` names the key at fault."""

    def __init__(self, message: str, field: str = "label"):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class LabelKey:
    name: str
    low: int
    high: int
    allow_tie: bool  # only meaningful for pairwise keys
    pairwise: bool


def pairwise_words(scale: int) -> dict[int, str]:
    """The words a scale point is shown with; the judge prompt and the UI use the same ones."""
    words = {
        1: {-1: "A is better", 0: "Tie", 1: "B is better"},
        2: {-2: "A is much better", -1: "A is better", 0: "Tie", 1: "B is better", 2: "B is much better"},
        3: {
            -3: "A is much better",
            -2: "A is better",
            -1: "A is slightly better",
            0: "Tie",
            1: "B is slightly better",
            2: "B is better",
            3: "B is much better",
        },
    }
    return words[scale]


def _aspect(name: str, scale: int, description: str, allow_tie: bool = True) -> dict:
    return {"name": name, "scale": scale, "allow_tie": allow_tie, "description": description}


def _criterion(name: str, low: int, high: int, description: str, scores: dict[int, str]) -> dict:
    return {
        "name": name,
        "min": low,
        "max": high,
        "description": description,
        "scores": {str(k): v for k, v in scores.items()},
    }


_HELPSTEER2_CRITERIA = [
    _criterion(
        "helpfulness",
        0,
        4,
        "Overall helpfulness of the response to the prompt.",
        {
            0: "Not helpful at all",
            1: "Slightly helpful",
            2: "Partially helpful",
            3: "Mostly helpful",
            4: "Perfectly helpful",
        },
    ),
    _criterion(
        "correctness",
        0,
        4,
        "Inclusion of all pertinent facts without errors.",
        {
            0: "Completely incorrect",
            1: "Mostly incorrect",
            2: "Partially correct",
            3: "Mostly correct",
            4: "Completely correct",
        },
    ),
    _criterion(
        "coherence",
        0,
        4,
        "Consistency and clarity of expression.",
        {
            0: "Completely incoherent",
            1: "Mostly incoherent",
            2: "A little unclear",
            3: "Mostly coherent",
            4: "Perfectly coherent",
        },
    ),
    _criterion(
        "complexity",
        0,
        4,
        "Intellectual depth required to write the response.",
        {0: "Basic language", 1: "Simple language", 2: "Intermediate", 3: "Advanced", 4: "Expert"},
    ),
    _criterion(
        "verbosity",
        0,
        4,
        "Amount of detail relative to what the prompt asks for.",
        {0: "Succinct", 1: "Pretty short", 2: "Average length", 3: "Moderately long", 4: "Verbose"},
    ),
]

PRESETS: dict[str, dict] = {
    "simple-pairwise": {
        "pairwise": {"aspects": [_aspect(OVERALL, 1, "Which response is better overall?")]},
        "justification": "optional",
        "confidence": False,
    },
    "multipref": {
        "pairwise": {
            "aspects": [
                _aspect(OVERALL, 2, "Which response is better overall?"),
                _aspect("helpfulness", 2, "Which response better fulfils the request?"),
                _aspect("truthfulness", 2, "Which response is more accurate and free of fabrication?"),
                _aspect("harmlessness", 2, "Which response avoids harm, bias and unsafe content better?"),
            ]
        },
        "justification": "optional",
        "confidence": True,
    },
    "helpsteer2-preference": {
        "pairwise": {
            "aspects": [
                _aspect(OVERALL, 3, "How much better is one response than the other?"),
            ]
        },
        "justification": "required",
        "confidence": False,
    },
    "helpsteer2": {
        "rubric": {"criteria": copy.deepcopy(_HELPSTEER2_CRITERIA)},
        "justification": "none",
        "confidence": False,
    },
    "prometheus": {
        "rubric": {
            "criteria": [
                _criterion(
                    "score",
                    1,
                    5,
                    "Does the response satisfy the instruction as the rubric describes?",
                    {
                        1: "The response fails the instruction or is largely wrong.",
                        2: "The response addresses the instruction with major errors or omissions.",
                        3: "The response is acceptable but has noticeable errors or gaps.",
                        4: "The response is good with only minor issues.",
                        5: "The response fully and accurately satisfies the instruction.",
                    },
                )
            ]
        },
        "justification": "optional",
        "confidence": False,
    },
}

PRESET_KINDS = {
    "simple-pairwise": "pairwise",
    "multipref": "pairwise",
    "helpsteer2-preference": "pairwise",
    "helpsteer2": "rubric",
    "prometheus": "rubric",
}


def preset(name: str) -> dict:
    try:
        return copy.deepcopy(PRESETS[name])
    except KeyError:
        raise SchemaError(f"unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))}") from None


def schema_validate(schema: object, kind: str) -> dict:
    """Check a schema for `kind` and return it normalised; raise SchemaError naming the field."""
    if kind not in KINDS:
        raise SchemaError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(schema, dict):
        raise SchemaError("schema: must be a JSON object")
    out: dict = {
        "justification": schema.get("justification", "optional"),
        "confidence": schema.get("confidence", False),
    }
    if out["justification"] not in JUSTIFICATION_MODES:
        raise SchemaError(f"schema.justification: must be one of {', '.join(JUSTIFICATION_MODES)}")
    if not isinstance(out["confidence"], bool):
        raise SchemaError("schema.confidence: must be true or false")
    names: set[str] = set()

    def check_name(where: str, name: object) -> str:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise SchemaError(f"{where}.name: {name!r} must be lowercase letters, digits and _")
        if name in names:
            raise SchemaError(f"{where}.name: {name!r} is used twice")
        names.add(name)
        return name

    if kind in ("pairwise", "both"):
        pairwise = schema.get("pairwise")
        if not isinstance(pairwise, dict) or not isinstance(pairwise.get("aspects"), list) or not pairwise["aspects"]:
            raise SchemaError("schema.pairwise.aspects: a pairwise campaign needs a non-empty list of aspects")
        aspects = []
        for i, aspect in enumerate(pairwise["aspects"]):
            where = f"schema.pairwise.aspects[{i}]"
            if not isinstance(aspect, dict):
                raise SchemaError(f"{where}: must be an object")
            name = check_name(where, aspect.get("name"))
            scale = aspect.get("scale")
            if scale not in (1, 2, 3) or isinstance(scale, bool):
                raise SchemaError(f"{where}.scale: must be 1, 2 or 3 (the scale runs from -scale to +scale)")
            allow_tie = aspect.get("allow_tie", True)
            if not isinstance(allow_tie, bool):
                raise SchemaError(f"{where}.allow_tie: must be true or false")
            aspects.append(
                {
                    "name": name,
                    "scale": scale,
                    "allow_tie": allow_tie,
                    "description": str(aspect.get("description", "")),
                }
            )
        if OVERALL not in {a["name"] for a in aspects}:
            raise SchemaError("schema.pairwise.aspects: every pairwise schema needs an 'overall' aspect")
        out["pairwise"] = {"aspects": aspects}
    if kind in ("rubric", "both"):
        rubric = schema.get("rubric")
        if not isinstance(rubric, dict) or not isinstance(rubric.get("criteria"), list) or not rubric["criteria"]:
            raise SchemaError("schema.rubric.criteria: a rubric campaign needs a non-empty list of criteria")
        criteria = []
        for i, criterion in enumerate(rubric["criteria"]):
            where = f"schema.rubric.criteria[{i}]"
            if not isinstance(criterion, dict):
                raise SchemaError(f"{where}: must be an object")
            name = check_name(where, criterion.get("name"))
            low, high = criterion.get("min"), criterion.get("max")
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)) or low >= high:
                raise SchemaError(f"{where}: min and max must be integers with min < max")
            if high - low > 20:
                raise SchemaError(f"{where}: at most 21 score points")
            scores = criterion.get("scores", {})
            if not isinstance(scores, dict):
                raise SchemaError(f"{where}.scores: must map each score to its description")
            scores = {str(k): str(v) for k, v in scores.items()}
            outside = sorted(set(scores) - {str(v) for v in range(low, high + 1)})
            if outside:
                raise SchemaError(f"{where}.scores: {', '.join(outside)} outside {low}..{high}")
            criteria.append(
                {
                    "name": name,
                    "min": low,
                    "max": high,
                    "description": str(criterion.get("description", "")),
                    "scores": scores,
                }
            )
        out["rubric"] = {"criteria": criteria}
    return out


def label_keys(schema: dict, kind: str) -> list[LabelKey]:
    """Every key a complete label for this schema has, in display order."""
    keys: list[LabelKey] = []
    if kind in ("pairwise", "both"):
        for a in schema["pairwise"]["aspects"]:
            keys.append(LabelKey(a["name"], -a["scale"], a["scale"], a["allow_tie"], True))
    if kind in ("rubric", "both"):
        for c in schema["rubric"]["criteria"]:
            suffixes = ("_a", "_b") if kind == "both" else ("",)
            for suffix in suffixes:
                keys.append(LabelKey(c["name"] + suffix, c["min"], c["max"], True, False))
    return keys


def label_validate(
    *,
    schema: dict,
    kind: str,
    label: object,
    justification: str = "",
    confidence: object = None,
    partial: bool = False,
    source: str = "human",
) -> dict[str, int]:
    """The one check every write path runs on a label. Returns the label; raises LabelError.

    `partial` allows a subset of keys (judges may rate a single aspect); humans give every key.
    Justification and confidence rules apply to human labels only.
    """
    if not isinstance(label, dict):
        raise LabelError("label: must be an object mapping each aspect or criterion to an integer")
    keys = {k.name: k for k in label_keys(schema, kind)}
    unknown = sorted(set(label) - set(keys))
    if unknown:
        raise LabelError(
            f"label: unknown key {unknown[0]!r}; this campaign's keys are {', '.join(keys)}", f"label.{unknown[0]}"
        )
    if not partial:
        missing = [k for k in keys if k not in label]
        if missing:
            raise LabelError(
                f"label.{missing[0]}: missing (every key is required: {', '.join(keys)})", f"label.{missing[0]}"
            )
    elif not label:
        raise LabelError("label: empty")
    for name, value in label.items():
        key = keys[name]
        if not isinstance(value, int) or isinstance(value, bool):
            raise LabelError(f"label.{name}: {value!r} is not an integer", f"label.{name}")
        if not key.low <= value <= key.high:
            raise LabelError(f"label.{name}: {value} is outside {key.low}..{key.high}", f"label.{name}")
        if key.pairwise and value == 0 and not key.allow_tie:
            raise LabelError(f"label.{name}: ties are not allowed for this aspect", f"label.{name}")
    if source == "human":
        if schema.get("justification") == "required" and not (justification or "").strip():
            raise LabelError("justification: required by this campaign's schema", "justification")
        if confidence is not None:
            if not schema.get("confidence"):
                raise LabelError("confidence: this campaign does not ask for confidence", "confidence")
            if confidence not in CONFIDENCE_LEVELS or isinstance(confidence, bool):
                raise LabelError(f"confidence: {confidence!r} must be one of 1..5", "confidence")
    return dict(label)


def label_orient(*, schema: dict, kind: str, label: dict[str, int], position_swapped: bool | None) -> dict[str, int]:
    """Map a label between display order (left/right) and the item's own order (A/B).

    When B was shown on the left, pairwise values flip their sign and, on a campaign of both
    kinds, the per-response rubric keys `<criterion>_a` and `<criterion>_b` trade places. The
    mapping is its own inverse, so it serves both directions.
    """
    if not position_swapped:
        return dict(label)
    pairwise = {k.name for k in label_keys(schema, kind) if k.pairwise}
    out: dict[str, int] = {}
    for key, value in label.items():
        if key in pairwise:
            out[key] = -value
        elif kind == "both" and key.endswith(("_a", "_b")):
            out[key[:-2] + ("_b" if key.endswith("_a") else "_a")] = value
        else:
            out[key] = value
    return out
