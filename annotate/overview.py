"""The campaign home's reads: what an admin watches while a campaign runs, in a few aggregate queries each.

Selectors (`campaign_overview` for the live fragment, `campaign_quality` for the annotator table and the
most disputed items, and one per panel) choose the query shape; the arithmetic on their
results (hourly buckets, rates, the projected finish, the disagreement ranking) is in pure functions
below them, tested without a database. Quality figures that need the whole label matrix (agreement
with consensus, gold accuracy, position bias) are not recomputed here: they come from the latest
`StatsSnapshot`, and say when it was computed.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import (
    Aggregate,
    BooleanField,
    Case,
    CharField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Max,
    OuterRef,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, TruncHour
from django.utils import timezone

from annotate import schema as label_schema
from annotate.models import Annotation, AnnotatorStanding, Assignment, Campaign, Item, Job, JudgeVerdict, StatsSnapshot
from annotate.services.progress import campaign_totals
from annotate.services.targets import target_expression
from annotate.stats.aggregate import soft_labels
from routing import api as routing_api

HOURS = 48
WORKING_WINDOW = timedelta(minutes=15)
RATE_WINDOW = timedelta(hours=1)
DISAGREEMENT_LIMIT = 10

ROUTES = tuple(Item.Route.values)  # unrouted, human, llm, both
NO_LABELS, IN_PROGRESS, COMPLETE = "no_labels", "in_progress", "complete"
STATES = (NO_LABELS, IN_PROGRESS, COMPLETE)
STATE_WORDS = {NO_LABELS: "no labels yet", IN_PROGRESS: "in progress", COMPLETE: "complete"}


@contextmanager
def short_reads() -> Iterator[None]:
    """One transaction for the panels' aggregates, without PostgreSQL's JIT compiler (SET LOCAL: for
    this transaction only, or the caller's when it already holds one).

    Its cost model takes the subqueries and groupings here for millions of rows and spends up to a
    second compiling a plan that then runs in a tenth of that (measured by bench/campaign_home.py).
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        yield


def campaign_overview(*, campaign: Campaign, now: datetime | None = None) -> dict:
    """What the campaign home's live fragment shows (polled every few seconds): cheap aggregates."""
    now = now or timezone.now()
    with short_reads():
        items = items_by_route_and_state(campaign=campaign)
        return {
            "now": now,
            "items": items,
            "hourly": labels_per_hour(campaign=campaign, now=now),
            "budget": human_budget(campaign=campaign, now=now, items=items),
            "judges": judge_costs(campaign=campaign),
            "working": working_now(campaign=campaign, now=now),
        }


def campaign_quality(*, campaign: Campaign, now: datetime | None = None) -> dict:
    """What the campaign home's quality fragment shows (polled less often: it reads every human label):
    the annotator table and the items with the most disagreement."""
    with short_reads():
        return {
            "now": now or timezone.now(),
            "annotators": annotator_table(campaign=campaign),
            "disagreement": most_disagreed_items(campaign=campaign),
        }


# --- items by route and state ------------------------------------------------------------------


def _human_state(campaign: Campaign) -> Case:
    """A human-labelled item's state as SQL: its human labels against its target, the engine's own rule
    (`targets.target_expression`: a lowered target, the overlap, and dynamic overlap's extra labels)."""
    target = target_expression(campaign)
    return Case(
        When(human_label_count__gte=target, then=Value(COMPLETE)),
        When(human_label_count__gt=0, then=Value(IN_PROGRESS)),
        default=Value(NO_LABELS),
        output_field=CharField(),
    )


def items_by_route_and_state(*, campaign: Campaign) -> dict:
    """Items per route and state (gold checks apart), with the human labels on each group.

    Routes: unrouted, human, llm, both. States: no labels yet; in progress (some labels, short of
    done); complete (human labels at the item's target, `label_target` if lowered else the overlap;
    for items routed to llm, a usable judge verdict). Gold checks are not routed nor capped: they are
    counted as answered or not, with their answers.

    Two queries: grouping on a CASE that holds subqueries made PostgreSQL estimate millions and spend a
    second compiling the plan (JIT); the judges' items are counted on their own, with the subqueries
    in aggregate filters.
    """
    judge_items = Q(route=Item.Route.LLM, gold_label__isnull=True)
    rows = list(
        Item.objects.filter(campaign=campaign)
        .exclude(judge_items)
        .order_by()
        .annotate(
            gold=ExpressionWrapper(Q(gold_label__isnull=False), output_field=BooleanField()),
            state=_human_state(campaign),
        )
        .values("gold", "route", "state")
        .annotate(n=Count("id"), labels=Sum("human_label_count"))
    )
    # The campaign in the subqueries lets the planner hash just this campaign's verdicts and judgments.
    verdict = Exists(JudgeVerdict.objects.filter(campaign=campaign, item=OuterRef("pk"), label__isnull=False))
    judged = Exists(Annotation.objects.filter(campaign=campaign, source=Annotation.Source.JUDGE, item=OuterRef("pk")))
    states = {
        COMPLETE: Q(verdict=True),
        IN_PROGRESS: Q(verdict=False) & (Q(human_label_count__gt=0) | Q(judged=True)),
        NO_LABELS: Q(verdict=False, judged=False, human_label_count=0),
    }
    llm = (
        Item.objects.filter(judge_items, campaign=campaign)
        .order_by()
        .annotate(verdict=verdict, judged=judged)
        .aggregate(
            **{f"n_{state}": Count("id", filter=condition) for state, condition in states.items()},
            **{f"labels_{state}": Sum("human_label_count", filter=condition) for state, condition in states.items()},
        )
    )
    rows += [
        {
            "gold": False,
            "route": Item.Route.LLM,
            "state": state,
            "n": llm[f"n_{state}"],
            "labels": llm[f"labels_{state}"],
        }
        for state in states
    ]
    return item_state_table(rows)


def item_state_table(rows: Iterable[Mapping]) -> dict:
    """Rows {gold, route, state, n, labels} → the panel's table: per route the count per state,
    totals, and the gold checks (items, answered, answers)."""
    routes = {route: {**dict.fromkeys(STATES, 0), "total": 0, "labels": 0} for route in ROUTES}
    gold = {"items": 0, "answered": 0, "answers": 0}
    for row in rows:
        n, labels = int(row["n"]), int(row["labels"] or 0)
        if row["gold"]:
            gold["items"] += n
            gold["answered"] += 0 if row["state"] == NO_LABELS else n
            gold["answers"] += labels
            continue
        cell = routes[row["route"]]
        cell[row["state"]] += n
        cell["total"] += n
        cell["labels"] += labels
    totals = {key: sum(cell[key] for cell in routes.values()) for key in (*STATES, "total", "labels")}
    return {
        "routes": [{"route": route, **cell} for route, cell in routes.items()],
        "totals": totals,
        "gold": gold,
    }


# --- labels per hour ---------------------------------------------------------------------------


def labels_per_hour(*, campaign: Campaign, now: datetime, hours: int = HOURS) -> dict:
    """Human and judge labels created in each of the last `hours` hours (the current one included)."""
    start = hour_floor(now) - timedelta(hours=hours - 1)
    rows = (
        Annotation.objects.filter(campaign=campaign, created_at__gte=start)
        .order_by()
        .annotate(hour=TruncHour("created_at"))
        .values("hour", "source")
        .annotate(n=Count("id"))
    )
    return hourly_series({(row["hour"], row["source"]): row["n"] for row in rows}, now=now, hours=hours)


def hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def hourly_series(counts: Mapping[tuple[datetime, str], int], *, now: datetime, hours: int = HOURS) -> dict:
    """{(hour, source): n} → `hours` consecutive hourly buckets ending with the current hour, zeros
    where nothing happened: {"hours": [iso, ...], "human": [...], "judge": [...], "human_total", "judge_total"}."""
    last = hour_floor(now)
    buckets = [last - timedelta(hours=hours - 1 - k) for k in range(hours)]
    by_hour = defaultdict(dict)
    for (hour, source), n in counts.items():
        by_hour[hour_floor(hour)][source] = by_hour[hour_floor(hour)].get(source, 0) + int(n)
    human = [by_hour.get(b, {}).get(Annotation.Source.HUMAN, 0) for b in buckets]
    judge = [by_hour.get(b, {}).get(Annotation.Source.JUDGE, 0) for b in buckets]
    return {
        "hours": [b.isoformat() for b in buckets],
        "human": human,
        "judge": judge,
        "human_total": sum(human),
        "judge_total": sum(judge),
    }


# --- human budget ------------------------------------------------------------------------------


def human_budget(*, campaign: Campaign, now: datetime, items: dict | None = None) -> dict:
    """Human labels given against the plan, and when the plan is done at the last hour's rate.

    The plan is every human-routed item's target (`campaign_totals`: routes human and both, gold checks
    apart) plus, while items wait unrouted, the rest of the routing budget the last routing pass set
    (`human_items_target`, in items) at the campaign's overlap. Routing's own figures come from
    `routing.api.routing_status`: nothing here decides routes. `items` is `items_by_route_and_state`'s
    answer when the caller has it: its human labels on routable items are the labels given.
    """
    status = routing_api.routing_status(campaign=campaign)
    totals = campaign_totals(campaign=campaign)
    destinations = status["destinations"]
    human_items = destinations.get(Item.Route.HUMAN, 0) + destinations.get(Item.Route.BOTH, 0)
    previous = status["last_pass"]
    target_items = None
    if previous is not None and previous.state == Job.State.SUCCEEDED:
        target_items = (previous.result or {}).get("human_items_target")
    waiting = destinations.get(Item.Route.UNROUTED, 0)
    items = items or items_by_route_and_state(campaign=campaign)
    given = items["totals"]["labels"]
    recent = Annotation.objects.filter(
        campaign=campaign,
        source=Annotation.Source.HUMAN,
        created_at__gte=now - RATE_WINDOW,
        item__gold_label__isnull=True,
    ).count()
    return {
        "policy": status["policy"],
        "human_budget": status["human_budget"],
        "human_items": human_items,
        "target_items": target_items,
        "waiting_items": waiting,
        "given": given,
        **budget_projection(
            done=totals["campaign_labels"],
            wanted=totals["campaign_wanted"],
            pending_items=pending_human_items(target_items=target_items, human_items=human_items, waiting=waiting),
            overlap=campaign.overlap,
            recent=recent,
            window=RATE_WINDOW,
            now=now,
        ),
    }


def pending_human_items(*, target_items: int | None, human_items: int, waiting: int) -> int:
    """Items the routing budget still gives humans once the waiting (unrouted) items are routed."""
    if target_items is None:
        return 0
    return max(0, min(waiting, target_items - human_items))


def rate_per_hour(count: int, window: timedelta) -> float:
    """Labels per hour from `count` labels over `window`."""
    hours = window.total_seconds() / 3600
    if hours <= 0:
        raise ValueError("the window must be longer than zero")
    return count / hours


def projected_finish(*, remaining: int, rate: float, now: datetime) -> datetime | None:
    """When `remaining` labels are given at `rate` labels per hour: now when nothing remains, None at
    a standstill (no rate, no forecast)."""
    if remaining <= 0:
        return now
    if rate <= 0:
        return None
    return now + timedelta(hours=remaining / rate)


def budget_projection(
    *, done: int, wanted: int, pending_items: int, overlap: int, recent: int, window: timedelta, now: datetime
) -> dict:
    """The budget panel's arithmetic: `done` of the plan's labels (each item counted up to its target),
    the plan (`wanted` + `pending_items` × `overlap`), the rate from `recent` labels over `window`, and
    the projected finish."""
    plan = wanted + pending_items * overlap
    remaining = max(0, plan - done)
    rate = rate_per_hour(recent, window)
    finish = projected_finish(remaining=remaining, rate=rate, now=now)
    return {
        "done": done,
        "plan": plan,
        "pending_items": pending_items,
        "remaining": remaining,
        "fraction": done / plan if plan else None,
        "rate_per_hour": rate,
        "finish": finish,
        "hours_left": None if finish is None else (finish - now).total_seconds() / 3600,
    }


# --- judges ------------------------------------------------------------------------------------


def judge_costs(*, campaign: Campaign) -> dict:
    """Per judge: labels, parse failures and the cost so far (Σ `Annotation.cost`); and the totals."""
    rows = list(
        Annotation.objects.filter(campaign=campaign, source=Annotation.Source.JUDGE)
        .order_by()
        .values("judge_id", "judge__name")
        .annotate(n=Count("id"), failed=Count("id", filter=Q(parse_failed=True)), cost=Sum("cost"))
        .order_by("judge__name")
    )
    judges = [
        {"judge": row["judge__name"], "n": row["n"], "failed": row["failed"], "cost": row["cost"] or Decimal(0)}
        for row in rows
    ]
    return {
        "judges": judges,
        "n": sum(j["n"] for j in judges),
        "cost": sum((j["cost"] for j in judges), Decimal(0)),
    }


# --- who is working now ------------------------------------------------------------------------


def working_now(*, campaign: Campaign, now: datetime) -> list[dict]:
    """Annotators holding a live lease or with a label in the last 15 minutes, most recent first, with
    their live leases and their labels in the last hour."""
    leases = dict(
        Assignment.objects.filter(campaign=campaign, state=Assignment.State.LEASED, expires_at__gt=now)
        .order_by()
        .values("annotator_id")
        .annotate(n=Count("id"))
        .values_list("annotator_id", "n")
    )
    recent = {
        row["annotator_id"]: row
        for row in Annotation.objects.filter(
            campaign=campaign, source=Annotation.Source.HUMAN, created_at__gte=now - timedelta(hours=1)
        )
        .order_by()
        .values("annotator_id")
        .annotate(n=Count("id"), last=Max("created_at"))
    }
    return working_rows(leases=leases, recent=recent, names=_usernames({*leases, *recent}), now=now)


def _usernames(ids: Iterable[int]) -> dict[int, str]:
    ids = list(ids)
    if not ids:
        return {}
    return dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))


def working_rows(
    *, leases: Mapping[int, int], recent: Mapping[int, Mapping], names: Mapping[int, str], now: datetime
) -> list[dict]:
    """Who is working: a live lease, or a label within WORKING_WINDOW of `now`."""
    rows = []
    for annotator in {*leases, *recent}:
        row = recent.get(annotator) or {}
        last = row.get("last")
        if not leases.get(annotator) and (last is None or last < now - WORKING_WINDOW):
            continue
        rows.append(
            {
                "annotator": names.get(annotator, f"#{annotator}"),
                "leases": leases.get(annotator, 0),
                "last_hour": row.get("n", 0),
                "last_label": last,
            }
        )
    never = now - timedelta(days=36500)
    return sorted(rows, key=lambda r: (-(r["last_label"] or never).timestamp(), r["annotator"]))


# --- the annotator table -----------------------------------------------------------------------


class Median(Aggregate):
    """PostgreSQL's median (`percentile_cont(0.5)`); other databases take the median in Python."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def annotator_table(*, campaign: Campaign) -> dict:
    """Per annotator: labels and median seconds per label, live; their standing (qualification, attention
    checks, too-fast labels, paused, excluded), live; agreement with consensus, gold accuracy and position
    bias from the latest statistics snapshot (with when it was computed). Someone with a standing but no
    label yet (a qualification round waiting for check items, a pause) has a row too."""
    labels = Annotation.objects.filter(campaign=campaign, source=Annotation.Source.HUMAN).order_by()
    grouped = labels.values("annotator_id", "annotator__username").annotate(n=Count("id"), last=Max("created_at"))
    if connection.vendor == "postgresql":
        rows = list(grouped.annotate(median=Median("seconds")))
    else:
        rows = list(grouped)
        seconds = defaultdict(list)
        for annotator, value in labels.filter(seconds__isnull=False).values_list("annotator_id", "seconds"):
            seconds[annotator].append(value)
        for row in rows:
            found = seconds.get(row["annotator_id"])
            row["median"] = statistics.median(found) if found else None
    snapshot = (
        StatsSnapshot.objects.filter(campaign=campaign)
        .values("computed_at", annotators=F("payload__annotators"))
        .first()
    )
    standings = {
        row.annotator_id: row
        for row in AnnotatorStanding.objects.filter(campaign=campaign).select_related("annotator").order_by()
    }
    live = [
        {
            "annotator": row["annotator__username"],
            "annotator_id": row["annotator_id"],
            "n": row["n"],
            "median_seconds": row["median"],
            "last": row["last"],
            "standing": standing_summary(standings.get(row["annotator_id"]), campaign=campaign),
        }
        for row in rows
    ]
    labelled = {row["annotator_id"] for row in rows}
    live += [
        {
            "annotator": standing.annotator.username,
            "annotator_id": annotator_id,
            "n": 0,
            "median_seconds": None,
            "last": None,
            "standing": standing_summary(standing, campaign=campaign),
        }
        for annotator_id, standing in standings.items()
        if annotator_id not in labelled
    ]
    return annotator_rows(live=live, snapshot=snapshot)


def standing_summary(standing: AnnotatorStanding | None, *, campaign: Campaign) -> dict:
    """An annotator's standing as the table shows it: qualification in words (passed 4/5, failed 1/5, in
    progress, 2 of 5 answered), attention checks failed of taken, too-fast labels, paused, excluded, the
    admin's note."""
    Q = AnnotatorStanding.Qualification
    if standing is None:
        return {
            "qualification": Q.NOT_REQUIRED if not campaign.qualification_items else "",
            "qualification_text": "–" if not campaign.qualification_items else "not started",
            "attention_checks": 0,
            "attention_failures": 0,
            "too_fast": 0,
            "paused": False,
            "pause_reason": "",
            "excluded": False,
            "warned": False,
            "note": "",
        }
    if standing.qualification == Q.NOT_REQUIRED:
        text = "–"
    else:
        done, of = standing.qualification_answered, campaign.qualification_items
        text = {
            Q.PASSED: f"passed {standing.qualification_correct}/{done}",
            Q.FAILED: f"failed {standing.qualification_correct}/{done}",
            Q.IN_PROGRESS: f"in progress, {done} of {of} answered",
        }[standing.qualification]
        if (
            campaign.requalify_on_guidelines
            and standing.qualification_version is not None
            and standing.qualification_version != campaign.guidelines_version
        ):
            text += " (earlier guidelines)"
    return {
        "qualification": standing.qualification,
        "qualification_text": text,
        "attention_checks": standing.attention_checks,
        "attention_failures": standing.attention_failures,
        "too_fast": standing.too_fast,
        "paused": standing.paused_at is not None,
        "pause_reason": standing.pause_reason,
        "excluded": standing.excluded,
        "warned": bool(standing.warning),
        "note": standing.note,
    }


def annotator_rows(*, live: Sequence[Mapping], snapshot: Mapping | None) -> dict:
    """Live rows {annotator, n, median_seconds, last} joined with the snapshot's quality figures by
    username; `in_snapshot` is False for someone who started labelling after it was computed."""
    quality = {}
    if snapshot is not None:
        quality = {row["annotator"]: row for row in snapshot.get("annotators") or [] if isinstance(row, dict)}
    rows = []
    for row in sorted(live, key=lambda r: (-r["n"], r["annotator"])):
        figures = quality.get(row["annotator"])
        rows.append(
            {
                **row,
                "in_snapshot": figures is not None,
                "agreement_with_consensus": (figures or {}).get("agreement_with_consensus"),
                "gold_accuracy": (figures or {}).get("gold_accuracy"),
                "position_bias": (figures or {}).get("position_bias"),
            }
        )
    return {"rows": rows, "computed_at": snapshot["computed_at"] if snapshot else None}


# --- disagreement ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    """The criterion the disagreement ranking reads: its name, whether pairwise, the values compared."""

    name: str
    pairwise: bool
    domain: tuple[float, ...]


def main_criterion(campaign: Campaign) -> Criterion:
    """`overall` when the schema has it, else its first criterion (as the statistics' main tables do).
    Pairwise labels are compared by the side they favour (A, tie, B), as the annotator table's
    agreement is."""
    keys = label_schema.label_keys(campaign.label_schema, campaign.kind)
    key = next((k for k in keys if k.name == label_schema.OVERALL), keys[0])
    domain = (-1.0, 0.0, 1.0) if key.pairwise else tuple(float(v) for v in range(key.low, key.high + 1))
    return Criterion(name=key.name, pairwise=key.pairwise, domain=domain)


def most_disagreed_items(*, campaign: Campaign, limit: int = DISAGREEMENT_LIMIT) -> dict:
    """The items whose human labels on the main criterion split the most (gold checks apart)."""
    criterion = main_criterion(campaign)
    labels = list(
        Annotation.objects.filter(
            campaign=campaign,
            source=Annotation.Source.HUMAN,
            item__human_label_count__gte=2,
            item__gold_label__isnull=True,
        )
        .order_by()
        # Cast in SQL: decoding 300,000 JSON values in Python took longer than the query.
        .values_list("item_id", Cast(KT(f"label__{criterion.name}"), FloatField()))
    )
    ranked = disagreement_ranking(labels, criterion=criterion, limit=limit)
    items = Item.objects.filter(pk__in=[row["item"] for row in ranked]).values("id", "external_id", "route")
    found = {row["id"]: row for row in items}
    for row in ranked:
        row["external_id"] = found.get(row["item"], {}).get("external_id", "")
        row["route"] = found.get(row["item"], {}).get("route", "")
        row["votes_text"] = votes_text(row["votes"], pairwise=criterion.pairwise)
    return {"criterion": criterion.name, "items": ranked}


def disagreement_ranking(labels: Sequence[tuple[int, object]], *, criterion: Criterion, limit: int) -> list[dict]:
    """(item, value) labels → the `limit` items with the most split vote, from the vote distribution
    `annotate.stats.aggregate.soft_labels` gives: disagreement is the share of labels outside the most
    given value (0 when all agree). Items with fewer than two labels cannot disagree; ties on the share
    go to the item with more labels, then the lower id. The matrix is a NumPy array, not a DataFrame: this
    runs on the campaign home, in the web process, which need not load pandas (~100 MiB) for it."""
    items = np.fromiter((label[0] for label in labels), dtype=np.int64, count=len(labels))
    values = np.fromiter((_number(label[1]) for label in labels), dtype=float, count=len(labels))
    if criterion.pairwise:
        values = np.sign(values)
    kept = np.isin(values, np.asarray(criterion.domain, dtype=float))  # NaN (no value) is in no domain
    if not kept.any():
        return []
    items, values = items[kept], values[kept]
    ids, rows = np.unique(items, return_inverse=True)
    # soft_labels counts values per row: which rater gave a label does not matter, so the columns are
    # label slots (the label's rank within its item), and the matrix is as narrow as the most-labelled item.
    order = np.argsort(rows, kind="stable")
    starts = np.searchsorted(rows[order], np.arange(len(ids)))
    slots = np.empty(len(rows), dtype=np.int64)
    slots[order] = np.arange(len(rows)) - np.repeat(starts, np.bincount(rows, minlength=len(ids)))
    matrix = np.full((len(ids), int(slots.max()) + 1), np.nan)
    matrix[rows, slots] = values
    n = np.bincount(rows, minlength=len(ids))
    shares = np.asarray(soft_labels(matrix, domain=list(criterion.domain)), dtype=float)
    disagreement = 1.0 - shares.max(axis=1)
    ranked = [i for i in np.lexsort((ids, -n, -disagreement)) if n[i] >= 2 and disagreement[i] > 0][:limit]
    return [
        {
            "item": int(ids[i]),
            "n": int(n[i]),
            "disagreement": float(disagreement[i]),
            "votes": {
                float(value): int(count)
                for value, count in zip(criterion.domain, np.rint(shares[i] * n[i]).astype(int), strict=True)
                if count
            },
        }
        for i in ranked
    ]


def _number(value: object) -> float:
    """A label's value as a float; NaN when it has none (or it is not a number)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def votes_text(votes: Mapping[float, int], *, pairwise: bool) -> str:
    """A vote distribution in words: "A 2 · tie 1 · B 1" (pairwise) or "3: 1 · 4: 2" (scores)."""
    words = {-1.0: "A", 0.0: "tie", 1.0: "B"}
    if pairwise:
        return " · ".join(f"{words[v]} {votes[v]}" for v in sorted(votes))
    return " · ".join(f"{v:g}: {votes[v]}" for v in sorted(votes))
