"""The demo campaign: LLMBar Natural with GPT-4's verdicts, loaded idempotently."""

import json

import pytest
from django.contrib.auth import get_user_model

from annotate.models import Annotation, Campaign, Item
from annotate.services.demo import DEMO_JUDGE, DEMO_SLUG, demo_load
from tests.conftest import LLMBAR

pytestmark = pytest.mark.django_db


def test_demo_loads_once_and_again_changes_nothing():
    first = demo_load(password="demo-pass-123")
    assert first["items"]["created"] == 100 and first["judge_labels"]["created"] == 200
    second = demo_load(password="demo-pass-123")
    assert second["items"]["unchanged"] == 100 and second["judge_labels"]["unchanged"] == 200
    campaign = Campaign.objects.get(slug=DEMO_SLUG)
    assert campaign.state == "open" and Item.objects.filter(campaign=campaign).count() == 100
    # Routed by judge uncertainty: a 10 % calibration slice, then GPT-4's least certain items up to half.
    assert first["routing"]["destinations"] == {"unrouted": 0, "human": 40, "llm": 50, "both": 10}
    assert second["routing"] == first["routing"]
    flipped = {a.item_id for a in Annotation.objects.filter(judge__name=DEMO_JUDGE, position_swapped=True)
               if a.label != Annotation.objects.get(item_id=a.item_id, judge__name=DEMO_JUDGE,
                                                    position_swapped=False).label}  # fmt: skip
    assert not Item.objects.filter(pk__in=flipped, route="llm").exists()  # every flip goes to a human
    users = get_user_model().objects
    assert users.get(username="admin").is_staff
    assert all(users.get(username=f"annotator{i}").check_password("demo-pass-123") for i in (1, 2, 3))


def test_imported_verdicts_reproduce_the_llmbar_statistics():
    """Accuracy per order and order agreement from the stored labels equal the authors' figures."""
    demo_load(password="demo-pass-123")
    stats = json.loads((LLMBAR / "gpt4-vanilla-statistics.json").read_text())
    gold = {
        item.pk: (-1 if item.metadata["label"] == 1 else 1) for item in Item.objects.filter(campaign__slug=DEMO_SLUG)
    }
    verdicts = {}
    for a in Annotation.objects.filter(judge__name=DEMO_JUDGE):
        verdicts.setdefault(a.item_id, {})[a.position_swapped] = a.label["overall"]
    for swapped in (False, True):
        correct = sum(verdicts[i][swapped] == g for i, g in gold.items())
        assert f"{correct} / 100" in stats[f"correct_{swapped}"]
    equal = sum(v[False] == v[True] for v in verdicts.values())
    assert f"{equal} / 100" in stats["equal"]
