"""The API: token or session auth, per-role permissions, imports with clear 400s, async jobs."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from annotate.models import Item, Job
from tests.conftest import pair
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db


def upload(rows, name="items.jsonl"):
    body = "".join(json.dumps(r) + "\n" if not isinstance(r, str) else r + "\n" for r in rows)
    return SimpleUploadedFile(name, body.encode(), content_type="application/octet-stream")


def test_anonymous_requests_are_refused(campaign):
    client = APIClient()
    assert client.get("/api/campaigns/").status_code in (401, 403)
    response = client.post(f"/api/campaigns/{campaign.slug}/items/import/", {"file": upload([pair(1)])})
    assert response.status_code in (401, 403)
    assert Item.objects.count() == 0


def test_token_from_username_and_password(admin_user):
    response = APIClient().post("/api/auth/token/", {"username": admin_user.username, "password": "pw-for-tests-123"})
    assert response.status_code == 200 and response.json()["token"].startswith("tdm_") and response.json()["expires_at"]


def test_create_campaign_as_admin(admin_api):
    response = admin_api.post(
        "/api/campaigns/", {"name": "Round 2", "kind": "rubric", "preset": "prometheus"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["slug"] == "round-2" and body["label_schema"]["rubric"]["criteria"][0]["name"] == "score"
    bad = admin_api.post(
        "/api/campaigns/",
        {"name": "X", "kind": "pairwise", "label_schema": {"pairwise": {"aspects": []}}},
        format="json",
    )
    assert bad.status_code == 400 and "non-empty list of aspects" in json.dumps(bad.json())


def test_annotators_cannot_create_import_or_list_items(annotator_api, campaign):
    assert (
        annotator_api.post(
            "/api/campaigns/", {"name": "X", "kind": "pairwise", "preset": "simple-pairwise"}
        ).status_code
        == 403
    )
    assert (
        annotator_api.post(f"/api/campaigns/{campaign.slug}/items/import/", {"file": upload([pair(1)])}).status_code
        == 403
    )
    assert annotator_api.get(f"/api/campaigns/{campaign.slug}/items/").status_code == 403
    assert Item.objects.count() == 0


def test_annotators_see_active_campaigns_only(annotator_api, campaign):
    draft = CampaignFactory(state="draft")
    slugs = [c["slug"] for c in annotator_api.get("/api/campaigns/").json()]
    assert campaign.slug in slugs and draft.slug not in slugs
    assert annotator_api.get(f"/api/campaigns/{draft.slug}/").status_code == 404


def test_import_through_the_api(admin_api, campaign):
    response = admin_api.post(f"/api/campaigns/{campaign.slug}/items/import/", {"file": upload([pair(1), pair(2)])})
    assert response.status_code == 201
    assert response.json() == {"rows": 2, "created": 2, "unchanged": 0, "conflicts": 0, "conflict_rows": []}
    again = admin_api.post(f"/api/campaigns/{campaign.pk}/items/import/", {"file": upload([pair(1), pair(2)])})
    assert again.status_code == 200 and again.json()["unchanged"] == 2
    listed = admin_api.get(f"/api/campaigns/{campaign.slug}/items/").json()
    assert [row["id"] for row in listed["results"]] == ["p1", "p2"]


def test_bad_upload_is_a_400_naming_line_and_field(admin_api, campaign):
    response = admin_api.post(
        f"/api/campaigns/{campaign.slug}/items/import/", {"file": upload([pair(1), {"id": "x", "prompt": "P"}])}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["imported"] == 0
    assert body["errors"][0] == {
        "file": "items.jsonl",
        "where": "line 2",
        "field": "response_a",
        "message": body["errors"][0]["message"],
    }
    assert body["detail"].startswith("items.jsonl, line 2, field 'response_a': missing")
    assert Item.objects.count() == 0


def test_upload_without_a_file(admin_api, campaign):
    response = admin_api.post(f"/api/campaigns/{campaign.slug}/items/import/", {})
    assert response.status_code == 400 and "file" in response.json()


def test_csv_upload(admin_api, campaign):
    file = SimpleUploadedFile("items.csv", b"id,prompt,response_a,response_b\na,P,A,B\n")
    assert admin_api.post(f"/api/campaigns/{campaign.slug}/items/import/", {"file": file}).json()["created"] == 1


def test_annotation_import_through_the_api(admin_api, campaign):
    admin_api.post(f"/api/campaigns/{campaign.slug}/items/import/", {"file": upload([pair(1)])})
    labels = upload([{"item": "p1", "annotator": "ann", "label": {"overall": 1}}], name="labels.jsonl")
    response = admin_api.post(f"/api/campaigns/{campaign.slug}/annotations/import/", {"file": labels})
    assert response.status_code == 201 and response.json()["created"] == 1


@pytest.mark.django_db(transaction=True)  # progress is written on its own connection
def test_async_import_runs_as_a_job(admin_api, campaign, eager_celery, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post(
            f"/api/campaigns/{campaign.slug}/items/import/?async=1", {"file": upload([pair(i) for i in range(3)])}
        )
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert job.state == "succeeded" and job.result["created"] == 3 and job.progress_done == 3
    detail = admin_api.get(f"/api/jobs/{job.pk}/").json()
    assert detail["state"] == "succeeded" and detail["progress_fraction"] == 1.0


@pytest.mark.django_db(transaction=True)  # progress is written on its own connection
def test_async_import_failure_keeps_the_errors_on_the_job(
    admin_api, campaign, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post(
            f"/api/campaigns/{campaign.slug}/items/import/?async=1", {"file": upload([pair(1), "{broken"])}
        )
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert job.state == "failed" and "line 2" in job.error
    assert job.result["errors"][0]["where"] == "line 2"
    assert Item.objects.count() == 0


def test_openapi_schema_is_served(admin_api):
    response = admin_api.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert "/api/v1/campaigns/{ref}/items/import/" in json.loads(response.content)["paths"]


def test_session_auth_needs_csrf(admin_user, campaign):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post(f"/api/campaigns/{campaign.slug}/items/import/", {"file": upload([pair(1)])})
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
