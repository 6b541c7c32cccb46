"""Routing passes at scale: a 100,000-item pairwise campaign judged in both orders by one judge.

Measured, each as `manage.py route SLUG --sync --no-judges` in a child process (wall and CPU time, the
largest child's peak memory):
- `judge_uncertainty`, first pass: every item routed, a decision written for each;
- the same pass again: nothing changed, nothing written (the cost of a no-op pass);
- 10,000 more items arrive with their judgments: the incremental pass;
- `learned`, after the calibration slice (5 %) got three human labels each: training on the slice,
  scoring every other item.
No target is named by the issue; ours is a pass over 100,000 items in under a minute.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path

from bench.child import manage

HUMANS = 3


def add_arguments(group) -> None:
    group.add_argument("--route-items", type=int, default=100_000, help="items in the campaign")


def _import(campaign, count: int, seed: int) -> None:
    from annotate.services.imports import items_import
    from bench.datagen import write_pairwise_jsonl

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "items.jsonl"
        write_pairwise_jsonl(path, count, seed=seed)
        if seed != 1:  # a second batch: new external ids
            lines = path.read_text().splitlines()
            path.write_text("\n".join(line.replace('"id": "', f'"id": "b{seed}-', 1) for line in lines) + "\n")
        with path.open("rb") as stream:
            items_import(campaign=campaign, stream=stream, filename=str(path))


def _judge(campaign, judge, item_ids: list[int], rng: random.Random) -> None:
    """Both orders per item by COPY: 10 % flip with the order, 2 % fail to parse, the rest agree."""
    from django.db import connection
    from django.utils import timezone

    from annotate.models import Annotation

    now = timezone.now()
    columns = (
        "item_id, campaign_id, source, judge_id, label, justification, position_swapped, raw_output, parse_failed, "
        "prompt_version, sample_index, imported, revision, created_at, updated_at, confidence"
    )
    with connection.cursor() as cursor, cursor.copy(f"COPY {Annotation._meta.db_table} ({columns}) FROM STDIN") as copy:
        for item_id in item_ids:
            verdict, roll = rng.choice((-1, 1)), rng.random()
            for swapped in (False, True):
                failed = roll < 0.02 and swapped
                value = -verdict if (0.02 <= roll < 0.12 and swapped) else verdict
                label = None if failed else json.dumps({"overall": value})
                copy.write_row(
                    (item_id, campaign.pk, "judge", judge.pk, label, "", swapped, "", failed, "v1", 0, True, 1, now,
                     now, round(rng.uniform(0.5, 1.0), 3))
                )  # fmt: skip


def _humans(campaign, item_ids: list[int], users, rng: random.Random) -> None:
    from django.db import connection
    from django.utils import timezone

    from annotate.models import Annotation, Item

    now = timezone.now()
    columns = "item_id, campaign_id, source, annotator_id, label, justification, raw_output, parse_failed, "
    columns += "prompt_version, sample_index, imported, revision, created_at, updated_at"
    with connection.cursor() as cursor, cursor.copy(f"COPY {Annotation._meta.db_table} ({columns}) FROM STDIN") as copy:
        for item_id in item_ids:
            truth = rng.choice((-1, 1))
            for user in users:
                value = truth if rng.random() < 0.85 else -truth
                copy.write_row(
                    (item_id, campaign.pk, "human", user.pk, json.dumps({"overall": value}), "", "", False, "", 0, True,
                     1, now, now)
                )  # fmt: skip
    Item.objects.filter(pk__in=item_ids).update(human_label_count=len(users), assigned_count=len(users))


def _route(slug: str) -> dict:
    """`manage.py route SLUG --sync --no-judges` in a child process (`bench.child.manage`)."""
    summary, timing = manage("route", slug, "--sync", "--no-judges")
    return {
        **timing,  # peak_rss_mb: the largest child so far
        "decisions_written": summary["decisions_written"],
        "destinations": summary["destinations"],
        **({"training_items": summary["learned"]["training_items"]} if "learned" in summary else {}),
    }


def run(args) -> dict:
    from django.contrib.auth import get_user_model

    from annotate.models import Campaign, Item, Judge
    from annotate.services.campaigns import campaign_create
    from bench.export_dataset import _teardown

    items = 5_000 if args.quick else args.route_items
    more = items // 10
    rng = random.Random(5)
    campaign = campaign_create(
        name=f"bench route {int(time.time())}", kind="pairwise", preset="simple-pairwise", human_budget=0.25
    )
    Campaign.objects.filter(pk=campaign.pk).update(routing_policy="judge_uncertainty")
    campaign.refresh_from_db()  # imports route by the campaign they are given
    judge = Judge.objects.create(name=f"bench-route-{campaign.pk}", model="imported", imported=True)
    campaign.judges.add(judge)
    measurements: dict = {}
    try:
        began = time.perf_counter()
        _import(campaign, items, seed=1)
        ids = list(Item.objects.filter(campaign=campaign).order_by("id").values_list("id", flat=True))
        _judge(campaign, judge, ids, rng)
        measurements["setup_s"] = round(time.perf_counter() - began, 1)

        measurements["first_pass"] = _route(campaign.slug)
        measurements["no_op_pass"] = _route(campaign.slug)
        _import(campaign, more, seed=2)
        new_ids = list(Item.objects.filter(campaign=campaign, route="unrouted").values_list("id", flat=True))
        _judge(campaign, judge, new_ids, rng)
        measurements["incremental_pass"] = _route(campaign.slug)
        users = [get_user_model().objects.get_or_create(username=f"bench-route-{n}")[0] for n in range(HUMANS)]
        calibration = list(Item.objects.filter(campaign=campaign, route="both").values_list("id", flat=True))
        _humans(campaign, calibration, users, rng)
        Campaign.objects.filter(pk=campaign.pk).update(routing_policy="learned")
        measurements["learned_pass"] = _route(campaign.slug)
        measurements["peak_rss_mb"] = measurements["learned_pass"]["peak_rss_mb"]
    finally:
        _teardown(campaign)
    first, learned = measurements["first_pass"], measurements["learned_pass"]
    no_op, incremental = measurements["no_op_pass"]["wall_s"], measurements["incremental_pass"]["wall_s"]
    return {
        "parameters": {"items": items, "more_items": more, "budget": 0.25, "calibration": 0.05, "target_s": 60},
        "measurements": measurements,
        "summary": (
            f"{items:,} items: judge_uncertainty pass {first['wall_s']} s ({first['decisions_written']:,} decisions), "
            f"no-op {no_op} s, +{more:,} items {incremental} s, learned {learned['wall_s']} s "
            f"(trained on {learned['training_items']:,}); peak {measurements['peak_rss_mb']} MB"
        ),
    }
