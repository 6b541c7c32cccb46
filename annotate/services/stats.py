"""A campaign's statistics job (kind `compute_stats`): asked for after new labels (at most once per window),
it computes the figures (annotate/services/stats_figures.py) and stores the snapshot."""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotate.models import Campaign, Job, StatsSnapshot
from jobs.registry import job_handler
from jobs.runner import job_create
from routing import api as routing_api

JOB_KIND = "compute_stats"


def campaign_stats(*, campaign: Campaign, bootstrap: int = 1000, seed: int = 0) -> dict:
    """The snapshot `compute_stats --json` prints (see the issue for its shape): `stats_figures.campaign_figures`,
    imported here because it brings pandas, which a process that only asks for statistics does not need."""
    from annotate.services.stats_figures import campaign_figures

    return campaign_figures(campaign=campaign, bootstrap=bootstrap, seed=seed)


def stats_snapshot_create(*, campaign: Campaign, bootstrap: int = 1000, seed: int = 0) -> StatsSnapshot:
    began = time.perf_counter()
    payload = campaign_stats(campaign=campaign, bootstrap=bootstrap, seed=seed)
    return StatsSnapshot.objects.create(
        campaign=campaign,
        computed_at=payload["computed_at"],
        n_items=payload["n_items"],
        n_human_labels=payload["n_human_labels"],
        n_judge_labels=payload["n_judge_labels"],
        bootstrap=bootstrap,
        seconds=round(time.perf_counter() - began, 3),
        payload=payload,
    )


@job_handler(JOB_KIND)
def compute_stats(job: Job, progress) -> dict:
    snapshot = stats_snapshot_create(
        campaign=job.campaign, bootstrap=job.params.get("bootstrap", settings.TANDEM_STATS_BOOTSTRAP)
    )
    routing_api.labels_changed(campaign=job.campaign)  # a learned policy learns from the new labels
    return {"snapshot": snapshot.pk, "seconds": snapshot.seconds}


_requested: dict[int, float] = {}  # campaign id -> when this process last asked (monotonic seconds)


def stats_request(*, campaign_id: int, created_by=None) -> Job | None:
    """Ask for fresh statistics after new labels: at most one computation per
    TANDEM_STATS_DEBOUNCE_SECONDS per campaign, and the last labels are always counted.

    A queued computation will see the new labels, so nothing is added. Otherwise one is queued to
    start when the window since the previous one ends. Each process asks the database at most once
    per window per campaign, so a stream of submits costs no query each.
    """
    window = settings.TANDEM_STATS_DEBOUNCE_SECONDS
    now_mono = time.monotonic()
    if now_mono - _requested.get(campaign_id, -window) < window:
        return None
    _requested[campaign_id] = now_mono
    now = timezone.now()
    with transaction.atomic():
        last = Job.objects.filter(campaign_id=campaign_id, kind=JOB_KIND).order_by("-created_at", "-id").first()
        if last is not None and last.state == Job.State.QUEUED:
            return None
        wait = 0.0 if last is None else (last.created_at + timedelta(seconds=window) - now).total_seconds()
        return job_create(
            kind=JOB_KIND,
            params={"bootstrap": settings.TANDEM_STATS_BOOTSTRAP},
            campaign=Campaign(pk=campaign_id),
            created_by=created_by,
            countdown=max(0.0, wait),
        )
