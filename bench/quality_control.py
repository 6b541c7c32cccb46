"""What quality control buys: the gate, attention checks and dynamic overlap against planted bad annotators.

A synthetic pairwise campaign (simple-pairwise: A better, tie, B better) with planted true labels and
some gold items (their gold label is the truth) is labelled by simulated annotators driven through the
real assignment engine — `next_assignment_for` and `annotation_submit`, which call the gate and dynamic
overlap themselves — in one process, one annotator action at a time, on a simulated clock (see `simulate`):

- `good`: right with probability ≈ `--qc-good-accuracy` (each their own, drawn around it), otherwise one
  of the two wrong answers; 6–25 s an item;
- `random`: a uniform click among the three answers, 1–3 s an item;
- `always_a`: always the response shown first (on the left), 1.5–4 s an item. Tandem shows B first on half
  the leases, so in the item's own order this is a coin flip between A and B that never says tie;
- `drifter`: a good annotator for their first `--qc-drift-after` labels (so through any qualification
  round), then a random clicker at 2–6 s an item — the bad annotator only attention checks can catch.

Four scenarios on fresh copies of the same campaign, annotators and seeds: (a) no controls, (b) the
qualification gate, (c) the gate with attention checks (warn, then pause) and a minimum time per item,
(d) (c) with dynamic overlap. Each reports the accuracy against the planted truth of the final labels an
export would give (`annotate/exports/aggregate.py` over the labels that count,
`annotate/services/quality/labels.py`), the human labels spent, who was kept out or paused, and its wall
time; (d) against (c) gives the extra labels per accuracy point dynamic overlap costs.
"""

from __future__ import annotations

import heapq
import io
import itertools
import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

ASPECT = "overall"
ANSWERS = (-1, 0, 1)  # simple-pairwise, item order: A better, tie, B better
KINDS = ("good", "random", "always_a", "drifter")
BAD_KINDS = ("random", "always_a", "drifter")
SCENARIOS = ("a_no_controls", "b_gate", "c_gate_attention", "d_gate_attention_overlap")


def add_arguments(group) -> None:
    group.add_argument("--qc-items", type=int, default=400, help="work items in the campaign (quick: 60)")
    group.add_argument("--qc-gold", type=int, default=80, help="gold items, answers known (quick: 30)")
    group.add_argument("--qc-good", type=int, default=12, help="good annotators (quick: 5)")
    group.add_argument("--qc-random", type=int, default=3, help="random clickers (quick: 2)")
    group.add_argument("--qc-always-a", type=int, default=3, help="annotators who always pick the left response")
    group.add_argument("--qc-drifters", type=int, default=2, help="good at first, random later (quick: 1)")
    group.add_argument("--qc-good-accuracy", type=float, default=0.85, help="a good annotator's mean accuracy")
    group.add_argument("--qc-drift-after", type=int, default=25, help="labels a drifter gives before drifting")
    group.add_argument("--qc-qualification", type=int, default=10, help="qualification items (the gate)")
    group.add_argument("--qc-threshold", type=float, default=0.8, help="qualification accuracy to enter the queue")
    group.add_argument("--qc-gold-rate", type=float, default=0.1, help="share of attention checks, (c) and (d)")
    group.add_argument("--qc-max-failures", type=int, default=3, help="failed attention checks before a pause")
    group.add_argument("--qc-min-seconds", type=float, default=5.0, help="least seconds per item, (c) and (d)")
    group.add_argument("--qc-overlap-max", type=int, default=5, help="dynamic overlap's maximum, (d); overlap is 3")
    group.add_argument("--qc-agreement", type=float, default=0.7, help="agreement threshold of dynamic overlap, (d)")
    group.add_argument("--qc-seed", type=int, default=13, help="seed of the data, the annotators and the engine")


def parameters_from(args) -> dict:
    """The run's parameters: `--quick` shrinks the campaign and the pool, not the controls."""
    quick = args.quick
    return {
        "items": 60 if quick else args.qc_items,
        "gold": 30 if quick else args.qc_gold,
        "annotators": {
            "good": 5 if quick else args.qc_good,
            "random": 2 if quick else args.qc_random,
            "always_a": 2 if quick else args.qc_always_a,
            "drifter": 1 if quick else args.qc_drifters,
        },
        "good_accuracy": args.qc_good_accuracy,
        "drift_after": args.qc_drift_after,
        "overlap": 3,
        "controls": {
            "qualification_items": args.qc_qualification,
            "qualification_threshold": args.qc_threshold,
            "gold_rate": args.qc_gold_rate,
            "attention_max_failures": args.qc_max_failures,
            "min_seconds": args.qc_min_seconds,
            "overlap_max": args.qc_overlap_max,
            "agreement_threshold": args.qc_agreement,
        },
        "seed": args.qc_seed,
    }


def scenario_settings(controls: dict) -> dict[str, dict]:
    """Campaign fields per scenario; each adds controls to the one before."""
    gate = {
        "qualification_items": controls["qualification_items"],
        "qualification_threshold": controls["qualification_threshold"],
    }
    attention = {
        **gate,
        "gold_rate": controls["gold_rate"],
        "attention_max_failures": controls["attention_max_failures"],
        "min_seconds": controls["min_seconds"],
    }
    overlap = {
        **attention,
        "overlap_max": controls["overlap_max"],
        "agreement_threshold": controls["agreement_threshold"],
        "overlap_on_judge_disagreement": False,  # no judges here: disagreement among humans only
    }
    return dict(zip(SCENARIOS, ({}, gate, attention, overlap), strict=True))


# --- the data --------------------------------------------------------------------------------------


def planted_items(*, items: int, gold: int, seed: int) -> list[dict]:
    """Import rows with a planted truth: 45 % A better, 45 % B better, 10 % ties; gold items carry theirs."""
    rng = random.Random(seed)
    rows = []
    for n in range(items + gold):
        truth = rng.choices(ANSWERS, weights=(45, 10, 45))[0]
        row = {
            "id": f"{'gold' if n >= items else 'item'}-{n:05d}",
            "prompt": f"Question {n}: which of the two answers explains it better?",
            "response_a": f"Answer A to question {n}.",
            "response_b": f"Answer B to question {n}.",
            "metadata": {"truth": truth},
        }
        if n >= items:
            row["gold_label"] = {ASPECT: truth}
        rows.append(row)
    return rows


@dataclass
class Simulated:
    """One simulated annotator: what they click, and how long they take, given what they see."""

    name: str
    kind: str
    accuracy: float
    drift_after: int
    rng: random.Random
    user: object = None
    labels_given: int = 0
    outcome: str = ""  # the NoWork reason that stopped them for good ("" = they ran out of items)
    work_labels: int = 0

    def behaves_as(self) -> str:
        if self.kind == "drifter":
            return "good" if self.labels_given < self.drift_after else "random"
        return self.kind

    def answer(self, *, truth: int, position_swapped: bool, schema: dict) -> tuple[dict, float]:
        """The label as clicked (display order: negative is the response on the left) and the seconds."""
        from annotate import schema as label_schema

        behaviour = self.behaves_as()
        if behaviour == "good":
            seen = label_schema.label_orient(
                schema=schema, kind="pairwise", label={ASPECT: truth}, position_swapped=position_swapped
            )[ASPECT]
            if self.rng.random() >= self.accuracy:
                seen = self.rng.choice([v for v in ANSWERS if v != seen])
            return {ASPECT: seen}, self.rng.uniform(8.0, 30.0)
        if behaviour == "always_a":
            return {ASPECT: -1}, self.rng.uniform(2.0, 8.0)
        return {ASPECT: self.rng.choice(ANSWERS)}, self.rng.uniform(2.0, 8.0)


def simulated_pool(parameters: dict, users: dict[str, object]) -> list[Simulated]:
    """The same annotators, with freshly seeded behaviour, for every scenario."""
    seed = parameters["seed"]
    pool = []
    for kind in KINDS:
        for n in range(parameters["annotators"][kind]):
            name = f"bench-qc-{kind.replace('_', '')}-{n:02d}"
            rng = random.Random(f"{seed}:{name}")
            accuracy = parameters["good_accuracy"]
            if kind in ("good", "drifter"):
                accuracy = min(0.98, max(0.6, rng.gauss(accuracy, 0.04)))
            pool.append(
                Simulated(name=name, kind=kind, accuracy=accuracy, drift_after=parameters["drift_after"], rng=rng)
            )
            pool[-1].user = users[name]
    return pool


def _users(parameters: dict) -> dict[str, object]:
    from django.contrib.auth import get_user_model

    User = get_user_model()
    names = [
        f"bench-qc-{kind.replace('_', '')}-{n:02d}" for kind in KINDS for n in range(parameters["annotators"][kind])
    ]
    return {name: User.objects.get_or_create(username=name)[0] for name in names}


# --- one scenario -----------------------------------------------------------------------------------


def _campaign(*, name: str, rows: list[dict], settings: dict, seed: int):
    """A fresh open campaign with the rows imported, the scenario's controls set and the seed's queue order."""
    from annotate.models import Campaign, Item
    from annotate.services.campaigns import campaign_create
    from annotate.services.imports import items_import
    from annotate.services.imports.columns import queue_rank

    campaign = campaign_create(name=name, kind="pairwise", preset="simple-pairwise", overlap=3)
    stream = io.BytesIO("".join(json.dumps(row) + "\n" for row in rows).encode())
    report = items_import(campaign=campaign, stream=stream, filename="planted.jsonl")
    if report.created != len(rows):
        raise RuntimeError(f"import created {report.created} of {len(rows)} items: {report}")
    # The queue order is a hash of (campaign id, item id): a new campaign id each run would change which
    # gold items make up the qualification round. Ranking by (seed, item id) keeps runs comparable.
    for pk, external_id in Item.objects.filter(campaign=campaign).values_list("pk", "external_id"):
        Item.objects.filter(pk=pk).update(queue_rank=queue_rank(seed, external_id))
    # The controls are plain campaign fields; setting them directly keeps this benchmark independent of
    # the settings form (which validates the same fields for people).
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.OPEN, **settings)
    campaign.refresh_from_db()
    unrouted = Item.objects.filter(campaign=campaign, gold_label__isnull=True).exclude(route=Item.Route.HUMAN).count()
    if unrouted:
        raise RuntimeError(f"{unrouted} work items of campaign {campaign.slug!r} are not routed to humans")
    return campaign


def simulate(*, campaign, pool: list[Simulated], truth: dict[int, int], seed: int) -> dict:
    """Drive every simulated annotator through the engine until nobody gets another item.

    Events on a simulated clock, earliest first: an annotator asks for an item, takes their time over it
    (others act meanwhile, so leases overlap as they do in a real campaign), submits, and asks again a
    second later. Fast annotators therefore give more labels, as speeders do. Told `done` or `wait`, an
    annotator idles until dynamic overlap asks for another label somewhere; any other NoWork
    (`not_qualified`, `paused`) is final.
    """
    from annotate.models import Item
    from annotate.services.assignments import annotation_submit, next_assignment_for
    from annotate.services.outcomes import NoWork

    random.seed(seed)  # the engine's own draws: attention checks, which side is shown first
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    events: list[tuple[datetime, int, Simulated, tuple | None]] = []
    order = itertools.count()
    for sim in pool:
        heapq.heappush(events, (start + timedelta(seconds=sim.rng.uniform(0, 60)), next(order), sim, None))
    idle: list[Simulated] = []
    extra = {}  # item -> the extra labels dynamic overlap had asked for when last looked at

    def reopened(item_id: int) -> bool:
        """Whether this submit made dynamic overlap ask for another label (the only way, with no lease
        expiring or skipped here, that an annotator told `done` or `wait` could get an item again)."""
        if campaign.overlap_max is None:
            return False
        now_extra = Item.objects.filter(pk=item_id).values_list("extra_labels", flat=True).get()
        grew, extra[item_id] = now_extra > extra.get(item_id, 0), now_extra
        return grew

    calls = 0
    now = start
    while events:
        now, _, sim, pending = heapq.heappop(events)
        calls += 1
        if pending is None:
            lease = next_assignment_for(annotator=sim.user, campaign=campaign, now=now)
            if isinstance(lease, NoWork):
                if lease.reason in ("done", "wait"):
                    idle.append(sim)
                else:
                    sim.outcome = lease.reason
                continue
            label, seconds = sim.answer(
                truth=truth[lease.item_id], position_swapped=bool(lease.position_swapped), schema=campaign.label_schema
            )
            sim.labels_given += 1
            heapq.heappush(events, (now + timedelta(seconds=seconds), next(order), sim, (lease, label, seconds)))
            continue
        lease, label, seconds = pending
        annotation_submit(assignment_id=lease.pk, annotator=sim.user, label=label, active_seconds=seconds, now=now)
        sim.work_labels += lease.purpose == "work"
        again = now + timedelta(seconds=1)
        heapq.heappush(events, (again, next(order), sim, None))
        if idle and reopened(lease.item_id):
            for waiting in idle:
                heapq.heappush(events, (again, next(order), waiting, None))
            idle.clear()
    return {"engine_calls": calls, "simulated_hours": round((now - start).total_seconds() / 3600, 2)}


def countable_labels(*, campaign) -> list[tuple[int, int, dict]]:
    """(item, annotator, label) of the human labels that count, as statistics and exports count them."""
    from annotate.services.quality.labels import countable_human_annotations

    return list(countable_human_annotations(campaign=campaign).values_list("item_id", "annotator_id", "label"))


def final_labels(labels: list[tuple[int, int, dict]], *, campaign) -> dict[int, int | None]:
    """Item -> the direction of its final label as an export computes it (`annotate.exports.aggregate`)."""
    from collections import defaultdict

    from annotate.exports.aggregate import aggregate_items

    per_item: dict[int, list[dict]] = defaultdict(list)
    for item, _annotator, label in labels:
        per_item[item].append({"source": "human", "label": label})
    items = sorted(per_item)
    finals = aggregate_items(
        [per_item[item] for item in items], schema=campaign.label_schema, kind=campaign.kind, source="human"
    )
    return {item: final.direction for item, final in zip(items, finals, strict=True)}


def measure(*, campaign, pool: list[Simulated], truth: dict[int, int], work_ids: set[int]) -> dict:
    """Accuracy against the planted truth, labels spent, and what happened to each kind of annotator."""
    from annotate.models import Annotation, AnnotatorStanding, Item

    human = Annotation.objects.filter(campaign=campaign, source=Annotation.Source.HUMAN)
    counted = countable_labels(campaign=campaign)
    counted_work = [row for row in counted if row[0] in work_ids]
    every_work = list(human.filter(item_id__in=work_ids).values_list("item_id", "annotator_id", "label"))
    final = final_labels(counted_work, campaign=campaign)
    final_all = final_labels(every_work, campaign=campaign)
    correct = sum(final.get(item) == truth[item] for item in work_ids)
    correct_all = sum(final_all.get(item) == truth[item] for item in work_ids)
    label_right = sum(label.get(ASPECT) == truth[item] for item, _a, label in counted_work)
    by_user = {sim.user.pk: sim for sim in pool}
    standings = {s.annotator_id: s for s in AnnotatorStanding.objects.filter(campaign=campaign)}
    items = Item.objects.filter(campaign=campaign, pk__in=work_ids)
    kinds = {}
    for kind in KINDS:
        members = [sim for sim in pool if sim.kind == kind]
        if not members:
            continue
        kinds[kind] = {
            "annotators": len(members),
            "kept_out": sum(sim.work_labels == 0 for sim in members),
            "not_qualified": sum(sim.outcome == "not_qualified" for sim in members),
            "paused": sum(sim.outcome == "paused" for sim in members),
            "warned": sum(
                standings.get(sim.user.pk) is not None and standings[sim.user.pk].warned_at is not None
                for sim in members
            ),
            "work_labels": sum(sim.work_labels for sim in members),
            "counted_work_labels": sum(by_user[a].kind == kind for _i, a, _l in counted_work),
        }
    bad = [kinds[k] for k in BAD_KINDS if k in kinds]
    n_work = len(work_ids)
    return {
        "final_accuracy": round(correct / n_work, 4),
        "final_accuracy_every_label": round(correct_all / n_work, 4),
        "label_accuracy": round(label_right / len(counted_work), 4) if counted_work else None,
        "human_labels": human.count(),
        "work_labels": len(every_work),
        "gold_labels": human.exclude(item_id__in=work_ids).count(),
        "counted_work_labels": len(counted_work),
        "too_fast_labels": human.filter(too_fast=True).count(),
        "work_labels_per_item": round(len(every_work) / n_work, 3),
        "max_work_labels_per_item": max(items.values_list("human_label_count", flat=True), default=0),
        "items_with_extra_labels": items.filter(extra_labels__gt=0).count(),
        "extra_labels_asked": sum(items.values_list("extra_labels", flat=True)),
        "items_contested": items.filter(review_state=Item.ReviewState.CONTESTED).count(),
        "bad_annotators": sum(k["annotators"] for k in bad),
        "bad_kept_out": sum(k["kept_out"] for k in bad),
        "bad_paused": sum(k["paused"] for k in bad),
        "bad_share_of_counted_work_labels": round(sum(k["counted_work_labels"] for k in bad) / len(counted_work), 4)
        if counted_work
        else None,
        "by_kind": kinds,
    }


def _teardown(campaign) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("annotate_annotation", "annotate_assignment", "annotate_routingdecision"):
            cursor.execute(f"DELETE FROM {table} WHERE campaign_id = %s", [campaign.pk])
    campaign.delete()


def run_scenario(*, name: str, settings: dict, rows: list[dict], parameters: dict, users: dict) -> dict:
    from annotate.models import Item

    seed = parameters["seed"]
    label = f"bench quality control {name} {int(time.time())}"
    campaign = _campaign(name=label, rows=rows, settings=settings, seed=seed)
    try:
        planted = {row["id"]: row["metadata"]["truth"] for row in rows}
        ids = dict(Item.objects.filter(campaign=campaign).values_list("external_id", "pk"))
        truth = {pk: planted[external_id] for external_id, pk in ids.items()}
        work_ids = {pk for external_id, pk in ids.items() if external_id.startswith("item-")}
        pool = simulated_pool(parameters, users)
        began = time.perf_counter()
        run_info = simulate(campaign=campaign, pool=pool, truth=truth, seed=seed)
        wall_s = time.perf_counter() - began
        result = {"settings": settings, **measure(campaign=campaign, pool=pool, truth=truth, work_ids=work_ids)}
        result.update(run_info)
        result["wall_s"] = round(wall_s, 2)
        result["ms_per_label"] = round(1000 * wall_s / max(result["human_labels"], 1), 2)
        return result
    finally:
        _teardown(campaign)


def _stale_campaigns() -> None:
    """Leftovers of an interrupted run."""
    from annotate.models import Campaign

    for campaign in Campaign.objects.filter(slug__startswith="bench-quality-control-"):
        _teardown(campaign)


def compare(scenarios: dict[str, dict]) -> dict:
    """What each control adds over the scenario before it, and what dynamic overlap costs per point."""
    a, b, c, d = (scenarios[name] for name in SCENARIOS)
    points = 100 * (d["final_accuracy"] - c["final_accuracy"])
    extra = d["human_labels"] - c["human_labels"]
    return {
        "gate_accuracy_points": round(100 * (b["final_accuracy"] - a["final_accuracy"]), 2),
        "attention_accuracy_points": round(100 * (c["final_accuracy"] - b["final_accuracy"]), 2),
        "overlap_accuracy_points": round(points, 2),
        "controls_accuracy_points": round(100 * (d["final_accuracy"] - a["final_accuracy"]), 2),
        "overlap_extra_labels": extra,
        # Only meaningful when dynamic overlap bought accuracy at all.
        "overlap_extra_labels_per_accuracy_point": round(extra / points, 1) if points > 0 else None,
    }


def run(args) -> dict:
    parameters = parameters_from(args)
    rows = planted_items(items=parameters["items"], gold=parameters["gold"], seed=parameters["seed"])
    users = _users(parameters)
    _stale_campaigns()
    scenarios = {
        name: run_scenario(name=name, settings=settings, rows=rows, parameters=parameters, users=users)
        for name, settings in scenario_settings(parameters["controls"]).items()
    }
    comparison = compare(scenarios)
    summary = (
        "final-label accuracy "
        + ", ".join(
            f"({name[0]}) {s['final_accuracy']:.1%} with {s['human_labels']} labels" for name, s in scenarios.items()
        )
        + f"; bad annotators kept out by the gate {scenarios['b_gate']['bad_kept_out']}/"
        f"{scenarios['b_gate']['bad_annotators']}, paused in (c) {scenarios['c_gate_attention']['bad_paused']}; "
        f"dynamic overlap: {comparison['overlap_extra_labels']} extra labels for "
        f"{comparison['overlap_accuracy_points']} points"
    )
    return {
        "parameters": parameters,
        "measurements": {"scenarios": scenarios, "comparison": comparison},
        "summary": summary,
    }
