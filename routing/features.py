"""Routing features of a pairwise item: lengths, response overlap and similarity, metadata tags, the tagger's
prompt tags, judge signals."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from routing.embeddings import Encoder, cosine_similarities, embeddings_available
from routing.judges.verdicts import aggregate_judgments, consistency
from routing.tagger.questions import LEVELS, SUBJECTS

OVERALL = "overall"
WORD_RE = re.compile(r"\w+")

TEXT_FEATURES = (
    "prompt_chars",
    "prompt_tokens",
    "response_a_chars",
    "response_b_chars",
    "response_a_tokens",
    "response_b_tokens",
    "length_diff_chars",
    "length_diff_tokens",
    "length_ratio",
    "lexical_overlap",
)
EMBEDDING_FEATURES = ("embedding_similarity",)
# The tagger's tags (`routing.tagger`, a row's `tags`): its levels as numbers, its subject one-hot, and whether
# the row has none. An untagged row gets NEUTRAL_LEVELS (the middle of each 1-5 scale, no format constraint).
TAGS_MISSING = "tags_missing"
TAG_FEATURES = (
    TAGS_MISSING,
    *(f"tagged:{key}" for key in LEVELS),
    *(f"tagged:subject={subject}" for subject in SUBJECTS),
)
NEUTRAL_LEVELS = {key: (0.0 if low == 0 else (low + high) / 2) for key, (low, high) in LEVELS.items()}
JUDGE_FEATURES = ("judge_flipped", "judges_disagree", "judge_confidence", "judge_parse_failure", "judge_tie")


def _text(value: object) -> str:
    """A prompt is text or a list of chat messages; messages count by their content."""
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence):
        return "\n".join(str(m.get("content", "")) if isinstance(m, Mapping) else str(m) for m in value)
    return "" if value is None else str(value)


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def metadata_tags(metadata: Mapping | None) -> set[str]:
    """An item's metadata as "key=value" tags; a list value gives one tag per element."""
    tags: set[str] = set()
    for key, value in (metadata or {}).items():
        values = value if isinstance(value, list | tuple) else [value]
        tags.update(f"{key}={v}" for v in values if isinstance(v, str | int | float | bool))
    return tags


def _undecided(labels: Sequence[Mapping]) -> dict[str, int]:
    """The judges' label when their values have no majority: the side more than half of them take, at the
    mildest strength any of them gives it (2 and 1: 1); with no such side (A against B, or A against a tie),
    their mean rounded toward zero (a tie for an even split), as `consistency` resolves two orders that
    disagree. So any usable judgment gives a label; the disagreement is the `disagree` signal's to report."""
    sides = [_sign(label[OVERALL]) for label in labels]
    for side in set(sides):
        if sides.count(side) * 2 > len(sides):
            return {OVERALL: min((label[OVERALL] for label in labels if _sign(label[OVERALL]) == side), key=abs)}
    return {OVERALL: int(np.trunc(np.mean([label[OVERALL] for label in labels])))}


def judge_signals(judge_labels: Sequence[Mapping]) -> dict:
    """What the judges say about one item, in the routing_eval row shape (`judge_labels` of the issue).

    Per judge, both orders are combined with `consistency` (opposite sides give a tie); a judge whose label
    in either order is null failed to parse. The judges' labels are then combined by `aggregate_judgments`
    (majority). Returns:
      label: the aggregate {"overall": int} — the majority value, else the side more than half of the judges
        take at its mildest strength, else their mean rounded toward zero (`_undecided`) — or None when no
        judge gave a usable label;
      flipped: some judge's verdict changed side when the order was swapped;
      disagree: the judges' labels point different ways (A / tie / B);
      parse_failure: some judge's output (in either order) did not parse, or there is no judge output;
      tie: the aggregate is a tie;
      confidence: the lowest `confidence` a judge reported (a logprob confidence), None when none did.
    """
    per_judge: list[dict[str, int] | None] = []
    flipped = parse_failure = False
    confidences = [float(j["confidence"]) for j in judge_labels if j.get("confidence") is not None]
    for judge in judge_labels:
        label = judge.get("label")
        swapped_present = "label_swapped" in judge
        swapped = judge.get("label_swapped")
        if label is None or (swapped_present and swapped is None):
            parse_failure = True
            per_judge.append(None)
            continue
        if swapped is None:
            per_judge.append(dict(label))
            continue
        both = consistency(label, swapped)
        flipped = flipped or bool(both.flipped)
        per_judge.append(both.aggregate)
    usable = [label for label in per_judge if label is not None]
    aggregate = aggregate_judgments([(label, None) for label in per_judge]).label
    if aggregate is None and usable:
        aggregate = _undecided(usable)
    directions = {_sign(label[OVERALL]) for label in usable}
    return {
        "label": aggregate,
        "flipped": flipped,
        "disagree": len(directions) > 1,
        "parse_failure": parse_failure or not usable,
        "tie": aggregate is not None and aggregate[OVERALL] == 0,
        "confidence": min(confidences) if confidences else None,
    }


def _tag_level(value: object, key: str) -> float:
    if isinstance(value, bool):  # a yes/no answer
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    raise ValueError(f"tags: {key} must be a number or true/false, not {value!r}")


def tag_features(tags: Mapping | None) -> dict[str, float]:
    """The `TAG_FEATURES` of one item from its tags (`routing.tagger.prompt`; None: untagged). A level the
    tags lack is neutral; a subject off the list sets no subject column."""
    if tags is None:
        return {
            TAGS_MISSING: 1.0,
            **{f"tagged:{key}": NEUTRAL_LEVELS[key] for key in LEVELS},
            **{f"tagged:subject={subject}": 0.0 for subject in SUBJECTS},
        }
    if not isinstance(tags, Mapping):
        raise ValueError(f"tags must be an object of the tagger's answers, not {tags!r}")
    subject = tags.get("subject")
    subject = subject.strip().lower() if isinstance(subject, str) else None
    return {
        TAGS_MISSING: 0.0,
        **{
            f"tagged:{key}": NEUTRAL_LEVELS[key] if tags.get(key) is None else _tag_level(tags[key], key)
            for key in LEVELS
        },
        **{f"tagged:subject={name}": float(subject == name) for name in SUBJECTS},
    }


def item_features(
    item: Mapping,
    judge_signals: Mapping | None = None,
    *,
    vocabulary: Sequence[str] = (),
    embedding_similarity: float | None = None,
    tags: bool = False,
) -> dict[str, float]:
    """Features of one item: text lengths, response overlap, one-hot metadata tags, judge signals, and with
    `tags` the tagger's tags of its prompt (`tag_features` of `item["tags"]`).

    Tokens are whitespace-separated words; lexical overlap is the Jaccard index of the two responses'
    lower-cased word sets (1 when both are empty). `vocabulary` lists the "key=value" tags
    (`metadata_tags`) that get a `tag:<tag>` column. Judge signals (`judge_signals`) become 0/1 columns;
    an unknown confidence counts as 1 so that only a reported low confidence raises uncertainty.
    `embedding_similarity`, when given, is the item's `embedding_similarity` feature: it is computed for
    many items at once (`feature_matrix`), not here.
    """
    prompt = _text(item.get("prompt"))
    response_a, response_b = _text(item.get("response_a")), _text(item.get("response_b"))
    tokens_a, tokens_b = len(response_a.split()), len(response_b.split())
    words_a, words_b = set(WORD_RE.findall(response_a.lower())), set(WORD_RE.findall(response_b.lower()))
    union = words_a | words_b
    features = {
        "prompt_chars": float(len(prompt)),
        "prompt_tokens": float(len(prompt.split())),
        "response_a_chars": float(len(response_a)),
        "response_b_chars": float(len(response_b)),
        "response_a_tokens": float(tokens_a),
        "response_b_tokens": float(tokens_b),
        "length_diff_chars": float(abs(len(response_a) - len(response_b))),
        "length_diff_tokens": float(abs(tokens_a - tokens_b)),
        # shorter over longer: 1 for equal lengths, symmetric in A and B, and defined for empty responses
        "length_ratio": min(tokens_a, tokens_b) / max(tokens_a, tokens_b) if max(tokens_a, tokens_b) else 1.0,
        "lexical_overlap": len(words_a & words_b) / len(union) if union else 1.0,
    }
    if embedding_similarity is not None:
        features["embedding_similarity"] = float(embedding_similarity)
    if tags:
        features.update(tag_features(item.get("tags")))
    metadata = metadata_tags(item.get("metadata"))
    features.update({f"tag:{tag}": float(tag in metadata) for tag in vocabulary})
    signals = judge_signals or {}
    confidence = signals.get("confidence")
    features.update(
        {
            "judge_flipped": float(bool(signals.get("flipped"))),
            "judges_disagree": float(bool(signals.get("disagree"))),
            "judge_confidence": 1.0 if confidence is None else float(confidence),
            "judge_parse_failure": float(bool(signals.get("parse_failure"))),
            "judge_tie": float(bool(signals.get("tie"))),
        }
    )
    return features


def feature_names(vocabulary: Sequence[str] = (), *, embeddings: bool = False, tags: bool = False) -> list[str]:
    """The columns of `feature_matrix`, in order."""
    return [
        *TEXT_FEATURES,
        *(EMBEDDING_FEATURES if embeddings else ()),
        *(TAG_FEATURES if tags else ()),
        *(f"tag:{tag}" for tag in vocabulary),
        *JUDGE_FEATURES,
    ]


def feature_matrix(
    items: Sequence[Mapping],
    signals: Sequence[Mapping | None] | None = None,
    *,
    vocabulary: Sequence[str] = (),
    embeddings: bool | None = False,
    encoder: Encoder | None = None,
    similarities: Sequence[float] | np.ndarray | None = None,
    tags: bool | None = None,
) -> tuple[np.ndarray, list[str]]:
    """`item_features` of every item as an items × features array, with the column names.

    `embeddings` adds the `embedding_similarity` column: the cosine similarity of the two responses'
    embeddings (`routing.embeddings.cosine_similarities`), all items in one batch. Off by default, so that
    features stay fast and deterministic wherever the optional model is installed; None turns it on exactly
    when `embeddings_available()`; True with neither the model installed nor an `encoder` raises ImportError.
    `encoder` embeds the texts instead of the bundled all-MiniLM-L6-v2 (tests inject one). `similarities`,
    one per item (the live pass reads them from the cache, `routing.embeddings.cached_similarities`), is that
    column already computed: nothing is embedded, and the column is there whatever `embeddings` says.

    `tags` adds the `TAG_FEATURES` from each item's `tags` (the tagger's answers; an item without them gets
    neutral values and `tags_missing` 1). None, the default, adds them when some item has tags, as rows read
    by routing_eval may; a caller that builds one matrix in several blocks (the live pass) says True or
    False, so that every block has the same columns.
    """
    if similarities is not None:
        if len(similarities) != len(items):
            raise ValueError(f"{len(items)} items but {len(similarities)} similarities")
        use_embeddings = True
    else:
        use_embeddings = embeddings_available() if embeddings is None else embeddings
    if use_embeddings and similarities is None and encoder is None and not embeddings_available():
        raise ImportError("embedding features need the optional model: pip install 'tandem[embeddings]'")
    use_tags = any(item.get("tags") is not None for item in items) if tags is None else tags
    names = feature_names(vocabulary, embeddings=use_embeddings, tags=use_tags)
    signals = signals if signals is not None else [None] * len(items)
    if len(signals) != len(items):
        raise ValueError(f"{len(items)} items but {len(signals)} judge signals")
    column: Sequence[float | None] = [None] * len(items)
    if similarities is not None:
        column = [float(value) for value in similarities]
    elif use_embeddings:
        texts_a = [_text(item.get("response_a")) for item in items]
        texts_b = [_text(item.get("response_b")) for item in items]
        column = cosine_similarities(texts_a, texts_b, encoder=encoder).tolist()
    rows = [
        item_features(item, sig, vocabulary=vocabulary, embedding_similarity=similarity, tags=use_tags)
        for item, sig, similarity in zip(items, signals, column, strict=True)
    ]
    matrix = np.array([[row[name] for name in names] for row in rows], dtype=float).reshape(len(rows), len(names))
    return matrix, names
