"""Per-annotator limits: labels per campaign and per UTC day, with live leases counted."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from annotate.models import Annotation, Assignment
from annotate.services.assignments import NoWork, annotation_submit, my_progress, next_assignment_for
from annotate.services.imports import items_import
from tests.conftest import jsonl, pair
from tests.factories import CampaignFactory, UserFactory

pytestmark = pytest.mark.django_db


def make_campaign(n=6, **kw):
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=1, **kw)
    items_import(campaign=campaign, stream=jsonl(*[pair(i) for i in range(n)]), filename="items.jsonl")
    return campaign


def label(user, campaign, n, now=None):
    for _ in range(n):
        assignment = next_assignment_for(annotator=user, campaign=campaign, now=now)
        assert isinstance(assignment, Assignment), assignment
        annotation_submit(assignment_id=assignment.pk, annotator=user, label={"overall": 1}, now=now)


def test_the_campaign_limit_stops_the_queue_with_a_clear_message():
    campaign = make_campaign(label_limit=2)
    user = UserFactory()
    label(user, campaign, 2)
    result = next_assignment_for(annotator=user, campaign=campaign)
    assert isinstance(result, NoWork) and result.reason == "limit" and result.resets_at is None
    assert result.message == "You have given the 2 labels this campaign allows per person."
    # Others are not limited by my labels.
    assert isinstance(next_assignment_for(annotator=UserFactory(), campaign=campaign), Assignment)
    assert my_progress(annotator=user, campaign=campaign)["left"] == 0


def test_live_leases_count_so_nobody_holds_past_the_limit():
    campaign = make_campaign(label_limit=1)
    user = UserFactory()
    current = next_assignment_for(annotator=user, campaign=campaign)
    assert isinstance(current, Assignment)
    # Asking again returns the lease held; a prefetch beyond the limit is refused.
    assert next_assignment_for(annotator=user, campaign=campaign).pk == current.pk
    prefetch = next_assignment_for(annotator=user, campaign=campaign, exclude={current.pk})
    assert isinstance(prefetch, NoWork) and prefetch.reason == "limit"
    assert "items on your screen are the last of the 1 label " in prefetch.message
    assert Assignment.objects.filter(annotator=user).count() == 1
    assert my_progress(annotator=user, campaign=campaign)["left"] == 1


def test_the_daily_limit_counts_utc_days_and_says_when_it_resets():
    campaign = make_campaign(daily_label_limit=2)
    user = UserFactory()
    yesterday = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    label(user, campaign, 2, now=yesterday)
    Annotation.objects.update(created_at=yesterday)
    today = yesterday + timedelta(hours=1)  # 00:30 UTC the next day
    label(user, campaign, 2, now=today)
    result = next_assignment_for(annotator=user, campaign=campaign, now=today)
    assert isinstance(result, NoWork) and result.reason == "limit"
    assert result.message == (
        "You have given the 2 labels this campaign allows per person today; more tomorrow (from 00:00 UTC)."
    )
    assert result.resets_at == datetime(2026, 3, 3, tzinfo=UTC)


def test_both_limits_the_tighter_one_wins():
    campaign = make_campaign(label_limit=3, daily_label_limit=5)
    user = UserFactory()
    label(user, campaign, 3)
    assert "3 labels this campaign allows per person." in next_assignment_for(annotator=user, campaign=campaign).message
    assert my_progress(annotator=user, campaign=campaign)["left"] == 0


def test_no_limit_costs_no_query():
    user = UserFactory()
    free, limited = make_campaign(), make_campaign(label_limit=100)
    counts = []
    for campaign in (free, limited):
        next_assignment_for(annotator=user, campaign=campaign)  # warm: one lease held in each
        with CaptureQueriesContext(connection) as queries:
            next_assignment_for(
                annotator=user, campaign=campaign, exclude=set(Assignment.objects.values_list("pk", flat=True))
            )
        counts.append(len(queries))
    assert counts[1] == counts[0] + 1


def test_the_api_and_the_page_say_limit():
    campaign = make_campaign(label_limit=1, daily_label_limit=10)
    user = UserFactory()
    label(user, campaign, 1)
    api = APIClient()
    api.force_authenticate(user)
    body = api.post(f"/api/campaigns/{campaign.slug}/next/", {}, format="json").json()
    assert body["status"] == "limit" and body["assignment"] is None and body["resets_at"] is None
    assert body["message"] == "You have given the 1 label this campaign allows per person."
    from django.test import Client

    client = Client()
    client.force_login(user)
    page = client.get(f"/c/{campaign.slug}/annotate/").content.decode()
    assert "Limit reached" in page and "allows per person" in page
    assert "(limit 1 per person, 10 a day)" in " ".join(page.split())
