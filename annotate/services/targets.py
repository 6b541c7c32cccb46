"""An item's human-label target — the one rule, in Python and as SQL — read by leasing, the queue and the pages.

The target is `Item.label_target` when an admin lowered it (never above the campaign's `overlap`), else the
overlap; with dynamic overlap on (`Campaign.overlap_max`), plus the `Item.extra_labels` that disputes added,
never above `overlap_max`. Its own module because the assignment engine, stranded items
(annotate/services/queue.py) and dynamic overlap (annotate/services/quality/overlap.py) all read it.
"""

from __future__ import annotations

from django.db.models import IntegerField
from django.db.models.expressions import RawSQL

from annotate.models import Campaign, Item


def item_target(item: Item, campaign: Campaign) -> int:
    """Human labels wanted on an item: min(lowered target, overlap), plus the labels dynamic overlap asked
    for, never above `overlap_max`. With dynamic overlap off (`overlap_max` empty) extras do not count, so
    switching it off restores the fixed overlap at once."""
    base = campaign.overlap if item.label_target is None else min(item.label_target, campaign.overlap)
    if campaign.overlap_max is None:
        return base
    return min(base + item.extra_labels, campaign.overlap_max)


def target_sql(campaign: Campaign, alias: str = "i") -> str:
    """`item_target` as SQL over item alias `alias` (the one SQL form of the rule).

    The campaign's numbers are written in as integers: they come from the campaign row, and a fragment
    without parameters fits every statement's parameter style (`%s` or `%(name)s`).
    """
    overlap = int(campaign.overlap)
    base = (
        f"(CASE WHEN {alias}.label_target IS NOT NULL AND {alias}.label_target < {overlap} "
        f"THEN {alias}.label_target ELSE {overlap} END)"
    )
    if campaign.overlap_max is None:
        return base
    most = int(campaign.overlap_max)
    return f"(CASE WHEN {base} + {alias}.extra_labels < {most} THEN {base} + {alias}.extra_labels ELSE {most} END)"


def target_expression(campaign: Campaign) -> RawSQL:
    """`target_sql` for a queryset over Item itself (its table is the alias there; not inside a subquery,
    where Django renames the table)."""
    return RawSQL(target_sql(campaign, alias=Item._meta.db_table), [], output_field=IntegerField())
