"""Judge verdicts after parsing: back to the item's order, order consistency, logprob confidence, aggregation.

All pure functions over labels ({aspect or criterion: int}) and the OpenAI logprobs structure.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from annotate.schema import label_orient

Label = Mapping[str, int]


def _pairwise_ties(campaign_schema: Mapping | None, keys: Iterable[str]) -> dict[str, bool]:
    """Which keys are pairwise, with whether each allows a tie. Without a schema every key is pairwise
    and allows ties (the label came from a pairwise judge)."""
    if campaign_schema is None:
        return {k: True for k in keys}
    aspects = (campaign_schema.get("pairwise") or {}).get("aspects") or []
    return {a["name"]: a.get("allow_tie", True) for a in aspects}


def verdict_to_item(
    label_shown: Label, position_swapped: bool, *, campaign_schema: Mapping | None = None, kind: str = "pairwise"
) -> dict[str, int]:
    """Map a verdict given on the order shown to the judge back to the item's own A/B order.

    When B was shown first, pairwise values change sign (and, on a campaign of both kinds, the per-response
    rubric keys `<criterion>_a` / `<criterion>_b` trade places: `annotate.schema.label_orient`). Without a
    schema every key is taken as pairwise. The mapping is its own inverse.
    """
    if campaign_schema is None:
        return {k: -v for k, v in label_shown.items()} if position_swapped else dict(label_shown)
    return label_orient(
        schema=dict(campaign_schema), kind=kind, label=dict(label_shown), position_swapped=position_swapped
    )


# ---------------------------------------------------------------------------------------------------------
# Position consistency


@dataclass(frozen=True)
class Consistency:
    """How a judge's verdicts in the two presentation orders compare, and what they say together.

    `consistent` is MT-Bench's sense: after mapping back to the item's order the two labels are equal.
    `flipped` lists the keys where one order favours A and the other B (position bias at its plainest).
    `aggregate` is the item's label from both orders, or None when some key has no defensible value
    (`undecided`): see `consistency`.
    """

    consistent: bool
    differing: tuple[str, ...]
    flipped: tuple[str, ...]
    aggregate: dict[str, int] | None
    undecided: tuple[str, ...]


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def consistency(label_original: Label, label_swapped: Label, *, campaign_schema: Mapping | None = None) -> Consistency:
    """Compare a judge's labels from the original and the swapped order, both in the item's own order.

    The aggregate, per key:
    - equal values: that value;
    - pairwise values that do not point opposite ways (same side, or one a tie): their mean rounded toward
      zero, so a strength in doubt resolves to the weaker claim (-2 and -1 give -1, 0 and -1 give 0,
      0 and -2 give -1);
    - pairwise values on opposite sides: a tie when the aspect allows one (as MT-Bench counts an
      inconsistent pair), otherwise undecided, which leaves the item without an aggregate;
    - rubric keys (campaigns of both kinds): the mean rounded down.
    Raises ValueError when the two labels cover different keys.
    """
    if set(label_original) != set(label_swapped):
        raise ValueError(f"the two labels cover different keys: {sorted(label_original)} vs {sorted(label_swapped)}")
    ties = _pairwise_ties(campaign_schema, label_original)
    differing, flipped, undecided = [], [], []
    aggregate: dict[str, int] = {}
    for key, first in label_original.items():
        second = label_swapped[key]
        if first == second:
            aggregate[key] = first
            continue
        differing.append(key)
        if key not in ties:
            aggregate[key] = math.floor((first + second) / 2)
        elif _sign(first) * _sign(second) < 0:
            flipped.append(key)
            if ties[key]:
                aggregate[key] = 0
            else:
                undecided.append(key)
        else:
            aggregate[key] = int((first + second) / 2)  # int() truncates toward zero
    return Consistency(
        consistent=not differing,
        differing=tuple(differing),
        flipped=tuple(flipped),
        aggregate=None if undecided else aggregate,
        undecided=tuple(undecided),
    )


# ---------------------------------------------------------------------------------------------------------
# Confidence from token logprobs


def _token_bytes(entry: Mapping) -> bytes:
    # `bytes` is exact where a token splits a UTF-8 character; `token` is the fallback.
    raw = entry.get("bytes")
    return bytes(raw) if raw is not None else str(entry.get("token", "")).encode("utf-8")


def _is_boundary(byte: int) -> bool:
    """A byte that can end a verdict: not a letter or digit (of any script), not part of <, >, =."""
    return byte < 0x80 and not chr(byte).isalnum() and chr(byte) not in "<>="


def _bounded(data: bytes, start: int, end: int) -> bool:
    return (start == 0 or _is_boundary(data[start - 1])) and (end == len(data) or _is_boundary(data[end]))


def _locate(data: bytes, text: str, allowed: list[bytes], at: int | None) -> tuple[int, bytes] | None:
    """The byte offset and the verdict found there (at character `at`, else the last one in the text)."""
    if at is not None:
        start = len(text[:at].encode("utf-8"))
        found = [t for t in allowed if data.startswith(t, start) and _bounded(data, start, start + len(t))]
        return (start, max(found, key=len)) if found else None
    best: tuple[int, bytes] | None = None
    for token in allowed:
        start = data.rfind(token)
        while start >= 0 and not _bounded(data, start, start + len(token)):
            start = data.rfind(token, 0, start)
        if start >= 0 and (best is None or (start, len(token)) > (best[0], len(best[1]))):
            best = (start, token)
    return best


def _fits(piece: bytes, target: bytes, offset: int) -> bool:
    """Whether a token placed at `offset` continues `target` (and, if it runs past the end, ends it)."""
    overlap = target[offset : offset + len(piece)]
    if piece[: len(overlap)] != overlap:
        return False
    return len(piece) <= len(overlap) or _is_boundary(piece[len(overlap)])


def _reach(target: bytes, first: int, pieces: list[bytes], starts: list[int]) -> tuple[int, bool]:
    """How far the sampled tokens from `first` on keep `target` possible (the last such token's index, where
    an alternative could still lead to it), and whether they spell all of it."""
    base, index = starts[first], first
    while index < len(pieces) and starts[index] - base < len(target):
        if not _fits(pieces[index], target, starts[index] - base):
            return index, False
        index += 1
    covered = index > first and starts[index - 1] + len(pieces[index - 1]) - base >= len(target)
    return index - 1, covered


def logprob_confidence(
    logprobs: Sequence[Mapping], allowed_tokens: Iterable[str], *, at: int | None = None
) -> float | None:
    """The judge's probability for its verdict, renormalised over the verdicts it was allowed to give.

    `logprobs` is a chat completion's `choices[0].logprobs.content`: one {token, logprob, bytes,
    top_logprobs: [{token, logprob, bytes}]} per generated token. `allowed_tokens` are the verdict strings
    (e.g. "A>>B", "A>B", ..., or "1".."5"); `at` is the verdict's character offset in the output
    (`ParseResult.spans`), by default the last allowed verdict in it.

    A verdict may span several tokens ("[[", "A", ">>", "B", "]]"). The sampled tokens give the verdict
    given its probability. At each token of the verdict, every alternative in the top logprobs that would
    still lead to some allowed verdict adds its probability (times that of the sampled tokens before it),
    shared evenly among the verdicts it could become: after "[[", the alternative "B" could become "B>A" or
    "B>>A", and the top logprobs say nothing about which. Verdicts absent from the top logprobs count as 0.
    Returns None when the verdict cannot be found in the tokens.
    """
    allowed = [t.encode("utf-8") for t in dict.fromkeys(allowed_tokens) if t]
    if not logprobs or not allowed:
        return None
    pieces = [_token_bytes(entry) for entry in logprobs]
    starts = [0]
    for piece in pieces[:-1]:
        starts.append(starts[-1] + len(piece))
    data = b"".join(pieces)
    located = _locate(data, data.decode("utf-8", errors="replace"), allowed, at)
    if located is None:
        return None
    start, chosen = located
    first = bisect.bisect_right(starts, start) - 1  # the token holding the verdict's first byte
    targets = {token: data[starts[first] : start] + token for token in allowed}
    reach = {token: _reach(target, first, pieces, starts) for token, target in targets.items()}
    last, covered = reach[chosen]
    if not covered:
        return None
    # log P(sampled tokens first..i-1), for each i up to the furthest any verdict stays possible
    horizon = max(r for r, _ in reach.values())
    before = [0.0]
    for index in range(first, horizon + 1):
        before.append(before[-1] + float(logprobs[index]["logprob"]))
    probability = dict.fromkeys(allowed, 0.0)
    probability[chosen] = math.exp(before[last - first + 1])
    for index in range(first, horizon + 1):
        live = [token for token in allowed if reach[token][0] >= index]
        offset, piece = starts[index] - starts[first], pieces[index]
        for alt in logprobs[index].get("top_logprobs") or []:
            alt_piece = _token_bytes(alt)
            leads_to = [t for t in live if alt_piece != piece and _fits(alt_piece, targets[t], offset)]
            for token in leads_to:
                probability[token] += math.exp(before[index - first] + float(alt["logprob"])) / len(leads_to)
    total = sum(probability.values())
    return probability[chosen] / total if total > 0 else None


# ---------------------------------------------------------------------------------------------------------
# Several samples or several judges


@dataclass(frozen=True)
class Aggregate:
    """Several judgments of one item combined.

    `agreement` is, per key, the (confidence-weighted) share of judgments that give exactly the aggregate
    value; `confidence` is the lowest of them, so one contested aspect makes the whole label uncertain.
    `label` is None when no judgment parsed or some key is undecided.
    """

    label: dict[str, int] | None
    confidence: float | None
    agreement: dict[str, float]
    mean: dict[str, float]
    used: int
    failed: int
    undecided: tuple[str, ...]


AGGREGATION_METHODS = ("majority", "mean", "mixed")


def _round_half_toward_zero(value: float) -> int:
    return _sign(value) * math.ceil(abs(value) - 0.5)


def aggregate_judgments(
    judgments: Sequence[tuple[Label | None, float | None]],
    *,
    campaign_schema: Mapping | None = None,
    method: str = "majority",
) -> Aggregate:
    """Combine (label, confidence) pairs: several samples of one judge, or several judges, on one item.

    Each judgment weighs its confidence (1 when unknown); failed judgments (label None) are counted and
    left out. Per key:
    - ``majority``: the value with the most weight; between equally weighted values, the one nearest the
      weighted mean; if still tied (say -1 and +1, evenly), undecided: a majority cannot invent a value.
    - ``mean``: the weighted mean, rounded to the nearest integer (halves toward zero for pairwise keys,
      down for rubric keys); a pairwise mean that rounds to a tie the aspect does not allow goes to the
      side the mean leans to, and an exact 0 there is undecided.
    - ``mixed`` (campaigns of both kinds): ``majority`` for the pairwise keys, ``mean`` for the rubric
      scores, so two judges scoring 3 and 4 give 3 rather than leaving the whole label undecided.
    Labels must cover the same keys (ValueError otherwise).
    """
    if method not in AGGREGATION_METHODS:
        raise ValueError(f"method {method!r} is not one of {', '.join(AGGREGATION_METHODS)}")
    labelled = [(dict(label), confidence) for label, confidence in judgments if label is not None]
    failed = len(judgments) - len(labelled)
    if not labelled:
        return Aggregate(None, None, {}, {}, 0, failed, ())
    keys = list(labelled[0][0])
    if any(set(label) != set(keys) for label, _ in labelled):
        raise ValueError("the judgments cover different keys")
    weights = [max(float(c), 0.0) if c is not None else 1.0 for _, c in labelled]
    if sum(weights) <= 0:  # every judge said confidence 0: count them equally rather than not at all
        weights = [1.0] * len(labelled)
    total = math.fsum(weights)  # fsum: exactly rounded, so the order of the judgments cannot tip a rounding
    ties = _pairwise_ties(campaign_schema, keys)
    label: dict[str, int] = {}
    agreement: dict[str, float] = {}
    mean: dict[str, float] = {}
    undecided: list[str] = []
    for key in keys:
        values = [lab[key] for lab, _ in labelled]
        mean[key] = math.fsum(w * v for w, v in zip(weights, values, strict=True)) / total
        by_value: dict[int, float] = {}
        for w, v in zip(weights, values, strict=True):
            by_value[v] = by_value.get(v, 0.0) + w
        if method == "majority" or (method == "mixed" and key in ties):
            top = max(by_value.values())
            leaders = [v for v, w in by_value.items() if math.isclose(w, top)]
            nearest = min(abs(v - mean[key]) for v in leaders)
            leaders = [v for v in leaders if math.isclose(abs(v - mean[key]), nearest)]
            value: int | None = leaders[0] if len(leaders) == 1 else None
        elif key in ties:
            value = _round_half_toward_zero(mean[key])
            if value == 0 and not ties[key]:
                value = _sign(mean[key]) or None
        else:
            value = math.ceil(mean[key] - 0.5)  # nearest, halves down
        if value is None:
            undecided.append(key)
            agreement[key] = 0.0
            continue
        label[key] = value
        agreement[key] = min(1.0, by_value.get(value, 0.0) / total)  # a float sum can overshoot 1 by an ulp
    return Aggregate(
        label=None if undecided else label,
        confidence=min(agreement.values()) if agreement else None,
        agreement=agreement,
        mean=mean,
        used=len(labelled),
        failed=failed,
        undecided=tuple(undecided),
    )
