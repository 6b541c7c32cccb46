"""32 annotators at once on PostgreSQL, through the API: overlap exact, nobody twice, nothing lost."""

import random
import threading
import time

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from annotate.models import Annotation, Assignment, Item
from annotate.services.imports import items_import
from tests.conftest import jsonl, pair
from tests.factories import CampaignFactory, UserFactory

N_ANNOTATORS = 32
N_ITEMS = 500  # 1,500 next+submit cycles from 32 threads: contention is the point, not the count
OVERLAP = 3

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the concurrency guarantees are measured on PostgreSQL (SQLite has one writer)")


def test_32_annotators_drain_500_items_with_overlap_3():
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=OVERLAP)
    items_import(campaign=campaign, stream=jsonl(*[pair(i) for i in range(N_ITEMS)]), filename="items.jsonl")
    users = UserFactory.create_batch(N_ANNOTATORS)
    submitted: dict[int, list[int]] = {u.pk: [] for u in users}
    false_empties: list[str] = []
    errors: list[str] = []
    start = threading.Barrier(N_ANNOTATORS)

    def annotate(user):
        client = APIClient()
        client.force_authenticate(user)
        rng = random.Random(user.pk)
        start.wait()
        try:
            while True:
                body = client.post(f"/api/campaigns/{campaign.slug}/next/", {}, format="json").json()
                if body["status"] == "leased":
                    lease = body["assignment"]
                    response = client.post(
                        f"/api/assignments/{lease['assignment']}/submit/",
                        {"label": {"overall": rng.choice([-1, 0, 1])}},
                        format="json",
                    )
                    if response.status_code != 201:
                        errors.append(f"{user.username}: submit answered {response.status_code} {response.content!r}")
                        return
                    submitted[user.pk].append(lease["assignment"])
                elif body["status"] == "wait":
                    time.sleep(0.02)
                elif body["status"] == "done":
                    # "Done" must be true when said: every item is full or already mine. Counts only
                    # grow in this test, so checking right after is checking at that moment.
                    open_items = (
                        Item.objects.filter(campaign=campaign, assigned_count__lt=OVERLAP)
                        .exclude(assignments__annotator=user)
                        .count()
                    )
                    if open_items:
                        false_empties.append(f"{user.username} was told 'done' with {open_items} items open to them")
                    return
                else:
                    errors.append(f"{user.username}: unexpected {body}")
                    return
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(f"{user.username}: {exc!r}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=annotate, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not errors, errors[:5]
    assert not false_empties, false_empties[:5]
    counts = list(
        Item.objects.filter(campaign=campaign).order_by().values_list("human_label_count", "assigned_count").distinct()
    )
    assert counts == [(OVERLAP, OVERLAP)], "every item ends with exactly `overlap` labels"
    assert Annotation.objects.filter(campaign=campaign).count() == N_ITEMS * OVERLAP
    assert sum(len(v) for v in submitted.values()) == N_ITEMS * OVERLAP, "no submission lost"
    pairs = Annotation.objects.filter(campaign=campaign).values_list("item_id", "annotator_id")
    assert len(set(pairs)) == len(pairs), "nobody labels an item twice"
    assert not Assignment.objects.filter(campaign=campaign, state="leased").exists()


def _drain(campaign, users, skip_rule) -> list[str]:
    """Each user in a thread of their own: next → submit (or skip, when `skip_rule` says so) until done."""
    problems: list[str] = []
    start = threading.Barrier(len(users))

    def annotate(user):
        client = APIClient()
        client.force_authenticate(user)
        start.wait()
        try:
            while True:
                body = client.post(f"/api/campaigns/{campaign.slug}/next/", {}, format="json").json()
                if body["status"] == "leased":
                    lease = body["assignment"]["assignment"]
                    item_id = Assignment.objects.values_list("item_id", flat=True).get(pk=lease)
                    if skip_rule(item_id, user):
                        answer = client.post(f"/api/assignments/{lease}/skip/", {"reason": "not mine"}, format="json")
                        expected = 200
                    else:
                        answer = client.post(
                            f"/api/assignments/{lease}/submit/", {"label": {"overall": 1}}, format="json"
                        )
                        expected = 201
                    if answer.status_code != expected:
                        problems.append(f"{user.username}: {answer.status_code} {answer.content!r}")
                        return
                elif body["status"] == "wait":
                    time.sleep(0.02)
                elif body["status"] == "done":
                    return
                else:
                    problems.append(f"{user.username}: unexpected {body}")
                    return
        except Exception as exc:  # pragma: no cover - reported below
            problems.append(f"{user.username}: {exc!r}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=annotate, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    return problems


def test_lowered_targets_and_given_back_items_end_exact_under_concurrency():
    from annotate.services.queue import stranded_count, stranded_give_back

    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=OVERLAP)
    items_import(campaign=campaign, stream=jsonl(*[pair(i) for i in range(300)]), filename="items.jsonl")
    ids = list(Item.objects.filter(campaign=campaign).order_by("id").values_list("id", flat=True))
    Item.objects.filter(id__in=ids[0::5]).update(label_target=1)
    Item.objects.filter(id__in=ids[1::5]).update(label_target=2)
    users = UserFactory.create_batch(6)
    campaign.annotators.add(*users)

    # Round 1: each person skips about half of what they are given (the same items whatever the
    # threads' timing), so some items run out of people.
    problems = _drain(campaign, users, lambda item_id, user: random.Random(item_id * 1000 + user.pk).random() < 0.5)
    assert not problems, problems[:5]
    stranded = stranded_count(campaign=campaign)
    assert stranded > 0
    result = stranded_give_back(campaign=campaign, items="all")
    assert result.changed == stranded and result.unchanged == 0
    # Round 2: the skippers get those items back as new leases, and nobody skips any more.
    problems = _drain(campaign, users, lambda item_id, user: False)
    assert not problems, problems[:5]

    targets = {pk: (t if t is not None else OVERLAP) for pk, t in Item.objects.values_list("id", "label_target")}
    for pk, labels, assigned in Item.objects.filter(campaign=campaign).values_list(
        "id", "human_label_count", "assigned_count"
    ):
        assert labels == assigned == targets[pk], (pk, labels, assigned, targets[pk])
    assert Annotation.objects.filter(campaign=campaign).count() == sum(targets.values())
    pairs = Annotation.objects.filter(campaign=campaign).values_list("item_id", "annotator_id")
    assert len(set(pairs)) == len(pairs), "nobody labels an item twice"
    assert stranded_count(campaign=campaign) == 0
    assert not Assignment.objects.filter(campaign=campaign, state="leased").exists()
