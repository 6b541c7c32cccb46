"""Which human labels count in statistics and exports: the one rule, and why each left-out label is left out.

A human label does not count when (reasons in this order; a label is counted under its first):

- `excluded_annotator`: an admin excluded its annotator in this campaign (`AnnotatorStanding.excluded`);
- `too_fast`: it was submitted faster than the campaign's minimum time per item (`Annotation.too_fast`);
- `qualification`: it answered the qualification round (training, by someone not yet admitted to the queue,
  perhaps refused), not the queue.

Labels on attention checks do count: they are gold items mixed into the queue, which annotators cannot tell
apart from the others, so those labels are given like any other — and they are what gold accuracy in the
statistics is measured on. Judges' labels are not affected (their own rules live with their statistics and
the `source` option of exports).
"""

from __future__ import annotations

from django.db.models import Case, CharField, Count, Q, QuerySet, Value, When

from annotate.models import Annotation, AnnotatorStanding, Assignment, Campaign

EXCLUDED_ANNOTATOR = "excluded_annotator"
TOO_FAST = "too_fast"
QUALIFICATION = "qualification"
REASONS = (EXCLUDED_ANNOTATOR, TOO_FAST, QUALIFICATION)


def excluded_annotator_ids(*, campaign: Campaign) -> set[int]:
    """The annotators whose labels an admin excluded from this campaign's statistics and exports."""
    return set(
        AnnotatorStanding.objects.filter(campaign=campaign, excluded=True).values_list("annotator_id", flat=True)
    )


def _conditions(campaign: Campaign) -> list[tuple[str, Q]]:
    # A subquery rather than a list of ids: one query, whatever the number of excluded annotators.
    excluded = AnnotatorStanding.objects.filter(campaign=campaign, excluded=True).values("annotator_id")
    return [
        (EXCLUDED_ANNOTATOR, Q(annotator_id__in=excluded)),
        (TOO_FAST, Q(too_fast=True)),
        (QUALIFICATION, Q(assignment__purpose=Assignment.Purpose.QUALIFICATION)),
    ]


def _not_counted(campaign: Campaign) -> Q:
    conditions = Q()
    for _, condition in _conditions(campaign):
        conditions |= condition
    return Q(source=Annotation.Source.HUMAN) & conditions


def countable_human_labels(queryset: QuerySet, *, campaign: Campaign) -> QuerySet:
    """The human labels of `queryset` (Annotations of `campaign`) that count."""
    return queryset.filter(source=Annotation.Source.HUMAN).exclude(_not_counted(campaign))


def countable_human_annotations(*, campaign: Campaign) -> QuerySet:
    """Every human label of the campaign that counts."""
    return countable_human_labels(Annotation.objects.filter(campaign=campaign), campaign=campaign)


def countable_labels(queryset: QuerySet, *, campaign: Campaign) -> QuerySet:
    """`queryset` without the human labels that do not count; judges' labels stay."""
    return queryset.exclude(_not_counted(campaign))


def uncounted_reason(*, campaign: Campaign) -> Case:
    """An expression for annotating Annotations: why the label does not count, "" when it counts (or is a
    judge's). For readers that must count what they leave out, such as the dataset card."""
    whens = [
        When(Q(source=Annotation.Source.HUMAN) & condition, then=Value(reason))
        for reason, condition in _conditions(campaign)
    ]
    return Case(*whens, default=Value(""), output_field=CharField())


def dropped_human_labels(*, campaign: Campaign) -> dict[str, int]:
    """How many of the campaign's human labels do not count, per reason (each label under its first reason)."""
    found = dict(
        Annotation.objects.filter(campaign=campaign, source=Annotation.Source.HUMAN)
        .annotate(reason=uncounted_reason(campaign=campaign))
        .exclude(reason="")
        .order_by()
        .values("reason")
        .annotate(n=Count("id"))
        .values_list("reason", "n")
    )
    return {reason: found.get(reason, 0) for reason in REASONS}
