"""The prompt tagger end to end against the fake OpenAI-compatible server: tags parsed and cached, a second run
asks nothing, bad answers stored as failures, 429s retried, cancel and resume, the command and the API."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from rest_framework.test import APIRequestFactory, force_authenticate

from annotate.models import CampaignMember, ItemTags, Job, Judge
from jobs.runner import job_run
from routing.api_views.tagger import CampaignTags
from routing.tagger import runs  # noqa: F401  (registers the tag_items job kind, as routing's AppConfig does)
from routing.tagger.cache import cached_tags, tag_counts
from routing.tagger.prompt import PROMPT_VERSION
from routing.tagger.runs import JOB_KIND, tagging_start
from tests.factories import CampaignFactory, ItemFactory, UserFactory
from tests.fakes.openai_server import FakeOpenAIServer, FaultPlan

pytestmark = pytest.mark.django_db(transaction=True)

SUBJECT_OF = {"integral": "mathematics", "python": "computer science", "poem": "arts and creative writing"}


def _prompt_of(request: dict) -> str:
    text = request["messages"][-1]["content"]
    return text.split("[The start of the prompt]\n", 1)[1].split("\n[The end of the prompt]", 1)[0]


def tagger_answer(request: dict) -> str:
    """A chatty tagger: a sentence, then the tags in a ```json fence; the subject from a word of the prompt."""
    prompt = _prompt_of(request)
    subject = next((s for word, s in SUBJECT_OF.items() if word in prompt.lower()), "other")
    tags = {
        "subject": subject,
        "expertise_level": 4 if subject == "mathematics" else 2,
        "open_endedness": 5 if subject == "arts and creative writing" else 1,
        "safety_concern": 1,
        "complexity_of_intents": 2,
        "format_constraints": prompt.count("must"),
    }
    return f"Here is my reading of the prompt.\n```json\n{json.dumps(tags)}\n```"


@pytest.fixture
def campaign(db):
    campaign = CampaignFactory(preset_name="simple-pairwise")
    prompts = ["Solve this integral", "Fix my python loop", "Write a poem; it must rhyme", "Plan my weekend"]
    for i in range(8):
        ItemFactory(campaign=campaign, external_id=f"t{i}", prompt=f"{prompts[i % 4]} (case {i})")
    return campaign


def make_tagger(server: FakeOpenAIServer, campaign, **extra) -> Judge:
    values = {
        "name": "tagger",
        "base_url": server.base_url,
        "model": "fake-tagger",
        "concurrency": 4,
        "requests_per_minute": 600_000,
        "price_in_per_1k": Decimal("0.5"),
        "price_out_per_1k": Decimal("1.5"),
    } | extra
    judge = Judge.objects.create(**values)
    campaign.routing_params = {"tagger": {"judge": judge.name}}
    campaign.save()
    return judge


def run(campaign, judge, **kwargs) -> Job:
    return job_run(job_id=tagging_start(campaign=campaign, judge=judge, dispatch=False, **kwargs).pk)


@pytest.fixture
def fast_retries(settings):
    settings.TANDEM_JUDGE_BACKOFF = 0.01
    settings.TANDEM_JUDGE_MAX_BACKOFF = 0.05
    settings.TANDEM_JUDGE_MAX_ATTEMPTS = 3


def test_tags_are_parsed_cached_and_paid_for(campaign):
    with FakeOpenAIServer(answer=tagger_answer) as server:
        judge = make_tagger(server, campaign)
        job = run(campaign, judge)
        assert server.calls == 8
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.result["tagged"] == 8 and job.result["parse_failures"] == job.result["call_failures"] == 0
    assert job.result["prompt_version"] == PROMPT_VERSION and (job.progress_done, job.progress_total) == (8, 8)
    rows = ItemTags.objects.filter(campaign=campaign, prompt_version=PROMPT_VERSION)
    assert rows.count() == 8 and all(row.tagger_id == judge.pk and row.cost > 0 and not row.error for row in rows)
    assert Decimal(job.result["cost_this_run"]) == sum(row.cost for row in rows)
    items = {item.external_id: item.pk for item in campaign.items.all()}
    tags = cached_tags(campaign=campaign, item_ids=list(items.values()))
    assert tags[items["t0"]]["subject"] == "mathematics" and tags[items["t0"]]["expertise_level"] == 4
    assert tags[items["t2"]]["format_constraints"] == 1 and tags[items["t3"]]["subject"] == "other"


def test_a_second_run_asks_nothing(campaign, capsys):
    with FakeOpenAIServer(answer=tagger_answer) as server:
        judge = make_tagger(server, campaign)
        run(campaign, judge)
        calls = server.calls
        again = run(campaign, judge)
        call_command("tag_items", campaign.slug, "--sync")
        assert server.calls == calls
    assert again.state == Job.State.SUCCEEDED and again.result["to_tag"] == 0 and again.result["tagged"] == 0
    assert f"0 items need tags: 8 are tagged with prompt version {PROMPT_VERSION}" in capsys.readouterr().out
    assert Job.objects.filter(kind=JOB_KIND).count() == 2  # the command started no job for nothing


def test_structured_output_when_the_endpoint_supports_it(campaign):
    with FakeOpenAIServer() as server:  # the fake fills any JSON schema it is sent with valid values
        judge = make_tagger(server, campaign, capabilities={"json_schema": True})
        job = run(campaign, judge)
        formats = [request.get("response_format") for request in server.requests]
    assert job.result["tagged"] == 8, job.result
    assert all(f and f["json_schema"]["name"] == "prompt_tags" for f in formats)


def test_bad_answers_are_stored_as_failures_and_asked_again_only_on_request(campaign, capsys):
    broken = set()

    def answer(request: dict) -> str:
        prompt = _prompt_of(request)
        if "weekend" in prompt and prompt not in broken:
            broken.add(prompt)
            return "Sure! The subject is everyday life and the expertise is low."  # no JSON at all
        if "poem" in prompt and "case 2" in prompt:
            return json.dumps({**json.loads(tagger_answer(request).split("```json\n")[1].split("\n```")[0]),
                               "open_endedness": 7})  # fmt: skip
        return tagger_answer(request)

    with FakeOpenAIServer(answer=answer) as server:
        judge = make_tagger(server, campaign)
        job = run(campaign, judge)
        assert job.state == Job.State.SUCCEEDED and job.result["parse_failures"] == 3
        failed = ItemTags.objects.filter(campaign=campaign, tags__isnull=True)
        assert failed.count() == 3
        assert all(row.error.startswith("parse failure: ") and row.cost > 0 for row in failed)
        assert "open_endedness 7 is out of range" in failed.get(item__external_id="t2").error
        assert "no JSON object" in failed.get(item__external_id="t3").error
        assert len(cached_tags(campaign=campaign, item_ids=list(campaign.items.values_list("pk", flat=True)))) == 5

        calls = server.calls
        call_command("tag_items", campaign.slug)  # failures are not asked about again...
        assert server.calls == calls
        assert "3 answers did not parse (--retry-failed asks again)" in capsys.readouterr().out

        retried = run(campaign, judge, retry_failed=True)  # ...unless asked to
        assert server.calls == calls + 3
    assert retried.result["to_tag"] == 3 and retried.result["tagged"] == 2 and retried.result["parse_failures"] == 1
    assert tag_counts(campaign=campaign) | {"versions": None} == {
        "prompt_version": PROMPT_VERSION, "items": 8, "tagged": 7, "failed": 1, "missing": 0, "versions": None
    }  # fmt: skip
    assert ItemTags.objects.filter(campaign=campaign).count() == 8  # replaced in place, never a second row


def test_a_429_is_retried_and_each_prompt_paid_for_once(campaign, fast_retries):
    with FakeOpenAIServer(answer=tagger_answer, faults=FaultPlan(by_attempt={1: "429"})) as server:
        judge = make_tagger(server, campaign)
        job = run(campaign, judge)
        assert server.faults_served["429"] == 8 and server.calls == 16
        assert max(server.answered.values()) == 1
        assert server.max_in_flight <= judge.concurrency
    assert job.result["tagged"] == 8 and job.result["call_failures"] == 0


def test_calls_that_keep_failing_store_nothing_and_the_next_run_asks_again(campaign, fast_retries):
    with FakeOpenAIServer(answer=tagger_answer, faults=FaultPlan(rate=1.0, kinds=("500",))) as server:
        judge = make_tagger(server, campaign)
        job = run(campaign, judge)
    assert job.state == Job.State.SUCCEEDED and job.result["call_failures"] == 8 and job.result["tagged"] == 0
    assert "HTTP 500" in job.result["failures"][0]["error"] and job.result["failures"][0]["external_id"]
    assert not ItemTags.objects.exists()
    with FakeOpenAIServer(answer=tagger_answer) as server:
        judge.base_url = server.base_url
        judge.save()
        assert run(campaign, judge).result["tagged"] == 8


def test_a_cancelled_run_keeps_what_it_stored_and_the_next_one_resumes(campaign):
    cancelled: list[bool] = []

    def cancelling(request: dict) -> str:
        if server.calls == 3 and not cancelled:  # the first batch (one slot: 4 items) is under way: cancel now
            Job.objects.filter(kind=JOB_KIND, state=Job.State.RUNNING).update(state=Job.State.CANCELLED)
            connections.close_all()
            cancelled.append(True)
        return tagger_answer(request)

    with FakeOpenAIServer(answer=cancelling) as server:
        judge = make_tagger(server, campaign, concurrency=1)
        job = run(campaign, judge)
        assert job.state == Job.State.CANCELLED and server.calls == 4
        assert ItemTags.objects.filter(campaign=campaign).count() == 4  # the batch's answers were stored first
        server.reset()
        resumed = run(campaign, judge)
        assert server.calls == 4  # only the other four
    assert resumed.state == Job.State.SUCCEEDED and resumed.result["to_tag"] == 4
    assert ItemTags.objects.filter(campaign=campaign, tags__isnull=False).count() == 8


def test_the_command_runs_the_configured_tagger_or_says_why_not(campaign, capsys):
    with pytest.raises(CommandError, match="names no tagger"):
        call_command("tag_items", campaign.slug, "--sync")
    with pytest.raises(CommandError, match="no campaign"):
        call_command("tag_items", "no-such-campaign")
    with pytest.raises(CommandError, match="no judge named 'ghost'"):
        call_command("tag_items", campaign.slug, "--judge", "ghost")
    Judge.objects.create(name="imported", imported=True)
    with pytest.raises(CommandError, match="only holds imported labels"):
        call_command("tag_items", campaign.slug, "--judge", "imported")
    with FakeOpenAIServer(answer=tagger_answer) as server:
        make_tagger(server, campaign)
        call_command("tag_items", campaign.slug, "--sync")
    out = capsys.readouterr().out
    assert '"tagged": 8' in out and "asked about 8 items with tagger: 8 tagged, 0 answers did not parse" in out
    empty = CampaignFactory(routing_params={"tagger": {"judge": "tagger"}})
    call_command("tag_items", empty.slug)
    assert "0 items need tags: the campaign has no items" in capsys.readouterr().out


def _call(method: str, user, campaign, data=None):
    factory = APIRequestFactory()
    path = f"/api/campaigns/{campaign.slug}/tags/"
    request = factory.get(path) if method == "get" else factory.post(path, data or {}, format="json")
    if user is not None:
        force_authenticate(request, user=user)
    return CampaignTags.as_view()(request, ref=campaign.slug)


def test_the_api_is_for_the_campaigns_admins(campaign):
    admin, viewer, stranger = UserFactory(), UserFactory(), UserFactory()
    CampaignMember.objects.create(campaign=campaign, user=admin, role=CampaignMember.Role.ADMIN)
    CampaignMember.objects.create(campaign=campaign, user=viewer, role=CampaignMember.Role.VIEWER)
    campaign.annotators.add(stranger)
    assert _call("get", None, campaign).status_code in (401, 403)
    assert _call("post", stranger, campaign).status_code == 403  # an annotator of the campaign
    assert _call("get", UserFactory(), campaign).status_code == 404  # no role: the campaign does not exist
    assert _call("post", viewer, campaign).status_code == 403  # viewers read
    counts = _call("get", viewer, campaign)
    assert counts.status_code == 200
    assert counts.data == {
        "tagger": None, "prompt_version": PROMPT_VERSION, "items": 8, "tagged": 0, "failed": 0, "missing": 8,
        "versions": {},
    }  # fmt: skip
    no_tagger = _call("post", admin, campaign)
    assert no_tagger.status_code == 400 and "names no tagger" in no_tagger.data["detail"]
    Judge.objects.create(name="api-tagger", base_url="http://127.0.0.1:9/v1", model="m")
    started = _call("post", admin, campaign, {"judge": "api-tagger", "retry_failed": True})
    assert started.status_code == 202 and started.data["kind"] == JOB_KIND
    job = Job.objects.get(pk=started.data["id"])
    assert job.params["retry_failed"] is True and job.created_by == admin and job.campaign == campaign


def test_counts_per_version_keep_older_versions_apart(campaign):
    items = list(campaign.items.order_by("id"))
    ItemTags.objects.create(item=items[0], campaign=campaign, prompt_version="old1234567", tags={"subject": "law"})
    ItemTags.objects.create(item=items[0], campaign=campaign, prompt_version=PROMPT_VERSION, tags=None, error="x")
    ItemTags.objects.create(
        item=items[1], campaign=campaign, prompt_version=PROMPT_VERSION, tags={"subject": "other", "safety_concern": 2}
    )
    counts = tag_counts(campaign=campaign)
    assert (counts["tagged"], counts["failed"], counts["missing"]) == (1, 1, 6)
    assert counts["versions"] == {"old1234567": {"tagged": 1, "failed": 0}, PROMPT_VERSION: {"tagged": 1, "failed": 1}}
    # only the current version's parsed tags reach the router
    assert cached_tags(campaign=campaign, item_ids=[i.pk for i in items]) == {
        items[1].pk: {"subject": "other", "safety_concern": 2}
    }
