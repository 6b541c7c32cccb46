"""annotations_import: existing human and judge labels, validated, all or nothing, idempotent."""

import pytest
from django.contrib.auth import get_user_model

from annotate.models import Annotation, Item, Judge
from annotate.services.imports import ImportFailed, annotations_import, items_import
from tests.conftest import jsonl, pair

pytestmark = pytest.mark.django_db


@pytest.fixture
def items(multipref):
    items_import(campaign=multipref, stream=jsonl(*[pair(i) for i in range(3)]), filename="items.jsonl")
    return multipref


def label(v=1):
    return {"overall": v, "helpfulness": v, "truthfulness": v, "harmlessness": v}


def run(campaign, *rows):
    return annotations_import(campaign=campaign, stream=jsonl(*rows), filename="labels.jsonl")


def refused(campaign, *rows):
    before = (Annotation.objects.count(), get_user_model().objects.count(), Judge.objects.count())
    with pytest.raises(ImportFailed) as info:
        run(campaign, *rows)
    after = (Annotation.objects.count(), get_user_model().objects.count(), Judge.objects.count())
    assert after == before, "a refused import must create no label, account or judge"
    return info.value


def test_human_and_judge_labels_import_with_provenance(items):
    report = run(
        items,
        {
            "item": "p0",
            "annotator": "ann-1",
            "label": label(2),
            "justification": "B is right",
            "seconds": 41.5,
            "rater_confidence": 4,
        },
        {"item": "p0", "annotator": "ann-2", "label": label(-1)},
        {
            "item": "p0",
            "judge": "gpt-x",
            "label": {"overall": 1},
            "raw": "[[B>A]]",
            "position_swapped": True,
            "prompt_version": "v1",
            "prompt_tokens": 300,
            "completion_tokens": 12,
            "cost": "0.0031",
        },
        {"item": "p1", "judge": "gpt-x", "label": None, "raw": "I cannot help with that."},
    )
    assert (report.created, report.unchanged) == (4, 0)
    user = get_user_model().objects.get(username="ann-1")
    assert not user.is_active and not user.has_usable_password()
    judge = Judge.objects.get(name="gpt-x")
    assert judge.imported and not judge.active
    human = Annotation.objects.get(annotator=user)
    assert (human.label, human.justification, human.seconds, human.rater_confidence, human.imported) == (
        label(2),
        "B is right",
        41.5,
        4,
        True,
    )
    verdict = Annotation.objects.get(judge=judge, item__external_id="p0")
    assert (verdict.position_swapped, verdict.raw_output, verdict.prompt_tokens, str(verdict.cost)) == (
        True,
        "[[B>A]]",
        300,
        "0.00310000",
    )
    failure = Annotation.objects.get(judge=judge, item__external_id="p1")
    assert failure.parse_failed and failure.label is None and failure.raw_output == "I cannot help with that."
    assert Item.objects.get(campaign=items, external_id="p0").human_label_count == 2
    assert Item.objects.get(campaign=items, external_id="p1").human_label_count == 0


def test_reimport_is_idempotent_and_a_changed_label_is_a_conflict(items):
    rows = [
        {"item": "p0", "annotator": "ann-1", "label": label(1)},
        {"item": "p1", "judge": "j", "label": {"overall": 2}},
    ]
    run(items, *rows)
    again = run(items, *rows)
    assert (again.created, again.unchanged, again.n_conflicts) == (0, 2, 0)
    changed = run(items, {"item": "p0", "annotator": "ann-1", "label": label(-1)})
    assert changed.n_conflicts == 1 and changed.conflicts[0]["fields"] == ["label"]
    assert Annotation.objects.get(annotator__username="ann-1").label == label(1)
    assert Item.objects.get(campaign=items, external_id="p0").human_label_count == 1


def test_existing_accounts_are_used(items, annotator):
    run(items, {"item": "p0", "annotator": annotator.username, "label": label()})
    assert Annotation.objects.get().annotator == annotator


def test_label_out_of_range(items):
    error = refused(
        items, {"item": "p0", "annotator": "a", "label": label()}, {"item": "p1", "annotator": "a", "label": label(3)}
    )
    assert str(error.errors[0]) == "labels.jsonl, line 2, field 'label.overall': 3 is outside -2..2"


def test_unknown_item(items):
    error = refused(
        items, {"item": "p0", "annotator": "a", "label": label()}, {"item": "nope", "annotator": "a", "label": label()}
    )
    assert (
        str(error.errors[0]) == f"labels.jsonl, line 2, field 'item': no item with id 'nope' in campaign '{items.slug}'"
    )


def test_incomplete_human_label(items):
    error = refused(items, {"item": "p0", "annotator": "a", "label": {"overall": 1}})
    assert error.errors[0].field == "label.helpfulness"


def test_duplicate_label_in_the_file(items):
    error = refused(
        items, {"item": "p0", "annotator": "a", "label": label()}, {"item": "p0", "annotator": "a", "label": label(2)}
    )
    assert "a second label from annotator 'a' for item 'p0' (first at line 1)" in str(error.errors[0])


def test_neither_or_both_authors(items):
    error = refused(items, {"item": "p0", "label": label()})
    assert error.errors[0].field == "annotator" and "exactly one of" in error.errors[0].message
    error = refused(items, {"item": "p0", "annotator": "a", "judge": "j", "label": label()})
    assert "exactly one of" in error.errors[0].message


def test_mistyped_and_unknown_fields(items):
    error = refused(items, {"item": "p0", "annotator": "a", "label": label(), "seconds": "soon"})
    assert str(error.errors[0]) == "labels.jsonl, line 1, field 'seconds': 'soon' is not a number"
    error = refused(items, {"item": "p0", "annotator": "a", "label": label(), "labl": 1})
    assert error.errors[0].field == "labl" and error.errors[0].message.startswith("unknown field")


def test_required_justification_applies_to_imported_human_labels(db):
    from tests.factories import CampaignFactory

    campaign = CampaignFactory(preset_name="helpsteer2-preference")
    items_import(campaign=campaign, stream=jsonl(pair(0)), filename="items.jsonl")
    error = refused(campaign, {"item": "p0", "annotator": "a", "label": {"overall": 3}})
    assert error.errors[0].field == "justification"


def test_empty_file(items):
    with pytest.raises(ImportFailed, match="the file has no rows"):
        annotations_import(campaign=items, stream=jsonl(), filename="labels.jsonl")
