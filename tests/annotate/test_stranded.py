"""Stranded items: the rule, giving them back, lowering their target, and the pages and API that do it."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from annotate.models import AnnotatorPool, Assignment, CampaignMember, Item
from annotate.models.tokens import api_token_create
from annotate.services.assignments import (
    AssignmentError,
    NoWork,
    annotation_submit,
    assignment_skip,
    leases_expire,
    next_assignment_for,
)
from annotate.services.imports import items_import
from annotate.services.progress import annotator_progress
from annotate.services.queue import (
    stranded_count,
    stranded_give_back,
    stranded_item_ids,
    stranded_items,
    stranded_lower_target,
)
from tests.conftest import jsonl, pair
from tests.factories import CampaignFactory, UserFactory

pytestmark = pytest.mark.django_db


def pool_campaign(n_items=1, overlap=3, pool=3, **kw):
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=overlap, **kw)
    items_import(campaign=campaign, stream=jsonl(*[pair(i) for i in range(n_items)]), filename="items.jsonl")
    users = UserFactory.create_batch(pool)
    campaign.annotators.add(*users)
    return campaign, users


def label_all(users, campaign, now=None):
    """Each user labels whatever the queue gives them until it says there is no more."""
    for user in users:
        while isinstance(result := next_assignment_for(annotator=user, campaign=campaign, now=now), Assignment):
            annotation_submit(assignment_id=result.pk, annotator=user, label={"overall": 1}, now=now)
        assert result.reason == "done", result


def skipped_by_one():
    """The reported bug: a pool of three, overlap 3, one annotator skips the item."""
    campaign, (skipper, *others) = pool_campaign()
    first = next_assignment_for(annotator=skipper, campaign=campaign)
    assignment_skip(assignment_id=first.pk, annotator=skipper, reason="Not my language")
    label_all(others, campaign)
    return campaign, skipper, others, first


def test_a_skip_in_a_pool_of_overlap_size_strands_the_item_and_the_campaign_is_not_complete():
    campaign, skipper, others, first = skipped_by_one()
    item = Item.objects.get()
    assert (item.human_label_count, item.assigned_count) == (2, 2)
    assert stranded_item_ids(campaign=campaign) == [item.pk]
    # Everyone is told "done" (nobody can label it) ...
    for user in [skipper, *others]:
        assert next_assignment_for(annotator=user, campaign=campaign).reason == "done"
    # ... but the counts do not claim the campaign is finished.
    progress = annotator_progress(annotator=skipper, campaign=campaign)
    assert progress["left"] == 0 and progress["stranded"] == 1
    assert (progress["campaign_labels"], progress["campaign_wanted"], progress["campaign_complete"]) == (2, 3, False)


def test_an_expired_lease_strands_too_and_give_back_returns_it_to_whoever_let_it_expire():
    campaign, (sleeper, *others) = pool_campaign()
    lost = next_assignment_for(annotator=sleeper, campaign=campaign)
    later = timezone.now() + timedelta(seconds=campaign.lease_seconds + 5)
    assert leases_expire(campaign=campaign, now=later) == 1
    label_all(others, campaign, now=later)
    assert stranded_item_ids(campaign=campaign, now=later) == [lost.item_id]
    page = stranded_items(campaign=campaign, now=later)
    assert page.total == 1 and page.items[0].expired == [sleeper.username] and page.items[0].skipped == []

    result = stranded_give_back(campaign=campaign, items=[lost.item_id], now=later)
    assert (result.changed, result.returned, result.unchanged) == (1, 1, 0)
    assert stranded_item_ids(campaign=campaign, now=later) == []
    again = next_assignment_for(annotator=sleeper, campaign=campaign, now=later)
    assert isinstance(again, Assignment) and again.item_id == lost.item_id and again.pk != lost.pk
    annotation_submit(assignment_id=again.pk, annotator=sleeper, label={"overall": -1}, now=later)
    assert Item.objects.values_list("human_label_count", "assigned_count").get() == (3, 3)
    old = Assignment.objects.get(pk=lost.pk)
    assert old.state == "expired" and old.returned_at == later  # the history stays
    # The returned lease itself cannot come back to life.
    with pytest.raises(AssignmentError) as info:
        annotation_submit(assignment_id=lost.pk, annotator=sleeper, label={"overall": 1}, now=later)
    assert info.value.code == "lease_lost" and info.value.status == 409
    assert annotator_progress(annotator=sleeper, campaign=campaign)["campaign_complete"] is True


def test_give_back_after_a_skip_keeps_the_skip_in_history():
    campaign, skipper, others, first = skipped_by_one()
    page = stranded_items(campaign=campaign)
    assert page.items[0].skipped == [(skipper.username, "Not my language")]
    stranded_give_back(campaign=campaign, items="all")
    again = next_assignment_for(annotator=skipper, campaign=campaign)
    assert isinstance(again, Assignment) and again.item_id == first.item_id
    skip_row = Assignment.objects.get(pk=first.pk)
    assert skip_row.state == "skipped" and skip_row.skip_reason == "Not my language" and skip_row.returned_at
    # While the skipper holds it again, it is not stranded (a live lease).
    assert stranded_count(campaign=campaign) == 0


def test_lower_target_accepts_the_labels_it_has_everywhere_the_overlap_is_used():
    campaign, skipper, others, first = skipped_by_one()
    result = stranded_lower_target(campaign=campaign, items=[first.item_id])
    assert result.changed == 1
    item = Item.objects.get()
    assert item.label_target == 2 and (item.human_label_count, item.assigned_count) == (2, 2)
    assert stranded_count(campaign=campaign) == 0
    progress = annotator_progress(annotator=skipper, campaign=campaign)
    assert (progress["campaign_labels"], progress["campaign_wanted"], progress["campaign_complete"]) == (2, 2, True)
    # A newcomer to the pool is not given an item that reached its (lowered) target.
    newcomer = UserFactory()
    campaign.annotators.add(newcomer)
    assert next_assignment_for(annotator=newcomer, campaign=campaign).reason == "done"


def test_lowered_target_is_respected_by_the_queue_and_the_wait_answer():
    campaign, users = pool_campaign(n_items=1, overlap=3, pool=4)
    Item.objects.update(label_target=1)
    holder, other = users[:2]
    next_assignment_for(annotator=holder, campaign=campaign)
    waiting = next_assignment_for(annotator=other, campaign=campaign)
    assert isinstance(waiting, NoWork) and waiting.reason == "wait"


def test_not_stranded_while_someone_eligible_has_not_seen_it_or_holds_it():
    campaign, (skipper, *others) = pool_campaign(pool=4)
    first = next_assignment_for(annotator=skipper, campaign=campaign)
    assignment_skip(assignment_id=first.pk, annotator=skipper, reason="No")
    label_all(others[:2], campaign)
    assert stranded_count(campaign=campaign) == 0  # others[2] may still label it
    held = next_assignment_for(annotator=others[2], campaign=campaign)
    assert stranded_count(campaign=campaign) == 0  # held now
    assignment_skip(assignment_id=held.pk, annotator=others[2], reason="No either")
    assert stranded_count(campaign=campaign) == 1


def test_eligibility_follows_the_pool_and_active_accounts():
    campaign, skipper, others, first = skipped_by_one()
    # A pool member who never saw the item un-strands it; deactivating them strands it again.
    team = AnnotatorPool.objects.create(name="team")
    fresh = UserFactory()
    team.members.add(fresh)
    campaign.pools.add(team)
    assert stranded_count(campaign=campaign) == 0
    fresh.is_active = False
    fresh.save()
    assert stranded_count(campaign=campaign) == 1
    # Give back skips those no longer in the pool: they could not take it anyway.
    campaign.annotators.remove(skipper)
    result = stranded_give_back(campaign=campaign, items="all")
    assert (result.changed, result.returned, result.unchanged) == (0, 0, 1)
    assert "nobody to give back to" in result.message
    assert Assignment.objects.filter(returned_at__isnull=False).count() == 0


def test_a_campaign_open_to_everyone_counts_every_active_account():
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=2)
    items_import(campaign=campaign, stream=jsonl(pair(0)), filename="items.jsonl")
    a, b = UserFactory.create_batch(2)
    from django.contrib.auth import get_user_model

    get_user_model().objects.exclude(pk__in=[a.pk, b.pk]).update(is_active=False)
    label_all([a], campaign)
    first = next_assignment_for(annotator=b, campaign=campaign)
    assignment_skip(assignment_id=first.pk, annotator=b, reason="No")
    assert stranded_count(campaign=campaign) == 1
    UserFactory()  # a new active account may label it
    assert stranded_count(campaign=campaign) == 0


def test_lower_target_to_a_number_is_checked_and_all_or_nothing():
    campaign, users = pool_campaign(n_items=2, overlap=3)
    # users[1] labels both items; users[0] and users[2] skip both: each has 1 label of 3 and is stranded.
    label_all([users[1]], campaign)
    for user in (users[0], users[2]):
        while isinstance(result := next_assignment_for(annotator=user, campaign=campaign), Assignment):
            assignment_skip(assignment_id=result.pk, annotator=user, reason="skip")
    ids = stranded_item_ids(campaign=campaign)
    assert len(ids) == 2 and set(Item.objects.values_list("human_label_count", flat=True)) == {1}
    with pytest.raises(AssignmentError) as info:
        stranded_lower_target(campaign=campaign, items="all", target=0)
    assert info.value.field == "target" and "Nothing changed" in str(info.value)
    with pytest.raises(AssignmentError, match="below the campaign's overlap"):
        stranded_lower_target(campaign=campaign, items="all", target=3)
    assert not Item.objects.filter(label_target__isnull=False).exists()
    result = stranded_lower_target(campaign=campaign, items="all", target=1)
    assert result.changed == 2 and set(Item.objects.values_list("label_target", flat=True)) == {1}
    # Items that are not stranded are reported, not changed.
    result = stranded_lower_target(campaign=campaign, items=ids)
    assert (result.changed, result.unchanged) == (0, 2) and "not stranded" in result.message


def statements(queries) -> list[str]:
    """The queries that read data: not the savepoint and `SET LOCAL jit` around them."""
    return [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]


def test_the_stranded_query_is_one_statement_whatever_the_campaign_size():
    campaign, skipper, others, first = skipped_by_one()
    items_import(campaign=campaign, stream=jsonl(*[pair(i) for i in range(1, 40)]), filename="more.jsonl")
    with CaptureQueriesContext(connection) as queries:
        assert stranded_item_ids(campaign=campaign) == [first.item_id]
    assert len(statements(queries)) == 1
    with CaptureQueriesContext(connection) as queries:
        assert stranded_items(campaign=campaign).total == 1
    assert len(statements(queries)) == 3  # the rows and their total, who let them go, the pool's size


# --- pages ---------------------------------------------------------------------------------------


def member(campaign, role):
    user = UserFactory()
    CampaignMember.objects.create(campaign=campaign, user=user, role=role)
    return user


def test_the_fragment_and_the_page(client):
    campaign, skipper, others, first = skipped_by_one()
    viewer = member(campaign, "viewer")
    client.force_login(viewer)
    fragment = client.get(f"/c/{campaign.slug}/queue/stranded/")
    body = fragment.content.decode()
    assert fragment.status_code == 200 and "<html" not in body and 'id="stranded"' in body
    assert "Not my language" in body and skipper.username in body and "2 / 3" in body
    assert "only the campaign's owners and admins" in body and 'value="give_back:' not in body
    page = client.get(f"/c/{campaign.slug}/queue/").content.decode()
    assert "<html" in page and 'aria-current="page">Home' in page and 'id="stranded"' in page
    # Viewers see, they do not act.
    denied = client.post(f"/c/{campaign.slug}/queue/stranded/act/", {"one": f"lower_target:{first.item_id}"})
    assert denied.status_code == 403
    assert Item.objects.get().label_target is None
    # Annotators and strangers learn nothing.
    client.force_login(skipper)
    assert client.get(f"/c/{campaign.slug}/queue/stranded/").status_code == 403
    client.force_login(UserFactory())
    assert client.get(f"/c/{campaign.slug}/queue/stranded/").status_code == 404


def test_admins_act_from_the_fragment_with_csrf():
    campaign, skipper, others, first = skipped_by_one()
    admin = member(campaign, "admin")
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    url = f"/c/{campaign.slug}/queue/stranded/act/"
    assert client.post(url, {"one": f"give_back:{first.item_id}"}).status_code == 403  # no CSRF token
    body = client.get(f"/c/{campaign.slug}/queue/stranded/").content.decode()
    assert f'value="give_back:{first.item_id}"' in body and "csrfmiddlewaretoken" in body
    token = client.cookies["csrftoken"].value
    answer = client.post(url, {"one": f"give_back:{first.item_id}"}, HTTP_X_CSRFTOKEN=token, HTTP_HX_REQUEST="true")
    text = answer.content.decode()
    assert answer.status_code == 200 and "<html" not in text and "Gave 1 item back" in text
    assert "No stranded items" in text
    assert Assignment.objects.get(pk=first.pk).returned_at is not None


def test_bulk_form_errors_are_shown_at_the_field_and_nothing_changes(client):
    campaign, skipper, others, first = skipped_by_one()
    client.force_login(member(campaign, "owner"))
    url = f"/c/{campaign.slug}/queue/stranded/act/"
    bad = client.post(url, {"action": "lower_target", "scope": "all", "target": "two"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 400 and "&#x27;two&#x27; is not a whole number" in bad.content.decode()
    low = client.post(url, {"action": "lower_target", "scope": "all", "target": "1"}, HTTP_HX_REQUEST="true")
    assert low.status_code == 400 and 'aria-invalid="true"' in low.content.decode()
    none = client.post(url, {"action": "give_back", "scope": "chosen"}, HTTP_HX_REQUEST="true")
    assert none.status_code == 400 and "Choose at least one item" in none.content.decode()
    assert Item.objects.get().label_target is None
    # Without htmx: post, redirect, and the page says what happened.
    ok = client.post(url, {"action": "lower_target", "scope": "chosen", "items": [first.item_id]}, follow=True)
    assert ok.redirect_chain == [(f"/c/{campaign.slug}/queue/", 302)]
    assert "<html" in ok.content.decode() and "Lowered the target of 1 item" in ok.content.decode()
    assert Item.objects.get().label_target == 2


# --- API -----------------------------------------------------------------------------------------


def api_as(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user, name='tests').key}")
    return client


def test_the_api_lists_and_acts():
    campaign, skipper, others, first = skipped_by_one()
    viewer, admin = member(campaign, "viewer"), member(campaign, "admin")
    url = f"/api/campaigns/{campaign.slug}/stranded/"
    listing = api_as(viewer).get(url).json()
    assert listing["count"] == 1 and listing["eligible_annotators"] == 3
    row = listing["items"][0]
    assert row["id"] == first.item_id and (row["labels"], row["target"]) == (2, 3)
    assert row["skipped"] == [{"annotator": skipper.username, "reason": "Not my language"}]
    assert api_as(viewer).post(url, {"action": "give_back", "items": "all"}, format="json").status_code == 403
    client = api_as(admin)
    for body, field in (
        ({"action": "delete", "items": "all"}, "action"),
        ({"action": "give_back", "items": []}, "items"),
        ({"action": "give_back", "items": ["x"]}, "items"),
        ({"action": "give_back", "items": "all", "target": 1}, "target"),
    ):
        answer = client.post(url, body, format="json")
        assert answer.status_code == 400 and field in answer.json(), (body, answer.json())
    answer = client.post(url, {"action": "lower_target", "items": "all", "target": 1}, format="json")
    assert answer.status_code == 400 and answer.json()["field"] == "target"
    answer = client.post(
        f"/api/campaigns/{campaign.pk}/stranded/", {"action": "give_back", "items": [first.item_id]}, format="json"
    )
    assert answer.status_code == 200 and answer.json()["changed"] == 1 and answer.json()["returned_assignments"] == 1
    assert api_as(admin).get(url).json()["count"] == 0
