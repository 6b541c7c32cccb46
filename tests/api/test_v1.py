"""/api/v1/ is the API and /api/ its alias: the index, the same views under both, pages that cannot fail on a
huge or odd limit/offset, and the list filters (django-filter)."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotate.models import Annotation, Item, Job, RoutingDecision
from annotate.services.imports import items_import
from tests.conftest import jsonl, pair
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/api/", "/api/v1/"])
def test_the_index_links_schema_docs_campaigns_and_token(url):
    response = APIClient().get(url)
    assert response.status_code == 200
    links = response.json()["links"]
    assert {"schema", "docs", "redoc", "campaigns", "token"} <= links.keys()
    assert links["schema"].endswith("/api/v1/schema/") and links["docs"].endswith("/api/docs/")
    assert links["campaigns"].endswith("/api/v1/campaigns/")


def test_v1_names_sit_beside_the_alias_names():
    assert reverse("v1:api-items", args=["c"]) == "/api/v1/campaigns/c/items/"
    assert reverse("api-items", args=["c"]) == "/api/campaigns/c/items/"
    assert reverse("v1:api-judges") == "/api/v1/judges/" and reverse("api-judges") == "/api/judges/"


def test_alias_and_v1_answer_the_same(admin_api, campaign):
    v1 = admin_api.get(f"/api/v1/campaigns/{campaign.slug}/").json()
    alias = admin_api.get(f"/api/campaigns/{campaign.slug}/").json()
    assert v1 == alias and v1["slug"] == campaign.slug


@pytest.fixture
def jobs(campaign):
    return [JobFactory(campaign=campaign, kind="export") for _ in range(3)] + [
        JobFactory(campaign=campaign, kind="route", state=Job.State.SUCCEEDED)
    ]


@pytest.mark.parametrize("limit", ["2532908300732776054784", "9223372036854775808", "100000"])
def test_a_huge_limit_is_clamped_not_a_500(admin_api, jobs, limit, settings):
    settings.API_MAX_PAGE_SIZE = 2
    response = admin_api.get("/api/v1/jobs/", {"limit": limit})
    assert response.status_code == 200
    assert response.json()["count"] == 4 and len(response.json()["results"]) == 2


def test_an_offset_past_the_end_is_an_empty_page(admin_api, jobs):
    response = admin_api.get("/api/v1/jobs/", {"offset": "2532908300732776054784"})
    assert response.status_code == 200 and response.json()["results"] == []


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("limit", "0"),
        ("limit", "-1"),
        ("limit", "ten"),
        ("limit", "¹"),
        ("offset", "-5"),
        ("offset", "١٢"),
        ("limit", "1" * 40),
    ],  # fmt: skip
)
def test_a_bad_limit_or_offset_is_a_400_naming_it(admin_api, jobs, param, value):
    response = admin_api.get("/api/v1/jobs/", {param: value})
    assert response.status_code == 400 and response.json()["field"] == param


def test_jobs_filter_by_kind_and_state(admin_api, jobs, campaign):
    kinds = admin_api.get("/api/v1/jobs/", {"kind": "route"}).json()["results"]
    assert [job["kind"] for job in kinds] == ["route"]
    done = admin_api.get("/api/v1/jobs/", {"state": "succeeded", "campaign": campaign.slug}).json()
    assert done["count"] == 1
    bad = admin_api.get("/api/v1/jobs/", {"state": "exploded"})
    assert bad.status_code == 400 and bad.json()["field"] == "state"


@pytest.fixture
def items(campaign):
    items_import(
        campaign=campaign,
        stream=jsonl(pair(1, prompt="Where is Timbuktu?"), pair(2), pair(3, gold_label={"overall": -1})),
        filename="items.jsonl",
    )
    Item.objects.filter(external_id="p2").update(route=Item.Route.LLM)
    return {item.external_id: item for item in Item.objects.filter(campaign=campaign)}


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_items_filter_by_route_gold_state_and_search(admin_api, campaign, items):
    url = f"/api/v1/campaigns/{campaign.slug}/items/"
    assert _ids(admin_api.get(url, {"route": "llm"})) == ["p2"]
    assert _ids(admin_api.get(url, {"gold": "true"})) == ["p3"]
    assert _ids(admin_api.get(url, {"search": "timbuktu"})) == ["p1"]
    assert _ids(admin_api.get(url, {"search": "p3"})) == ["p3"]
    assert _ids(admin_api.get(url, {"state": "contested"})) == []
    assert len(_ids(admin_api.get(url, {"labelled": "false"}))) == 3
    assert admin_api.get(url, {"route": "moon"}).json()["field"] == "route"


def test_labels_list_filters_by_source_and_annotator(admin_api, annotator_api, annotator, campaign, items):
    lease = annotator_api.post(f"/api/v1/campaigns/{campaign.slug}/next/", {}, format="json").json()
    submitted = annotator_api.post(
        f"/api/v1/assignments/{lease['assignment']['assignment']}/submit/",
        {"label": {"overall": -1}, "justification": "clearer"},
        format="json",
    )
    assert submitted.status_code == 201
    url = f"/api/v1/campaigns/{campaign.slug}/labels/"
    rows = admin_api.get(url, {"source": "human", "annotator": annotator.username}).json()["results"]
    assert len(rows) == 1 and rows[0]["annotator"] == annotator.username and rows[0]["judge"] is None
    assert admin_api.get(url, {"search": "clearer"}).json()["count"] == 1
    assert admin_api.get(url, {"source": "judge"}).json()["count"] == 0
    assert annotator_api.get(url).status_code in (403, 404)  # annotators never read other people's labels
    assert Annotation.objects.count() == 1


def test_decisions_list_filters_by_destination(admin_api, campaign, items):
    for external_id, destination in (("p1", "human"), ("p2", "llm")):
        RoutingDecision.objects.create(
            campaign=campaign, item=items[external_id], destination=destination, policy="budget"
        )
    url = f"/api/v1/campaigns/{campaign.slug}/decisions/"
    rows = admin_api.get(url, {"destination": "llm"}).json()["results"]
    assert {row["item"] for row in rows} == {items["p2"].pk}
    of_p1 = admin_api.get(url, {"item": "p1"}).json()
    assert of_p1["count"] == RoutingDecision.objects.filter(item=items["p1"]).count() >= 1
    assert {row["item"] for row in of_p1["results"]} == {items["p1"].pk}


def test_exports_list_filters_by_complete(admin_api, campaign):
    url = f"/api/v1/campaigns/{campaign.slug}/exports/"
    started = admin_api.post(url, {"format": "trl"}, format="json")
    assert started.status_code == 202
    assert len(admin_api.get(url, {"complete": "false"}).json()) == 1
    assert admin_api.get(url, {"complete": "true"}).json() == []
