"""An import POSTed without ?async=1 is run by the worker while the request waits, and answered as before."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotate.models import Item, Job
from tests.conftest import pair

from .conftest import wait_for

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def upload(rows: list) -> dict:
    text = "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)
    return {"file": SimpleUploadedFile("items.jsonl", text.encode())}


def test_the_request_waits_for_the_workers_import(celery_worker_process, admin_api, campaign, settings, tmp_path):
    settings.TANDEM_UPLOAD_DIR = tmp_path / "web-uploads"
    response = admin_api.post(f"/api/campaigns/{campaign.slug}/items/import/", upload([pair(i) for i in range(200)]))
    assert response.status_code == 201, response.content
    assert response.json()["created"] == 200 and response.json()["unchanged"] == 0
    job = Job.objects.get(kind="import_items", campaign=campaign)
    assert job.state == "succeeded" and job.worker, "the worker ran it, not the web process"
    assert Item.objects.filter(campaign=campaign).count() == 200
    assert list(settings.TANDEM_UPLOAD_DIR.iterdir()) == [], "the job removed the spooled upload"

    again = admin_api.post(f"/api/campaigns/{campaign.slug}/items/import/", upload([pair(i) for i in range(200)]))
    assert again.status_code == 200 and again.json()["unchanged"] == 200


def test_a_bad_file_is_answered_with_the_same_errors(celery_worker_process, admin_api, campaign, settings):
    rows = [pair(1), "{broken", pair(1)]
    for prefix in ("/api", "/api/v1"):
        settings.TANDEM_IMPORT_WAIT_SECONDS = 0  # in the web process, as before
        inline = admin_api.post(f"{prefix}/campaigns/{campaign.slug}/items/import/", upload(rows))
        settings.TANDEM_IMPORT_WAIT_SECONDS = 60
        waited = admin_api.post(f"{prefix}/campaigns/{campaign.slug}/items/import/", upload(rows))
        assert inline.status_code == waited.status_code == 400, waited.content
        assert waited.json() == inline.json()
        assert [e["where"] for e in waited.json()["errors"]] == ["line 2", "line 3"]
    assert Job.objects.filter(kind="import_items", campaign=campaign, state="failed").count() == 2
    assert not Item.objects.filter(campaign=campaign).exists()


def test_a_wait_that_runs_out_answers_202_with_the_job(celery_worker_process, admin_api, campaign, settings):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("holds the campaign's row lock from a second connection")
    import psycopg

    from tests.conftest import subprocess_env

    settings.TANDEM_IMPORT_WAIT_SECONDS = 1
    # The worker's import waits for the campaign's row lock, held here until the request has given up.
    with psycopg.connect(subprocess_env(connection)["DATABASE_URL"]) as holder:
        holder.execute("SELECT 1 FROM annotate_campaign WHERE id = %s FOR NO KEY UPDATE", [campaign.pk])
        response = admin_api.post(f"/api/campaigns/{campaign.slug}/items/import/", upload([pair(1)]))
        assert response.status_code == 202, response.content
        job_id = response.json()["job"]["id"]
        assert Job.objects.get(pk=job_id).state in ("queued", "running")
    job = wait_for(lambda: Job.objects.filter(pk=job_id, state="succeeded").first(), what="the import job")
    assert job.result["created"] == 1
