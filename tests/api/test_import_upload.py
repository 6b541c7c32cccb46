"""Import uploads are spooled straight into TANDEM_UPLOAD_DIR: handed to the job, or removed once answered."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotate.models import Item, Job
from tests.conftest import pair

pytestmark = pytest.mark.django_db


def body(n: int) -> bytes:
    return "".join(json.dumps(pair(i)) + "\n" for i in range(n)).encode()


@pytest.fixture
def upload_dir(settings, tmp_path):
    settings.TANDEM_UPLOAD_DIR = tmp_path / "uploads"
    return settings.TANDEM_UPLOAD_DIR


def url(campaign, query=""):
    return f"/api/campaigns/{campaign.slug}/items/import/{query}"


def test_an_answered_import_leaves_no_file_behind(admin_api, campaign, upload_dir):
    response = admin_api.post(url(campaign), {"file": SimpleUploadedFile("items.jsonl", body(30))})
    assert response.status_code == 201 and response.json()["created"] == 30
    assert Item.objects.filter(campaign=campaign).count() == 30
    assert list(upload_dir.iterdir()) == []


def test_a_refused_import_leaves_no_file_behind(admin_api, campaign, upload_dir):
    response = admin_api.post(
        url(campaign), {"file": SimpleUploadedFile("items.jsonl", body(3)), "mapping": "{not json"}
    )
    assert response.status_code == 400
    bad = admin_api.post(url(campaign), {"file": SimpleUploadedFile("items.jsonl", body(3) + b"{nope\n")})
    assert bad.status_code == 400 and bad.json()["errors"][0]["where"] == "line 4"
    dry = admin_api.post(url(campaign, "?dry_run=1"), {"file": SimpleUploadedFile("items.jsonl", body(3))})
    assert dry.status_code == 200 and dry.json()["created"] == 3
    assert list(upload_dir.iterdir()) == []
    assert not Item.objects.filter(campaign=campaign).exists()


def test_an_async_import_hands_the_spooled_file_itself_to_the_job(admin_api, campaign, upload_dir):
    data = body(12)
    response = admin_api.post(url(campaign, "?async=1"), {"file": SimpleUploadedFile("items.jsonl", data)})
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["job"]["id"])
    spooled = list(upload_dir.iterdir())
    assert [str(p) for p in spooled] == [job.params["path"]], "one file, the one the upload was written to"
    assert spooled[0].read_bytes() == data
