"""The adjudication queue: contested items, final labels with a reason and revisions, the review page and API,
the reviewer role on the People tab and the home page."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotate.models import Adjudication, CampaignMember, Item, JudgeVerdict
from annotate.services.quality.review import (
    ReviewError,
    adjudication_record,
    contested_items,
    review_counts,
    review_item,
)
from tests.factories import AnnotationFactory, CampaignFactory, ItemFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(db):
    """A campaign with one contested item labelled by two named annotators, a settled item, and its people."""
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=2, overlap_max=2)
    contested = ItemFactory(
        campaign=campaign,
        route=Item.Route.HUMAN,
        review_state=Item.ReviewState.CONTESTED,
        prompt="What is **2+2**?",
        response_a="Four.",
        response_b="<script>alert('x')</script>Five.",
    )
    settled = ItemFactory(campaign=campaign, route=Item.Route.HUMAN)
    alice, bob = UserFactory(username="alice-annotator"), UserFactory(username="bob-annotator")
    AnnotationFactory(item=contested, annotator=alice, label={"overall": -1}, justification="A is *right*.")
    AnnotationFactory(
        item=contested, annotator=bob, label={"overall": 1}, justification="<img src=x onerror=alert(1)>B"
    )
    JudgeVerdict.objects.create(campaign=campaign, item=contested, label={"overall": -1}, confidence=0.8)
    people = {role: UserFactory(username=f"the-{role}") for role in ("owner", "admin", "viewer", "reviewer")}
    for role, user in people.items():
        CampaignMember.objects.create(campaign=campaign, user=user, role=role)
    annotator = UserFactory(username="pool-annotator")
    campaign.annotators.add(annotator, alice, bob)
    return {"campaign": campaign, "item": contested, "settled": settled, "annotator": annotator, **people}


# --- the service -------------------------------------------------------------------------------


def test_contested_items_and_counts(setup):
    campaign = setup["campaign"]
    assert list(contested_items(campaign=campaign, state="contested")) == [setup["item"]]
    assert list(contested_items(campaign=campaign, state="adjudicated")) == []
    assert review_counts(campaign=campaign) == {"contested": 1, "adjudicated": 0}
    with pytest.raises(ReviewError, match="state: choose one of"):
        contested_items(campaign=campaign, state="open")


def test_recording_a_final_label_adjudicates_and_a_new_one_is_a_revision(setup):
    item, reviewer = setup["item"], setup["reviewer"]
    first = adjudication_record(item=item, reviewer=reviewer, label={"overall": -1}, reason="  A is right.  ")
    item.refresh_from_db()
    assert (item.review_state, first.revision, first.reason, first.label) == (
        "adjudicated",
        1,
        "A is right.",
        {"overall": -1},
    )
    same = adjudication_record(item=item, reviewer=reviewer, label={"overall": -1}, reason="A is right.")
    assert same.revision == 1  # nothing changed: no new revision
    again = adjudication_record(
        item=item, reviewer=setup["admin"], label={"overall": 0}, reason="On reflection, a tie."
    )
    assert (again.pk, again.revision, again.reviewer, again.label) == (first.pk, 2, setup["admin"], {"overall": 0})
    assert Adjudication.objects.count() == 1
    assert review_counts(campaign=setup["campaign"]) == {"contested": 0, "adjudicated": 1}


@pytest.mark.parametrize(
    ("label", "reason", "field"),
    [
        ({"overall": 1}, "   ", "reason"),
        ({"overall": 5}, "why", "label.overall"),
        ({"overall": 1, "style": 1}, "why", "label.style"),
        ({}, "why", "label.overall"),
        ("B", "why", "label"),
    ],
)
def test_bad_final_labels_are_refused_with_the_field(setup, label, reason, field):
    with pytest.raises(ReviewError) as caught:
        adjudication_record(item=setup["item"], reviewer=setup["reviewer"], label=label, reason=reason)
    assert caught.value.field == field and caught.value.status == 400
    assert not Adjudication.objects.exists()


def test_only_contested_items_and_only_reviewers(setup):
    with pytest.raises(ReviewError, match="not contested") as caught:
        adjudication_record(item=setup["settled"], reviewer=setup["reviewer"], label={"overall": 1}, reason="x")
    assert caught.value.status == 409
    for who in ("viewer", "annotator"):
        with pytest.raises(ReviewError, match="Only the reviewers") as caught:
            adjudication_record(item=setup["item"], reviewer=setup[who], label={"overall": 1}, reason="x")
        assert caught.value.status == 403


def test_annotators_are_numbered_unless_the_campaign_shows_identities(setup):
    campaign = setup["campaign"]
    found = review_item(campaign=campaign, item_id=setup["item"].pk)
    assert [row["who"] for row in found.labels] == ["Annotator 1", "Annotator 2"]
    assert found.verdict.label == {"overall": -1}
    campaign.reviewers_see_identities = True
    assert [row["who"] for row in review_item(campaign=campaign, item_id=setup["item"].pk).labels] == [
        "alice-annotator",
        "bob-annotator",
    ]
    assert review_item(campaign=campaign, item_id=setup["settled"].pk) is None


# --- the page ----------------------------------------------------------------------------------


def _page(client, user, url, **kw):
    client.force_login(user)
    return client.get(url, **kw)


def test_the_reviewer_sees_the_queue_and_the_item_without_names(client, setup):
    campaign, item = setup["campaign"], setup["item"]
    response = _page(client, setup["reviewer"], reverse("campaign-review", args=[campaign.slug]))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-item="{item.pk}"' in html and f'data-item="{setup["settled"].pk}"' not in html
    assert f'href="/c/{campaign.slug}/settings/"' not in html  # the reviewer's only tab is Review
    response = client.get(reverse("campaign-review-item", args=[campaign.slug, item.pk]), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "Annotator 1" in html and "Annotator 2" in html
    assert "alice-annotator" not in html and "bob-annotator" not in html
    assert "<strong>2+2</strong>" in html  # Markdown, through the sanitizing filter ...
    assert "<script>" not in html and "<img" not in html  # ... which shows raw HTML as text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "A is better (-1)" in html  # a label in words; the verdict too
    assert 'name="csrfmiddlewaretoken"' in html and 'name="label.overall"' in html and 'name="reason"' in html


def test_admins_see_the_review_tab_among_the_others(client, setup):
    response = _page(client, setup["admin"], reverse("campaign-review", args=[setup["campaign"].slug]))
    html = response.content.decode()
    assert response.status_code == 200
    slug = setup["campaign"].slug
    assert f'href="/c/{slug}/settings/"' in html
    assert f'href="/c/{slug}/review/" aria-current="page"' in html
    assert f'href="/c/{slug}/flags/"' in html


def test_identities_are_shown_when_the_campaign_allows(client, setup):
    campaign = setup["campaign"]
    campaign.reviewers_see_identities = True
    campaign.save()
    response = _page(client, setup["reviewer"], reverse("campaign-review-item", args=[campaign.slug, setup["item"].pk]))
    assert "alice-annotator" in response.content.decode()


@pytest.mark.parametrize("who", ["annotator", "viewer"])
def test_annotators_and_viewers_are_refused(client, setup, who):
    campaign = setup["campaign"]
    assert _page(client, setup[who], reverse("campaign-review", args=[campaign.slug])).status_code == 403
    response = client.post(
        reverse("campaign-review-adjudicate", args=[campaign.slug, setup["item"].pk]),
        {"label.overall": "1", "reason": "x"},
    )
    assert response.status_code == 403 and not Adjudication.objects.exists()


def test_recording_on_the_page_swaps_the_item_and_refreshes_the_list(client, setup):
    campaign, item = setup["campaign"], setup["item"]
    client.force_login(setup["reviewer"])
    url = reverse("campaign-review-adjudicate", args=[campaign.slug, item.pk])
    response = client.post(url, {"label.overall": "-1", "reason": ""}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and "say why" in response.content.decode()
    assert response.content.decode().count("checked") == 1  # the chosen point is kept
    response = client.post(url, {"label.overall": "-1", "reason": "A is right."}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response["HX-Trigger"] == "review-changed"
    assert "Final label recorded." in response.content.decode()
    item.refresh_from_db()
    assert item.review_state == "adjudicated" and item.adjudication.label == {"overall": -1}
    listed = client.get(reverse("campaign-review-list", args=[campaign.slug]), {"state": "adjudicated"})
    assert f'data-item="{item.pk}"' in listed.content.decode()


def test_recording_without_htmx_redirects_to_the_item(client, setup):
    campaign, item = setup["campaign"], setup["item"]
    client.force_login(setup["owner"])
    response = client.post(
        reverse("campaign-review-adjudicate", args=[campaign.slug, item.pk]), {"label.overall": "1", "reason": "B."}
    )
    assert response.status_code == 302 and f"item={item.pk}" in response["Location"]
    page = client.get(response["Location"])
    assert "Final label recorded." in page.content.decode() and "Recorded by the-owner" in page.content.decode()


def test_an_item_not_in_review_is_not_found(client, setup):
    response = _page(
        client, setup["reviewer"], reverse("campaign-review-item", args=[setup["campaign"].slug, setup["settled"].pk])
    )
    assert response.status_code == 404


# --- the API -----------------------------------------------------------------------------------


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_api_lists_shows_and_records(setup):
    campaign, item = setup["campaign"], setup["item"]
    api = _api(setup["reviewer"])
    listed = api.get(f"/api/campaigns/{campaign.slug}/review/").json()
    assert listed["counts"] == {"contested": 1, "adjudicated": 0}
    assert [row["id"] for row in listed["items"]] == [item.pk]
    detail = api.get(f"/api/campaigns/{campaign.pk}/review/{item.pk}/").json()
    assert [row["annotator"] for row in detail["labels"]] == ["Annotator 1", "Annotator 2"]
    assert detail["judge_verdict"]["label"] == {"overall": -1} and detail["adjudication"] is None
    assert "alice-annotator" not in str(detail)
    url = f"/api/campaigns/{campaign.slug}/review/{item.pk}/"
    bad = api.post(url, {"label": {"overall": 9}, "reason": "x"}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "label.overall"
    first = api.post(url, {"label": {"overall": 1}, "reason": "B is right."}, format="json")
    assert first.status_code == 201 and first.json()["revision"] == 1
    second = api.post(url, {"label": {"overall": -1}, "reason": "No: A."}, format="json")
    assert second.status_code == 200 and second.json()["revision"] == 2
    assert api.get(url).json()["adjudication"]["label"] == {"overall": -1}
    assert (
        api.get(f"/api/campaigns/{campaign.slug}/review/", {"state": "adjudicated"}).json()["items"][0]["revision"] == 2
    )


def test_the_api_refuses_annotators_and_viewers(setup):
    campaign, item = setup["campaign"], setup["item"]
    for who in ("annotator", "viewer"):
        api = _api(setup[who])
        assert api.get(f"/api/campaigns/{campaign.slug}/review/").status_code == 403
        answer = api.post(
            f"/api/campaigns/{campaign.slug}/review/{item.pk}/", {"label": {"overall": 1}, "reason": "x"}, format="json"
        )
        assert answer.status_code == 403
    assert not Adjudication.objects.exists()


# --- the reviewer role -------------------------------------------------------------------------


def test_an_admin_gives_and_takes_the_reviewer_role_on_the_people_tab(client, setup):
    campaign, newcomer = setup["campaign"], UserFactory(username="newcomer")
    client.force_login(setup["admin"])
    page = client.get(reverse("campaign-people", args=[campaign.slug])).content.decode()
    assert "Make a reviewer" in page
    response = client.post(
        reverse("campaign-people-role-add", args=[campaign.slug]), {"username": "newcomer", "role": "reviewer"}
    )
    assert response.status_code == 302
    assert CampaignMember.objects.get(campaign=campaign, user=newcomer).role == "reviewer"
    # An admin may not turn a reviewer into a viewer, nor make a viewer a reviewer: that is the owners'.
    change = reverse("campaign-people-role-change", args=[campaign.slug, newcomer.pk])
    assert client.post(change, {"role": "viewer"}).status_code == 403
    assert (
        client.post(
            reverse("campaign-people-role-change", args=[campaign.slug, setup["viewer"].pk]), {"role": "reviewer"}
        ).status_code
        == 403
    )
    response = client.post(reverse("campaign-people-role-remove", args=[campaign.slug, newcomer.pk]))
    assert response.status_code == 302 and not CampaignMember.objects.filter(user=newcomer).exists()
    assert (
        client.post(reverse("campaign-people-role-remove", args=[campaign.slug, setup["viewer"].pk])).status_code == 403
    )


def test_an_owner_makes_a_viewer_a_reviewer(client, setup):
    campaign = setup["campaign"]
    client.force_login(setup["owner"])
    page = client.get(reverse("campaign-people", args=[campaign.slug])).content.decode()
    assert '<option value="reviewer"' in page
    response = client.post(
        reverse("campaign-people-role-change", args=[campaign.slug, setup["viewer"].pk]), {"role": "reviewer"}
    )
    assert response.status_code == 302
    assert CampaignMember.objects.get(campaign=campaign, user=setup["viewer"]).role == "reviewer"


def test_the_api_gives_the_reviewer_role_to_admins_callers(setup):
    campaign, newcomer = setup["campaign"], UserFactory(username="api-newcomer")
    api = _api(setup["admin"])
    answer = api.post(
        f"/api/campaigns/{campaign.slug}/members/", {"username": "api-newcomer", "role": "reviewer"}, format="json"
    )
    assert answer.status_code == 201, answer.content
    assert (
        api.post(
            f"/api/campaigns/{campaign.slug}/members/", {"username": "api-newcomer", "role": "viewer"}, format="json"
        ).status_code
        == 403
    )
    assert (
        api.patch(
            f"/api/campaigns/{campaign.slug}/members/{newcomer.pk}/", {"role": "admin"}, format="json"
        ).status_code
        == 403
    )
    assert api.delete(f"/api/campaigns/{campaign.slug}/members/{newcomer.pk}/").status_code == 204


def test_the_home_page_lists_the_campaigns_i_review(client, setup):
    campaign = setup["campaign"]
    page = _page(client, setup["reviewer"], reverse("home")).content.decode()
    assert 'id="campaigns-i-review"' in page
    assert f'href="/c/{campaign.slug}/review/"' in page
    assert 'id="campaigns-i-run"' not in page  # a reviewer runs nothing
    owner_page = _page(client, setup["owner"], reverse("home")).content.decode()
    assert 'id="campaigns-i-review"' not in owner_page
    assert reverse("campaign-review", args=[campaign.slug]) in owner_page
