"""Invariants that live in the database, whatever write path is used."""

import pytest
from django.db import IntegrityError, transaction

from annotate.models import Annotation, Item
from tests.factories import AnnotationFactory, CampaignFactory, ItemFactory, JudgeFactory, UserFactory

pytestmark = pytest.mark.django_db


def refused(**kwargs):
    with pytest.raises(IntegrityError), transaction.atomic():
        kwargs.pop("factory", AnnotationFactory)(**kwargs)


def test_one_human_label_per_item_and_annotator():
    first = AnnotationFactory()
    refused(item=first.item, annotator=first.annotator)
    AnnotationFactory(item=first.item, annotator=UserFactory())


def test_external_id_unique_per_campaign():
    item = ItemFactory(external_id="x")
    with pytest.raises(IntegrityError), transaction.atomic():
        ItemFactory(campaign=item.campaign, external_id="x")
    ItemFactory(campaign=CampaignFactory(), external_id="x")
    assert Item.objects.filter(external_id="x").count() == 2


def test_one_judgment_per_item_judge_prompt_order_and_sample():
    judge = JudgeFactory()
    first = AnnotationFactory(source="judge", annotator=None, judge=judge, position_swapped=False, prompt_version="v1")
    refused(item=first.item, source="judge", annotator=None, judge=judge, position_swapped=False, prompt_version="v1")
    AnnotationFactory(
        item=first.item, source="judge", annotator=None, judge=judge, position_swapped=True, prompt_version="v1"
    )
    AnnotationFactory(
        item=first.item,
        source="judge",
        annotator=None,
        judge=judge,
        position_swapped=False,
        prompt_version="v1",
        sample_index=1,
    )


def test_source_must_match_author():
    refused(source="judge", judge=None)  # a judge label without a judge, with an annotator
    refused(source="human", annotator=None)
    refused(source="judge", annotator=None, judge=JudgeFactory(), position_swapped=None)


def test_label_may_be_missing_only_for_a_parse_failure():
    refused(label=None)
    judge = JudgeFactory()
    failure = AnnotationFactory(
        source="judge", annotator=None, judge=judge, position_swapped=False, label=None, parse_failed=True
    )
    assert Annotation.objects.get(pk=failure.pk).parse_failed


def test_confidence_ranges():
    refused(rater_confidence=6)
    refused(source="judge", annotator=None, judge=JudgeFactory(), position_swapped=False, confidence=1.5)


def test_campaign_checks():
    with pytest.raises(IntegrityError), transaction.atomic():
        CampaignFactory(overlap=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        CampaignFactory(gold_rate=2)
