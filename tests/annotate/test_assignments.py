"""The assignment engine: overlap, order, leases, expiry, submit, skip and edits."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.models import Annotation, AnnotationRevision, Assignment, Item
from annotate.services.assignments import (
    AssignmentError,
    NoWork,
    annotation_submit,
    annotation_update,
    assignment_skip,
    display_label,
    lease_heartbeat,
    leases_expire,
    leases_release,
    my_progress,
    next_assignment_for,
)
from annotate.services.imports import items_import
from annotate.services.progress import annotator_progress
from tests.conftest import jsonl, pair
from tests.factories import CampaignFactory, UserFactory

pytestmark = pytest.mark.django_db


def make_campaign(n=5, overlap=2, preset="simple-pairwise", **kw):
    campaign = CampaignFactory(preset_name=preset, overlap=overlap, **kw)
    items_import(campaign=campaign, stream=jsonl(*[pair(i) for i in range(n)]), filename="items.jsonl")
    return campaign


def lease(user, campaign, **kw):
    result = next_assignment_for(annotator=user, campaign=campaign, **kw)
    assert isinstance(result, Assignment), result
    return result


def submit(assignment, user, value=1, **kw):
    return annotation_submit(assignment_id=assignment.pk, annotator=user, label={"overall": value}, **kw)


def test_every_item_gets_exactly_overlap_labels_and_nobody_twice():
    campaign = make_campaign(n=6, overlap=3)
    users = UserFactory.create_batch(5)
    seen = {u.pk: set() for u in users}
    for _ in range(20):
        for user in users:
            result = next_assignment_for(annotator=user, campaign=campaign)
            if isinstance(result, NoWork):
                continue
            assert result.item_id not in seen[user.pk]
            seen[user.pk].add(result.item_id)
            submit(result, user)
    counts = list(Item.objects.filter(campaign=campaign).values_list("human_label_count", "assigned_count"))
    assert counts == [(3, 3)] * 6
    assert all(isinstance(next_assignment_for(annotator=u, campaign=campaign), NoWork) for u in users)


def test_a_lease_starts_at_the_engine_s_now_on_every_database():
    """The engine's clock, not the row's: time on task (and too-fast submits) are measured from it."""
    campaign = make_campaign(n=1, min_seconds=5)
    user = UserFactory()
    then = timezone.now() - timedelta(hours=2)
    held = lease(user, campaign, now=then)
    assert Assignment.objects.get(pk=held.pk).leased_at == then
    annotation, _ = submit(held, user, active_seconds=8, now=then + timedelta(seconds=9))
    assert annotation.seconds == 8 and not annotation.too_fast


def test_fullest_items_first_then_a_stable_shuffle():
    campaign = make_campaign(n=10, overlap=3)
    first_user, second_user = UserFactory(), UserFactory()
    first = lease(first_user, campaign)
    submit(first, first_user)
    # The item someone started comes first for the next person.
    assert lease(second_user, campaign).item_id == first.item_id
    order = list(Item.objects.filter(campaign=campaign).order_by("queue_rank").values_list("id", flat=True))
    assert first.item_id == order[0]


def test_asking_again_returns_the_same_lease_and_prefetch_gets_a_second():
    campaign = make_campaign()
    user = UserFactory()
    current = lease(user, campaign)
    assert lease(user, campaign).pk == current.pk
    prefetched = lease(user, campaign, exclude={current.pk})
    assert prefetched.pk != current.pk and prefetched.item_id != current.item_id
    held = next_assignment_for(annotator=user, campaign=campaign, exclude={current.pk, prefetched.pk})
    assert isinstance(held, NoWork) and held.reason == "hold"


def test_live_leases_count_against_the_overlap_and_no_dead_ends():
    campaign = make_campaign(n=1, overlap=1)
    holder, other = UserFactory(), UserFactory()
    lease(holder, campaign)
    waiting = next_assignment_for(annotator=other, campaign=campaign)
    assert isinstance(waiting, NoWork) and waiting.reason == "wait" and 1 <= waiting.retry_after <= 60
    assert "try again" in waiting.message


def test_an_expired_lease_returns_the_item_to_the_pool():
    campaign = make_campaign(n=1, overlap=1)
    holder, other = UserFactory(), UserFactory()
    first = lease(holder, campaign)
    later = timezone.now() + timedelta(seconds=campaign.lease_seconds + 1)
    assert leases_expire(now=later) == 1
    assert Item.objects.get().assigned_count == 0
    second = lease(other, campaign, now=later)
    assert second.item_id == first.item_id
    # The first holder comes back too late: the slot is gone and nothing is stored.
    with pytest.raises(AssignmentError, match="went to someone else") as info:
        submit(first, holder)
    assert info.value.code == "lease_lost"
    submit(second, other)
    assert Annotation.objects.count() == 1


def test_an_expired_lease_whose_slot_is_free_can_still_be_submitted():
    campaign = make_campaign(n=1, overlap=1)
    user = UserFactory()
    first = lease(user, campaign)
    leases_expire(now=timezone.now() + timedelta(seconds=campaign.lease_seconds + 1))
    annotation, created = submit(first, user)
    assert created and Item.objects.values_list("assigned_count", "human_label_count").get() == (1, 1)


def test_heartbeat_extends_the_lease_and_caps_active_time_by_wall_time():
    campaign = make_campaign()
    user = UserFactory()
    assignment = lease(user, campaign)
    later = assignment.leased_at + timedelta(seconds=100)
    beat = lease_heartbeat(assignment_id=assignment.pk, annotator=user, active_seconds=5000, now=later)
    assert beat.expires_at == later + timedelta(seconds=campaign.lease_seconds)
    assert beat.active_seconds == pytest.approx(100, abs=0.01)
    beat = lease_heartbeat(assignment_id=assignment.pk, annotator=user, active_seconds=40, now=later)
    assert beat.active_seconds == pytest.approx(100, abs=0.01), "active time never goes back"


def test_label_is_stored_in_the_items_own_order():
    campaign = make_campaign(n=4, overlap=1, preset="multipref")
    user = UserFactory()
    label = {"overall": -2, "helpfulness": -1, "truthfulness": 0, "harmlessness": 1}
    for _ in range(4):
        assignment = lease(user, campaign)
        annotation, _ = annotation_submit(assignment_id=assignment.pk, annotator=user, label=label, rater_confidence=3)
        expected = {k: -v for k, v in label.items()} if assignment.position_swapped else label
        assert annotation.label == expected and annotation.position_swapped == assignment.position_swapped
        assert display_label(annotation) == label


def test_double_submit_stores_one_label():
    campaign = make_campaign()
    user = UserFactory()
    assignment = lease(user, campaign)
    first, created = submit(assignment, user, 1)
    again, created_again = submit(assignment, user, -1)
    assert created and not created_again and again.pk == first.pk
    assert Annotation.objects.get().label == first.label
    assert Item.objects.get(pk=assignment.item_id).human_label_count == 1


def test_someone_elses_lease_is_not_found():
    campaign = make_campaign()
    owner, intruder = UserFactory(), UserFactory()
    assignment = lease(owner, campaign)
    with pytest.raises(AssignmentError) as info:
        submit(assignment, intruder)
    assert info.value.status == 404 and not Annotation.objects.exists()


@pytest.mark.parametrize(
    "label, field",
    [({"overall": 2}, "label.overall"), ({}, "label.overall"), ({"overall": 1, "style": 1}, "label.style")],
)
def test_invalid_labels_are_refused_with_the_field(label, field):
    campaign = make_campaign()
    user = UserFactory()
    assignment = lease(user, campaign)
    with pytest.raises(AssignmentError) as info:
        annotation_submit(assignment_id=assignment.pk, annotator=user, label=label)
    assert info.value.code == "invalid_label" and info.value.field == field
    assert Assignment.objects.get(pk=assignment.pk).state == "leased"


def test_required_justification():
    campaign = make_campaign(preset="helpsteer2-preference")
    user = UserFactory()
    assignment = lease(user, campaign)
    with pytest.raises(AssignmentError, match="justification: required"):
        annotation_submit(assignment_id=assignment.pk, annotator=user, label={"overall": 3})
    annotation, _ = annotation_submit(
        assignment_id=assignment.pk, annotator=user, label={"overall": 3}, justification=" B is right "
    )
    assert annotation.justification == "B is right"


def test_skip_needs_a_reason_and_sends_the_item_to_someone_else():
    campaign = make_campaign(n=1, overlap=1)
    skipper, other = UserFactory(), UserFactory()
    assignment = lease(skipper, campaign)
    with pytest.raises(AssignmentError, match="Say why"):
        assignment_skip(assignment_id=assignment.pk, annotator=skipper, reason=" ")
    assignment_skip(assignment_id=assignment.pk, annotator=skipper, reason="I don't read Finnish")
    assert Item.objects.get().assigned_count == 0
    assert isinstance(next_assignment_for(annotator=skipper, campaign=campaign), NoWork)
    assert lease(other, campaign).item_id == assignment.item_id
    with pytest.raises(AssignmentError, match="skipped"):
        submit(assignment, skipper)


def test_gold_items_are_mixed_in_and_do_not_use_up_the_overlap():
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=1, gold_rate=1.0)
    rows = [pair(0), pair(1, gold_label={"overall": -1})]
    items_import(campaign=campaign, stream=jsonl(*rows), filename="items.jsonl")
    users = UserFactory.create_batch(3)
    for user in users:
        assert lease(user, campaign).item.external_id == "p1"
    assert Item.objects.get(external_id="p1").assigned_count == 0


def test_changing_a_label_keeps_the_old_one_as_a_revision():
    campaign = make_campaign()
    user = UserFactory()
    assignment = lease(user, campaign)
    annotation, _ = submit(assignment, user, 1)
    original = annotation.label
    updated = annotation_update(
        annotation_id=annotation.pk, annotator=user, label={"overall": -1}, justification="changed my mind"
    )
    assert updated.revision == 2 and display_label(updated) == {"overall": -1}
    revision = AnnotationRevision.objects.get()
    assert revision.label == original and revision.revision == 1
    assert Annotation.objects.count() == 1
    with pytest.raises(AssignmentError) as info:
        annotation_update(annotation_id=annotation.pk, annotator=UserFactory(), label={"overall": 0})
    assert info.value.status == 404


def test_closed_campaigns_lease_nothing():
    campaign = make_campaign()
    campaign.state = "closed"
    campaign.save()
    with pytest.raises(AssignmentError, match="not open"):
        next_assignment_for(annotator=UserFactory(), campaign=campaign)


def test_items_labelled_by_import_are_not_served_to_the_same_person():
    campaign = make_campaign(n=1, overlap=2)
    user = UserFactory(username="imported-ann")
    from annotate.services.imports import annotations_import

    annotations_import(
        campaign=campaign,
        stream=jsonl({"item": "p0", "annotator": user.username, "label": {"overall": 1}}),
        filename="l.jsonl",
    )
    assert isinstance(next_assignment_for(annotator=user, campaign=campaign), NoWork)
    assert Item.objects.get().assigned_count == 1


def test_progress():
    campaign = make_campaign(n=2, overlap=2)
    user = UserFactory()
    submit(lease(user, campaign), user)
    assert annotator_progress(annotator=user, campaign=campaign) == {
        "mine": 1,
        "left": 1,  # the other item; the one I labelled is not mine to label again
        "left_capped": False,
        "my_total": 2,
        "my_fraction": 0.5,
        "label_limit": None,
        "daily_label_limit": None,
        "campaign_labels": 1,
        "campaign_wanted": 4,
        "campaign_fraction": 0.25,
        "stranded": None,
        "campaign_complete": False,
    }


def test_progress_counts_my_leases_as_left_and_respects_lowered_targets():
    campaign = make_campaign(n=3, overlap=2)
    user = UserFactory()
    held = lease(user, campaign)
    assert my_progress(annotator=user, campaign=campaign)["left"] == 3  # the one on screen and two more
    Item.objects.exclude(pk=held.item_id).update(label_target=1, human_label_count=1, assigned_count=1)
    progress = annotator_progress(annotator=user, campaign=campaign)
    assert (progress["campaign_labels"], progress["campaign_wanted"]) == (2, 4)
    assert progress["left"] == 1


def test_left_for_me_is_counted_up_to_a_cap(monkeypatch):
    from annotate.services import assignments

    monkeypatch.setattr(assignments, "LEFT_COUNT_CAP", 3)
    campaign = make_campaign(n=5, overlap=1)
    progress = my_progress(annotator=UserFactory(), campaign=campaign)
    assert (progress["left"], progress["left_capped"]) == (3, True)


def test_leases_release_ends_live_leases_in_one_or_every_campaign():
    first, second = make_campaign(n=3, overlap=1), make_campaign(n=3, overlap=1)
    user = UserFactory()
    a = lease(user, first)
    lease(user, first, exclude={a.pk})
    b = lease(user, second)
    assert leases_release(annotator=user, campaign=first) == 2
    assert list(Item.objects.filter(campaign=first).values_list("assigned_count", flat=True)) == [0, 0, 0]
    assert Item.objects.get(pk=b.item_id).assigned_count == 1
    assert leases_release(annotator=user) == 1
    assert Item.objects.filter(assigned_count__gt=0).count() == 0
    assert leases_release(annotator=user) == 0
    assert set(Assignment.objects.values_list("state", flat=True)) == {"expired"}
    # Still in the pool and the slot still free: the released lease may be submitted (as after expiry).
    annotation, created = submit(a, user)
    assert created and Item.objects.get(pk=a.item_id).assigned_count == 1


def test_out_of_the_pool_or_inactive_submit_skip_and_heartbeat_are_refused():
    campaign = make_campaign(n=3, overlap=1)
    user, colleague = UserFactory(), UserFactory()
    campaign.annotators.add(user, colleague)
    held = lease(user, campaign)
    other = lease(colleague, campaign)
    campaign.annotators.remove(user)
    assert leases_release(annotator=user, campaign=campaign) == 1
    for action in (
        lambda: submit(held, user),
        lambda: assignment_skip(assignment_id=held.pk, annotator=user, reason="x"),
        lambda: lease_heartbeat(assignment_id=held.pk, annotator=user),
    ):
        with pytest.raises(AssignmentError, match="no longer in this campaign's annotator pool") as info:
            action()
        assert (info.value.code, info.value.status) == ("not_in_pool", 403)
    assert not Annotation.objects.exists() and Item.objects.get(pk=held.item_id).assigned_count == 0
    colleague.is_active = False
    colleague.save()
    with pytest.raises(AssignmentError) as info:
        submit(other, colleague)
    assert info.value.code == "not_in_pool"


def test_the_submit_answer_carries_my_progress_and_the_page_is_never_cached(client):
    campaign = make_campaign(n=3, overlap=1)
    user = UserFactory()
    client.force_login(user)
    page = client.get(f"/c/{campaign.slug}/annotate/")
    assert "no-store" in page["Cache-Control"]
    assert 'Campaign: <span id="campaign-labels">0</span> / 3 labels' in page.content.decode()
    held = Assignment.objects.get(annotator=user)
    answer = client.post(f"/c/{campaign.slug}/annotate/{held.pk}/submit/", {"label.overall": "1"})
    body = answer.content.decode()
    assert answer.status_code == 200 and 'data-created="1"' in body
    assert 'id="my-progress" class="my-progress" hx-swap-oob="true"' in body
    assert '<strong class="mine" id="mine-count">1</strong>' in body
    assert '<span id="left-count">2</span> left for you' in body and "width: 33%" in body
    # Removed from the pool: the page's submit answers 403 with the reason, not a 404 page.
    held = lease(user, campaign)
    campaign.annotators.add(UserFactory())
    answer = client.post(f"/c/{campaign.slug}/annotate/{held.pk}/submit/", {"label.overall": "1"})
    assert answer.status_code == 403 and 'data-code="not_in_pool"' in answer.content.decode()


def test_the_label_edit_page(client):
    campaign = make_campaign(preset="multipref")
    user = UserFactory()
    assignment = lease(user, campaign)
    label = {"overall": 2, "helpfulness": 1, "truthfulness": 0, "harmlessness": -1}
    annotation, _ = annotation_submit(assignment_id=assignment.pk, annotator=user, label=label)
    client.force_login(user)
    page = client.get(f"/c/{campaign.slug}/labels/")
    assert page.status_code == 200 and "Question" in page.content.decode()
    form = client.get(f"/c/{campaign.slug}/labels/{annotation.pk}/").content.decode()
    assert (
        'name="label.overall" value="2" data-hotkey="5"\n        checked' in form or 'value="2" data-hotkey="5"' in form
    )
    bad_fields = {f"label.{k}": str(v) for k, v in {**label, "overall": 9}.items()}
    bad = client.post(f"/c/{campaign.slug}/labels/{annotation.pk}/", bad_fields)
    assert bad.status_code == 400 and "label.overall: 9 is outside -2..2" in bad.content.decode()
    fragment = client.post(f"/c/{campaign.slug}/labels/{annotation.pk}/", bad_fields, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 400 and fragment.content.decode().startswith('<div class="flash error"')
    fields = {f"label.{k}": str(v) for k, v in {**label, "overall": -2}.items()}
    ok = client.post(f"/c/{campaign.slug}/labels/{annotation.pk}/", fields)
    assert ok.status_code == 200 and "Label changed." in ok.content.decode()
    annotation.refresh_from_db()
    assert display_label(annotation) == {**label, "overall": -2} and annotation.revision == 2
    other = UserFactory()
    client.force_login(other)
    assert client.get(f"/c/{campaign.slug}/labels/{annotation.pk}/").status_code == 404
