"""Annotators' standings for admins: the campaign home's annotator table, its actions, and the API."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotate import overview
from annotate.models import AnnotatorStanding, CampaignMember
from annotate.models.tokens import api_token_create
from annotate.services.quality import gate
from tests.annotate.test_quality_gate import answer, lease, make_campaign
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
Q = AnnotatorStanding.Qualification


@pytest.fixture
def qualified():
    """A campaign with a round of two check items: ann passed it, bo failed, cy waits for check items."""
    campaign = make_campaign(gold=4, qualification_items=2, qualification_threshold=1.0, min_seconds=3)
    ann, bo = UserFactory(username="ann"), UserFactory(username="bo")
    for _ in range(2):
        answer(lease(campaign, ann), right=True)
        answer(lease(campaign, bo), right=False, seconds=1)
    cy = UserFactory(username="cy")
    AnnotatorStanding.objects.create(campaign=campaign, annotator=cy, qualification=Q.IN_PROGRESS)
    return campaign, ann, bo, cy


def member(campaign, role: str):
    user = UserFactory()
    CampaignMember.objects.create(campaign=campaign, user=user, role=role)
    return user


def test_the_table_shows_each_standing(qualified):
    campaign, ann, bo, cy = qualified
    rows = {row["annotator"]: row for row in overview.annotator_table(campaign=campaign)["rows"]}
    assert rows["ann"]["standing"]["qualification_text"] == "passed 2/2"
    assert rows["bo"]["standing"]["qualification_text"] == "failed 0/2"
    assert rows["bo"]["standing"]["too_fast"] == 2
    assert rows["cy"]["n"] == 0 and rows["cy"]["standing"]["qualification_text"] == "in progress, 0 of 2 answered"
    assert rows["ann"]["annotator_id"] == ann.pk


def test_the_table_counts_attention_checks_and_pauses():
    campaign = make_campaign(gold=3, gold_rate=1.0, attention_max_failures=2)
    dee = UserFactory(username="dee")
    answer(lease(campaign, dee), right=True)
    answer(lease(campaign, dee), right=False)
    answer(lease(campaign, dee), right=False)
    standing = overview.annotator_table(campaign=campaign)["rows"][0]["standing"]
    assert (standing["attention_failures"], standing["attention_checks"], standing["paused"]) == (2, 3, True)
    assert standing["qualification_text"] == "–"


def test_the_home_page_table_and_its_actions_for_an_admin(client, qualified):
    campaign, ann, bo, cy = qualified
    client.force_login(member(campaign, "admin"))
    html = client.get(f"/c/{campaign.slug}/quality/").content.decode()
    assert "passed 2/2" in html and "failed 0/2" in html and "in progress, 0 of 2 answered" in html
    assert html.count(">not qualified<") == 1  # the status says what failing means
    assert f'action="/c/{campaign.slug}/standings/{bo.pk}/"' in html and 'value="requalify"' in html
    url = f"/c/{campaign.slug}/standings/{bo.pk}/"
    answered = client.post(url, {"action": "exclude", "note": "clicks at random"}, HTTP_HX_REQUEST="true")
    assert answered.status_code == 200
    body = answered.content.decode()
    assert "bo&#x27;s labels are excluded from statistics and exports." in body and 'id="annotators-table"' in body
    row = AnnotatorStanding.objects.get(campaign=campaign, annotator=bo)
    assert row.excluded and row.note.endswith("clicks at random")
    client.post(url, {"action": "requalify"}, HTTP_HX_REQUEST="true")
    assert AnnotatorStanding.objects.get(campaign=campaign, annotator=bo).qualification == Q.IN_PROGRESS
    assert lease(campaign, bo).purpose == "qualification", "a retry takes unseen check items"
    redirected = client.post(f"/c/{campaign.slug}/standings/{ann.pk}/", {"action": "pause"})
    assert redirected.status_code == 302 and redirected["Location"] == f"/c/{campaign.slug}/"
    assert AnnotatorStanding.objects.get(campaign=campaign, annotator=ann).paused_at is not None
    client.post(f"/c/{campaign.slug}/standings/{ann.pk}/", {"action": "resume"})
    assert AnnotatorStanding.objects.get(campaign=campaign, annotator=ann).paused_at is None


def test_bad_actions_are_named(client, qualified):
    campaign, ann, *_ = qualified
    client.force_login(member(campaign, "owner"))
    bad = client.post(f"/c/{campaign.slug}/standings/{ann.pk}/", {"action": "ban"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 400 and "action must be one of pause, resume" in bad.content.decode()
    stranger = UserFactory()
    campaign.annotators.add(UserFactory())  # a pool of its own: the stranger is outside it
    assert client.post(f"/c/{campaign.slug}/standings/{stranger.pk}/", {"action": "pause"}).status_code == 404


def test_requalifying_without_unseen_items_says_what_to_do():
    campaign = make_campaign(gold=2, qualification_items=2)
    eve = UserFactory(username="eve")
    for _ in range(2):
        answer(lease(campaign, eve), right=False)
    _, message = gate.standing_apply(campaign=campaign, annotator=eve, action="requalify")
    assert "0 check items they have not seen are left" in message and "Import more gold items" in message


def test_a_viewer_sees_the_table_without_actions(client, qualified):
    campaign, ann, *_ = qualified
    client.force_login(member(campaign, "viewer"))
    html = client.get(f"/c/{campaign.slug}/quality/").content.decode()
    assert "passed 2/2" in html and "standing-actions" not in html
    assert client.post(f"/c/{campaign.slug}/standings/{ann.pk}/", {"action": "pause"}).status_code == 403


def _api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user, name='tests').key}")
    return client


def test_the_api_lists_and_acts(qualified):
    campaign, ann, bo, cy = qualified
    api = _api(member(campaign, "admin"))
    listed = api.get(f"/api/campaigns/{campaign.slug}/standings/").json()
    assert [(r["username"], r["qualification"]) for r in listed] == [
        ("ann", "passed"),
        ("bo", "failed"),
        ("cy", "in_progress"),
    ]
    assert listed[1]["too_fast"] == 2 and listed[1]["paused"] is False
    paused = api.post(
        f"/api/campaigns/{campaign.pk}/standings/", {"annotator": bo.pk, "action": "pause", "note": "x"}, format="json"
    )
    assert paused.status_code == 200 and paused.json()["paused"] is True and "is paused" in paused.json()["message"]
    unknown = api.post(
        f"/api/campaigns/{campaign.pk}/standings/", {"annotator": 10**6, "action": "pause"}, format="json"
    )
    assert unknown.status_code == 400 and "no annotator with id" in unknown.json()["annotator"][0]
    bad = api.post(f"/api/campaigns/{campaign.pk}/standings/", {"annotator": bo.pk, "action": "ban"}, format="json")
    assert bad.status_code == 400 and "action" in bad.json()
    no_round = make_campaign(gold=0)
    CampaignMember.objects.create(campaign=no_round, user=ann, role="owner")
    refused = _api(ann).post(
        f"/api/campaigns/{no_round.slug}/standings/", {"annotator": ann.pk, "action": "requalify"}, format="json"
    )
    assert refused.status_code == 400 and "has no qualification round" in refused.json()["action"][0]
