"""Progress towards the targets, for the pages: mine (labels given, items left for me) and the campaign's."""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from annotate.models import Campaign, Item
from annotate.services.assignments import my_progress
from annotate.services.queue import stranded_count
from annotate.services.targets import target_sql

_ITEM = Item._meta.db_table


def campaign_totals(*, campaign: Campaign) -> dict:
    """Human labels given towards each human item's target, and the targets' sum.

    Reads every human item of the campaign: for page loads, not for each submit. Labels beyond an
    item's target count as its target, so the fraction reaches 1 only when every item is done.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT SUM(t.target), SUM(CASE WHEN t.labels < t.target THEN t.labels ELSE t.target END) "
            f"FROM (SELECT {target_sql(campaign)} AS target, i.human_label_count AS labels FROM {_ITEM} i "
            f"WHERE i.campaign_id = %s AND i.route IN ('{Item.Route.HUMAN}', '{Item.Route.BOTH}') "
            "AND i.gold_label IS NULL) t",
            [campaign.pk],
        )
        wanted, done = cursor.fetchone()
    wanted, done = int(wanted or 0), int(done or 0)
    return {"campaign_labels": done, "campaign_wanted": wanted, "campaign_fraction": done / wanted if wanted else 1.0}


def annotator_progress(*, annotator, campaign: Campaign, now: datetime | None = None) -> dict:
    """My labels and what is left for me, and the campaign's progress towards every item's target.

    `campaign_complete` is true only when every human item has its target; stranded items (short
    of their target, and nobody left who may label them: annotate/services/queue.py) keep it false
    and are counted, so "nothing left for you" never reads as "the campaign is finished". Reads
    the whole campaign: for page loads, not for each submit.
    """
    progress = {**my_progress(annotator=annotator, campaign=campaign, now=now), **campaign_totals(campaign=campaign)}
    progress["stranded"] = stranded_count(campaign=campaign, now=now) if progress["left"] == 0 else None
    progress["campaign_complete"] = progress["campaign_labels"] >= progress["campaign_wanted"]
    return progress
