"""Judges and judge runs through the API and the campaign's judges page: admins only, keys never shown."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotate.models import Job, Judge
from tests.factories import CampaignFactory, ItemFactory

pytestmark = pytest.mark.django_db

JUDGE = {
    "name": "gpt-judge",
    "base_url": "http://127.0.0.1:9/v1",
    "model": "gpt-4o-mini",
    "api_key_env": "TANDEM_JUDGE_KEY_OPENAI",
    "concurrency": 8,
    "requests_per_minute": 500,
    "price_in_per_1k": "0.00015",
    "price_out_per_1k": "0.0006",
    "probe": False,
}


def test_admins_create_judges_and_the_key_never_comes_back(admin_api, monkeypatch):
    monkeypatch.setenv("TANDEM_JUDGE_KEY_OPENAI", "sk-secret-value")
    response = admin_api.post("/api/judges/", JUDGE, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["api_key_env"] == "TANDEM_JUDGE_KEY_OPENAI" and body["api_key_present"] is True
    listing = admin_api.get("/api/judges/")
    assert "sk-secret-value" not in response.content.decode() + listing.content.decode()
    assert Judge.objects.get(name="gpt-judge").concurrency == 8


def test_a_key_in_place_of_its_variable_name_is_refused_with_the_field(admin_api):
    response = admin_api.post("/api/judges/", {**JUDGE, "api_key_env": "sk-live-abc"}, format="json")
    assert response.status_code == 400
    assert "api_key_env" in response.json()
    assert not Judge.objects.exists()


def test_patch_validates_like_create(admin_api):
    judge_id = admin_api.post("/api/judges/", JUDGE, format="json").json()["id"]
    assert admin_api.patch(f"/api/judges/{judge_id}/", {"concurrency": 16}, format="json").json()["concurrency"] == 16
    bad = admin_api.patch(f"/api/judges/{judge_id}/", {"prompt_template": "nope"}, format="json")
    assert bad.status_code == 400 and "prompt_template" in bad.json()


def test_annotators_cannot_see_or_run_judges(annotator_api):
    campaign = CampaignFactory()
    assert annotator_api.get("/api/judges/").status_code == 403
    assert annotator_api.post(f"/api/campaigns/{campaign.slug}/judge-runs/", {}, format="json").status_code == 403


def test_starting_and_cancelling_a_run(admin_api):
    campaign = CampaignFactory(preset_name="simple-pairwise")
    ItemFactory(campaign=campaign, route="llm")
    no_judge = admin_api.post(f"/api/campaigns/{campaign.slug}/judge-runs/", {}, format="json")
    assert no_judge.status_code == 400 and "no active judge" in no_judge.json()["detail"]
    judge_id = admin_api.post("/api/judges/", JUDGE, format="json").json()["id"]
    campaign.judges.add(judge_id)
    started = admin_api.post(f"/api/campaigns/{campaign.slug}/judge-runs/", {"judges": ["gpt-judge"]}, format="json")
    assert started.status_code == 202
    job = started.json()
    assert job["kind"] == "judge_run" and job["state"] == "queued"
    unknown = admin_api.post(f"/api/campaigns/{campaign.slug}/judge-runs/", {"judges": ["nobody"]}, format="json")
    assert unknown.status_code == 400
    cancelled = admin_api.post(f"/api/jobs/{job['id']}/cancel/")
    assert cancelled.json()["state"] == "cancelled"


def test_the_judges_page_shows_judges_and_runs_to_admins_only(client, admin_user, annotator, monkeypatch):
    monkeypatch.setenv("TANDEM_JUDGE_KEY_PAGE", "sk-never-shown")
    campaign = CampaignFactory(preset_name="simple-pairwise")
    ItemFactory(campaign=campaign, route="llm")
    judge = Judge.objects.create(
        name="page-judge", base_url="http://127.0.0.1:9/v1", model="m", api_key_env="TANDEM_JUDGE_KEY_PAGE"
    )
    campaign.judges.add(judge)
    url = reverse("campaign-judges", args=[campaign.slug])
    client.force_login(annotator)
    assert client.get(url).status_code == 403  # annotators do not see admin pages
    client.force_login(admin_user)
    page = client.get(url).content.decode()
    assert "page-judge" in page and "$TANDEM_JUDGE_KEY_PAGE" in page and "sk-never-shown" not in page
    response = client.post(reverse("campaign-judges-run", args=[campaign.slug]), {"judge": [judge.pk]})
    assert response.status_code == 302
    job = Job.objects.get(kind="judge_run", campaign=campaign)
    fragment = client.get(reverse("campaign-judges-runs", args=[campaign.slug])).content.decode()
    assert f"#{job.pk}" in fragment and 'hx-trigger="every 1s"' in fragment
    client.post(reverse("campaign-judges-cancel", args=[campaign.slug, job.pk]))
    job.refresh_from_db()
    assert job.state == "cancelled"
    fragment = client.get(reverse("campaign-judges-runs", args=[campaign.slug])).content.decode()
    assert "every 1s" not in fragment  # nothing running: the page stops polling
