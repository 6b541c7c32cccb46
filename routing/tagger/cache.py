"""Reads of the tag cache (`ItemTags`): the current prompt version's tags for the live pass, what a run still has
to ask, and the counts per version."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Count, Q

from annotate.models import Campaign, Item, ItemTags
from routing.tagger.prompt import PROMPT_VERSION

CHUNK = 5000


def cached_tags(*, campaign: Campaign | None, item_ids: Sequence[int]) -> dict[int, dict]:
    """Per item id, the tags the current prompt version gave it; items untagged or whose answer failed are left
    out (the learned features mark them `tags_missing`). `campaign` None: items of any campaign (a learned
    policy's training items can come from earlier campaigns)."""
    ids = list(item_ids)
    found: dict[int, dict] = {}
    for start in range(0, len(ids), CHUNK):
        rows = ItemTags.objects.filter(item_id__in=ids[start : start + CHUNK], prompt_version=PROMPT_VERSION)
        if campaign is not None:
            rows = rows.filter(campaign=campaign)
        found.update(rows.filter(tags__isnull=False).values_list("item_id", "tags"))
    return found


def items_to_tag(*, campaign: Campaign, retry_failed: bool = False) -> list[int]:
    """The ids, in order, of the campaign's items with no row for the current prompt version, and with
    `retry_failed` those whose answer failed to parse too."""
    stored = ItemTags.objects.filter(campaign=campaign, prompt_version=PROMPT_VERSION)
    if retry_failed:
        stored = stored.filter(tags__isnull=False)
    return list(
        Item.objects.filter(campaign=campaign)
        .exclude(pk__in=stored.values("item_id"))
        .order_by("id")
        .values_list("id", flat=True)
    )


def tag_counts(*, campaign: Campaign) -> dict:
    """How far the cache is: items tagged, failed and missing under the current prompt version, and the
    tagged and failed counts of every version the campaign has rows for (older versions no longer count)."""
    items = Item.objects.filter(campaign=campaign).count()
    per_version = (
        ItemTags.objects.filter(campaign=campaign)
        .values("prompt_version")
        .annotate(tagged=Count("id", filter=Q(tags__isnull=False)), failed=Count("id", filter=Q(tags__isnull=True)))
        .order_by("prompt_version")
    )
    versions = {row["prompt_version"]: {"tagged": row["tagged"], "failed": row["failed"]} for row in per_version}
    current = versions.get(PROMPT_VERSION, {"tagged": 0, "failed": 0})
    return {
        "prompt_version": PROMPT_VERSION,
        "items": items,
        "tagged": current["tagged"],
        "failed": current["failed"],
        "missing": items - current["tagged"] - current["failed"],
        "versions": versions,
    }
