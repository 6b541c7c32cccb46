"""Exports from the database: the job writes files with checksums and a card, the API lists, serves and
deletes them, the command writes FILE and its card, and a crash leaves nothing marked complete."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.management import CommandError, call_command

from annotate.models import Annotation, DatasetExport, Job, RoutingDecision
from annotate.services import exports as exports_service
from annotate.services.exports import export_start, pseudonym
from jobs.runner import job_run
from tests.factories import AnnotationFactory, CampaignFactory, ItemFactory, JudgeFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)  # jobs report progress on a connection of their own


@pytest.fixture
def campaign(settings, tmp_path):
    settings.TANDEM_EXPORT_DIR = tmp_path / "exports"
    campaign = CampaignFactory(preset_name="simple-pairwise")
    raters = [UserFactory() for _ in range(3)]
    judge = JudgeFactory(name="gpt-x", model="gpt-x-1")
    for i in range(9):
        prompt = [{"role": "user", "content": f"Question {i}?"}] if i % 3 == 0 else f"Question {i}?"
        item = ItemFactory(campaign=campaign, external_id=f"q{i}", model_a="m1", model_b="m2", prompt=prompt)
        for n, rater in enumerate(raters):
            AnnotationFactory(item=item, annotator=rater, label={"overall": -1 if (i + n) % 4 else 1})
        Annotation.objects.create(item=item, campaign=campaign, source="judge", judge=judge, label={"overall": 1},
                                  position_swapped=False, prompt_version="v1")  # fmt: skip
    return campaign


def test_an_export_job_writes_files_with_their_checksums_and_a_card(campaign):
    export = export_start(campaign=campaign, options={"format": "trl", "file_type": "jsonl"}, dispatch=False)
    job = job_run(job_id=export.job.pk)
    assert job.state == Job.State.SUCCEEDED, job.error
    export.refresh_from_db()
    assert export.complete and export.files
    directory = exports_service.export_directory(export)
    for info in export.files:
        data = (directory / info["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["sha256"] and len(data) == info["bytes"]
    train = [json.loads(line) for line in (directory / export.files[0]["name"]).read_text().splitlines()]
    assert {row["id"] for row in train} <= {f"q{i}" for i in range(9)}  # the items' own ids, not database keys
    assert any(isinstance(row["prompt"], list) for row in train)  # chat prompts stay message lists
    card = (directory / "README.md").read_text()
    assert card.startswith("---") and "gpt-x" in card


def test_the_same_data_and_options_give_the_same_bytes(campaign):
    digests = []
    for _ in range(2):
        export = export_start(campaign=campaign, options={"format": "raw", "file_type": "parquet"}, dispatch=False)
        job_run(job_id=export.job.pk)
        export.refresh_from_db()
        digests.append([f["sha256"] for f in export.files])
    assert digests[0] == digests[1]


def test_raw_rows_name_annotators_by_pseudonym_never_by_account(campaign):
    export = export_start(campaign=campaign, options={"format": "raw", "file_type": "jsonl"}, dispatch=False)
    job_run(job_id=export.job.pk)
    export.refresh_from_db()
    text = (exports_service.export_directory(export) / export.files[0]["name"]).read_text()
    user = Annotation.objects.filter(campaign=campaign, source="human").first().annotator
    assert user.username not in text and pseudonym(user.pk) in text


def test_raw_rows_carry_the_latest_decisions_features_as_json(campaign):
    first, second = campaign.items.order_by("external_id")[:2]
    contributions = [
        {"feature": "judge_flipped", "value": 1.0, "contribution": 1.25},
        {"feature": "prompt_chars", "value": 812.0, "contribution": -0.5},
    ]
    earlier = [{"feature": "prompt_chars", "value": 3.0, "contribution": 0.1}]
    RoutingDecision.objects.create(campaign=campaign, item=first, destination="llm", policy="learned", features=earlier)
    RoutingDecision.objects.create(
        campaign=campaign, item=first, destination="human", policy="learned", reason="gain 0.9", features=contributions
    )
    RoutingDecision.objects.create(campaign=campaign, item=second, destination="human", policy="random")
    export = export_start(campaign=campaign, options={"format": "raw", "file_type": "jsonl"}, dispatch=False)
    job_run(job_id=export.job.pk)
    export.refresh_from_db()
    path = exports_service.export_directory(export) / export.files[0]["name"]
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    by_item = {row["id"]: row for row in rows}
    assert json.loads(by_item[first.external_id]["routing_features"]) == contributions  # the latest decision's
    assert by_item[first.external_id]["routing_policy"] == "learned"
    assert by_item[second.external_id]["routing_features"] is None  # a policy that reads no feature


def test_a_crash_mid_export_leaves_nothing_marked_complete(campaign, monkeypatch):
    real = exports_service.items_with_labels

    def crashing(**kwargs):
        for n, pair in enumerate(real(**kwargs)):
            if n == 5:
                raise RuntimeError("worker lost")
            yield pair

    monkeypatch.setattr(exports_service, "items_with_labels", crashing)
    export = export_start(campaign=campaign, options={"format": "trl", "file_type": "parquet"}, dispatch=False)
    job = job_run(job_id=export.job.pk)
    assert job.state == Job.State.FAILED and "worker lost" in job.error
    export.refresh_from_db()
    assert not export.complete and not export.files
    assert not exports_service.export_directory(export).exists()


def test_bad_options_name_the_option(admin_api, campaign):
    response = admin_api.post(f"/api/campaigns/{campaign.slug}/exports/", {"format": "trl", "ties": "maybe"},
                              format="json")  # fmt: skip
    assert response.status_code == 400 and "ties" in response.json()
    assert not DatasetExport.objects.exists()


def test_the_api_lists_serves_and_deletes_exports(admin_api, annotator_api, campaign):
    url = f"/api/campaigns/{campaign.slug}/exports/"
    assert annotator_api.post(url, {"format": "trl"}, format="json").status_code == 403
    started = admin_api.post(url, {"format": "trl", "file_type": "csv", "ties": "drop"}, format="json")
    assert started.status_code == 202 and started.json()["state"] == "queued"
    export_id = started.json()["id"]
    job_run(job_id=DatasetExport.objects.get(pk=export_id).job_id)
    listing = admin_api.get(url).json()
    assert listing[0]["complete"] is True and listing[0]["state"] == "succeeded"
    name = listing[0]["files"][0]["name"]
    download = admin_api.get(f"/api/exports/{export_id}/files/{name}")
    assert download.status_code == 200
    assert hashlib.sha256(b"".join(download.streaming_content)).hexdigest() == listing[0]["files"][0]["sha256"]
    assert admin_api.get(f"/api/exports/{export_id}/files/README.md").status_code == 200
    assert admin_api.get(f"/api/exports/{export_id}/files/..%2Fsecret").status_code == 404
    directory = exports_service.export_directory(DatasetExport.objects.get(pk=export_id))
    assert admin_api.delete(f"/api/exports/{export_id}/").status_code == 204
    assert not directory.exists() and not DatasetExport.objects.exists()


def test_the_export_command_writes_file_and_card(campaign, tmp_path, capsys):
    out = tmp_path / "out" / "prefs.parquet"
    call_command("export", campaign.slug, "--format", "trl", "--out", str(out), "--ties", "split")
    printed = json.loads(capsys.readouterr().out)
    assert out.exists() and printed["files"][0]["path"] == str(out)
    card = (tmp_path / "out" / "prefs.README.md").read_text()
    assert "prefs.parquet" in card
    assert not list((tmp_path / "out").glob(".tandem-export-*"))


def test_the_export_command_aggregates_by_dawid_skene_with_soft_labels(campaign, tmp_path, capsys):
    import pyarrow.parquet as pq

    out = tmp_path / "ds.parquet"
    call_command("export", campaign.slug, "--format", "trl", "--out", str(out), "--aggregation", "dawid_skene",
                 "--soft-labels")  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert printed["aggregation"]["method"] in ("dawid_skene", "majority")  # majority: too few raters to fit
    assert "soft_labels" in pq.read_schema(out).names
    assert "Dawid" in (tmp_path / "ds.README.md").read_text()
    with pytest.raises(CommandError, match="aggregation"):
        call_command("export", campaign.slug, "--format", "raw", "--out", str(tmp_path / "r.jsonl"),
                     "--aggregation", "dawid_skene")  # fmt: skip


def test_the_exports_page_starts_lists_and_deletes_exports(campaign, client, admin_user, annotator):
    from django.urls import reverse

    page = reverse("campaign-exports", args=[campaign.slug])
    client.force_login(annotator)
    assert client.get(page).status_code == 403
    client.force_login(admin_user)
    bad = client.post(reverse("campaign-exports-create", args=[campaign.slug]), {"format": "trl", "min_agreement": "2"},
                      follow=True)  # fmt: skip
    assert "min_agreement" in bad.content.decode() and not DatasetExport.objects.exists()
    refused = client.post(reverse("campaign-exports-create", args=[campaign.slug]), {"format": "ratings"}, follow=True)
    assert "ratings needs a rubric" in refused.content.decode() and not DatasetExport.objects.exists()
    client.post(reverse("campaign-exports-create", args=[campaign.slug]), {"format": "raw", "file_type": "csv"})
    export = DatasetExport.objects.get()
    assert export.options["format"] == "raw"
    listing = client.get(reverse("campaign-exports-list", args=[campaign.slug])).content.decode()
    assert "every 1s" in listing  # queued: the list keeps itself up to date
    job = job_run(job_id=export.job_id)
    assert job.state == Job.State.SUCCEEDED, job.error
    listing = client.get(reverse("campaign-exports-list", args=[campaign.slug])).content.decode()
    assert "every 1s" not in listing and "README.md" in listing
    export.refresh_from_db()
    download = client.get(reverse("api-export-file", args=[export.pk, export.files[0]["name"]]))
    assert download.status_code == 200  # session auth works for the page's links
    client.post(reverse("campaign-exports-delete", args=[campaign.slug, export.pk]))
    assert not DatasetExport.objects.exists()


def test_aggregation_and_soft_labels_from_the_page_and_the_api(admin_api, campaign, client, admin_user):
    from django.urls import reverse

    client.force_login(admin_user)
    form = {"format": "trl", "aggregation": "dawid_skene", "soft_labels": "on"}
    client.post(reverse("campaign-exports-create", args=[campaign.slug]), form)
    from_page = DatasetExport.objects.get()
    assert (from_page.options["aggregation"], from_page.options["soft_labels"]) == ("dawid_skene", True)
    client.post(reverse("campaign-exports-create", args=[campaign.slug]), {"format": "trl"})
    assert DatasetExport.objects.order_by("-pk").first().options["soft_labels"] is False  # an unchecked box
    page = client.get(reverse("campaign-exports", args=[campaign.slug])).content.decode()
    assert 'name="aggregation"' in page and 'name="soft_labels"' in page and "Dawid–Skene" in page

    url = f"/api/campaigns/{campaign.slug}/exports/"
    bad = admin_api.post(url, {"format": "raw", "aggregation": "dawid_skene"}, format="json")
    assert bad.status_code == 400 and "aggregation" in bad.json()
    started = admin_api.post(url, {"format": "trl", "aggregation": "dawid_skene", "soft_labels": True}, format="json")
    assert started.status_code == 202
    export = DatasetExport.objects.get(pk=started.json()["id"])
    job = job_run(job_id=export.job_id)
    assert job.state == Job.State.SUCCEEDED, job.error
    export.refresh_from_db()
    rows = [json.loads(line) for line in (exports_service.export_directory(export) / export.files[0]["name"]).open()]
    assert rows and all(row["final_source"] == "dawid_skene" and len(row["soft_labels"]) == 3 for row in rows)
    assert export.job.progress_done == export.job.progress_total == 9  # the writing pass reports progress
    card = (exports_service.export_directory(export) / "README.md").read_text()
    assert "Pairwise winner: Dawid–Skene" in card
