"""Dynamic overlap: the engine's target rule, another label on a disputed item up to `overlap_max`, then
contested; judge disagreement; and the engine's guarantees under 32 concurrent annotators (PostgreSQL)."""

import random
import threading
import time

import pytest
from django.db import connection, connections

from annotate.models import Annotation, Assignment, Item, JudgeVerdict
from annotate.services.assignments import (
    NoWork,
    annotation_submit,
    items_left_for,
    next_assignment_for,
)
from annotate.services.progress import campaign_totals
from annotate.services.quality.overlap import item_disputed, items_recheck
from annotate.services.queue import stranded_count, stranded_lower_target
from annotate.services.targets import item_target, target_sql
from routing.judges.runs import judge_verdicts_update
from tests.factories import CampaignFactory, ItemFactory, JudgeFactory, UserFactory

pytestmark = pytest.mark.django_db


def make_campaign(n=1, overlap=3, overlap_max=5, **kw):
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=overlap, overlap_max=overlap_max, **kw)
    ItemFactory.create_batch(n, campaign=campaign, route=Item.Route.HUMAN)
    return campaign


def label_once(campaign, user, side: int):
    """Lease the next item for `user` and submit `side` (in the item's own order); returns the item id."""
    lease = next_assignment_for(annotator=user, campaign=campaign)
    assert isinstance(lease, Assignment), lease
    shown = -side if lease.position_swapped else side
    annotation_submit(assignment_id=lease.pk, annotator=user, label={"overall": shown})
    return lease.item_id


def item(campaign) -> Item:
    return Item.objects.get(campaign=campaign)


# --- the target rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overlap", "overlap_max", "label_target", "extra", "want"),
    [
        (3, None, None, 0, 3),
        (3, None, 2, 0, 2),
        (3, None, 5, 0, 3),  # never above the overlap
        (3, None, None, 2, 3),  # dynamic overlap off: extras do not count
        (3, 5, None, 0, 3),
        (3, 5, None, 1, 4),
        (3, 5, None, 4, 5),  # never above overlap_max
        (3, 5, 1, 1, 2),  # a lowered target plus an extra label
        (3, 5, 4, 1, 4),
    ],
)
def test_the_target_rule_in_python_and_in_sql_agree(overlap, overlap_max, label_target, extra, want):
    campaign = make_campaign(overlap=overlap, overlap_max=overlap_max)
    Item.objects.filter(campaign=campaign).update(label_target=label_target, extra_labels=extra)
    row = item(campaign)
    assert item_target(row, campaign) == want
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {target_sql(campaign)} FROM {Item._meta.db_table} i WHERE i.id = %s", [row.pk])
        assert cursor.fetchone()[0] == want


# --- serial behaviour --------------------------------------------------------------------------


def test_agreeing_labels_stop_at_the_overlap():
    campaign = make_campaign()
    users = UserFactory.create_batch(4)
    for user in users[:3]:
        label_once(campaign, user, 1)
    row = item(campaign)
    assert (row.human_label_count, row.extra_labels, row.review_state) == (3, 0, "")
    assert isinstance(next_assignment_for(annotator=users[3], campaign=campaign), NoWork)


def test_a_majority_below_the_agreement_threshold_asks_for_another_label():
    campaign = make_campaign(agreement_threshold=0.7)
    users = UserFactory.create_batch(4)
    for user, side in zip(users[:3], (1, -1, 1), strict=True):  # 2 of 3 for B: below 0.7
        label_once(campaign, user, side)
    row = item(campaign)
    assert (row.human_label_count, row.extra_labels, item_target(row, campaign)) == (3, 1, 4)
    assert label_once(campaign, users[3], 1) == row.pk  # 3 of 4 for B: 0.75, settled
    row = item(campaign)
    assert (row.human_label_count, row.extra_labels, row.review_state) == (4, 1, "")


def test_split_labels_ask_for_more_until_overlap_max_and_then_contest():
    campaign = make_campaign(overlap=2, overlap_max=4)
    users = UserFactory.create_batch(5)
    label_once(campaign, users[0], 1)
    assert item(campaign).extra_labels == 0  # still short of the target: nothing decided
    label_once(campaign, users[1], -1)  # split at the target
    row = item(campaign)
    assert (row.extra_labels, item_target(row, campaign), row.review_state) == (1, 3, "")
    label_once(campaign, users[2], 0)  # 1, -1, 0: still split
    row = item(campaign)
    assert (row.extra_labels, item_target(row, campaign)) == (2, 4)
    label_once(campaign, users[3], 0)  # 1, -1, 0, 0: no strict majority at the maximum
    row = item(campaign)
    assert (row.human_label_count, row.extra_labels, row.review_state) == (4, 2, Item.ReviewState.CONTESTED)
    assert isinstance(next_assignment_for(annotator=users[4], campaign=campaign), NoWork)
    assert row.assigned_count == 4


def test_a_dispute_settled_by_the_extra_label_stops_there():
    campaign = make_campaign(overlap=2, overlap_max=5)
    users = UserFactory.create_batch(4)
    for user, side in zip(users[:3], (1, -1, 1), strict=True):
        label_once(campaign, user, side)
    row = item(campaign)
    assert (row.human_label_count, row.extra_labels, row.review_state) == (3, 1, "")
    assert isinstance(next_assignment_for(annotator=users[3], campaign=campaign), NoWork)


def test_a_label_that_does_not_count_does_not_dispute_an_item():
    from annotate.models import AnnotatorStanding

    campaign = make_campaign(overlap=2, overlap_max=3)
    users = UserFactory.create_batch(2)
    AnnotatorStanding.objects.create(campaign=campaign, annotator=users[0], excluded=True)
    label_once(campaign, users[0], -1)  # excluded: statistics and exports never see it
    label_once(campaign, users[1], 1)
    assert item(campaign).extra_labels == 0


def test_an_edited_label_is_judged_like_a_new_one_and_reviewed_items_are_frozen():
    from annotate.services.assignments import AssignmentError, annotation_update

    campaign = make_campaign(overlap=2, overlap_max=3)
    users = UserFactory.create_batch(3)
    label_once(campaign, users[0], 1)
    label_once(campaign, users[1], 1)
    assert item(campaign).extra_labels == 0
    mine = Annotation.objects.get(annotator=users[1])
    shown = -1 if mine.position_swapped else 1
    annotation_update(annotation_id=mine.pk, annotator=users[1], label={"overall": -shown})  # now a split
    assert item(campaign).extra_labels == 1
    label_once(campaign, users[2], 0)  # A, B and a tie: no majority at the maximum
    assert item(campaign).review_state == Item.ReviewState.CONTESTED
    with pytest.raises(AssignmentError, match="went to the campaign's reviewers"):
        annotation_update(annotation_id=mine.pk, annotator=users[1], label={"overall": shown})


def test_dynamic_overlap_off_changes_nothing():
    campaign = make_campaign(overlap=2, overlap_max=None)
    users = UserFactory.create_batch(3)
    label_once(campaign, users[0], 1)
    label_once(campaign, users[1], -1)
    row = item(campaign)
    assert (row.extra_labels, row.review_state) == (0, "")
    assert isinstance(next_assignment_for(annotator=users[2], campaign=campaign), NoWork)


def test_progress_and_left_counts_follow_the_grown_target():
    campaign = make_campaign(n=2, overlap=2, overlap_max=3)
    users = UserFactory.create_batch(3)
    first = label_once(campaign, users[0], 1)
    label_once(campaign, users[0], 1)
    assert campaign_totals(campaign=campaign)["campaign_wanted"] == 4
    # The second person disagrees on the first item only.
    lease = next_assignment_for(annotator=users[1], campaign=campaign)
    other = next_assignment_for(annotator=users[1], campaign=campaign, exclude={lease.pk})
    for a in (lease, other):
        side = -1 if a.item_id == first else 1
        annotation_submit(
            assignment_id=a.pk, annotator=users[1], label={"overall": -side if a.position_swapped else side}
        )
    totals = campaign_totals(campaign=campaign)
    assert (totals["campaign_labels"], totals["campaign_wanted"]) == (4, 5)
    assert items_left_for(annotator=users[2], campaign=campaign) == (1, False)  # the reopened item only
    assert items_left_for(annotator=users[0], campaign=campaign) == (0, False)


def test_a_reopened_item_held_by_someone_else_means_wait_not_done():
    campaign = make_campaign(overlap=1, overlap_max=2)
    Item.objects.filter(campaign=campaign).update(extra_labels=1)  # as if disputed
    users = UserFactory.create_batch(3)
    label_once(campaign, users[0], 1)
    held = next_assignment_for(annotator=users[1], campaign=campaign)
    assert isinstance(held, Assignment)
    answer = next_assignment_for(annotator=users[2], campaign=campaign)
    assert isinstance(answer, NoWork) and answer.reason == "wait"


# --- the judges' verdict -----------------------------------------------------------------------


def _verdict(campaign, side):
    JudgeVerdict.objects.update_or_create(
        item=item(campaign), defaults={"campaign": campaign, "label": {"overall": side}, "confidence": 0.9}
    )


def test_humans_against_the_judges_verdict_is_a_dispute():
    campaign = make_campaign(overlap=2, overlap_max=3)
    _verdict(campaign, -1)
    users = UserFactory.create_batch(3)
    label_once(campaign, users[0], 1)
    label_once(campaign, users[1], 1)
    assert item(campaign).extra_labels == 1
    label_once(campaign, users[2], 1)  # unanimous humans, still against the judges, at the maximum
    assert item(campaign).review_state == Item.ReviewState.CONTESTED


def test_judge_disagreement_can_be_switched_off():
    campaign = make_campaign(overlap=2, overlap_max=3, overlap_on_judge_disagreement=False)
    _verdict(campaign, -1)
    users = UserFactory.create_batch(2)
    label_once(campaign, users[0], 1)
    label_once(campaign, users[1], 1)
    assert item(campaign).extra_labels == 0


def test_a_verdict_after_the_humans_reopens_the_item():
    campaign = make_campaign(n=3, overlap=2, overlap_max=3)
    users = UserFactory.create_batch(3)
    for user in users[:2]:
        for _ in range(3):
            label_once(campaign, user, 1)
    ids = list(Item.objects.filter(campaign=campaign).order_by("id").values_list("id", flat=True))
    JudgeVerdict.objects.create(campaign=campaign, item_id=ids[0], label={"overall": -1})
    JudgeVerdict.objects.create(campaign=campaign, item_id=ids[1], label={"overall": 1})
    assert items_recheck(campaign=campaign, item_ids=ids) == {"more": 1, "contested": 0}
    assert list(Item.objects.order_by("id").values_list("extra_labels", flat=True)) == [1, 0, 0]
    assert label_once(campaign, users[2], 1) == ids[0]
    assert items_recheck(campaign=campaign, item_ids=ids) == {"more": 0, "contested": 0}  # decided at that label
    assert Item.objects.get(pk=ids[0]).review_state == Item.ReviewState.CONTESTED


def test_a_judge_run_storing_a_late_verdict_reopens_the_item():
    """The path production takes: a run's judgments become a verdict in judge_verdicts_update, which re-checks."""
    campaign = make_campaign(overlap=2, overlap_max=3)
    users = UserFactory.create_batch(2)
    label_once(campaign, users[0], 1)
    label_once(campaign, users[1], 1)
    assert item(campaign).extra_labels == 0
    judge = JudgeFactory()
    for swapped in (False, True):
        Annotation.objects.create(
            item=item(campaign), campaign=campaign, source=Annotation.Source.JUDGE, judge=judge,
            label={"overall": -1}, position_swapped=swapped, prompt_version="v1",
        )  # fmt: skip
    assert judge_verdicts_update(campaign=campaign, item_ids=[item(campaign).pk]) == 1
    assert item(campaign).extra_labels == 1


def test_recheck_does_nothing_with_dynamic_overlap_off():
    campaign = make_campaign(overlap=1, overlap_max=None)
    label_once(campaign, UserFactory(), 1)
    _verdict(campaign, -1)
    assert items_recheck(campaign=campaign, item_ids=[item(campaign).pk]) == {"more": 0, "contested": 0}


# --- stranded disputed items ---------------------------------------------------------------------


def test_lowering_a_stranded_disputed_item_sends_it_to_review():
    campaign = make_campaign(overlap=2, overlap_max=4)
    users = UserFactory.create_batch(2)
    campaign.annotators.add(*users)  # nobody else may label it: the extra label can never come
    label_once(campaign, users[0], 1)
    label_once(campaign, users[1], -1)
    assert stranded_count(campaign=campaign) == 1
    result = stranded_lower_target(campaign=campaign, items="all")
    assert "went to the review queue" in result.message
    row = item(campaign)
    assert (row.extra_labels, row.label_target, row.review_state) == (0, 2, Item.ReviewState.CONTESTED)
    assert item_target(row, campaign) == 2 and stranded_count(campaign=campaign) == 0


# --- 32 annotators at once ----------------------------------------------------------------------

N_ANNOTATORS = 32
N_ITEMS = 120
OVERLAP, OVERLAP_MAX = 3, 5


def _side(item_id: int, user_id: int) -> int:
    """Every third item unanimous for B; the others random (many disputes), the same whatever the timing."""
    if item_id % 3 == 0:
        return 1
    return random.Random(item_id * 100_003 + user_id).choice([-1, 0, 1])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_32_annotators_on_disputed_items_end_exactly_at_their_targets():
    if connection.vendor != "postgresql":
        pytest.skip("the concurrency guarantees are measured on PostgreSQL (SQLite has one writer)")
    campaign = make_campaign(n=N_ITEMS, overlap=OVERLAP, overlap_max=OVERLAP_MAX)
    users = UserFactory.create_batch(N_ANNOTATORS)
    problems: list[str] = []
    start = threading.Barrier(N_ANNOTATORS)

    def annotate(user):
        start.wait()
        try:
            while True:
                result = next_assignment_for(annotator=user, campaign=campaign)
                if isinstance(result, NoWork):
                    if result.reason == "wait":
                        time.sleep(0.02)
                        continue
                    if result.reason != "done":
                        problems.append(f"{user.username}: {result}")
                    return
                side = _side(result.item_id, user.pk)
                annotation_submit(
                    assignment_id=result.pk,
                    annotator=user,
                    label={"overall": -side if result.position_swapped else side},
                )
        except Exception as exc:  # pragma: no cover - reported below
            problems.append(f"{user.username}: {exc!r}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=annotate, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not problems, problems[:5]

    campaign.refresh_from_db()
    labels: dict[int, list[dict]] = {}
    for item_id, label in Annotation.objects.filter(campaign=campaign).values_list("item_id", "label"):
        labels.setdefault(item_id, []).append(label)
    contested, grown = set(), 0
    for row in Item.objects.filter(campaign=campaign):
        target = item_target(row, campaign)
        assert row.human_label_count == row.assigned_count == target <= OVERLAP_MAX, (row.pk, row.human_label_count)
        assert len(labels[row.pk]) == target
        disputed = item_disputed(labels=labels[row.pk], verdict=None, campaign=campaign)
        if target < OVERLAP_MAX:
            assert not disputed, f"item {row.pk} stopped at {target} labels while still disputed"
        if row.review_state == Item.ReviewState.CONTESTED:
            contested.add(row.pk)
        grown += target > OVERLAP
    want = {pk for pk, given in labels.items() if len(given) == OVERLAP_MAX and item_disputed(
        labels=given, verdict=None, campaign=campaign)}  # fmt: skip
    assert contested == want, "contested: exactly the items still disputed at the maximum"
    assert contested and grown > len(contested), "the run exercised both outcomes"
    pairs = list(Annotation.objects.filter(campaign=campaign).values_list("item_id", "annotator_id"))
    assert len(set(pairs)) == len(pairs), "nobody labels an item twice"
    assert not Assignment.objects.filter(campaign=campaign, state="leased").exists()
    assert stranded_count(campaign=campaign) == 0
