"""The annotation flow through the JSON API, and blindness: nothing an annotator must not see."""

import json

import pytest

from annotate.models import Annotation, Assignment, Item
from annotate.services.imports import annotations_import, items_import
from tests.conftest import jsonl, pair
from tests.factories import CampaignFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRETS = ("secret-model-alpha", "secret-model-beta", "JUDGE-VERDICT-XYZZY", "hidden-metadata-value", "gold-marker")


@pytest.fixture
def secret_campaign(db):
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=2)
    rows = [
        pair(i, model_a="secret-model-alpha", model_b="secret-model-beta", metadata={"note": "hidden-metadata-value"})
        for i in range(3)
    ]
    items_import(campaign=campaign, stream=jsonl(*rows), filename="items.jsonl")
    labels = [
        {"item": f"p{i}", "judge": "gpt-judge", "label": {"overall": 1}, "raw": "JUDGE-VERDICT-XYZZY"} for i in range(3)
    ]
    labels += [
        {"item": f"p{i}", "annotator": "other-person", "label": {"overall": -1}, "justification": "gold-marker"}
        for i in range(3)
    ]
    annotations_import(campaign=campaign, stream=jsonl(*labels), filename="labels.jsonl")
    return campaign


def test_next_submit_and_my_labels(annotator_api, annotator, secret_campaign):
    response = annotator_api.post(f"/api/campaigns/{secret_campaign.slug}/next/", {}, format="json")
    assert response.status_code == 200
    body = response.json()
    assignment = body["assignment"]
    assert body["status"] == "leased" and len(assignment["responses"]) == 2
    assert [row["key"] for row in assignment["rows"]] == ["overall"]
    again = annotator_api.post(f"/api/campaigns/{secret_campaign.slug}/next/", {}, format="json").json()
    assert again["assignment"]["assignment"] == assignment["assignment"], "asking again returns the same lease"
    submitted = annotator_api.post(
        f"/api/assignments/{assignment['assignment']}/submit/",
        {"label": {"overall": -1}, "active_seconds": 3},
        format="json",
    )
    assert submitted.status_code == 201 and submitted.json()["label"] == {"overall": -1}
    stored = Annotation.objects.get(annotator=annotator)
    swapped = Assignment.objects.get(pk=assignment["assignment"]).position_swapped
    assert stored.label == {"overall": 1 if swapped else -1}
    assert stored.seconds is not None and stored.seconds <= 3
    duplicate = annotator_api.post(
        f"/api/assignments/{assignment['assignment']}/submit/", {"label": {"overall": 1}}, format="json"
    )
    assert duplicate.status_code == 200 and duplicate.json()["created"] is False
    assert Annotation.objects.filter(annotator=annotator).count() == 1
    mine = annotator_api.get(f"/api/campaigns/{secret_campaign.slug}/my-labels/").json()
    assert [m["label"] for m in mine] == [{"overall": -1}]
    changed = annotator_api.patch(
        f"/api/annotations/{mine[0]['annotation']}/", {"label": {"overall": 0}}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["revision"] == 2


def test_errors_are_clear(annotator_api, secret_campaign):
    lease = annotator_api.post(f"/api/campaigns/{secret_campaign.slug}/next/", {}, format="json").json()["assignment"]
    bad = annotator_api.post(
        f"/api/assignments/{lease['assignment']}/submit/", {"label": {"overall": 7}}, format="json"
    )
    assert bad.status_code == 400
    assert bad.json() == {
        "detail": "label.overall: 7 is outside -1..1",
        "code": "invalid_label",
        "field": "label.overall",
    }
    other = UserFactory()
    from rest_framework.test import APIClient

    intruder = APIClient()
    intruder.force_authenticate(other)
    assert (
        intruder.post(
            f"/api/assignments/{lease['assignment']}/submit/", {"label": {"overall": 1}}, format="json"
        ).status_code
        == 404
    )
    assert annotator_api.post(f"/api/assignments/{lease['assignment']}/skip/", {}, format="json").status_code == 400
    skipped = annotator_api.post(f"/api/assignments/{lease['assignment']}/skip/", {"reason": "unclear"}, format="json")
    assert skipped.status_code == 200
    beat = annotator_api.post(
        f"/api/assignments/{lease['assignment']}/heartbeat/", {"active_seconds": 1}, format="json"
    )
    assert beat.json()["state"] == "skipped"


def test_queue_states(annotator_api, annotator):
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=1)
    items_import(campaign=campaign, stream=jsonl(pair(0)), filename="items.jsonl")
    holder = UserFactory()
    from rest_framework.test import APIClient

    holder_api = APIClient()
    holder_api.force_authenticate(holder)
    lease = holder_api.post(f"/api/campaigns/{campaign.slug}/next/", {}, format="json").json()["assignment"]
    waiting = annotator_api.post(f"/api/campaigns/{campaign.slug}/next/", {}, format="json")
    assert waiting.json()["status"] == "wait" and int(waiting["Retry-After"]) >= 1
    holder_api.post(f"/api/assignments/{lease['assignment']}/submit/", {"label": {"overall": 0}}, format="json")
    done = annotator_api.post(f"/api/campaigns/{campaign.slug}/next/", {}, format="json").json()
    assert done == {"assignment": None, "status": "done", "retry_after": None, "message": done["message"]}


def test_campaign_pools(annotator_api, annotator):
    open_campaign = CampaignFactory()
    pooled = CampaignFactory()
    pooled.annotators.add(UserFactory())
    slugs = [c["slug"] for c in annotator_api.get("/api/campaigns/").json()]
    assert open_campaign.slug in slugs and pooled.slug not in slugs
    assert annotator_api.post(f"/api/campaigns/{pooled.slug}/next/", {}, format="json").status_code == 404
    pooled.annotators.add(annotator)
    assert annotator_api.post(f"/api/campaigns/{pooled.slug}/next/", {}, format="json").status_code == 200


def test_nothing_secret_reaches_an_annotator(client, annotator, annotator_api, secret_campaign):
    Item.objects.filter(campaign=secret_campaign, external_id="p0").update(gold_label={"overall": -1})
    client.force_login(annotator)
    pages = [
        client.get("/").content.decode(),
        client.get(f"/c/{secret_campaign.slug}/annotate/").content.decode(),
        client.get(f"/c/{secret_campaign.slug}/annotate/item/?exclude=0").content.decode(),
        json.dumps(
            annotator_api.post(f"/api/campaigns/{secret_campaign.slug}/next/", {"exclude": []}, format="json").json()
        ),
        json.dumps(annotator_api.get(f"/api/campaigns/{secret_campaign.slug}/").json()),
    ]
    for text in pages:
        for secret in SECRETS:
            assert secret not in text
    assert annotator_api.get(f"/api/campaigns/{secret_campaign.slug}/items/").status_code == 403
