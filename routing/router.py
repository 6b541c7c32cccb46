"""The campaign router: runs the campaign's routing policy over its items and records every decision.

A routing pass (`route_campaign`, the Job of kind `route`):

1. reads the campaign's items (gold checks are not routed: they have their own queue), each item's
   latest decision, and what humans and judges have said about it;
2. keeps what must not move: an admin's override, the calibration slice, and every item that humans
   have labelled or hold a live lease on (routing never revokes human work);
3. tops the calibration slice up to `calibration_fraction` of the items, at random: those go to
   both humans and judges, so human–judge agreement is measured on every campaign and the learned
   policy has training data;
4. gives the rest of the human budget to the policy's best candidates (`random`: a stable draw;
   `judge_uncertainty`: the judges' least certain items; `learned`: the highest predicted chance
   that the judges' label differs from human consensus), everything else to the judges;
5. applies the gold gate (`routing.gold.llm_only_gate`): while a judge of the campaign
   falls short of its `judge_gold_threshold`, no item stays with the judges alone — those go to humans,
   with the judge's score in the reason;
6. writes a RoutingDecision (destination, policy, score, reason) for every item whose destination
   changed, all in one transaction, and returns a summary.

Routing is incremental: a pass over a campaign that gained items, or whose budget was raised, moves
only what it must. Judge-based policies route an item only once the judges have given it a verdict;
a pass starts the judge run those items wait for (and that run routes them when it ends).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from annotate.models import Annotation, Campaign, Item, Job, JudgeVerdict, RoutingDecision
from jobs.registry import JobFailed, job_handler
from jobs.runner import job_create
from routing import learned, policies
from routing.evaluation import strict_majority
from routing.features import feature_matrix, judge_signals, metadata_tags
from routing.features import feature_names as feature_names_for
from routing.gold import llm_only_gate
from routing.judges.verdicts import aggregate_judgments
from routing.reads import (
    RoutableItem,
    chunks,
    human_labels,
    judge_labels,
    routable_items,
    stale_judgments,
    text_fields,
)

log = logging.getLogger(__name__)

JOB_KIND = "route"
CALIBRATION = "calibration"
OVERRIDE = "override"
GOLD_GATE = "gold_gate"
JUDGE_POLICIES = (Campaign.RoutingPolicy.JUDGE_UNCERTAINTY, Campaign.RoutingPolicy.LEARNED)
BUDGETED_POLICIES = (Campaign.RoutingPolicy.RANDOM, *JUDGE_POLICIES)
HUMAN_SIDE = (Item.Route.HUMAN, Item.Route.BOTH)
BOTH_KINDS = "judges label pairwise or rubric campaigns, not both kinds at once: only all_human routes this campaign"
# The learned policy needs this many training items, with this many of each outcome, before it is
# trusted; until then the campaign is routed by judge uncertainty and the summary says so.
MIN_TRAINING_ITEMS = 30
MIN_TRAINING_CLASS = 5
# Hysteresis: how much better (in the policy's score) an item must be to take the place of an unlabelled one
# already routed to humans. Uncertainty scores are sums of weights (0.5 and up); learned ones probabilities.
INCUMBENT_MARGIN = {Campaign.RoutingPolicy.JUDGE_UNCERTAINTY: 0.05, Campaign.RoutingPolicy.LEARNED: 0.02}
MAX_TAGS = 50  # metadata tags seen at least MIN_TAG_COUNT times in training become features
MIN_TAG_COUNT = 5
SIGNAL_WORDS = {
    "flipped": "the verdict flips when the order is swapped",
    "disagree": "the judges disagree",
    "parse_failure": "a judge's answer did not parse",
    "tie": "the judges call it a tie",
}


# --- reading the campaign ----------------------------------------------------------------------------


def _rubric_signals(entries: Sequence[Mapping], schema: Mapping) -> dict:
    """Judge signals of a rubric item: the judgments' mean, whether they disagree, parse failures, confidence."""
    labels = [e["label"] for e in entries if e.get("label") is not None]
    aggregate = aggregate_judgments([(label, None) for label in labels], campaign_schema=schema, method="mean")
    spread = any(max(values) - min(values) >= 1 for values in _by_key(labels).values())
    confidences = [float(e["confidence"]) for e in entries if e.get("confidence") is not None]
    return {
        "label": aggregate.label,
        "flipped": False,
        "disagree": spread,
        "parse_failure": len(labels) < len(entries) or aggregate.label is None,
        "tie": False,
        "confidence": min(confidences) if confidences else None,
    }


def _by_key(labels: Sequence[Mapping]) -> dict[str, list[int]]:
    values: dict[str, list[int]] = defaultdict(list)
    for label in labels:
        for key, value in label.items():
            values[key].append(value)
    return values


def signals_for(campaign: Campaign, entries: Sequence[Mapping]) -> dict:
    """What the judges say about one item: `routing.features.judge_signals` for pairwise campaigns (both
    orders, then the judges), the same keys for rubric ones."""
    if campaign.kind == Campaign.Kind.PAIRWISE:
        return judge_signals(entries)
    return _rubric_signals(entries, campaign.label_schema)


def judge_signal_map(campaign: Campaign, item_ids: Sequence[int], *, tick=None) -> dict[int, dict]:
    """`signals_for` each judged item from its current judgments, a chunk at a time (only the signals stay
    in memory)."""
    signals: dict[int, dict] = {}
    stale = stale_judgments(campaign)
    for chunk in chunks(item_ids):
        judged = judge_labels(chunk, exclude=stale)
        signals.update({item_id: signals_for(campaign, e) for item_id, e in judged.items()})
        if tick:
            tick()
    return signals


def judge_agrees(campaign: Campaign, judge_label: Mapping | None, humans: Sequence[Mapping]) -> bool | None:
    """Whether the judges' label agrees with human consensus; None when the humans have no consensus.

    Pairwise: the overall direction (A / tie / B) equals the strict majority of the human labels'
    directions. Rubric: every criterion is within one point of the humans' mean. An unusable judge label
    (None) disagrees.
    """
    labels = [h["label"] for h in humans if h.get("label")]
    if not labels:
        return None
    if campaign.kind == Campaign.Kind.PAIRWISE:
        consensus = strict_majority([[float(np.sign(label["overall"])) for label in labels]])[0]
        if math.isnan(consensus):
            return None
        return judge_label is not None and float(np.sign(judge_label["overall"])) == consensus
    if judge_label is None:
        return False
    means = {key: float(np.mean(values)) for key, values in _by_key(labels).items()}
    return all(abs(judge_label.get(key, math.inf) - mean) < 1.0 for key, mean in means.items())


# --- the policies over a campaign ----------------------------------------------------------------------


def stable_draw(campaign_id: int, item_id: int) -> float:
    """A uniform number in [0, 1) fixed per (campaign, item): the random policy's draw and every policy's
    tie-break, so a second pass ranks the same items the same way and new items fall in at random."""
    digest = hashlib.blake2b(f"{campaign_id}:{item_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _ranked(ids: Sequence[int], scores: Sequence[float], campaign_id: int) -> list[int]:
    """Positions of `ids`, highest score first, equal scores in `stable_draw` order."""
    draws = [stable_draw(campaign_id, i) for i in ids]
    return sorted(range(len(ids)), key=lambda k: (-scores[k], draws[k]))


def campaign_budget(campaign: Campaign) -> int | float | None:
    """The human budget as `policies.budget_count` takes it: a fraction (≤ 1) or a count of items."""
    budget = campaign.human_budget
    if budget is None:
        return None
    return float(budget) if budget <= 1 else int(round(budget))


@dataclass
class _Learned:
    scores: dict[int, float]
    training_items: int
    judge_error_rate: float | None
    importances: dict[str, float]
    fallback: str = ""
    sources: list[str] = field(default_factory=list)


def _training_rows(campaign: Campaign) -> list[tuple[Campaign, list[int]]]:
    """The campaigns whose items with both human and judge labels train the learned policy: this one and
    those named in `routing_params["train_campaigns"]` (earlier or imported campaigns of the same kind)."""
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
    out = []
    for source in sources:
        ids = list(
            Item.objects.filter(campaign=source, human_label_count__gt=0, gold_label__isnull=True)
            .order_by("id")
            .values_list("id", flat=True)
        )
        out.append((source, ids))
    return out


def _features(
    campaign: Campaign, ids: list[int], signals: Mapping[int, dict], vocabulary: list[str], embeddings: bool, tick
) -> tuple[np.ndarray, list[str]]:
    """`feature_matrix` of these items, reading their texts a chunk at a time (a campaign's texts can be GBs)."""
    blocks, names = [], feature_names_for(vocabulary, embeddings=embeddings)
    for chunk in chunks(ids):
        texts = text_fields(campaign, chunk)
        block, names = feature_matrix(
            [texts[i] for i in chunk], [signals[i] for i in chunk], vocabulary=vocabulary, embeddings=embeddings
        )
        blocks.append(block)
        if tick:
            tick()
    return (np.vstack(blocks) if blocks else np.zeros((0, len(names)))), names


def _learned_scores(campaign: Campaign, candidates: list[int], signals: dict[int, dict], *, tick=None) -> _Learned:
    """P(the judges' label differs from human consensus) for each candidate, from a model trained on the
    items that have both (`_training_rows`); judge uncertainty while there are too few of them."""
    train_ids: list[int] = []
    train_y: list[int] = []
    train_signals: dict[int, dict] = {}
    names = []
    for source, ids in _training_rows(campaign):
        names.append(source.slug)
        stale = stale_judgments(source)
        for chunk in chunks(ids):
            judged, humans = judge_labels(chunk, exclude=stale), human_labels(chunk)
            for item_id in chunk:
                if item_id not in judged:
                    continue
                sig = signals.get(item_id) or signals_for(source, judged[item_id])
                agrees = judge_agrees(source, sig["label"], humans.get(item_id, []))
                if agrees is None:
                    continue
                train_ids.append(item_id)
                train_y.append(0 if agrees else 1)
                train_signals[item_id] = sig
            if tick:
                tick()
    n_wrong = sum(train_y)
    uncertainty = {i: policies.uncertainty_score(signals[i]) for i in candidates}
    error_rate = n_wrong / len(train_y) if train_y else None
    if len(train_y) < MIN_TRAINING_ITEMS or min(n_wrong, len(train_y) - n_wrong) < MIN_TRAINING_CLASS:
        why = (
            f"{len(train_y)} items with both human and judge labels, {n_wrong} where the judges differ from the "
            f"humans: the learned policy needs {MIN_TRAINING_ITEMS}, with {MIN_TRAINING_CLASS} of each outcome; "
            "ranking by judge uncertainty until the calibration slice is labelled"
        )
        return _Learned(uncertainty, len(train_y), error_rate, {}, fallback=why, sources=names)
    tags: dict[str, int] = defaultdict(int)
    for chunk in chunks(train_ids):
        for metadata in Item.objects.filter(pk__in=chunk).values_list("metadata", flat=True):
            for tag in metadata_tags(metadata):
                tags[tag] += 1
    vocabulary = sorted(t for t, n in sorted(tags.items(), key=lambda kv: -kv[1])[:MAX_TAGS] if n >= MIN_TAG_COUNT)
    # The optional embedding feature costs minutes per 10,000 items on a CPU: a campaign opts in.
    embeddings = bool(campaign.routing_params.get("embeddings", False))
    try:
        train_X, feature_names = _features(campaign, train_ids, train_signals, vocabulary, embeddings, tick)
        X, _ = _features(campaign, candidates, signals, vocabulary, embeddings, tick)
    except ImportError as exc:
        raise JobFailed(f"routing_params.embeddings: {exc}") from None
    result = learned.learned(train_X, np.array(train_y), X, 0, feature_names=feature_names, seed=campaign.pk)
    scores = {item_id: float(p) for item_id, p in zip(candidates, result.probabilities, strict=True)}
    return _Learned(scores, len(train_y), error_rate, result.importances, sources=names)


# --- the pass -----------------------------------------------------------------------------------------


def _describe(signals: Mapping) -> str:
    said = [words for key, words in SIGNAL_WORDS.items() if signals.get(key)]
    if signals.get("confidence") is not None:
        said.append(f"confidence {signals['confidence']:.2f}")
    return "; ".join(said) or "the judges agree in both orders"


def route_counts(campaign: Campaign) -> dict[str, int]:
    """The campaign's routable items per route (gold checks left out)."""
    counts = dict.fromkeys(Item.Route.values, 0)
    rows = Item.objects.filter(campaign=campaign, gold_label__isnull=True).values("route").annotate(n=Count("id"))
    counts.update(rows.values_list("route", "n"))
    return counts


def human_target(campaign: Campaign, n: int) -> int | None:
    """How many of the campaign's `n` routable items its policy gives to humans, the calibration slice
    included: all for all_human, none for all_llm, else the budget's count (None without a budget)."""
    if campaign.routing_policy == Campaign.RoutingPolicy.ALL_HUMAN:
        return n
    if campaign.routing_policy == Campaign.RoutingPolicy.ALL_LLM:
        return 0
    budget = campaign_budget(campaign)
    return None if budget is None else policies.budget_count(n, budget)


def _has_callable_judges(campaign: Campaign) -> bool:
    return campaign.judges.filter(active=True, imported=False).exists()


def route_campaign(*, campaign: Campaign, progress=None, start_judges: bool = True) -> dict:
    """One routing pass over the campaign (see the module's docstring); returns its summary."""
    policy = campaign.routing_policy
    budget = campaign_budget(campaign)
    if policy in BUDGETED_POLICIES and budget is None:
        raise JobFailed(
            f"campaign {campaign.slug!r}: the {policy} policy spends a human budget; set human_budget "
            "(a fraction ≤ 1 or a count of items)"
        )
    if policy != Campaign.RoutingPolicy.ALL_HUMAN and campaign.kind == Campaign.Kind.BOTH:
        raise JobFailed(f"campaign {campaign.slug!r}: {BOTH_KINDS}")
    started = timezone.now()
    tick = _Ticker(progress)
    items = routable_items(campaign)
    n = len(items)
    has_judges = (
        _has_callable_judges(campaign)
        or Annotation.objects.filter(campaign=campaign, source=Annotation.Source.JUDGE).exists()
    )
    tick(0, n, force=True)

    # What must not move, and the calibration slice.
    calibrating = policy != Campaign.RoutingPolicy.ALL_HUMAN or has_judges
    slice_target = policies.budget_count(n, float(campaign.calibration_fraction)) if calibrating else 0
    in_slice = [i for i in items if i.last_policy == CALIBRATION and not i.overridden]
    movable = [i for i in items if not i.overridden and i.last_policy != CALIBRATION]
    if len(in_slice) < slice_target:
        # Top up at random among the items the policy may still move (stable: the same draw every pass).
        fresh = sorted(movable, key=lambda i: stable_draw(-campaign.pk, i.id))[: slice_target - len(in_slice)]
        chosen = {i.id for i in fresh}
        in_slice += fresh
        movable = [i for i in movable if i.id not in chosen]
    kept = [i for i in movable if i.route in HUMAN_SIDE and i.labelled_or_leased]
    kept_ids = {i.id for i in kept}
    candidates = [i for i in movable if i.id not in kept_ids]
    overridden = [i for i in items if i.overridden]

    # The policy's scores.
    decisions: dict[int, tuple[str, float | None, str, str]] = {}  # id -> (destination, score, policy, reason)
    for item in in_slice:
        decisions[item.id] = (
            Item.Route.BOTH,
            None,
            CALIBRATION,
            f"calibration slice ({campaign.calibration_fraction:.0%} of the items, at random): humans and judges "
            "both label it, to measure their agreement and to train the learned policy",
        )
    waiting: list[RoutableItem] = []
    learned_info: _Learned | None = None
    signals: dict[int, dict] = {}
    human_used = len(in_slice) + len(kept) + sum(1 for i in overridden if i.route in HUMAN_SIDE)
    target = human_target(campaign, n)
    target = n if target is None else target
    room = max(0, target - human_used)
    scores: dict[int, float] = {}
    described: dict[int, str] = {}
    if policy in JUDGE_POLICIES:
        signals = judge_signal_map(campaign, [i.id for i in candidates], tick=tick)
        waiting = [i for i in candidates if i.id not in signals]
        candidates = [i for i in candidates if i.id in signals]
        # Waiting items keep their route; those already with humans spend budget.
        room = max(0, room - sum(1 for i in waiting if i.route in HUMAN_SIDE))
        unusable = {i.id for i in candidates if signals[i.id]["label"] is None}
        described = {i.id: _describe(signals[i.id]) for i in candidates}
    else:
        # Judges that ran on these items and gave no usable verdict leave them to humans (see below).
        unusable = set(
            JudgeVerdict.objects.filter(
                campaign=campaign, label__isnull=True, n_parse_failures__gt=0, item_id__in=[i.id for i in candidates]
            ).values_list("item_id", flat=True)
        ) if has_judges and candidates else set()  # fmt: skip
    # An item no judge could label goes to humans first, even past the budget: nobody else can label it.
    for item in candidates:
        if item.id in unusable:
            decisions[item.id] = (
                Item.Route.HUMAN,
                None,
                policy,
                f"{policy}: the judges gave no usable verdict "
                f"({described.get(item.id, 'their output did not parse')}); a human labels it",
            )
    over_budget = max(0, len(unusable) - room)
    room = max(0, room - len(unusable))
    candidates = [i for i in candidates if i.id not in unusable]
    if policy == Campaign.RoutingPolicy.LEARNED:
        learned_info = _learned_scores(campaign, [i.id for i in candidates], signals, tick=tick)
        scores = learned_info.scores
    elif policy == Campaign.RoutingPolicy.JUDGE_UNCERTAINTY:
        scores = {i.id: policies.uncertainty_score(signals[i.id]) for i in candidates}
    elif policy == Campaign.RoutingPolicy.RANDOM:
        scores = {i.id: stable_draw(campaign.pk, i.id) for i in candidates}
    else:
        scores = {i.id: 0.0 for i in candidates}
    # Hysteresis: an unlabelled item already with humans stays there unless another beats it by a margin, so a
    # retrained model or a new verdict elsewhere does not reshuffle the queue on every pass.
    margin = INCUMBENT_MARGIN.get(policy, 0.0)
    ranking = {i.id: scores[i.id] + (margin if i.route in HUMAN_SIDE else 0.0) for i in candidates}
    ids = [i.id for i in candidates]
    order = _ranked(ids, [ranking[i] for i in ids], campaign.pk)
    to_humans = {ids[k] for k in order[:room]}
    cut = scores[ids[order[room - 1]]] if 0 < room <= len(order) else None
    fallback = learned_info is not None and bool(learned_info.fallback)
    for rank, k in enumerate(order, start=1):
        item_id = ids[k]
        human = item_id in to_humans
        decisions[item_id] = (
            Item.Route.HUMAN if human else Item.Route.LLM,
            scores[item_id] if policy in BUDGETED_POLICIES else None,
            policy,
            _reason(policy, human, rank, len(order), scores[item_id], cut, target, described.get(item_id), fallback),
        )

    # The gold gate: no item goes to judges that have not shown the campaign's gold accuracy. Items that would
    # stay with them alone (an override or a waiting item included) go to humans, past the budget, and the
    # summary counts them as over budget: the budget buys what it says, and the gate says what it adds.
    gate_open, gate_reason = llm_only_gate(campaign=campaign)
    gated = 0
    if not gate_open:
        for item in items:
            destination = decisions[item.id][0] if item.id in decisions else item.route
            if destination == Item.Route.LLM:
                decisions[item.id] = (Item.Route.HUMAN, None, GOLD_GATE, gold_gate_reason(gate_reason))
                gated += 1
        over_budget += gated

    # Write only what changed, and only where the item is as the pass read it: compare-and-set on the route,
    # and never over an override an admin made since the pass began (overrides take the same lock).
    now = timezone.now()
    by_id = {i.id: i for i in items}
    moves: dict[tuple[str, str], list[int]] = defaultdict(list)
    for item_id, (destination, _score, _policy, _reason_text) in decisions.items():
        if by_id[item_id].route != destination:
            moves[(by_id[item_id].route, destination)].append(item_id)
    written: list[RoutingDecision] = []
    with transaction.atomic():
        Campaign.objects.select_for_update().filter(pk=campaign.pk).first()  # one writer at a time per campaign
        for (was, destination), moved in moves.items():
            for item_id in _move(campaign, moved, destination, was=was, since=started):
                _destination, score, decided_by, reason = decisions[item_id]
                written.append(
                    RoutingDecision(
                        campaign=campaign,
                        item_id=item_id,
                        destination=destination,
                        policy=decided_by,
                        score=score,
                        reason=reason,
                        created_at=now,
                    )
                )
            tick(n, n)
        RoutingDecision.objects.bulk_create(written, batch_size=5000)
    tick(n, n, force=True)

    judge_job = None
    if start_judges and has_judges and campaign.routing_params.get("auto_judge", True):
        judge_job = _start_judges(campaign, waiting=bool(waiting))
    summary = {
        "campaign": campaign.slug,
        "policy": policy,
        "items": n,
        "human_budget": campaign.human_budget,
        "human_items_target": target if policy in BUDGETED_POLICIES else None,
        "destinations": route_counts(campaign),
        "decisions_written": len(written),
        "calibration": {
            "fraction": campaign.calibration_fraction,
            "items": len(in_slice),
            "note": "" if calibrating else "no judges: all_human campaigns calibrate once a judge is added",
        },
        "kept_for_humans": len(kept),
        "overridden": len(overridden),
        "unusable_verdicts": len(unusable),
        "over_budget": over_budget,
        "gold_gate": {"allowed": gate_open, "reason": gate_reason, "to_humans": gated},
        "waiting_for_judges": len(waiting),
        "judge_run": judge_job.pk if judge_job else None,
    }
    if learned_info is not None:
        summary["learned"] = {
            "training_items": learned_info.training_items,
            "training_campaigns": learned_info.sources,
            "judge_error_rate": learned_info.judge_error_rate,
            "fallback": learned_info.fallback,
            "importances": dict(list(learned_info.importances.items())[:15]),
        }
    if waiting and judge_job is None:
        if not _has_callable_judges(campaign):
            summary["note"] = (
                f"{len(waiting)} items wait for a judge verdict, and the campaign has no active judge with an "
                "endpoint: add one (or import judge labels), then route again"
            )
        elif _active_judge_run(campaign) is not None:
            summary["note"] = f"{len(waiting)} items wait for the judge run in progress; a pass follows it"
    return summary


class _Ticker:
    """Reports progress (and so the heartbeat that keeps the sweeper from re-queuing a live pass) at most
    every few seconds, from the long loops of a pass."""

    def __init__(self, progress, every: float = 5.0):
        self.progress, self.every, self.last = progress, every, -math.inf

    def __call__(self, done: int | None = None, total: int | None = None, *, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if force or now - self.last >= self.every:
            self.last = now
            self.progress(done=done, total=total)


def _reason(
    policy: str,
    human: bool,
    rank: int,
    of: int,
    score: float,
    cut: float | None,
    target: int,
    signals: str | None,
    fallback: bool,
) -> str:
    where = "humans" if human else "the judges"
    if policy == Campaign.RoutingPolicy.ALL_HUMAN:
        return "campaign policy all_human: every item goes to humans"
    if policy == Campaign.RoutingPolicy.ALL_LLM:
        return "campaign policy all_llm: every item goes to the judges"
    budget = f"the budget is {target} human items"
    if policy == Campaign.RoutingPolicy.RANDOM:
        drawn = "drawn for humans" if human else "not drawn"
        return f"random: {drawn} (draw {score:.3f}, rank {rank} of {of}); {budget}"
    if policy == Campaign.RoutingPolicy.LEARNED and not fallback:
        what = f"P(judges differ from human consensus) = {score:.2f}"
    else:
        what = f"judge uncertainty {score:.2f}" + (" (learned policy not trained yet)" if fallback else "")
    threshold = f"; cut-off {cut:.2f}" if cut is not None else ""
    if cut is not None and score == cut:
        threshold += " (tied with the cut-off: ties are drawn at random, the same way every pass)"
    return f"{policy}: {what}, rank {rank} of {of} ({signals}){threshold}; {budget}: to {where}"


def gold_gate_reason(gate_reason: str) -> str:
    """The decision's reason when the gold gate sends an item to humans instead of the judges alone."""
    return f"gold gate: not to the judges alone, as {gate_reason}; a human labels it"


def _move(campaign: Campaign, item_ids: list[int], destination: str, *, was: str, since=None) -> list[int]:
    """Move these items from route `was` to `destination`; returns those moved. Compare-and-set: an item whose
    route changed since the pass read it stays. One leaving the human side moves only while no human has
    labelled or leased it (a lease taken since wins), and none moves over an admin's override made since
    `since`."""
    table, decisions = Item._meta.db_table, RoutingDecision._meta.db_table
    guard = ""
    if destination == Item.Route.LLM:
        guard += " AND NOT (route IN ('human', 'both') AND (human_label_count > 0 OR assigned_count > 0))"
    extra: list = []
    if since is not None:
        guard += (
            f" AND NOT EXISTS (SELECT 1 FROM {decisions} d WHERE d.item_id = {table}.id"
            " AND d.overridden_by_id IS NOT NULL AND d.created_at >= %s)"
        )
        extra.append(since)
    moved: list[int] = []
    with connection.cursor() as cursor:
        for chunk in chunks(item_ids):
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"UPDATE {table} SET route = %s WHERE campaign_id = %s AND route = %s AND id IN ({marks}){guard} "
                "RETURNING id",
                [destination, campaign.pk, was, *chunk, *extra],
            )
            moved += [row[0] for row in cursor.fetchall()]
    return moved


def _active_judge_run(campaign: Campaign) -> Job | None:
    from routing.judges.runs import JOB_KIND as JUDGE_RUN

    return Job.objects.filter(campaign=campaign, kind=JUDGE_RUN, state__in=Job.ACTIVE_STATES).first()


def _start_judges(campaign: Campaign, *, waiting: bool) -> Job | None:
    """Queue a judge run for what the judges still owe: every routable item (not a gold check, not labelled
    or leased by a human) without a judgment yet. A run already queued or running was fixed on its items
    when it began: it is asked to route with judges again when it ends, so items that arrived meanwhile are
    judged by the next run. None when nothing is owed or a run is active."""
    from routing.judges.runs import judge_run_start, run_items

    active = _active_judge_run(campaign)
    if active is not None:
        if waiting:
            Job.objects.filter(pk=active.pk).update(params={**active.params, "route_again": True})
        return None
    if not _has_callable_judges(campaign):
        return None
    judges = list(campaign.judges.filter(active=True, imported=False))
    judged = Annotation.objects.filter(campaign=campaign, source=Annotation.Source.JUDGE, judge__in=judges)
    if not run_items(campaign=campaign, scope="routable").exclude(pk__in=judged.values("item_id")).exists():
        return None
    try:
        return judge_run_start(campaign=campaign, judges=judges, scope="routable", then_route=waiting)
    except ValueError as exc:
        log.warning("campaign %s: could not start the judges: %s", campaign.slug, exc)
        return None


# --- jobs, requests, overrides ------------------------------------------------------------------------


@job_handler(JOB_KIND)
def route_job(job: Job, progress) -> dict:
    campaign = Campaign.objects.get(pk=job.campaign_id)
    return route_campaign(campaign=campaign, progress=progress, start_judges=job.params.get("start_judges", True))


def route_start(*, campaign: Campaign, created_by=None, dispatch: bool = True, start_judges: bool = True) -> Job:
    """Queue a routing pass (checks first that the policy can run, so the caller hears what is wrong)."""
    route_check(campaign)
    return job_create(
        kind=JOB_KIND,
        params={"start_judges": start_judges},
        campaign=campaign,
        created_by=created_by,
        dispatch=dispatch,
    )


def route_check(campaign: Campaign) -> None:
    """ValueError when the campaign's policy cannot route it as configured."""
    if campaign.routing_policy in BUDGETED_POLICIES and campaign.human_budget is None:
        raise ValueError(
            f"the {campaign.routing_policy} policy spends a human budget: set the campaign's human_budget "
            "(a fraction ≤ 1 or a count of items)"
        )
    if campaign.routing_policy != Campaign.RoutingPolicy.ALL_HUMAN and campaign.kind == Campaign.Kind.BOTH:
        raise ValueError(BOTH_KINDS)


def route_request(*, campaign: Campaign, start_judges: bool = True, countdown: float = 0) -> Job | None:
    """Ask for a routing pass after something routing depends on changed (new items, a judge run, a new
    budget or policy). A queued pass will see the change, so nothing is added; a campaign whose policy
    cannot run yet (no budget) gets none. A pass asked for by a judge run starts no judge run itself
    (`start_judges=False`), so an endpoint that keeps failing cannot set off an endless chain.

    Inside a transaction the request is made when it commits: a queued pass that starts meanwhile would
    not see the uncommitted change, and this request must not be dropped in its favour. Returns the job
    when one was queued here and then.
    """

    def request() -> Job | None:
        try:
            route_check(Campaign.objects.get(pk=campaign.pk))
        except (ValueError, Campaign.DoesNotExist):
            return None
        with transaction.atomic():
            queued = Job.objects.filter(campaign=campaign, kind=JOB_KIND, state=Job.State.QUEUED)
            if queued.filter(params__start_judges=True).exists() or (not start_judges and queued.exists()):
                return None
            params = {"start_judges": start_judges}
            return job_create(kind=JOB_KIND, params=params, campaign=campaign, countdown=countdown)

    if connection.in_atomic_block:
        transaction.on_commit(request)
        return None
    return request()


def route_override(*, item: Item, destination: str, user, reason: str = "") -> RoutingDecision:
    """An admin's decision for one item: it holds until another override (later passes leave it alone).

    Labels already given stay; an item taken from humans gets no new leases.
    """
    if destination not in RoutingDecision.Destination.values:
        raise ValueError(f"destination must be one of {', '.join(RoutingDecision.Destination.values)}")
    if item.is_gold:
        raise ValueError("gold (attention-check) items are not routed: they have their own queue")
    if destination == RoutingDecision.Destination.LLM:
        allowed, why = llm_only_gate(campaign=item.campaign)
        if not allowed:
            raise ValueError(f"item {item.external_id} cannot go to the judges alone: {why}")
    with transaction.atomic():
        # The lock a pass writes under: an override lands before a pass's writes (which then leave it) or
        # after them.
        Campaign.objects.select_for_update().filter(pk=item.campaign_id).first()
        Item.objects.filter(pk=item.pk).update(route=destination)
        item.route = destination
        return RoutingDecision.objects.create(
            campaign_id=item.campaign_id,
            item=item,
            destination=destination,
            policy=OVERRIDE,
            reason=reason.strip() or f"set by {user.get_username()}",
            overridden_by=user,
        )


def last_pass(campaign: Campaign) -> Job | None:
    return Job.objects.filter(campaign=campaign, kind=JOB_KIND).order_by("-created_at", "-id").first()
