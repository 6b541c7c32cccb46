"""Who may label now: the qualification phase, attention checks, too-fast submits, warnings and pauses.

An annotator's `AnnotatorStanding` in a campaign holds the counters. The assignment engine asks
`work_step` before each new lease (qualification item, real queue, or NoWork saying why not) and calls
`after_label` in the submit's transaction, so the counters move with the label that changes them.
Admins act on a standing with `standing_pause`, `standing_resume`, `standing_exclude` and
`standing_requalify`; the annotate page reads `qualification_result` after a submit and takes the
pending warning with `standing_warning_take`.

Attention checks are gold items mixed into the real queue at the campaign's `gold_rate`: nothing the
annotator receives tells them apart from work items, so a check's outcome reaches them only as a
warning shown with a later item, never as the gold answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from annotate import schema as label_schema
from annotate.models import Annotation, AnnotatorStanding, Assignment, Campaign, Item
from annotate.selectors import in_campaign_pool
from annotate.services.outcomes import NoWork
from annotate.services.stats import stats_request
from annotate.stats.gold import gold_match

Q = AnnotatorStanding.Qualification
NOTE_LENGTH = AnnotatorStanding._meta.get_field("note").max_length
ADMIN_PAUSE_REASON = "An admin of this campaign paused your work here. They can resume you; nothing else is needed."


_STANDING = AnnotatorStanding._meta.db_table


def _standing_row(*, annotator, campaign: Campaign) -> AnnotatorStanding | None:
    # Raw SQL: read before every lease, where compiling the ORM query (and the joins Meta.ordering's
    # foreign keys bring into .first()) cost more than the query (bench/annotate_flow.py).
    rows = AnnotatorStanding.objects.raw(
        f"SELECT * FROM {_STANDING} WHERE campaign_id = %s AND annotator_id = %s", [campaign.pk, annotator.pk]
    )
    return next(iter(rows), None)


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

    NoWork reasons: `paused` (attention checks failed, or an admin paused them), `not_qualified`, and
    `hold` when the check items already on their screen complete the qualification round (a page
    prefetching behind the last one must not take an item the decision may make unnecessary).
    """
    standing = _standing_row(annotator=annotator, campaign=campaign)
    if standing is not None and standing.paused_at is not None:
        return NoWork("paused", message=standing.pause_reason or ADMIN_PAUSE_REASON)
    if needs_qualification(standing, campaign):
        answered = _answered_in_round(standing, campaign)
        held = _held_qualification_leases(annotator=annotator, campaign=campaign, now=now)
        if answered and answered >= campaign.qualification_items and not held:
            # The round is already complete (an admin shortened it): decide on the answers given.
            with transaction.atomic():
                _decide(_locked_standing(annotator=annotator, campaign=campaign), campaign, final=True)
            return work_step(annotator=annotator, campaign=campaign, now=now)
        if answered + held >= campaign.qualification_items:
            return NoWork(
                "hold",
                message="Finish the check item on your screen first: it completes the qualification round.",
            )
        return Assignment.Purpose.QUALIFICATION
    if standing is not None and standing.qualification == Q.FAILED and campaign.qualification_items:
        return NoWork("not_qualified", message=_failed_message(standing, campaign))
    return Assignment.Purpose.WORK


def _answered_in_round(standing: AnnotatorStanding | None, campaign: Campaign) -> int:
    """Check items answered in the current round: none yet when a new one is due (new guidelines)."""
    if standing is None or standing.qualification != Q.IN_PROGRESS:
        return 0
    return standing.qualification_answered


def _held_qualification_leases(*, annotator, campaign: Campaign, now: datetime) -> int:
    return Assignment.objects.filter(
        campaign=campaign,
        annotator=annotator,
        state=Assignment.State.LEASED,
        purpose=Assignment.Purpose.QUALIFICATION,
        expires_at__gt=now,
    ).count()


def _round_size(campaign: Campaign) -> int:
    """Check items a round is scored on: the campaign's number, or all its gold items when it has fewer."""
    gold = Item.objects.filter(campaign=campaign, gold_label__isnull=False).count()
    return min(campaign.qualification_items, gold)


def _scored_out_of(standing: AnnotatorStanding, campaign: Campaign) -> int:
    """The share's denominator: a round ended early (check items skipped or let expire) still counts the
    ones not answered as not matched, so choosing which checks to answer does not help."""
    return max(standing.qualification_answered, _round_size(campaign))


def _failed_message(standing: AnnotatorStanding, campaign: Campaign) -> str:
    out_of = _scored_out_of(standing, campaign)
    unanswered = out_of - standing.qualification_answered
    return (
        f"Thank you for taking the qualification round. You matched {standing.qualification_correct} of "
        f"{out_of} check items{f' ({unanswered} skipped or not answered in time)' if unanswered else ''}, "
        "and this campaign asks for "
        f"{campaign.qualification_threshold:.0%}, so its real queue stays closed to you for now. "
        "The campaign's admins can see your result and may let you try again."
    )


def _passed_message(standing: AnnotatorStanding) -> str:
    return (
        f"You passed the qualification round: {standing.qualification_correct} of {standing.qualification_answered} "
        "check items matched. Welcome to the real queue."
    )


def no_qualification_item(*, annotator, campaign: Campaign, now: datetime) -> NoWork | None:
    """The qualification phase found no gold item left for this annotator: decide on what they answered.

    With answers in this round, the round ends early and is decided on them; a pass returns None (the real
    queue is open: the assignment engine, which called here, asks once more for a work item), a fail says
    so. With none, the annotator waits and the admins see the round in progress in the annotator table.
    """
    if unseen_gold_items(campaign=campaign, annotator=annotator):
        # The lease found every check item held by other annotators' requests in flight (BUSY), not
        # none left: deciding now would end the round early.
        return NoWork("wait", retry_after=1, message="Others are taking check items right now; trying again.")
    with transaction.atomic():
        standing = _locked_standing(annotator=annotator, campaign=campaign)
        decided = standing.qualification_answered > 0 and _decide(standing, campaign, final=True)
        if not decided:
            standing.save()  # the round shows as in progress, with no check item to give
    if decided and standing.qualification == Q.PASSED:
        return None
    if decided:
        return NoWork("not_qualified", message=_failed_message(standing, campaign))
    return NoWork(
        "wait",
        retry_after=60,
        message="This campaign's qualification round has no check items ready for you yet; its admins can see "
        "that you are waiting. Try again later.",
    )


def _locked_standing(*, annotator, campaign: Campaign) -> AnnotatorStanding:
    """The standing row, locked for this transaction (created if new), with a due round started."""
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
    if standing.qualification != Q.IN_PROGRESS or not standing.qualification_answered:
        return False
    if standing.qualification_answered < campaign.qualification_items and not final:
        return False
    share = standing.qualification_correct / _scored_out_of(standing, campaign)
    standing.qualification = Q.PASSED if share >= campaign.qualification_threshold else Q.FAILED
    standing.qualification_version = campaign.guidelines_version
    standing.save()
    return True


def after_label(*, annotation: Annotation, assignment: Assignment, campaign: Campaign, now: datetime) -> None:
    """In the submit's transaction: score a gold label, count a too-fast one, warn or pause.

    A qualification item answered after its round was decided (a lease taken before the decision) is
    scored but moves no counter: it neither changes the decision nor counts as an attention check.
    """
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
        if assignment.purpose == Assignment.Purpose.QUALIFICATION:
            if standing.qualification == Q.IN_PROGRESS:
                standing.qualification_answered += 1
                standing.qualification_correct += int(bool(correct))
                if _decide(standing, campaign):
                    return
        elif correct is not None:
            standing.attention_checks += 1
            if correct is False:
                standing.attention_failures += 1
                _warn_or_pause(standing, campaign, now)
    standing.save()


def rescore_gold_label(*, annotation: Annotation, campaign: Campaign, now: datetime) -> None:
    """In an edit's transaction: an attention check's label changed, so score it again and move the failure
    count with it (a fix to a right answer takes a failure back; a pause stays until an admin resumes).
    Nothing in the answer differs from a work item's edit."""
    gold_label = Item.objects.filter(pk=annotation.item_id).values_list("gold_label", flat=True).first()
    correct = gold_match(label=annotation.label, gold=gold_label, schema=campaign.label_schema, kind=campaign.kind)
    before = annotation.gold_correct
    if correct == before:
        return
    annotation.gold_correct = correct
    annotation.save(update_fields=["gold_correct"])
    standing = _locked_standing(annotator=annotation.annotator, campaign=campaign)
    if before is None:
        standing.attention_checks += 1
    if correct is False:
        standing.attention_failures += 1
        _warn_or_pause(standing, campaign, now)
    elif before is False and standing.attention_failures:
        standing.attention_failures -= 1
    standing.save()


def _warn_or_pause(standing: AnnotatorStanding, campaign: Campaign, now: datetime) -> None:
    limit = campaign.attention_max_failures
    if limit is not None and standing.attention_failures >= limit and standing.paused_at is None:
        standing.paused_at = now
        standing.pause_reason = (
            f"Your work here is paused: {standing.attention_failures} of your answers on check items did not match "
            "the expected answer. The campaign's admins can see this and can resume you."
        )
        standing.warning = ""
        return
    standing.warned_at = now
    standing.warning = (
        "One of your recent answers was on a check item and did not match the expected answer. Please read the "
        "guidelines again and take your time."
    )


# --- what the annotator is told -----------------------------------------------------------------


def standing_warning_take(*, annotator, campaign: Campaign) -> str:
    """The warning not yet shown to the annotator, cleared as it is read ("" when none)."""
    with connection.cursor() as cursor:  # the common case, no warning: one cheap read on every lease
        cursor.execute(
            f"SELECT 1 FROM {_STANDING} WHERE campaign_id = %s AND annotator_id = %s AND warning <> ''",
            [campaign.pk, annotator.pk],
        )
        if cursor.fetchone() is None:
            return ""
    with transaction.atomic():
        standing = (
            AnnotatorStanding.objects.select_for_update()
            .filter(campaign=campaign, annotator=annotator)
            .exclude(warning="")
            .first()
        )
        if standing is None:
            return ""
        warning, standing.warning = standing.warning, ""
        standing.save(update_fields=["warning", "updated_at"])
    return warning


@dataclass(frozen=True)
class QualificationStep:
    """Where a qualification lease stands in its round: check item `item` of `of`."""

    item: int
    of: int
    threshold: float
    feedback: bool


def qualification_step(*, assignment: Assignment) -> QualificationStep | None:
    """For a qualification lease, which check item of the round it is; None for any other lease."""
    if assignment.purpose != Assignment.Purpose.QUALIFICATION:
        return None
    campaign = assignment.campaign
    standing = _standing_row(annotator=assignment.annotator, campaign=campaign)
    done = _answered_in_round(standing, campaign) if needs_qualification(standing, campaign) else 0
    return QualificationStep(
        item=min(done + 1, campaign.qualification_items),
        of=campaign.qualification_items,
        threshold=campaign.qualification_threshold,
        feedback=campaign.qualification_feedback,
    )


@dataclass(frozen=True)
class AnswerCheck:
    """One row of the training feedback: the expected answer next to the annotator's, in display terms."""

    title: str
    expected: str
    given: str
    matched: bool


@dataclass(frozen=True)
class QualificationResult:
    """What the annotator learns after answering a qualification item.

    `decision` is `passed` or `failed` once the round is decided (with `message`), else None. `correct`,
    `checks` and `explanation` are the training feedback: filled only when the campaign enables it.
    """

    answered: int
    of: int
    decision: str | None
    message: str
    feedback: bool
    correct: bool | None = None
    checks: list[AnswerCheck] = field(default_factory=list)
    explanation: str = ""
    swapped: bool = False  # shown with B on the left: an explanation's "A" is on the right


def qualification_result(*, annotation: Annotation) -> QualificationResult | None:
    """After a submit: the round's progress and, if the campaign shows it, the right answer; None unless the
    label answered a qualification item (attention checks and work items get nothing, alike)."""
    assignment = annotation.assignment
    if assignment is None or assignment.purpose != Assignment.Purpose.QUALIFICATION:
        return None
    campaign = annotation.campaign
    standing = _standing_row(annotator=annotation.annotator, campaign=campaign)
    if standing is None:
        return None
    decision = None
    message = ""
    if standing.qualification == Q.PASSED:
        decision, message = "passed", _passed_message(standing)
    elif standing.qualification == Q.FAILED:
        decision, message = "failed", _failed_message(standing, campaign)
    result = QualificationResult(
        answered=standing.qualification_answered,
        of=campaign.qualification_items,
        decision=decision,
        message=message,
        feedback=campaign.qualification_feedback,
    )
    if not campaign.qualification_feedback:
        return result
    item = Item.objects.only("gold_label", "gold_explanation").get(pk=annotation.item_id)
    return replace(
        result,
        correct=annotation.gold_correct,
        checks=_answer_checks(annotation=annotation, gold=item.gold_label or {}, campaign=campaign),
        explanation=item.gold_explanation,
        swapped=bool(annotation.position_swapped),
    )


def _answer_checks(*, annotation: Annotation, gold: dict, campaign: Campaign) -> list[AnswerCheck]:
    """The gold label's keys, expected and given, as the annotator saw the item (left = A)."""
    schema, kind = campaign.label_schema, campaign.kind
    orient = {"schema": schema, "kind": kind, "position_swapped": annotation.position_swapped}
    shown_gold = label_schema.label_orient(label=gold, **orient)
    shown_given = label_schema.label_orient(label=annotation.label, **orient)
    keys = {key.name: key for key in label_schema.label_keys(schema, kind)}
    scales = {aspect["name"]: aspect["scale"] for aspect in (schema.get("pairwise") or {}).get("aspects", [])}
    checks = []
    for name in keys:
        if name not in shown_gold:
            continue
        wanted, given = shown_gold[name], shown_given.get(name)
        title = name.replace("_", " ").capitalize()
        if keys[name].pairwise:
            # Pairwise gold matches on the side favoured (gold_match): say the side, not the strength.
            expected = _side(wanted)
            given_words = label_schema.pairwise_words(scales[name]).get(given, "–") if given is not None else "–"
        else:
            expected, given_words = str(wanted), "–" if given is None else str(given)
        matched = gold_match(label={name: given} if given is not None else {}, gold={name: wanted}, schema=schema,
                             kind=kind)  # fmt: skip
        checks.append(AnswerCheck(title=title, expected=expected, given=given_words, matched=bool(matched)))
    return checks


def _side(value: int) -> str:
    if value < 0:
        return "A (left) is better"
    if value > 0:
        return "B (right) is better"
    return "Tie"


# --- admins' actions ----------------------------------------------------------------------------


def _admin_standing(*, campaign: Campaign, annotator) -> AnnotatorStanding:
    standing, _ = AnnotatorStanding.objects.select_for_update().get_or_create(campaign=campaign, annotator=annotator)
    return standing


def _noted(standing: AnnotatorStanding, text: str, note: str) -> None:
    note = (note or "").strip()
    standing.note = (f"{text} {note}" if note else text)[:NOTE_LENGTH]


def _when(now: datetime | None) -> tuple[datetime, str]:
    now = now or timezone.now()
    return now, now.strftime("%Y-%m-%d %H:%M UTC")


def standing_pause(*, campaign: Campaign, annotator, note: str = "", now: datetime | None = None) -> AnnotatorStanding:
    """Stop the annotator from taking new items here until resumed (leases they hold can still be sent)."""
    now, stamp = _when(now)
    with transaction.atomic():
        standing = _admin_standing(campaign=campaign, annotator=annotator)
        if standing.paused_at is None:
            standing.paused_at, standing.pause_reason = now, ADMIN_PAUSE_REASON
        _noted(standing, f"Paused by an admin {stamp}.", note)
        standing.save()
    return standing


def standing_resume(*, campaign: Campaign, annotator, note: str = "", now: datetime | None = None) -> AnnotatorStanding:
    """Let a paused annotator work again: the failed-check counter restarts, the checks taken stay counted."""
    _, stamp = _when(now)
    with transaction.atomic():
        standing = _admin_standing(campaign=campaign, annotator=annotator)
        failures = standing.attention_failures
        standing.paused_at, standing.pause_reason, standing.warning = None, "", ""
        standing.attention_failures = 0
        _noted(standing, f"Resumed by an admin {stamp} after {failures} failed check{'s' * (failures != 1)}.", note)
        standing.save()
    return standing


def standing_exclude(
    *, campaign: Campaign, annotator, excluded: bool, note: str = "", now: datetime | None = None
) -> AnnotatorStanding:
    """Exclude the annotator's labels from statistics and exports (or include them again)."""
    _, stamp = _when(now)
    with transaction.atomic():
        standing = _admin_standing(campaign=campaign, annotator=annotator)
        standing.excluded = excluded
        _noted(standing, f"Labels {'excluded' if excluded else 'included again'} by an admin {stamp}.", note)
        standing.save()
        # The statistics count only the labels that count: compute them again.
        transaction.on_commit(lambda: stats_request(campaign_id=campaign.pk))
    return standing


def standing_requalify(
    *, campaign: Campaign, annotator, note: str = "", now: datetime | None = None
) -> AnnotatorStanding:
    """Let the annotator take the qualification round again, on check items they have not seen yet.

    Raises ValueError when the campaign has no qualification round.
    """
    if not campaign.qualification_items:
        raise ValueError(f"campaign {campaign.slug!r} has no qualification round (qualification_items is 0)")
    _, stamp = _when(now)
    with transaction.atomic():
        standing = _admin_standing(campaign=campaign, annotator=annotator)
        standing.qualification = Q.IN_PROGRESS
        standing.qualification_version = campaign.guidelines_version
        standing.qualification_answered = standing.qualification_correct = 0
        _noted(standing, f"Qualification round reopened by an admin {stamp}.", note)
        standing.save()
    return standing


def unseen_gold_items(*, campaign: Campaign, annotator) -> int:
    """Gold items this annotator was never given: what a new qualification round can draw on."""
    given = Assignment.objects.filter(item=OuterRef("pk"), annotator=annotator, returned_at__isnull=True)
    labelled = Annotation.objects.filter(item=OuterRef("pk"), annotator=annotator, source=Annotation.Source.HUMAN)
    return (
        Item.objects.filter(campaign=campaign, gold_label__isnull=False)
        .filter(~Exists(given), ~Exists(labelled))
        .count()
    )


STANDING_ACTIONS = ("pause", "resume", "exclude", "include", "requalify")


def campaign_annotator(*, campaign: Campaign, annotator_id: int):
    """The account an admin acts on: one that may label, labels or labelled this campaign; else None."""
    user = get_user_model().objects.filter(pk=annotator_id).first()
    if user is None:
        return None
    if (
        in_campaign_pool(user=user, campaign=campaign)
        or AnnotatorStanding.objects.filter(campaign=campaign, annotator=user).exists()
        or Assignment.objects.filter(campaign=campaign, annotator=user).exists()
    ):
        return user
    return None


def standing_apply(*, campaign: Campaign, annotator, action: str, note: str = "") -> tuple[AnnotatorStanding, str]:
    """One admin action by name (the page's buttons and the API), with what it did in words for the admin.

    Raises ValueError on an unknown action, or `requalify` on a campaign without a qualification round.
    """
    name = annotator.get_username()
    if action == "pause":
        return standing_pause(campaign=campaign, annotator=annotator, note=note), (
            f"{name} is paused: they take no new items here until you resume them."
        )
    if action == "resume":
        return standing_resume(campaign=campaign, annotator=annotator, note=note), (
            f"{name} may work again; their failed-check count starts over (the checks taken stay counted)."
        )
    if action in ("exclude", "include"):
        standing = standing_exclude(campaign=campaign, annotator=annotator, excluded=action == "exclude", note=note)
        if action == "exclude":
            return standing, f"{name}'s labels are excluded from statistics and exports."
        return standing, f"{name}'s labels count in statistics and exports again."
    if action == "requalify":
        standing = standing_requalify(campaign=campaign, annotator=annotator, note=note)
        left = unseen_gold_items(campaign=campaign, annotator=annotator)
        message = (
            f"{name} takes the qualification round again: {left} check item{'s' * (left != 1)} they have not "
            f"seen {'is' if left == 1 else 'are'} left for a round of {campaign.qualification_items}."
        )
        if left == 0:
            message += " Import more gold items, or they wait for them."
        return standing, message
    raise ValueError(f"action must be one of {', '.join(STANDING_ACTIONS)}, not {action!r}")
