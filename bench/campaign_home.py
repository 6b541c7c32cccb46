"""campaign_home: the campaign home's overview on 100,000 items and 300,000 human labels, per panel and as
the live fragment an admin's tab polls every 5 s.

The campaign is written straight into the database by COPY (no importer, no services): 100,000 pairwise
items (75 % routed to humans, 10 % to both, 12 % to the judges, 2 % waiting, 1 % gold checks), an overlap
of 4, 300,000 human labels from 60 annotators spread over the last 48 hours (70,000 items complete,
10,000 half-done), two judges' labels in both orders with costs on the judge-routed and calibration
items, their verdicts, 40 live leases, a statistics snapshot and a finished routing pass; then
`ANALYZE`, as a running database would have statistics. Measured, median of `--home-repeat` rounds:
each selector of annotate/overview.py alone, `campaign_overview` and `campaign_quality` whole, and GET
of the page, of /c/<slug>/live/ (polled every 5 s) and of /c/<slug>/quality/ (every 30 s), rendered
through the whole Django stack by the test client. Our targets: the live fragment under 0.75 s and the
quality one under 1.5 s, so one admin's open tab keeps a core busy about a tenth of the time at most.
All labels fall within the last 48 hours here, the worst case for the labels-per-hour panel.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from datetime import timedelta

ITEMS = 100_000
QUICK_ITEMS = 5_000
ANNOTATORS = 60
OVERLAP = 4
LEASES = 40
TARGET_FRAGMENT_S = 0.75
TARGET_QUALITY_S = 1.5
SEED = 20261202


def add_arguments(group) -> None:
    group.add_argument("--home-items", type=int, help=f"items (default {ITEMS:,}; --quick: {QUICK_ITEMS:,})")
    group.add_argument("--home-repeat", type=int, default=5, help="timed rounds per measurement (default 5)")


def _copy(table: str, columns: tuple[str, ...], rows) -> int:
    from django.db import connection

    n = 0
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def _route_of(k: int, items: int) -> tuple[str, bool]:
    """(route, gold) of the k-th item: the shares in the module's docstring."""
    share = k / items
    if share < 0.01:
        return "human", True
    if share < 0.76:
        return "human", False
    if share < 0.86:
        return "both", False
    if share < 0.98:
        return "llm", False
    return "unrouted", False


def _build(items: int, rng: random.Random) -> tuple[object, dict]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from annotate.models import Annotation, Assignment, Item, Job, Judge, JudgeVerdict, StatsSnapshot
    from annotate.services.campaigns import campaign_create

    began = time.perf_counter()
    now = timezone.now()
    campaign = campaign_create(
        name=f"bench home {int(time.time())}", kind="pairwise", preset="simple-pairwise", overlap=OVERLAP
    )
    users = [get_user_model().objects.get_or_create(username=f"bench-home-{n}")[0] for n in range(ANNOTATORS)]
    judges = [Judge.objects.get_or_create(name=f"bench-home-judge-{n}", defaults={"model": "m"})[0] for n in (1, 2)]

    routes = [_route_of(k, items) for k in range(items)]
    human_side = [k for k, (route, gold) in enumerate(routes) if route in ("human", "both") and not gold]
    full, half = human_side[: int(len(human_side) * 0.82)], human_side[int(len(human_side) * 0.82) :]
    half = half[: len(half) * 2 // 3]  # the rest: nobody yet
    labels_per_item = dict.fromkeys(full, OVERLAP) | dict.fromkeys(half, OVERLAP // 2)
    gold = [k for k, (_, is_gold) in enumerate(routes) if is_gold]
    labels_per_item |= {k: rng.randint(0, 3) for k in gold}

    item_columns = ("campaign_id", "external_id", "prompt", "response_a", "response_b", "model_a", "model_b",
                    "response", "reference", "metadata", "gold_label", "route", "content_hash", "human_label_count",
                    "assigned_count", "queue_rank", "created_at")  # fmt: skip
    models = ("m1", "m2", "m3", "m4")
    _copy(
        Item._meta.db_table,
        item_columns,
        (
            (
                campaign.pk,
                f"home-{k}",
                json.dumps(f"Question {k}?"),
                f"Answer A {k}.",
                f"Answer B {k}.",
                models[k % 4],
                models[(k + 1) % 4],
                "",
                "",
                json.dumps({"domain": ("code", "chat")[k % 2]}),
                json.dumps({"overall": -1}) if routes[k][1] else None,
                routes[k][0],
                f"{k:064x}",
                labels_per_item.get(k, 0),
                labels_per_item.get(k, 0),
                rng.getrandbits(40),
                now - timedelta(days=3),
            )
            for k in range(items)
        ),  # fmt: skip
    )
    ids = list(campaign.items.order_by("id").values_list("id", flat=True))

    def human_rows():
        for k, count in labels_per_item.items():
            truth = rng.choice((-1, 1))
            for user in rng.sample(users, count):
                value = truth if rng.random() < 0.8 else rng.choice((-1, 0, 1))
                at = now - timedelta(seconds=rng.uniform(0, 48 * 3600))
                yield (ids[k], campaign.pk, "human", user.pk, json.dumps({"overall": value}), "", rng.random() < 0.5,
                       round(rng.uniform(4, 120), 1), "", False, "", 0, False, 1, at, at)  # fmt: skip

    label_columns = ("item_id", "campaign_id", "source", "annotator_id", "label", "justification", "position_swapped",
                     "seconds", "raw_output", "parse_failed", "prompt_version", "sample_index", "imported", "revision",
                     "created_at", "updated_at")  # fmt: skip
    n_human = _copy(Annotation._meta.db_table, label_columns, human_rows())
    judged = [k for k, (route, _) in enumerate(routes) if route in ("llm", "both")]

    def judge_rows():
        for k in judged:
            verdict = rng.choice((-1, 1))
            at = now - timedelta(seconds=rng.uniform(0, 48 * 3600))
            for judge in judges:
                for swapped in (False, True):
                    failed = rng.random() < 0.02
                    yield (ids[k], campaign.pk, "judge", judge.pk, None if failed else json.dumps({"overall": verdict}),
                           "", swapped, "", failed, "v1", 0, False, 1, at, at, f"{rng.uniform(0.0001, 0.002):.6f}",
                           round(rng.uniform(0.5, 1), 3))  # fmt: skip

    judge_columns = ("item_id", "campaign_id", "source", "judge_id", "label", "justification", "position_swapped",
                     "raw_output", "parse_failed", "prompt_version", "sample_index", "imported", "revision",
                     "created_at", "updated_at", "cost", "confidence")  # fmt: skip
    n_judge = _copy(Annotation._meta.db_table, judge_columns, judge_rows())
    _copy(
        JudgeVerdict._meta.db_table,
        ("campaign_id", "item_id", "label", "confidence", "n_judgments", "n_parse_failures", "judges", "updated_at"),
        (
            (
                campaign.pk,
                ids[k],
                json.dumps({"overall": rng.choice((-1, 1))}) if rng.random() < 0.95 else None,
                0.8,
                4,
                0,
                "[]",
                now,
            )
            for k in judged
        ),  # fmt: skip
    )
    waiting = [k for k in human_side if k not in labels_per_item][:LEASES]
    expires = now + timedelta(minutes=9)
    Assignment.objects.bulk_create(
        Assignment(campaign=campaign, item_id=ids[k], annotator=users[n % ANNOTATORS], expires_at=expires)
        for n, k in enumerate(waiting)
    )
    Job.objects.create(
        kind="route", campaign=campaign, state="succeeded", result={"human_items_target": len(human_side)}
    )
    StatsSnapshot.objects.create(
        campaign=campaign, computed_at=now - timedelta(minutes=7), n_items=items, n_human_labels=n_human,
        n_judge_labels=n_judge, bootstrap=0, seconds=1.0,
        payload={"annotators": [{"annotator": u.username, "n": 1, "agreement_with_consensus": 0.8,
                                 "gold_accuracy": 0.9, "position_bias": 0.5} for u in users]},
    )  # fmt: skip
    with connection.cursor() as cursor:
        for model in (Item, Annotation, JudgeVerdict, Assignment):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    return campaign, {
        "items": items,
        "human_labels": n_human,
        "judge_labels": n_judge,
        "annotators": ANNOTATORS,
        "live_leases": len(waiting),
        "setup_s": round(time.perf_counter() - began, 1),
    }


def _teardown(campaign) -> None:
    from django.db import connection

    from annotate.models import Annotation, Assignment, Item, Job, JudgeVerdict, RoutingDecision, StatsSnapshot

    with connection.cursor() as cursor:
        for model in (Assignment, JudgeVerdict, Annotation, RoutingDecision, StatsSnapshot, Job, Item):
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE campaign_id = %s", [campaign.pk])
    campaign.delete()


def _median_of(call, repeat: int) -> dict:
    walls = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        walls.append(time.perf_counter() - t0)
    return {
        "median_s": round(statistics.median(walls), 4),
        "min_s": round(min(walls), 4),
        "max_s": round(max(walls), 4),
    }


def run(args) -> dict:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    from annotate import overview

    items = args.home_items or (QUICK_ITEMS if args.quick else ITEMS)
    repeat = 1 if args.quick else max(1, args.home_repeat)
    campaign, setup = _build(items, random.Random(SEED))
    measurements: dict = {"setup": setup}
    try:
        now = timezone.now()
        panels = {
            "items_by_route_and_state": lambda: overview.items_by_route_and_state(campaign=campaign),
            "labels_per_hour": lambda: overview.labels_per_hour(campaign=campaign, now=now),
            "human_budget": lambda: overview.human_budget(campaign=campaign, now=now),
            "judge_costs": lambda: overview.judge_costs(campaign=campaign),
            "working_now": lambda: overview.working_now(campaign=campaign, now=now),
            "annotator_table": lambda: overview.annotator_table(campaign=campaign),
            "most_disagreed_items": lambda: overview.most_disagreed_items(campaign=campaign),
        }
        # Warm-up, and a check that the figures add up.
        got = overview.campaign_overview(campaign=campaign)
        quality = overview.campaign_quality(campaign=campaign)
        measurements["check"] = {
            "items": got["items"]["totals"]["total"] + got["items"]["gold"]["items"],
            "human_labels_on_items": got["items"]["totals"]["labels"] + got["items"]["gold"]["answers"],
            "judge_labels": got["judges"]["n"],
            "working_now": len(got["working"]),
            "annotator_rows": len(quality["annotators"]["rows"]),
            "disagreement_rows": len(quality["disagreement"]["items"]),
        }

        def in_short_reads(call):
            def timed():
                with overview.short_reads():  # as campaign_overview and campaign_quality run them
                    call()

            return timed

        measurements["panels"] = {name: _median_of(in_short_reads(call), repeat) for name, call in panels.items()}
        measurements["campaign_overview"] = _median_of(lambda: overview.campaign_overview(campaign=campaign), repeat)
        measurements["campaign_quality"] = _median_of(lambda: overview.campaign_quality(campaign=campaign), repeat)
        admin, _ = get_user_model().objects.get_or_create(
            username="bench-home-admin", defaults={"is_superuser": True, "is_staff": True}
        )
        client = Client()
        client.force_login(admin)
        url = f"/c/{campaign.slug}/live/"
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url}: {response.status_code}")
        measurements["fragment_bytes"] = len(response.content)
        measurements["fragment"] = _median_of(lambda: client.get(url), repeat)
        measurements["quality_fragment"] = _median_of(lambda: client.get(f"/c/{campaign.slug}/quality/"), repeat)
        measurements["page"] = _median_of(lambda: client.get(f"/c/{campaign.slug}/"), repeat)
    finally:
        _teardown(campaign)
    fragment_s = measurements["fragment"]["median_s"]
    slowest = max(measurements["panels"].items(), key=lambda kv: kv[1]["median_s"])
    full = items == ITEMS
    quality_s = measurements["quality_fragment"]["median_s"]
    summary = (
        f"{items:,} items, {setup['human_labels']:,} human + {setup['judge_labels']:,} judge labels: live fragment "
        f"{fragment_s:.3f} s (overview {measurements['campaign_overview']['median_s']:.3f} s), quality fragment "
        f"{quality_s:.3f} s, page {measurements['page']['median_s']:.3f} s; slowest panel {slowest[0]} "
        f"{slowest[1]['median_s']:.3f} s; median of {repeat}"
    )
    if full:
        met = fragment_s < TARGET_FRAGMENT_S and quality_s < TARGET_QUALITY_S
        measurements["target_met"] = {
            "fragment": fragment_s < TARGET_FRAGMENT_S,
            "quality": quality_s < TARGET_QUALITY_S,
        }
        summary += f" [targets {TARGET_FRAGMENT_S:g} s / {TARGET_QUALITY_S:g} s: {'met' if met else 'MISSED'}]"
    return {
        "parameters": {
            "items": items,
            "overlap": OVERLAP,
            "annotators": ANNOTATORS,
            "repeat": repeat,
            "target_fragment_s": TARGET_FRAGMENT_S,
            "target_quality_s": TARGET_QUALITY_S,
            "seed": SEED,
        },  # fmt: skip
        "measurements": measurements,
        "summary": summary,
    }
