"""The annotate app's receivers of routing's signals (`routing.signals`), connected in AnnotateConfig.ready."""

from __future__ import annotations

from django.dispatch import receiver

from annotate.services.quality import overlap
from annotate.services.stats import stats_request
from routing.api import judge_run_finished, verdicts_updated


@receiver(verdicts_updated, dispatch_uid="annotate.overlap_recheck")
def overlap_recheck(sender, *, campaign, item_ids, **kwargs) -> None:
    overlap.items_recheck(campaign=campaign, item_ids=list(item_ids))


@receiver(judge_run_finished, dispatch_uid="annotate.stats_after_judges")
def stats_after_judges(sender, *, campaign, **kwargs) -> None:
    stats_request(campaign_id=campaign.pk)
