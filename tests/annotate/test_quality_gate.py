"""The gate's decisions: the qualification round, re-qualification, attention checks, warnings, pauses, too fast."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.models import Annotation, AnnotatorStanding, Assignment, Campaign, Item
from annotate.schema import label_orient
from annotate.services.assignments import (
    AssignmentError,
    NoWork,
    annotation_submit,
    annotation_update,
    assignment_skip,
    next_assignment_for,
)
from annotate.services.campaigns import campaign_update
from annotate.services.quality import gate
from tests.factories import CampaignFactory, ItemFactory, UserFactory

pytestmark = pytest.mark.django_db

GOLD = {"overall": -1}  # A is better, in the item's own order
Q = AnnotatorStanding.Qualification


def make_campaign(*, gold: int = 4, work: int = 4, **settings) -> Campaign:
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=1, **settings)
    for i in range(gold):
        ItemFactory(campaign=campaign, route=Item.Route.HUMAN, gold_label=GOLD, gold_explanation=f"Because **{i}**.")
    for _ in range(work):
        ItemFactory(campaign=campaign, route=Item.Route.HUMAN)
    return campaign


def answer(assignment: Assignment, *, right: bool, seconds: float = 10.0):
    """Submit the gold answer (or its opposite) as the annotator sees the item; `seconds` of active time."""
    wanted = GOLD if right else {"overall": 1}
    shown = label_orient(
        schema=assignment.campaign.label_schema,
        kind="pairwise",
        label=wanted,
        position_swapped=assignment.position_swapped,
    )
    annotation, _ = annotation_submit(
        assignment_id=assignment.pk,
        annotator=assignment.annotator,
        label=shown,
        active_seconds=seconds,
        now=assignment.leased_at + timedelta(seconds=60),
    )
    return annotation


def lease(campaign, user):
    result = next_assignment_for(annotator=user, campaign=campaign)
    assert not isinstance(result, NoWork), result
    return result


def standing(campaign, user) -> AnnotatorStanding:
    return AnnotatorStanding.objects.get(campaign=campaign, annotator=user)


# --- qualification ------------------------------------------------------------------------------


def test_a_good_annotator_passes_the_round_and_enters_the_real_queue():
    campaign = make_campaign(qualification_items=3, qualification_threshold=0.6)
    user = UserFactory()
    for k, right in enumerate((True, False, True), start=1):
        assignment = lease(campaign, user)
        assert assignment.purpose == Assignment.Purpose.QUALIFICATION
        assert gate.qualification_step(assignment=assignment).item == k
        annotation = answer(assignment, right=right)
        assert annotation.gold_correct is right
    row = standing(campaign, user)
    assert (row.qualification, row.qualification_answered, row.qualification_correct) == (Q.PASSED, 3, 2)
    assert row.qualification_version == campaign.guidelines_version
    assert row.attention_checks == 0, "qualification answers are not attention checks"
    result = gate.qualification_result(annotation=annotation)
    assert result.decision == "passed" and "Welcome to the real queue" in result.message
    work = lease(campaign, user)
    assert work.purpose == Assignment.Purpose.WORK and work.item.gold_label is None


def test_a_bad_annotator_is_kept_out_kindly():
    campaign = make_campaign(qualification_items=3, qualification_threshold=0.8)
    user = UserFactory()
    for _ in range(3):
        answer(lease(campaign, user), right=False)
    assert standing(campaign, user).qualification == Q.FAILED
    refused = next_assignment_for(annotator=user, campaign=campaign)
    assert isinstance(refused, NoWork) and refused.reason == "not_qualified"
    assert refused.message.startswith("Thank you for taking the qualification round.")
    assert "0 of 3" in refused.message and "80%" in refused.message and "try again" in refused.message
    assert not Assignment.objects.filter(annotator=user, purpose=Assignment.Purpose.WORK).exists()


def test_the_threshold_is_inclusive():
    campaign = make_campaign(qualification_items=2, qualification_threshold=0.5)
    user = UserFactory()
    answer(lease(campaign, user), right=True)
    answer(lease(campaign, user), right=False)
    assert standing(campaign, user).qualification == Q.PASSED


def test_the_last_check_item_on_screen_holds_the_prefetch():
    campaign = make_campaign(qualification_items=2)
    user = UserFactory()
    answer(lease(campaign, user), right=True)
    last = lease(campaign, user)
    held = next_assignment_for(annotator=user, campaign=campaign, exclude={last.pk})
    assert isinstance(held, NoWork) and held.reason == "hold"
    assert next_assignment_for(annotator=user, campaign=campaign).pk == last.pk, "the one on screen comes back"


def test_too_few_gold_items_end_the_round_early_on_what_was_answered():
    campaign = make_campaign(gold=2, qualification_items=5, qualification_threshold=0.5)
    user = UserFactory()
    answer(lease(campaign, user), right=True)
    answer(lease(campaign, user), right=True)
    assert standing(campaign, user).qualification == Q.IN_PROGRESS
    work = lease(campaign, user)  # no check item left: decided on two of two, then a work item
    assert work.purpose == Assignment.Purpose.WORK
    assert standing(campaign, user).qualification == Q.PASSED


def test_too_few_gold_items_can_also_fail():
    campaign = make_campaign(gold=1, qualification_items=5)
    user = UserFactory()
    answer(lease(campaign, user), right=False)
    refused = next_assignment_for(annotator=user, campaign=campaign)
    assert isinstance(refused, NoWork) and refused.reason == "not_qualified" and "0 of 1" in refused.message


def test_skipping_check_items_does_not_pick_which_ones_are_scored():
    campaign = make_campaign(gold=3, qualification_items=3, qualification_threshold=0.8)
    user = UserFactory()
    for _ in range(2):
        assignment_skip(assignment_id=lease(campaign, user).pk, annotator=user, reason="unsure")
    answer(lease(campaign, user), right=True)
    refused = next_assignment_for(annotator=user, campaign=campaign)  # no check item left: decided now
    assert isinstance(refused, NoWork) and refused.reason == "not_qualified"
    assert "1 of 3 check items (2 skipped or not answered in time)" in refused.message


def test_a_round_an_admin_shortens_is_decided_at_the_next_request():
    campaign = make_campaign(gold=4, qualification_items=3, qualification_threshold=0.5)
    user = UserFactory()
    answer(lease(campaign, user), right=True)
    answer(lease(campaign, user), right=True)
    campaign_update(campaign=campaign, qualification_items=2)
    work = lease(Campaign.objects.get(pk=campaign.pk), user)
    assert work.purpose == Assignment.Purpose.WORK and standing(campaign, user).qualification == Q.PASSED


def test_qualification_answers_are_final_and_attention_edits_are_scored_again():
    campaign = make_campaign(gold=3, qualification_items=1, gold_rate=1.0, attention_max_failures=5)
    user = UserFactory()
    first = answer(lease(campaign, user), right=True)
    with pytest.raises(AssignmentError, match="answers in the qualification round are final"):
        annotation_update(annotation_id=first.pk, annotator=user, label={"overall": 1})
    check = lease(campaign, user)
    assert check.purpose == Assignment.Purpose.ATTENTION
    wrong = answer(check, right=False)
    assert (standing(campaign, user).attention_failures, wrong.gold_correct) == (1, False)
    fixed = label_orient(
        schema=campaign.label_schema, kind="pairwise", label=GOLD, position_swapped=check.position_swapped
    )
    annotation_update(annotation_id=wrong.pk, annotator=user, label=fixed)
    wrong.refresh_from_db()
    assert (standing(campaign, user).attention_failures, wrong.gold_correct) == (0, True)


def test_no_gold_items_at_all_means_waiting_and_the_admin_sees_the_round():
    campaign = make_campaign(gold=0, qualification_items=3)
    user = UserFactory()
    result = next_assignment_for(annotator=user, campaign=campaign)
    assert isinstance(result, NoWork) and result.reason == "wait" and result.retry_after == 60
    row = standing(campaign, user)
    assert (row.qualification, row.qualification_answered) == (Q.IN_PROGRESS, 0)


@pytest.mark.django_db(transaction=True)
def test_ending_a_round_early_locks_its_row_inside_a_transaction():
    """Outside a test's wrapping transaction: on PostgreSQL a row lock outside one is an error."""
    campaign = make_campaign(gold=1, qualification_items=3, qualification_threshold=0.5)
    user = UserFactory()
    answer(lease(campaign, user), right=True)
    work = lease(campaign, user)
    assert work.purpose == Assignment.Purpose.WORK


def test_new_guidelines_ask_for_a_new_round_when_the_campaign_says_so():
    campaign = make_campaign(gold=6, qualification_items=2, requalify_on_guidelines=True)
    user = UserFactory()
    for _ in range(2):
        answer(lease(campaign, user), right=True)
    assert lease(campaign, user).purpose == Assignment.Purpose.WORK
    Assignment.objects.filter(annotator=user, state=Assignment.State.LEASED).delete()
    Item.objects.filter(gold_label__isnull=True).update(assigned_count=0)
    campaign = campaign_update(campaign=campaign, guidelines="New rules: ties are allowed.")
    assert campaign.guidelines_version == 2
    again = lease(campaign, user)
    assert again.purpose == Assignment.Purpose.QUALIFICATION
    assert gate.qualification_step(assignment=again).item == 1
    answer(again, right=False)
    row = standing(campaign, user)
    assert (row.qualification, row.qualification_answered, row.qualification_correct) == (Q.IN_PROGRESS, 1, 0)
    assert row.qualification_version == 2
    answer(lease(campaign, user), right=False)
    assert standing(campaign, user).qualification == Q.FAILED


def test_new_guidelines_keep_a_pass_when_requalifying_is_off():
    campaign = make_campaign(qualification_items=1)
    user = UserFactory()
    answer(lease(campaign, user), right=True)
    campaign = campaign_update(campaign=campaign, guidelines="Reworded.")
    assert lease(campaign, user).purpose == Assignment.Purpose.WORK


def test_training_feedback_shows_the_right_answer_only_when_enabled():
    campaign = make_campaign(qualification_items=2, qualification_threshold=0.5, qualification_feedback=True)
    user = UserFactory()
    assignment = lease(campaign, user)
    result = gate.qualification_result(annotation=answer(assignment, right=False))
    assert (result.answered, result.of, result.decision, result.feedback, result.correct) == (1, 2, None, True, False)
    check = result.checks[0]
    assert check.title == "Overall" and not check.matched
    # The annotator's view: the side the gold favours as it was shown to them.
    assert check.expected == ("B (right) is better" if assignment.position_swapped else "A (left) is better")
    assert result.explanation.startswith("Because")
    Campaign.objects.filter(pk=campaign.pk).update(qualification_feedback=False)
    campaign.refresh_from_db()
    assignment = lease(campaign, user)
    quiet = gate.qualification_result(annotation=answer(assignment, right=True))
    assert quiet.feedback is False and quiet.checks == [] and quiet.correct is None and quiet.explanation == ""
    assert quiet.decision == "passed", "the decision itself is always told"


def test_attention_checks_and_work_items_get_no_result():
    campaign = make_campaign(gold_rate=1.0)
    user = UserFactory()
    attention = lease(campaign, user)
    assert attention.purpose == Assignment.Purpose.ATTENTION
    assert gate.qualification_step(assignment=attention) is None
    assert gate.qualification_result(annotation=answer(attention, right=False)) is None


# --- attention checks ---------------------------------------------------------------------------


def test_attention_checks_come_at_the_gold_rate_and_failures_warn_then_pause():
    campaign = make_campaign(gold=4, gold_rate=1.0, attention_max_failures=2)
    user = UserFactory()
    first = lease(campaign, user)
    assert first.purpose == Assignment.Purpose.ATTENTION and first.item.gold_label is not None
    assert answer(first, right=True).gold_correct is True
    row = standing(campaign, user)
    assert (row.attention_checks, row.attention_failures, row.warning) == (1, 0, "")
    answer(lease(campaign, user), right=False)
    row = standing(campaign, user)
    assert (row.attention_checks, row.attention_failures, row.paused_at) == (2, 1, None)
    assert "did not match" in row.warning and row.warned_at is not None
    assert gate.standing_warning_take(annotator=user, campaign=campaign) == row.warning
    assert gate.standing_warning_take(annotator=user, campaign=campaign) == "", "shown once"
    answer(lease(campaign, user), right=False)
    row = standing(campaign, user)
    assert row.attention_failures == 2 and row.paused_at is not None and row.warning == ""
    paused = next_assignment_for(annotator=user, campaign=campaign)
    assert isinstance(paused, NoWork) and paused.reason == "paused" and "2 of your answers" in paused.message


def test_taking_a_check_item_moves_the_left_count_as_a_work_item_does():
    """The count left for me must not stand still (or grow) when the item behind the current one is a check."""
    from annotate.services.assignments import items_left_for

    checks, works = make_campaign(gold=2, work=3, gold_rate=1.0), make_campaign(gold=0, work=3)
    user = UserFactory()
    for campaign, purpose in ((checks, Assignment.Purpose.ATTENTION), (works, Assignment.Purpose.WORK)):
        before = items_left_for(annotator=user, campaign=campaign)
        assert lease(campaign, user).purpose == purpose
        assert items_left_for(annotator=user, campaign=campaign) == before == (3, False)


def test_without_gold_rate_no_attention_check_is_mixed_in():
    campaign = make_campaign(gold=4, gold_rate=0.0)
    user = UserFactory()
    for _ in range(4):
        assignment = lease(campaign, user)
        assert assignment.purpose == Assignment.Purpose.WORK
        answer(assignment, right=True)
    assert not AnnotatorStanding.objects.exists(), "work labels at normal speed leave no standing"


def test_attention_checks_never_pause_without_a_limit():
    campaign = make_campaign(gold=3, gold_rate=1.0)
    user = UserFactory()
    for _ in range(3):
        answer(lease(campaign, user), right=False)
    row = standing(campaign, user)
    assert row.attention_failures == 3 and row.paused_at is None and row.warning


def test_gold_items_never_use_up_the_overlap():
    """Gold items never count against the overlap: everyone may get the same check item."""
    campaign = make_campaign(gold=1, work=0, gold_rate=1.0)
    first, second = UserFactory(), UserFactory()
    answer(lease(campaign, first), right=True)
    answer(lease(campaign, second), right=True)
    gold = Item.objects.get(campaign=campaign, gold_label__isnull=False)
    assert gold.assigned_count == 0 and gold.human_label_count == 2


# --- too fast -----------------------------------------------------------------------------------


def test_too_fast_submits_are_flagged_and_counted():
    campaign = make_campaign(gold=0, min_seconds=5)
    user = UserFactory()
    quick = answer(lease(campaign, user), right=True, seconds=1.5)
    assert quick.too_fast is True
    calm = answer(lease(campaign, user), right=True, seconds=8)
    assert calm.too_fast is False
    assert standing(campaign, user).too_fast == 1
    assert Annotation.objects.filter(annotator=user, too_fast=True).count() == 1


def test_no_minimum_time_flags_nothing():
    campaign = make_campaign(gold=0)
    user = UserFactory()
    assert answer(lease(campaign, user), right=True, seconds=0.1).too_fast is False


# --- admins' actions ------------------------------------------------------------------------------


def test_an_admin_pause_and_resume():
    campaign = make_campaign(gold=3, gold_rate=1.0, attention_max_failures=1)
    user = UserFactory()
    answer(lease(campaign, user), right=False)
    assert standing(campaign, user).paused_at is not None
    resumed = gate.standing_resume(campaign=campaign, annotator=user, note="Talked to them.")
    assert resumed.paused_at is None and resumed.attention_failures == 0 and resumed.attention_checks == 1
    assert resumed.note.startswith("Resumed by an admin") and "after 1 failed check." in resumed.note
    assert resumed.note.endswith("Talked to them.")
    answer(lease(campaign, user), right=True)
    paused = gate.standing_pause(campaign=campaign, annotator=user, note="On holiday.", now=timezone.now())
    assert paused.paused_at is not None and paused.pause_reason == gate.ADMIN_PAUSE_REASON
    assert paused.note.startswith("Paused by an admin") and paused.note.endswith("On holiday.")
    refused = next_assignment_for(annotator=user, campaign=campaign)
    assert isinstance(refused, NoWork) and refused.reason == "paused" and refused.message == gate.ADMIN_PAUSE_REASON


def test_an_admin_lets_a_failed_annotator_retry_on_unseen_items():
    campaign = make_campaign(gold=4, qualification_items=2)
    user = UserFactory()
    for _ in range(2):
        answer(lease(campaign, user), right=False)
    assert gate.unseen_gold_items(campaign=campaign, annotator=user) == 2
    row = gate.standing_requalify(campaign=campaign, annotator=user)
    assert (row.qualification, row.qualification_answered, row.qualification_correct) == (Q.IN_PROGRESS, 0, 0)
    for _ in range(2):
        answer(lease(campaign, user), right=True)
    assert standing(campaign, user).qualification == Q.PASSED
    assert gate.unseen_gold_items(campaign=campaign, annotator=user) == 0


def test_requalifying_needs_a_qualification_round():
    campaign = make_campaign(gold=1)
    with pytest.raises(ValueError, match="has no qualification round"):
        gate.standing_requalify(campaign=campaign, annotator=UserFactory())


def test_exclude_and_include_keep_a_note():
    campaign = make_campaign(gold=0)
    user = UserFactory()
    row = gate.standing_exclude(campaign=campaign, annotator=user, excluded=True, note="random clicker")
    assert row.excluded and "excluded" in row.note and row.note.endswith("random clicker")
    row = gate.standing_exclude(campaign=campaign, annotator=user, excluded=False)
    assert not row.excluded and "included again" in row.note


# --- the annotate page ------------------------------------------------------------------------------


def shown_answer(assignment: Assignment, *, right: bool) -> dict:
    return label_orient(
        schema=assignment.campaign.label_schema,
        kind="pairwise",
        label=GOLD if right else {"overall": 1},
        position_swapped=assignment.position_swapped,
    )


def page_submit(client, assignment: Assignment, *, right: bool, seconds: float = 10.0):
    label = shown_answer(assignment, right=right)
    return client.post(
        f"/c/{assignment.campaign.slug}/annotate/{assignment.pk}/submit/",
        {"label.overall": str(label["overall"]), "active_seconds": str(seconds)},
    )


def held(user, *, purpose=None) -> Assignment:
    rows = Assignment.objects.filter(annotator=user, state=Assignment.State.LEASED).select_related("campaign")
    if purpose:
        rows = rows.filter(purpose=purpose)
    return rows.latest("id")


def test_the_page_walks_a_qualification_round_with_feedback(client):
    campaign = make_campaign(qualification_items=2, qualification_threshold=0.5)
    Item.objects.filter(gold_label__isnull=False).update(gold_explanation="A answers **the question**.")
    user = UserFactory()
    client.force_login(user)
    page = client.get(f"/c/{campaign.slug}/annotate/").content.decode()
    assert "Qualification · check item 1 of 2" in page and "You need 50 % of them right" in page
    assert 'data-qualification="1"' in page and "expected answer and why" in page
    first = held(user)
    body = page_submit(client, first, right=False).content.decode()
    assert 'data-hold="1"' in body and "not the expected answer" in body
    assert "A answers <strong>the question</strong>." in body, "the explanation is rendered as Markdown"
    assert ("B (right) is better" if first.position_swapped else "A (left) is better") in body
    # The explanation's A and B are the item's own: when they were shown swapped, the page says so.
    assert ("its A was on the right" in body) == bool(first.position_swapped)
    assert "gate-next" in body and "gate-decision" not in body
    fragment = client.get(f"/c/{campaign.slug}/annotate/item/").content.decode()
    assert "check item 2 of 2" in fragment
    body = page_submit(client, held(user), right=True).content.decode()
    assert "your answer matches" in body and "You passed the qualification round: 1 of 2" in body
    fragment = client.get(f"/c/{campaign.slug}/annotate/item/").content.decode()
    assert 'form class="item"' in fragment and "Qualification" not in fragment
    assert held(user).purpose == Assignment.Purpose.WORK


def test_without_feedback_the_page_never_shows_a_gold_answer(client):
    campaign = make_campaign(qualification_items=1, qualification_feedback=False)
    user = UserFactory()
    client.force_login(user)
    page = client.get(f"/c/{campaign.slug}/annotate/").content.decode()
    assert "expected answer and why" not in page
    body = page_submit(client, held(user), right=True).content.decode()
    assert "data-hold" not in body and "Expected" not in body and "Because" not in body
    assert "You passed the qualification round" in body, "the pass is told even without feedback"


def test_a_failed_round_shows_the_kind_message(client):
    campaign = make_campaign(qualification_items=1, qualification_feedback=False)
    user = UserFactory()
    client.force_login(user)
    client.get(f"/c/{campaign.slug}/annotate/")
    page_submit(client, held(user), right=False)
    page = client.get(f"/c/{campaign.slug}/annotate/").content.decode()
    assert 'data-reason="not_qualified"' in page and "Thank you for trying" in page
    assert "You matched 0 of 1 check items" in page and "may let you try again" in page


def _blank(html: str, assignment: Assignment) -> str:
    """The fragment with what differs between any two items (lease, expiry, texts) taken out."""
    html = html.replace(assignment.expires_at.isoformat(), "T")
    html = re.sub(r'data-assignment="\d+"', "", html)
    html = re.sub(r"/\d+/submit/", "/#/submit/", html)
    for text in (assignment.item.prompt, assignment.item.response_a, assignment.item.response_b):
        html = html.replace(text, "")
    return "\n".join(line for line in html.splitlines() if line.strip())


def test_an_attention_check_looks_exactly_like_a_work_item(client):
    campaign = make_campaign(gold=1, work=2, gold_rate=1.0, attention_max_failures=3)
    user = UserFactory()
    client.force_login(user)
    attention_html = client.get(f"/c/{campaign.slug}/annotate/item/").content.decode()
    attention = held(user)
    assert attention.purpose == Assignment.Purpose.ATTENTION
    submitted = page_submit(client, attention, right=False).content.decode()
    assert "data-hold" not in submitted and "check item" not in submitted.lower()
    assert "did not match" not in submitted, "the warning never comes with the check's own answer"
    work_html = client.get(f"/c/{campaign.slug}/annotate/item/").content.decode()
    work = held(user)
    assert work.purpose == Assignment.Purpose.WORK
    # The warning arrives with the next item shown; otherwise the two fragments are the same page.
    assert "did not match the expected answer" in work_html
    work_html = re.sub(r'<div class="flash error gate-warning" role="alert">[^<]*</div>\n', "", work_html)
    assert _blank(attention_html, attention) == _blank(work_html, work)
    again = client.get(f"/c/{campaign.slug}/annotate/").content.decode()
    assert "did not match" not in again, "a warning is shown once"


def test_the_paused_page(client):
    campaign = make_campaign(gold=2, gold_rate=1.0, attention_max_failures=1)
    user = UserFactory()
    client.force_login(user)
    client.get(f"/c/{campaign.slug}/annotate/")
    page_submit(client, held(user), right=False)
    page = client.get(f"/c/{campaign.slug}/annotate/").content.decode()
    assert 'data-reason="paused"' in page and "Your work here is paused" in page
    assert "can resume you" in page


def test_a_too_fast_submit_is_told_gently(client):
    campaign = make_campaign(gold=0, min_seconds=4)
    user = UserFactory()
    client.force_login(user)
    client.get(f"/c/{campaign.slug}/annotate/")
    body = page_submit(client, held(user), right=True, seconds=0.5).content.decode()
    assert "quicker than this campaign's 4 s per item" in body
    assert Annotation.objects.get(annotator=user).too_fast


def test_a_hostile_explanation_is_sanitised(client):
    campaign = make_campaign(gold=1, qualification_items=1)
    Item.objects.filter(gold_label__isnull=False).update(
        gold_explanation='<script>alert(1)</script><img src=x onerror="x()">'
    )
    user = UserFactory()
    client.force_login(user)
    client.get(f"/c/{campaign.slug}/annotate/")
    body = page_submit(client, held(user), right=True).content.decode()
    assert "<script" not in body and "<img" not in body and "&lt;script&gt;" in body


# --- flags from the annotate page and the API ----------------------------------------------------------


def test_flagging_the_item_on_screen(client):
    from annotate.models import ItemFlag

    campaign = make_campaign(gold=0)
    user = UserFactory()
    client.force_login(user)
    page = client.get(f"/c/{campaign.slug}/annotate/").content.decode()
    assert 'id="flag-dialog"' in page and "Flag this item <kbd>F</kbd>" in page
    assignment = held(user)
    url = f"/c/{campaign.slug}/annotate/{assignment.pk}/flag/"
    ok = client.post(url, {"kind": "both_bad", "comment": "Both miss the point."})
    assert ok.status_code == 200 and "flagged as “both are bad”" in ok.content.decode()
    client.post(url, {"kind": "both_bad", "comment": "Both miss the point."})
    flag = ItemFlag.objects.get()
    assert (flag.item_id, flag.annotator, flag.kind) == (assignment.item_id, user, "both_bad")
    bad = client.post(url, {"kind": "boring"})
    assert bad.status_code == 400 and "flag kind must be one of" in bad.content.decode()
    empty = client.post(url, {"kind": "comment", "comment": "  "})
    assert empty.status_code == 400 and "a comment flag needs its comment" in empty.content.decode()
    client.force_login(UserFactory())
    assert client.post(url, {"kind": "both_bad"}).status_code == 404
    assert ItemFlag.objects.count() == 1


def test_flagging_through_the_api(annotator, annotator_api):
    from annotate.models import ItemFlag

    campaign = make_campaign(gold=0)
    lease_id = annotator_api.post(f"/api/campaigns/{campaign.slug}/next/", {}, format="json").json()["assignment"][
        "assignment"
    ]
    created = annotator_api.post(
        f"/api/assignments/{lease_id}/flag/", {"kind": "needs_expert", "comment": "Law."}, format="json"
    )
    assert created.status_code == 201 and created.json()["kind"] == "needs_expert"
    assert ItemFlag.objects.get().comment == "Law."
    assert annotator_api.post(f"/api/assignments/{lease_id}/flag/", {"kind": "nope"}, format="json").status_code == 400
    missing = annotator_api.post(
        f"/api/assignments/{lease_id + 99}/flag/", {"kind": "comment", "comment": "x"}, format="json"
    )
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


# --- the API ---------------------------------------------------------------------------------------------


def test_the_api_carries_the_round_the_feedback_and_the_decision(annotator, annotator_api):
    campaign = make_campaign(qualification_items=2, qualification_threshold=1.0)
    body = annotator_api.post(f"/api/campaigns/{campaign.slug}/next/", {}, format="json").json()
    assert body["qualification"] == {"item": 1, "of": 2, "threshold": 1.0, "feedback": True}
    assert body["warning"] is None
    lease_id = body["assignment"]["assignment"]
    label = shown_answer(Assignment.objects.get(pk=lease_id), right=True)
    submitted = annotator_api.post(
        f"/api/assignments/{lease_id}/submit/", {"label": label, "active_seconds": 5}, format="json"
    )
    result = submitted.json()
    assert result["too_fast"] is False
    assert result["qualification"]["answered"] == 1 and result["qualification"]["decision"] is None
    assert result["qualification"]["feedback"]["correct"] is True
    assert result["qualification"]["feedback"]["checks"][0]["matched"] is True
    Campaign.objects.filter(pk=campaign.pk).update(qualification_feedback=False)
    body = annotator_api.post(f"/api/campaigns/{campaign.slug}/next/", {}, format="json").json()
    lease_id = body["assignment"]["assignment"]
    label = shown_answer(Assignment.objects.get(pk=lease_id), right=False)
    result = annotator_api.post(f"/api/assignments/{lease_id}/submit/", {"label": label}, format="json").json()
    assert "feedback" not in result["qualification"], "no gold answer when feedback is off"
    assert result["qualification"]["decision"] == "failed" and "1 of 2" in result["qualification"]["message"]
    refused = annotator_api.post(f"/api/campaigns/{campaign.slug}/next/", {}, format="json").json()
    assert refused["status"] == "not_qualified" and refused["assignment"] is None
    assert refused["message"].startswith("Thank you")


def test_the_api_shows_attention_checks_like_work_items_and_warns_later(annotator, annotator_api):
    campaign = make_campaign(gold=1, work=2, gold_rate=1.0, attention_max_failures=2)
    first = annotator_api.post(f"/api/campaigns/{campaign.slug}/next/", {}, format="json").json()
    attention = Assignment.objects.get(pk=first["assignment"]["assignment"])
    assert attention.purpose == Assignment.Purpose.ATTENTION
    label = shown_answer(attention, right=False)
    result = annotator_api.post(f"/api/assignments/{attention.pk}/submit/", {"label": label}, format="json").json()
    assert result["qualification"] is None and "gold" not in json_text(result)
    second = annotator_api.post(f"/api/campaigns/{campaign.slug}/next/", {}, format="json").json()
    assert Assignment.objects.get(pk=second["assignment"]["assignment"]).purpose == Assignment.Purpose.WORK
    assert set(first) == set(second) and set(first["assignment"]) == set(second["assignment"])
    assert first["qualification"] is None and second["qualification"] is None
    assert first["warning"] is None and "did not match" in second["warning"]


def json_text(body) -> str:
    import json

    return json.dumps(body)


def test_the_api_says_paused(annotator, annotator_api):
    campaign = make_campaign(gold=1, work=1)
    gate.standing_pause(campaign=campaign, annotator=annotator)
    body = annotator_api.post(f"/api/campaigns/{campaign.slug}/next/", {}, format="json").json()
    assert body["status"] == "paused" and body["message"] == gate.ADMIN_PAUSE_REASON


# --- many at once (PostgreSQL) ----------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sixteen_annotators_take_the_round_at_once_and_none_is_decided_early():
    """Everyone draws on the same gold items: a pick that finds them all locked by others in flight must wait,
    not end the round on fewer answers."""
    import threading
    import time

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("concurrency is measured on PostgreSQL (SQLite has one writer)")
    campaign = make_campaign(gold=4, work=20, qualification_items=4, qualification_threshold=1.0)
    users = UserFactory.create_batch(16)
    errors: list[str] = []
    start = threading.Barrier(len(users))

    def take_round(user):
        try:
            start.wait()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                result = next_assignment_for(annotator=user, campaign=campaign)
                if isinstance(result, NoWork):
                    if result.reason != "wait":
                        errors.append(f"{user.username}: {result}")
                        return
                    time.sleep(0.02)
                    continue
                if result.purpose != Assignment.Purpose.QUALIFICATION:
                    return
                answer(result, right=True)
            errors.append(f"{user.username}: never reached the queue ({result})")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(f"{user.username}: {exc!r}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=take_round, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    rows = AnnotatorStanding.objects.filter(campaign=campaign)
    assert sorted((r.qualification, r.qualification_answered) for r in rows) == [(Q.PASSED, 4)] * 16
