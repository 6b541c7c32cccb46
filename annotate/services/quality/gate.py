"""Who may label now: the qualification phase, attention checks, too-fast submits, warnings and pauses.

An annotator's `AnnotatorStanding` in a campaign holds the counters. The assignment engine asks
`work_step` before each new lease (qualification item, real queue, or NoWork saying why not) and calls
`after_label` in the submit's transaction, so the counters move with the label that changes them.
"""

from __future__ import annotations

from datetime import datetime

from annotate.models import Annotation, AnnotatorStanding, Assignment, Campaign, Item
from annotate.services.outcomes import NoWork
from annotate.stats.gold import gold_match

Q = AnnotatorStanding.Qualification


def _standing_row(*, annotator, campaign: Campaign) -> AnnotatorStanding | None:
    return AnnotatorStanding.objects.filter(campaign=campaign, annotator=annotator).first()


def needs_qualification(standing: AnnotatorStanding | None, campaign: Campaign) -> bool:
    """Whether the annotator must (still or again) take the qualification phase."""
    if not campaign.qualification_items:
        return False
    if standing is None or standing.qualification in (Q.NOT_REQUIRED, Q.IN_PROGRESS):
        return True
    if campaign.requalify_on_guidelines and standing.qualification_version != campaign.guidelines_version:
        return True
    return False


def work_step(*, annotator, campaign: Campaign, now: datetime) -> str | NoWork:
    """What the annotator's next new lease is: `Assignment.Purpose.QUALIFICATION`, `...WORK`, or NoWork.

    NoWork reasons: `paused` (attention checks failed, or an admin paused them) and `not_qualified`.
    """
    standing = _standing_row(annotator=annotator, campaign=campaign)
    if standing is not None and standing.paused_at is not None:
        return NoWork(
            "paused",
            message=standing.pause_reason or "An admin of this campaign paused your work here; they have been told.",
        )
    if needs_qualification(standing, campaign):
        return Assignment.Purpose.QUALIFICATION
    if standing is not None and standing.qualification == Q.FAILED and campaign.qualification_items:
        return NoWork("not_qualified", message=_failed_message(standing, campaign))
    return Assignment.Purpose.WORK


def _failed_message(standing: AnnotatorStanding, campaign: Campaign) -> str:
    return (
        f"Thank you for taking the qualification round. You matched {standing.qualification_correct} of "
        f"{standing.qualification_answered} check items, and this campaign asks for "
        f"{campaign.qualification_threshold:.0%}, so its real queue stays closed to you for now. "
        "The campaign's admins can see your result and may let you try again."
    )


def no_qualification_item(*, annotator, campaign: Campaign, now: datetime) -> NoWork | Assignment:
    """The qualification phase found no gold item left for this annotator: decide on what they answered."""
    from annotate.services.assignments import next_assignment_for

    standing = _locked_standing(annotator=annotator, campaign=campaign)
    if standing.qualification_answered and _decide(standing, campaign, final=True):
        return next_assignment_for(annotator=annotator, campaign=campaign, now=now)
    return NoWork(
        "wait",
        retry_after=60,
        message="This campaign's qualification round has no check items ready for you yet; its admins have been "
        "told. Try again later.",
    )


def _locked_standing(*, annotator, campaign: Campaign) -> AnnotatorStanding:
    standing, _ = AnnotatorStanding.objects.select_for_update().get_or_create(campaign=campaign, annotator=annotator)
    if campaign.qualification_items and standing.qualification == Q.NOT_REQUIRED:
        standing.qualification = Q.IN_PROGRESS
        standing.qualification_version = campaign.guidelines_version
    elif needs_qualification(standing, campaign) and standing.qualification in (Q.PASSED, Q.FAILED):
        # New guidelines: a fresh round.
        standing.qualification = Q.IN_PROGRESS
        standing.qualification_version = campaign.guidelines_version
        standing.qualification_answered = standing.qualification_correct = 0
    return standing


def _decide(standing: AnnotatorStanding, campaign: Campaign, *, final: bool = False) -> bool:
    """Pass or fail once the round is complete (or `final`: no item left); True when decided now."""
    if standing.qualification != Q.IN_PROGRESS:
        return False
    if standing.qualification_answered < campaign.qualification_items and not final:
        return False
    share = standing.qualification_correct / standing.qualification_answered
    standing.qualification = Q.PASSED if share >= campaign.qualification_threshold else Q.FAILED
    standing.qualification_version = campaign.guidelines_version
    standing.save()
    return True


def after_label(*, annotation: Annotation, assignment: Assignment, campaign: Campaign, now: datetime) -> None:
    """In the submit's transaction: score a gold label, count a too-fast one, warn or pause."""
    gold = assignment.purpose != Assignment.Purpose.WORK
    if not gold and not annotation.too_fast:
        return
    standing = _locked_standing(annotator=annotation.annotator, campaign=campaign)
    if annotation.too_fast:
        standing.too_fast += 1
    if gold:
        gold_label = Item.objects.filter(pk=annotation.item_id).values_list("gold_label", flat=True).first()
        correct = gold_match(label=annotation.label, gold=gold_label, schema=campaign.label_schema, kind=campaign.kind)
        annotation.gold_correct = correct
        annotation.save(update_fields=["gold_correct"])
        if assignment.purpose == Assignment.Purpose.QUALIFICATION and standing.qualification == Q.IN_PROGRESS:
            standing.qualification_answered += 1
            standing.qualification_correct += int(bool(correct))
            if _decide(standing, campaign):
                return
        else:
            standing.attention_checks += 1
            if correct is False:
                standing.attention_failures += 1
                _warn_or_pause(standing, campaign, now)
    standing.save()


def _warn_or_pause(standing: AnnotatorStanding, campaign: Campaign, now: datetime) -> None:
    limit = campaign.attention_max_failures
    if limit is not None and standing.attention_failures >= limit and standing.paused_at is None:
        standing.paused_at = now
        standing.pause_reason = (
            f"Your work here is paused: {standing.attention_failures} of your answers on check items did not match "
            "the expected answer. The campaign's admins have been told and can resume you."
        )
        return
    standing.warned_at = now
    standing.warning = (
        "One of your recent answers was on a check item and did not match the expected answer. Please read the "
        "guidelines again and take your time."
    )
