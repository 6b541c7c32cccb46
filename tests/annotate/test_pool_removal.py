"""Leaving a campaign's pool ends the work in hand at once: leases end (the items go back to the queue) and
submit, skip, heartbeat and label edits by someone no longer in the pool are refused with 403."""

import pytest
from rest_framework.test import APIClient

from annotate.models import Annotation, AnnotationRevision, AnnotatorPool, Assignment, Item
from annotate.models.tokens import api_token_create
from annotate.services.assignments import annotation_submit, annotation_update, next_assignment_for
from annotate.services.imports import items_import
from annotate.services.people import account_active_set, campaign_pool_detach
from tests.conftest import jsonl, pair
from tests.factories import AdminFactory, CampaignFactory, UserFactory

pytestmark = pytest.mark.django_db


def api_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user, name='tests').key}")
    return client


@pytest.fixture
def pooled():
    """A campaign open to one pool of two annotators; the first holds a lease and has labelled one item."""
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=1)
    items_import(campaign=campaign, stream=jsonl(*[pair(i) for i in range(4)]), filename="items.jsonl")
    pool = AnnotatorPool.objects.create(name="raters")
    leaver, stayer = UserFactory(), UserFactory()
    pool.members.add(leaver, stayer)
    campaign.pools.add(pool)
    done = next_assignment_for(annotator=leaver, campaign=campaign)
    label, _ = annotation_submit(assignment_id=done.pk, annotator=leaver, label={"overall": 1})
    held = next_assignment_for(annotator=leaver, campaign=campaign)
    assert isinstance(held, Assignment) and Item.objects.get(pk=held.item_id).assigned_count == 1
    return campaign, pool, leaver, stayer, held, label


def assert_refused(response):
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["code"] == "not_in_pool" and "no longer in this campaign's annotator pool" in body["detail"]


def test_removal_from_the_pool_through_the_api_ends_the_lease_and_refuses_every_action(pooled):
    campaign, pool, leaver, stayer, held, label = pooled
    stored = label.label  # in the item's own A/B order, whichever order it was shown in
    removed = api_for(AdminFactory()).delete(f"/api/pools/{pool.pk}/members/", {"username": leaver.username})
    assert removed.status_code == 200 and removed.json()["leases_ended"] == 1
    held.refresh_from_db()
    assert held.state == "expired" and Item.objects.get(pk=held.item_id).assigned_count == 0
    client = api_for(leaver)
    assert_refused(client.post(f"/api/assignments/{held.pk}/submit/", {"label": {"overall": -1}}, format="json"))
    assert_refused(client.post(f"/api/assignments/{held.pk}/heartbeat/", {}, format="json"))
    assert_refused(client.post(f"/api/assignments/{held.pk}/skip/", {"reason": "gone"}, format="json"))
    assert_refused(client.patch(f"/api/annotations/{label.pk}/", {"label": {"overall": -1}}, format="json"))
    assert Annotation.objects.filter(annotator=leaver).count() == 1 and not AnnotationRevision.objects.exists()
    label.refresh_from_db()
    assert label.revision == 1 and label.label == stored
    # The item went back to the queue: the colleague still in the pool gets it.
    item_ids = set()
    while isinstance(lease := next_assignment_for(annotator=stayer, campaign=campaign), Assignment):
        item_ids.add(lease.item_id)
        annotation_submit(assignment_id=lease.pk, annotator=stayer, label={"overall": 0})
    assert held.item_id in item_ids


def test_the_annotation_page_answers_403_with_the_reason(client, pooled):
    campaign, pool, leaver, stayer, held, label = pooled
    campaign.annotators.add(stayer)  # without pools nor annotators the campaign would be open to everyone
    assert campaign_pool_detach(campaign=campaign, pool=pool) == 1
    held.refresh_from_db()
    assert held.state == "expired"
    client.force_login(leaver)
    base = f"/c/{campaign.slug}/annotate/{held.pk}"
    for path, data in ((f"{base}/submit/", {"label.overall": "1"}), (f"{base}/skip/", {"reason": "x"}),
                       (f"{base}/heartbeat/", {})):  # fmt: skip
        answer = client.post(path, data, HTTP_HX_REQUEST="true")
        assert answer.status_code == 403, (path, answer.status_code)
        body = answer.content.decode()
        assert 'data-code="not_in_pool"' in body and "no longer in this campaign" in body
    assert not Annotation.objects.filter(assignment=held).exists()


def test_deactivation_ends_leases_everywhere_and_refuses_edits(pooled):
    campaign, pool, leaver, stayer, held, label = pooled
    assert account_active_set(user=leaver, active=False, by=AdminFactory()) == 1
    assert Item.objects.get(pk=held.item_id).assigned_count == 0
    leaver.refresh_from_db()
    with pytest.raises(Exception) as refused:
        annotation_update(annotation_id=label.pk, annotator=leaver, label={"overall": -1})
    assert (refused.value.code, refused.value.status) == ("not_in_pool", 403)


def test_back_in_the_pool_the_label_can_change_again(pooled):
    campaign, pool, leaver, stayer, held, label = pooled
    pool.members.remove(leaver)
    client = api_for(leaver)
    assert_refused(client.patch(f"/api/annotations/{label.pk}/", {"label": {"overall": -1}}, format="json"))
    pool.members.add(leaver)
    changed = client.patch(f"/api/annotations/{label.pk}/", {"label": {"overall": -1}}, format="json")
    assert changed.status_code == 200, changed.content
    label.refresh_from_db()
    assert label.revision == 2 and AnnotationRevision.objects.filter(annotation=label).count() == 1
