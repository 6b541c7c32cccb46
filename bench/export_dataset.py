"""Export at scale: 1,000,000 labels over 250,000 pairwise items to TRL rows, as Parquet and as JSONL.

The campaign is made directly in the database (items through the importer, labels by COPY: four
annotators per item); each export runs as `manage.py export` in a child process, timed, with its peak
resident memory. Target (issue): under 60 s and under 1 GB for each file type. For scale, Label Studio
on this machine took 6.4 s to export 2,000 annotations as JSON, inside the request.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path

from bench.child import manage

RATERS = 4


def add_arguments(group) -> None:
    group.add_argument("--export-items", type=int, default=250_000, help="items; each gets 4 human labels")


def _setup(items: int):
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from annotate.models import Annotation, Campaign, Item
    from annotate.services.campaigns import campaign_create
    from annotate.services.imports import items_import
    from bench.datagen import write_pairwise_jsonl

    campaign = campaign_create(
        name=f"bench export {int(time.time())}", kind="pairwise", preset="simple-pairwise", overlap=RATERS
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "items.jsonl"
        write_pairwise_jsonl(path, items, seed=11)
        with path.open("rb") as stream:
            items_import(campaign=campaign, stream=stream, filename=str(path))
    users = [get_user_model().objects.get_or_create(username=f"bench-export-{n}")[0] for n in range(RATERS)]
    rng = random.Random(3)
    now = timezone.now()
    ids = list(Item.objects.filter(campaign=campaign).order_by("id").values_list("id", flat=True))
    table = Annotation._meta.db_table
    columns = (
        "item_id, campaign_id, source, annotator_id, label, justification, position_swapped, seconds, raw_output, "
        "parse_failed, prompt_version, sample_index, imported, revision, created_at, updated_at"
    )
    began = time.perf_counter()
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for item_id in ids:
            truth = rng.choice((-1, 1))
            for user in users:
                value = truth if rng.random() < 0.8 else rng.choice((-1, 0, 1))
                copy.write_row(
                    (item_id, campaign.pk, "human", user.pk, json.dumps({"overall": value}), "",
                     rng.random() < 0.5, round(rng.uniform(5, 60), 1), "", False, "", 0, True, 1, now, now)
                )  # fmt: skip
    Campaign.objects.filter(pk=campaign.pk).update(state="open")
    return campaign, {
        "items": len(ids),
        "labels": len(ids) * RATERS,
        "labels_load_s": round(time.perf_counter() - began, 1),
    }


def _teardown(campaign) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("annotate_annotation", "annotate_routingdecision", "annotate_item"):
            cursor.execute(f"DELETE FROM {table} WHERE campaign_id = %s", [campaign.pk])
    campaign.delete()


def _export(slug: str, out: Path) -> dict:
    summary, timing = manage("export", slug, "--format", "trl", "--out", str(out), "--ties", "split")
    return {
        **timing,  # peak_rss_mb: the largest child so far; each export runs once, the largest wins
        "rows": {f["split"]: f["rows"] for f in summary["files"]},
        "bytes": sum(Path(f["path"]).stat().st_size for f in summary["files"]),
    }


def run(args) -> dict:
    items = 5_000 if args.quick else args.export_items
    campaign, setup = _setup(items)
    measurements = {"setup": setup}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            measurements["parquet"] = _export(campaign.slug, Path(tmp) / "prefs.parquet")
            measurements["jsonl"] = _export(campaign.slug, Path(tmp) / "prefs.jsonl")
    finally:
        _teardown(campaign)
    p, j = measurements["parquet"], measurements["jsonl"]
    return {
        "parameters": {"items": items, "labels": items * RATERS, "format": "trl", "targets": {"s": 60, "mb": 1024}},
        "measurements": measurements,
        "summary": (
            f"{setup['labels']:,} labels over {setup['items']:,} items → TRL: Parquet {p['wall_s']} s "
            f"(peak {p['peak_rss_mb']} MB), JSONL {j['wall_s']} s (peak so far {j['peak_rss_mb']} MB)"
        ),
    }
