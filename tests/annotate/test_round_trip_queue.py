"""The lease's queue walk past an annotator's own items in progress (`_work_walks`): exact while fresh items
remain, and every item still reaches everyone once only items in progress are left."""

import pytest

from annotate.models import Assignment, Item
from annotate.services.assignments import QUEUE_WINDOW, NoWork, annotation_submit, next_assignment_for
from annotate.services.imports import items_import
from tests.conftest import jsonl, pair
from tests.factories import CampaignFactory, UserFactory

pytestmark = pytest.mark.django_db


def make_campaign(n, overlap):
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=overlap)
    items_import(campaign=campaign, stream=jsonl(*[pair(i) for i in range(n)]), filename="items.jsonl")
    return campaign


def label_next(user, campaign) -> Assignment | NoWork:
    result = next_assignment_for(annotator=user, campaign=campaign)
    if isinstance(result, Assignment):
        annotation_submit(assignment_id=result.pk, annotator=user, label={"overall": 1})
    return result


def test_past_a_window_of_own_items_in_progress_an_annotator_gets_fresh_items_and_others_the_fullest():
    campaign = make_campaign(n=QUEUE_WINDOW + 30, overlap=3)
    alone, other = UserFactory(), UserFactory()
    mine = [label_next(alone, campaign).item_id for _ in range(QUEUE_WINDOW + 10)]
    # Every item `alone` labelled (assigned_count 1) is ahead of the fresh ones in the queue's order.
    assert len(set(mine)) == len(mine)
    untouched = set(Item.objects.filter(campaign=campaign, assigned_count=0).values_list("pk", flat=True))
    assert len(untouched) == 20
    following = label_next(alone, campaign)
    assert following.item_id in untouched  # past the window: a fresh item, never one seen
    # Someone else is given the fullest first: one of `alone`'s items, in queue order.
    first_in_queue = (
        Item.objects.filter(campaign=campaign, pk__in=mine).order_by("-assigned_count", "queue_rank").first()
    )
    assert label_next(other, campaign).item_id == first_in_queue.pk


def test_once_only_items_in_progress_are_left_each_still_reaches_the_annotator():
    campaign = make_campaign(n=QUEUE_WINDOW + 6, overlap=3)
    first, second = UserFactory(), UserFactory()
    for _ in range(QUEUE_WINDOW + 6):
        label_next(first, campaign)
    for _ in range(QUEUE_WINDOW + 3):
        label_next(second, campaign)
    # No fresh item is left; `second` has seen the fullest QUEUE_WINDOW + 3, and 3 wait behind them.
    assert not Item.objects.filter(campaign=campaign, assigned_count=0).exists()
    given = [label_next(second, campaign) for _ in range(4)]
    assert all(isinstance(g, Assignment) for g in given[:3]), given
    assert isinstance(given[3], NoWork) and given[3].reason == "done"
    counts = set(Item.objects.filter(campaign=campaign).values_list("human_label_count", flat=True))
    assert counts == {2}
