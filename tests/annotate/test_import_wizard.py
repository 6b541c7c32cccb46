"""The import wizard and its twins: column mapping (one function for the page, the API and the command),
preview and dry run through the importer's own code, uploads by token, background imports with progress."""

import csv
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from annotate.models import CampaignMember, Item, Job
from annotate.services.imports import MappingError, items_import, items_preview, mapping_parse
from annotate.services.imports import items as items_module
from annotate.services.imports.mapping import mapping_apply
from annotate.views import imports as import_views
from jobs.runner import job_run
from tests.conftest import jsonl, pair
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def upload_dir(settings, tmp_path):
    settings.TANDEM_UPLOAD_DIR = tmp_path / "uploads"
    return settings.TANDEM_UPLOAD_DIR / "wizard"


def csv_bytes(header, *rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


QUIZ_HEADER = ["qid", "question", "answer1", "answer2", "topic", "source"]
QUIZ = [[f"q{i}", f"What is {i}+{i}?", f"It is {2 * i}.", f"Maybe {i}.", "math", "quiz"] for i in range(3)]
QUIZ_MAP = {"id": "qid", "prompt": "question", "response_a": "answer1", "response_b": "answer2", "metadata": ["topic"]}


# --- the mapping --------------------------------------------------------------------------------


def test_mapping_spellings_meet_in_one_normal_form():
    expected = {"prompt": "question", "response_a": "a1", "metadata": ["topic", "source"]}
    assert mapping_parse(["prompt=question", "response_a=a1", "metadata=topic", "metadata=source"]) == expected
    assert mapping_parse({"prompt": "question", "response_a": "a1", "metadata": ["topic", "source"]}) == expected
    assert mapping_parse(json.dumps(expected)) == expected
    assert mapping_parse(None) == mapping_parse("") == {}


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (["answer=a1"], "'answer' is not a field"),
        (["prompt=q", "prompt=r"], "prompt is mapped twice"),
        (["prompt=q", "reference=q"], "column 'q' is mapped twice"),
        (["prompt"], "field=column"),
        ({"prompt": ""}, "non-empty"),
        ("{not json", "not valid JSON"),
    ],
)
def test_a_mapping_that_cannot_work_says_why(value, words):
    with pytest.raises(MappingError, match=words):
        mapping_parse(value)


def test_mapping_renames_columns_and_never_drops_one():
    row = {"question": "Q?", "prompt": "an old prompt column", "topic": "math", "extra": 1}
    mapped = mapping_apply(row, mapping_parse({"prompt": "question"}))
    # "prompt" would be overwritten by the mapped column: it is kept in metadata instead.
    assert mapped == {"prompt": "Q?", "topic": "math", "extra": 1, "metadata": {"prompt": "an old prompt column"}}
    mapped = mapping_apply(row, mapping_parse({"prompt": "question", "metadata": ["topic"]}))
    assert mapped == {"prompt": "Q?", "extra": 1, "metadata": {"topic": "math", "prompt": "an old prompt column"}}


# --- preview and dry run -------------------------------------------------------------------------


def test_preview_shows_rows_as_stored_and_says_when_the_layout_is_unknown(campaign):
    data = csv_bytes(QUIZ_HEADER, *QUIZ)
    unknown = items_preview(campaign=campaign, stream=io.BytesIO(data), filename="quiz.csv")
    assert not unknown.recognised and unknown.columns == QUIZ_HEADER
    assert unknown.rows[0].error.field == "response_a" and unknown.rows[0].error.where == "line 2"
    mapped = items_preview(campaign=campaign, stream=io.BytesIO(data), filename="quiz.csv", mapping=QUIZ_MAP)
    assert mapped.recognised
    item = mapped.rows[1].item
    assert (item.external_id, item.prompt, item.response_a, item.response_b) == (
        "q1",
        "What is 1+1?",
        "It is 2.",
        "Maybe 1.",
    )
    assert item.metadata == {"topic": "math", "source": "quiz"}  # unmapped columns still land in metadata
    assert Item.objects.count() == 0


def test_a_missing_mapped_column_is_named_in_the_error(campaign):
    report = items_import(
        campaign=campaign,
        stream=io.BytesIO(csv_bytes(QUIZ_HEADER, *QUIZ)),
        filename="quiz.csv",
        mapping={**QUIZ_MAP, "prompt": "questoin"},
        dry_run=True,
    )
    assert report.errors[0].field == "prompt (column 'questoin')" and report.errors[0].where == "line 2"


def test_dry_run_counts_what_the_import_would_do_and_writes_nothing(campaign):
    items_import(campaign=campaign, stream=jsonl(pair(1), pair(2)), filename="first.jsonl")
    before = list(Item.objects.values_list("external_id", "content_hash"))
    rows = [pair(1), pair(2, response_b="Changed"), pair(3), pair(4)]
    report = items_import(campaign=campaign, stream=jsonl(*rows), filename="second.jsonl", dry_run=True)
    assert (report.rows, report.created, report.unchanged, report.n_conflicts) == (4, 2, 1, 1)
    assert report.conflicts[0]["id"] == "p2" and report.conflicts[0]["fields"] == ["response_b"]
    assert report.valid and report.as_dict()["dry_run"] is True
    assert list(Item.objects.values_list("external_id", "content_hash")) == before
    real = items_import(campaign=campaign, stream=jsonl(*rows), filename="second.jsonl")
    assert (real.created, real.unchanged, real.n_conflicts) == (report.created, report.unchanged, report.n_conflicts)


def test_dry_run_lists_every_problem_with_line_and_field(campaign):
    rows = [pair(1), {"id": "p2", "prompt": "Q", "response_a": "A"}, "{broken", pair(1)]
    report = items_import(campaign=campaign, stream=jsonl(*rows), filename="bad.jsonl", dry_run=True)
    found = [(e.where, e.field) for e in report.errors]
    assert found == [("line 2", "response_b"), ("line 3", ""), ("line 4", "id")]
    assert "invalid JSON" in report.errors[1].message and "duplicate id" in report.errors[2].message
    assert not report.valid and Item.objects.count() == 0


def test_a_long_import_reports_progress_as_it_goes(campaign, monkeypatch, tmp_path):
    monkeypatch.setattr(items_module, "PROGRESS_EVERY", 10)
    path = tmp_path / "many.jsonl"
    path.write_bytes(jsonl(*[pair(i) for i in range(50)]).getvalue())
    calls = []
    with path.open("rb") as stream:
        items_import(campaign=campaign, stream=stream, filename="many.jsonl", progress=lambda **kw: calls.append(kw))
    assert [c["done"] for c in calls] == [10, 20, 30, 40, 50]
    totals = [c["total"] for c in calls]
    # A file read line by line gives an estimate of the total from how far in the reader is.
    assert all(t is None or t >= c["done"] for t, c in zip(totals, calls, strict=True))
    assert any(t is not None and 40 <= t <= 60 for t in totals[:3])


# --- command line and API ------------------------------------------------------------------------


def test_command_takes_a_mapping(campaign, tmp_path, capsys):
    path = tmp_path / "quiz.csv"
    path.write_bytes(csv_bytes(QUIZ_HEADER, *QUIZ))
    args = ["--map", "id=qid", "--map", "prompt=question", "--map", "response_a=answer1", "--map", "response_b=answer2"]
    call_command("import_items", campaign.slug, str(path), *args)
    assert json.loads(capsys.readouterr().out)["created"] == 3
    assert Item.objects.get(external_id="q2").response_a == "It is 4."
    with pytest.raises(CommandError, match="--map: 'answer' is not a field"):
        call_command("import_items", campaign.slug, str(path), "--map", "answer=answer1")


def _named(data: bytes, name: str):
    stream = io.BytesIO(data)
    stream.name = name
    return stream


def test_api_dry_run_and_mapping(admin_api, campaign):
    url = f"/api/campaigns/{campaign.slug}/items/import/"
    data = csv_bytes(QUIZ_HEADER, *QUIZ)
    mapping = json.dumps(QUIZ_MAP)
    dry = admin_api.post(f"{url}?dry_run=1", {"file": _named(data, "quiz.csv"), "mapping": mapping}, format="multipart")
    assert dry.status_code == 200, dry.content
    assert (dry.json()["created"], dry.json()["valid"], dry.json()["errors"]) == (3, True, [])
    assert Item.objects.count() == 0
    bad = admin_api.post(f"{url}?dry_run=1", {"file": _named(data, "quiz.csv")}, format="multipart")
    assert bad.status_code == 200 and not bad.json()["valid"]
    assert bad.json()["errors"][0] | {"file": None} == {
        "file": None,
        "where": "line 2",
        "field": "response_a",
        "message": bad.json()["errors"][0]["message"],
    }
    wrong = admin_api.post(url, {"file": _named(data, "quiz.csv"), "mapping": '{"answer": "x"}'}, format="multipart")
    assert wrong.status_code == 400 and "mapping" in wrong.json()
    done = admin_api.post(url, {"file": _named(data, "quiz.csv"), "mapping": mapping}, format="multipart")
    assert done.status_code == 201 and done.json()["created"] == 3
    assert Item.objects.get(external_id="q0").metadata == {"topic": "math", "source": "quiz"}


# --- the wizard ------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def _upload(client, campaign, data: bytes | None = None, name: str = "items.jsonl", paste: str = ""):
    form = {"paste": paste}
    if data is not None:
        form["file"] = _named(data, name)
    return client.post(reverse("campaign-import-upload", args=[campaign.slug]), form)


def _token(response) -> str:
    assert response.status_code == 302, response.content.decode()[:2000]
    return response["Location"].rstrip("/").rsplit("/", 1)[-1]


def test_the_page_is_for_owners_and_admins(client, campaign):
    viewer = UserFactory()
    CampaignMember.objects.create(campaign=campaign, user=viewer, role=CampaignMember.Role.VIEWER)
    client.force_login(viewer)
    assert client.get(reverse("campaign-import", args=[campaign.slug])).status_code == 403
    assert _upload(client, campaign, jsonl(pair(1)).getvalue()).status_code == 403
    admin = UserFactory()
    CampaignMember.objects.create(campaign=campaign, user=admin, role=CampaignMember.Role.ADMIN)
    client.force_login(admin)
    page = client.get(reverse("campaign-import", args=[campaign.slug]))
    assert page.status_code == 200 and b'aria-current="page">Import' in page.content


def test_a_bad_row_is_shown_with_line_and_field_and_nothing_is_written(admin_client, campaign):
    bad = jsonl(pair(1), {"id": "p2", "prompt": "Q", "response_a": "A"}, pair(3)).getvalue()
    token = _token(_upload(admin_client, campaign, bad))
    review = admin_client.get(reverse("campaign-import-review", args=[campaign.slug, token]))
    html = review.content.decode()
    assert review.status_code == 200
    assert "line 2" in html and "<code>response_b</code>" in html and "missing" in html
    assert 'id="import-run" disabled' in html
    run = admin_client.post(reverse("campaign-import-run", args=[campaign.slug, token]))
    assert run.status_code == 400 and "Nothing was imported" in run.content.decode()
    assert Item.objects.count() == 0


def test_upload_preview_import_and_reimport(admin_client, campaign, upload_dir):
    rows = [pair(i, model_a="m1", model_b="m2", metadata={"domain": "math"}) for i in range(12)]
    rows[0]["prompt"] = [{"role": "user", "content": "Hello **there**"}]
    data = jsonl(*rows).getvalue()
    token = _token(_upload(admin_client, campaign, data))
    html = admin_client.get(reverse("campaign-import-review", args=[campaign.slug, token])).content.decode()
    assert html.count("<code>p") >= 10 and "<code>p10</code>" not in html  # the first 10 rows only
    assert "<strong>there</strong>" in html and "role-user" in html  # chat prompt, through the markdown filter
    assert 'id="count-created">12<' in html and "No problems found" in html
    done = admin_client.post(reverse("campaign-import-run", args=[campaign.slug, token]))
    page = done.content.decode()
    assert done.status_code == 200 and 'id="done-created">12<' in page and f'href="/c/{campaign.slug}/"' in page
    assert Item.objects.filter(campaign=campaign).count() == 12
    assert list(upload_dir.iterdir()) == []  # the upload is cleaned up
    token = _token(_upload(admin_client, campaign, data))
    html = admin_client.get(reverse("campaign-import-review", args=[campaign.slug, token])).content.decode()
    assert 'id="count-unchanged">12<' in html and 'id="count-created">0<' in html
    again = admin_client.post(reverse("campaign-import-run", args=[campaign.slug, token])).content.decode()
    assert 'id="done-unchanged">12<' in again and 'id="done-created">0<' in again


def test_the_mapping_path_for_an_unrecognised_csv(admin_client, campaign):
    token = _token(_upload(admin_client, campaign, csv_bytes(QUIZ_HEADER, *QUIZ), name="quiz.csv"))
    review_url = reverse("campaign-import-review", args=[campaign.slug, token])
    html = admin_client.get(review_url).content.decode()
    assert "the layout is not recognised" in html and '<details id="mapping" open>' in html
    form = {"column": QUIZ_HEADER, "target": ["id", "prompt", "response_a", "response_b", "metadata", ""]}
    mapped = admin_client.post(review_url, form, HTTP_HX_REQUEST="true")
    html = mapped.content.decode()
    assert mapped.status_code == 200 and html.startswith('<div id="review">')
    assert "<code>q1</code>" in html and "What is 1+1?" in html and "No problems found" in html
    twice = admin_client.post(review_url, {**form, "target": ["id", "prompt", "prompt", "response_b", "", ""]})
    assert twice.status_code == 400 and "prompt is mapped twice" in twice.content.decode()
    admin_client.post(reverse("campaign-import-run", args=[campaign.slug, token]), form)
    item = Item.objects.get(campaign=campaign, external_id="q2")
    assert (item.prompt, item.response_b, item.metadata) == (
        "What is 2+2?",
        "Maybe 2.",
        {"topic": "math", "source": "quiz"},
    )


def test_pasted_rows_import(admin_client, campaign):
    pasted = "\n".join(json.dumps(pair(i)) for i in range(3))
    token = _token(_upload(admin_client, campaign, paste=pasted))
    html = admin_client.get(reverse("campaign-import-review", args=[campaign.slug, token])).content.decode()
    assert "pasted.jsonl" in html and 'id="count-created">3<' in html
    pasted_csv = "id,prompt,response_a,response_b\nc1,Q?,A,B\n"
    token = _token(_upload(admin_client, campaign, paste=pasted_csv))
    admin_client.post(reverse("campaign-import-run", args=[campaign.slug, token]))
    assert Item.objects.filter(external_id="c1").exists()


@pytest.mark.parametrize(
    ("data", "name", "paste", "field", "words"),
    [
        (None, "", "   ", "file", "Choose a file, or paste a few rows"),
        (b"id,prompt\n", "items.txt", "", "file", "is not a file Tandem reads"),
        (b"", "items.jsonl", "", "file", "is empty"),
        (b"not parquet at all", "items.parquet", "", "file", "not a readable Parquet file"),
        (b"\xff\xfe\x00garbage\n", "items.jsonl", "", "file", "not valid UTF-8"),
        (b"id,prompt\n", "items.csv", "id,prompt", "file", "not both"),
        (None, "", "id,prompt\n", "paste", "the file has no rows"),
    ],
)
def test_bad_input_gets_a_message_at_the_field(admin_client, campaign, upload_dir, data, name, paste, field, words):
    response = _upload(admin_client, campaign, data, name=name, paste=paste)
    html = response.content.decode()
    assert response.status_code == 400
    message = html.split(f'id="error-{field}"', 1)[1].split("</p>", 1)[0]
    assert words in message, message
    assert not upload_dir.exists() or list(upload_dir.iterdir()) == []


def test_too_large_an_upload_is_refused_at_the_field(admin_client, campaign, settings, upload_dir):
    settings.TANDEM_IMPORT_MAX_FILE_BYTES = 100
    response = _upload(admin_client, campaign, jsonl(*[pair(i) for i in range(20)]).getvalue())
    message = response.content.decode().split('id="error-file"', 1)[1].split("</p>", 1)[0]
    assert response.status_code == 400 and "the limit is 100 bytes" in message


def test_an_upload_token_belongs_to_its_campaign_and_user(admin_client, client, campaign, multipref):
    token = _token(_upload(admin_client, campaign, jsonl(pair(1)).getvalue()))
    other = reverse("campaign-import-review", args=[multipref.slug, token])
    assert "no longer here" in admin_client.get(other).content.decode()
    stranger = UserFactory()
    CampaignMember.objects.create(campaign=campaign, user=stranger, role=CampaignMember.Role.OWNER)
    client.force_login(stranger)
    assert (
        "no longer here" in client.get(reverse("campaign-import-review", args=[campaign.slug, token])).content.decode()
    )
    assert client.post(reverse("campaign-import-run", args=[campaign.slug, token])).status_code == 400
    assert (
        "no longer here"
        in client.get(reverse("campaign-import-review", args=[campaign.slug, "Z" * 32])).content.decode()
    )
    assert Item.objects.count() == 0


def test_discard_removes_the_upload(admin_client, campaign, upload_dir):
    token = _token(_upload(admin_client, campaign, jsonl(pair(1)).getvalue()))
    assert len(list(upload_dir.iterdir())) == 2  # the file and its note
    response = admin_client.post(reverse("campaign-import-discard", args=[campaign.slug, token]))
    assert response.status_code == 302 and list(upload_dir.iterdir()) == []


@pytest.mark.django_db(transaction=True)  # the job's progress is written on its own connection
def test_a_large_import_runs_as_a_job_with_a_progress_bar(admin_client, campaign, upload_dir, monkeypatch):
    monkeypatch.setattr(import_views, "BACKGROUND_BYTES", 50)  # this file counts as large
    data = csv_bytes(QUIZ_HEADER, *QUIZ)
    token = _token(_upload(admin_client, campaign, data, name="quiz.csv"))
    review = admin_client.get(reverse("campaign-import-review", args=[campaign.slug, token])).content.decode()
    assert 'id="import-background" checked disabled' in review
    form = {"column": QUIZ_HEADER, "target": ["id", "prompt", "response_a", "response_b", "", ""]}
    started = admin_client.post(reverse("campaign-import-run", args=[campaign.slug, token]), form)
    job = Job.objects.get(kind="import_items", campaign=campaign)
    assert started.status_code == 302 and started["Location"] == reverse(
        "campaign-import-job", args=[campaign.slug, job.pk]
    )
    assert job.params["mapping"]["prompt"] == "question" and "path" in job.params
    waiting = admin_client.get(started["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert 'id="import-progress"' in waiting and 'hx-trigger="every 1s"' in waiting
    job_run(job_id=job.pk)
    done = admin_client.get(started["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert 'id="done-created">3<' in done and "hx-trigger" not in done
    assert Item.objects.filter(campaign=campaign).count() == 3
    assert list(upload_dir.iterdir()) == []
    job.refresh_from_db()
    assert (job.progress_done, job.progress_total) == (3, 3)
