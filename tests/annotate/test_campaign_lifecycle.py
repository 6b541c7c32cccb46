"""Campaign lifecycle: states and their guards, the new-campaign and settings pages with the live
preview, copying, the commands, the API twins, and what annotators see of a campaign not open to them."""

import json
from html import unescape
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from annotate.models import Campaign, CampaignMember
from annotate.services.campaigns import (
    CampaignError,
    campaign_copy,
    campaign_notices,
    campaign_state_set,
    campaign_update,
    state_from_word,
)

from ..conftest import jsonl, pair
from ..factories import AnnotationFactory, CampaignFactory, ItemFactory, UserFactory

pytestmark = pytest.mark.django_db


def staff(**extra):
    return UserFactory(is_staff=True, **extra)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- states -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "to", "ok"),
    [
        ("draft", "open", True),
        ("draft", "closed", True),
        ("draft", "paused", False),
        ("open", "paused", True),
        ("open", "closed", True),
        ("open", "draft", False),
        ("paused", "open", True),
        ("paused", "closed", True),
        ("closed", "open", True),
        ("closed", "paused", False),
    ],
)
def test_the_lifecycle_allows_only_its_moves(start, to, ok):
    campaign = CampaignFactory(state=start)
    if ok:
        assert campaign_state_set(campaign=campaign, state=to).state == to
        assert Campaign.objects.get(pk=campaign.pk).state == to
    else:
        with pytest.raises(CampaignError, match=f"a {start} campaign can only become"):
            campaign_state_set(campaign=campaign, state=to)
        assert Campaign.objects.get(pk=campaign.pk).state == start


def test_state_words_people_type():
    assert state_from_word("Open") == "open" and state_from_word("pause") == "paused"
    assert state_from_word("close") == "closed" and state_from_word("reopen") == "open"
    with pytest.raises(CampaignError, match="'active' is called 'open'"):
        state_from_word("active")
    with pytest.raises(CampaignError, match="not one of draft, open, paused, closed"):
        state_from_word("live")


def test_notices_say_why_annotators_see_nothing():
    campaign = CampaignFactory(state="draft", gold_rate=0.1)
    notices = " ".join(campaign_notices(campaign=campaign))
    assert "draft" in notices and "no items yet" in notices and "no gold items" in notices
    ItemFactory(campaign=campaign)  # unrouted
    campaign_state_set(campaign=campaign, state="open")
    notices = " ".join(campaign_notices(campaign=campaign))
    assert "draft" not in notices and "routed to humans" in notices


# --- commands -----------------------------------------------------------------------------------


def test_create_campaign_open_and_draft_hint():
    out, err = StringIO(), StringIO()
    call_command("create_campaign", "Round 1", "--kind", "pairwise", "--preset", "multipref", stdout=out, stderr=err)
    made = json.loads(out.getvalue())
    assert made["state"] == "draft" and "campaign_state round-1 open" in err.getvalue()
    out = StringIO()
    call_command(
        "create_campaign", "Round 2", "--kind", "pairwise", "--preset", "multipref", "--open", "--gold-rate", "0.1",
        stdout=out,
    )  # fmt: skip
    made = json.loads(out.getvalue())
    campaign = Campaign.objects.get(slug=made["slug"])
    assert made["state"] == "open" == campaign.state and campaign.gold_rate == 0.1


def test_create_campaign_owner():
    owner = staff(username="lead")
    out = StringIO()
    call_command(
        "create_campaign", "Owned", "--kind", "rubric", "--preset", "helpsteer2", "--owner", "lead", stdout=out
    )
    campaign = Campaign.objects.get(slug="owned")
    assert CampaignMember.objects.get(campaign=campaign, user=owner).role == "owner"
    with pytest.raises(CommandError, match="no account named 'nobody'"):
        call_command("create_campaign", "X", "--kind", "rubric", "--preset", "helpsteer2", "--owner", "nobody")


def test_campaign_state_command_shows_and_moves():
    campaign = CampaignFactory(state="draft", slug="c1")
    out = StringIO()
    call_command("campaign_state", "c1", stdout=out)
    shown = json.loads(out.getvalue())
    assert shown["state"] == "draft" and shown["can_become"] == ["open", "closed"]
    assert any("draft" in n for n in shown["notices"])
    out = StringIO()
    call_command("campaign_state", str(campaign.pk), "open", stdout=out)
    assert json.loads(out.getvalue())["state"] == "open" and json.loads(out.getvalue())["was"] == "draft"
    with pytest.raises(CommandError, match="'active' is called 'open'"):
        call_command("campaign_state", "c1", "active")
    with pytest.raises(CommandError, match="an open campaign can only become paused or closed|can only become"):
        call_command("campaign_state", "c1", "draft")
    with pytest.raises(CommandError, match="no campaign with id or slug 'nope'"):
        call_command("campaign_state", "nope")


# --- the new-campaign page ---------------------------------------------------------------------------


def test_new_campaign_page_shows_the_preview_of_the_default_preset():
    page = logged_in(staff()).get(reverse("campaign-new"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="annotator-preview"' in html and "Response A" in html and "A is better" in html
    assert "csrfmiddlewaretoken" in html


def test_annotators_cannot_create_campaigns():
    assert logged_in(UserFactory()).get(reverse("campaign-new")).status_code == 403
    assert Client().get(reverse("campaign-new")).status_code == 302


def form(**extra):
    data = {
        "name": "Helpfulness",
        "slug": "",
        "kind": "pairwise",
        "schema_mode": "preset",
        "preset": "multipref",
        "overlap": "3",
        "lease_minutes": "15",
        "gold_rate": "5%",
        "label_limit": "",
        "daily_label_limit": "100",
        "guidelines": "# Be kind",
    }
    data.update(extra)
    return data


def test_creating_from_a_preset_makes_an_owned_draft():
    user = staff()
    answer = logged_in(user).post(reverse("campaign-new"), form())
    campaign = Campaign.objects.get(slug="helpfulness")
    assert answer.status_code == 302 and answer["Location"] == "/c/helpfulness/"
    assert campaign.state == "draft" and campaign.preset == "multipref" and campaign.overlap == 3
    assert campaign.lease_seconds == 900 and campaign.gold_rate == 0.05 and campaign.daily_label_limit == 100
    assert campaign.label_limit is None and campaign.guidelines == "# Be kind"
    assert CampaignMember.objects.get(campaign=campaign, user=user).role == "owner"


def test_a_custom_schema_from_json():
    schema = {
        "pairwise": {"aspects": [{"name": "overall", "scale": 3, "description": "Better?"}]},
        "justification": "required",
    }
    answer = logged_in(staff()).post(
        reverse("campaign-new"), form(schema_mode="custom", label_schema=json.dumps(schema), preset="")
    )
    assert answer.status_code == 302
    campaign = Campaign.objects.get(slug="helpfulness")
    assert campaign.label_schema["pairwise"]["aspects"][0]["scale"] == 3 and campaign.preset == ""
    assert campaign.label_schema["justification"] == "required"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"name": "  "}, "name", "name: required"),
        ({"overlap": "0"}, "overlap", "overlap: must be a whole number from 1 to 50"),
        ({"overlap": "three"}, "overlap", "'three' is not a whole number"),
        ({"lease_minutes": "0"}, "lease_minutes", "lease_seconds: must be a whole number from 60"),
        ({"gold_rate": "abc"}, "gold_rate", "gold rate: 'abc' is not a number"),
        ({"daily_label_limit": "0"}, "daily_label_limit", "at least 1"),
        ({"kind": "rubric"}, "preset", "'multipref' is a pairwise preset"),
        ({"schema_mode": "custom", "label_schema": "{nope"}, "label_schema", "not valid JSON"),
        (
            {"schema_mode": "custom", "label_schema": '{"pairwise": {"aspects": [{"name": "tone", "scale": 1}]}}'},
            "label_schema",
            "needs an 'overall' aspect",
        ),
        (
            {"schema_mode": "custom", "label_schema": '{"pairwise": {"aspects": [{"name": "overall", "scale": 5}]}}'},
            "label_schema",
            "schema.pairwise.aspects[0].scale: must be 1, 2 or 3",
        ),
    ],
)
def test_bad_input_is_named_at_its_field_and_nothing_is_saved(changes, field, words):
    answer = logged_in(staff()).post(reverse("campaign-new"), form(**changes))
    html = answer.content.decode()
    assert answer.status_code == 400
    slot = unescape(html.split(f'id="error-{field}"', 1)[1].split("</p>", 1)[0])
    assert words in slot, slot
    assert not Campaign.objects.exists()


def test_the_live_check_answers_errors_out_of_band_and_the_preview():
    client = logged_in(staff())
    good = client.post(reverse("campaign-preview"), form(kind="rubric", preset="prometheus"))
    html = good.content.decode()
    assert good.status_code == 200 and 'id="annotator-preview"' in html and "Score" in html
    assert 'id="error-preset" role="alert" hx-swap-oob="true"></p>' in html
    bad = client.post(reverse("campaign-preview"), form(schema_mode="custom", label_schema="[1]"))
    html = bad.content.decode()
    assert "schema: must be a JSON object" in html and 'id="preview-blocked"' in html
    assert not Campaign.objects.exists()


def test_the_preview_renders_guidelines_and_hostile_text_safely():
    html = (
        logged_in(staff())
        .post(reverse("campaign-preview"), form(guidelines="**Bold** <script>alert(1)</script>"))
        .content.decode()
    )
    assert "<strong>Bold</strong>" in html and "<script>alert(1)" not in html


# --- settings -----------------------------------------------------------------------------------


def owned(state="draft", **extra):
    owner = staff()
    campaign = CampaignFactory(state=state, **extra)
    CampaignMember.objects.create(campaign=campaign, user=owner, role="owner")
    return campaign, owner


def settings_form(campaign, **extra):
    data = {
        "name": campaign.name,
        "kind": campaign.kind,
        "schema_mode": "custom",
        "label_schema": json.dumps(campaign.label_schema),
        "overlap": str(campaign.overlap),
        "lease_minutes": "10",
        "gold_rate": "0",
        "label_limit": "",
        "daily_label_limit": "",
        "guidelines": campaign.guidelines,
    }
    data.update(extra)
    return data


def test_settings_change_and_guidelines_get_a_new_version():
    campaign, owner = owned()
    client = logged_in(owner)
    page = client.get(reverse("campaign-settings", args=[campaign.slug]))
    assert page.status_code == 200 and 'id="annotator-preview"' in page.content.decode()
    answer = client.post(
        reverse("campaign-settings", args=[campaign.slug]),
        settings_form(campaign, overlap="5", guidelines="New rules", label_limit="200"),
    )
    assert answer.status_code == 302
    campaign.refresh_from_db()
    assert campaign.overlap == 5 and campaign.guidelines == "New rules" and campaign.guidelines_version == 2
    assert campaign.label_limit == 200


def test_the_schema_is_frozen_once_labels_exist():
    campaign, owner = owned(state="open")
    AnnotationFactory(item=ItemFactory(campaign=campaign))
    client = logged_in(owner)
    page = client.get(reverse("campaign-settings", args=[campaign.slug])).content.decode()
    assert 'id="frozen-note"' in page and "Copy as a new version" in page
    changed = {"pairwise": {"aspects": [{"name": "overall", "scale": 3}]}}
    with pytest.raises(CampaignError, match="frozen"):
        campaign_update(campaign=campaign, label_schema=changed)
    answer = client.post(
        reverse("campaign-settings", args=[campaign.slug]), settings_form(campaign, label_schema=json.dumps(changed))
    )
    assert answer.status_code == 400 and "frozen" in answer.content.decode()
    campaign.refresh_from_db()
    assert campaign.label_schema["pairwise"]["aspects"][0]["scale"] == 1
    # Other settings still change.
    assert campaign_update(campaign=campaign, overlap=2).overlap == 2


def test_viewers_read_settings_but_cannot_change_them():
    campaign, _ = owned()
    viewer = UserFactory()
    CampaignMember.objects.create(campaign=campaign, user=viewer, role="viewer")
    client = logged_in(viewer)
    page = client.get(reverse("campaign-settings", args=[campaign.slug])).content.decode()
    assert "read-only" in page and 'id="save"' not in page
    assert client.post(reverse("campaign-settings", args=[campaign.slug]), settings_form(campaign)).status_code == 403
    assert client.post(reverse("campaign-state", args=[campaign.slug]), {"state": "open"}).status_code == 403
    campaign.refresh_from_db()
    assert campaign.state == "draft"


def test_state_buttons_move_the_campaign_and_refuse_bad_moves():
    campaign, owner = owned()
    client = logged_in(owner)
    panel = client.get(reverse("campaign-state", args=[campaign.slug])).content.decode()
    assert 'data-state="open"' in panel and 'data-state="closed"' in panel and "draft" in panel
    answer = client.post(reverse("campaign-state", args=[campaign.slug]), {"state": "open"}, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200 and 'data-state="paused"' in answer.content.decode()
    assert answer["HX-Trigger"] == "campaign-state-changed"
    bad = client.post(reverse("campaign-state", args=[campaign.slug]), {"state": "draft"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 400 and "can only become" in bad.content.decode()
    campaign.refresh_from_db()
    assert campaign.state == "open"


def test_copy_makes_a_new_draft_version_with_the_items():
    campaign, owner = owned(state="open", gold_rate=0.2, overlap=3)
    pool_member = UserFactory()
    campaign.annotators.add(pool_member)
    for i in range(3):
        ItemFactory(campaign=campaign, external_id=f"x{i}", metadata={"domain": "math"})
    AnnotationFactory(item=campaign.items.first())
    copy = campaign_copy(campaign=campaign, name="Round 2", created_by=owner, with_items=True)
    assert copy.state == "draft" and copy.copied_from == campaign and copy.overlap == 3 and copy.gold_rate == 0.2
    assert list(copy.annotators.all()) == [pool_member]
    assert sorted(copy.items.values_list("external_id", flat=True)) == ["x0", "x1", "x2"]
    assert copy.items.get(external_id="x0").metadata == {"domain": "math"}
    assert not copy.annotations.exists()
    assert CampaignMember.objects.get(campaign=copy, user=owner).role == "owner"
    # The copy's schema is not frozen.
    changed = {"pairwise": {"aspects": [{"name": "overall", "scale": 2}]}}
    assert campaign_update(campaign=copy, label_schema=changed).label_schema["pairwise"]["aspects"][0]["scale"] == 2


def test_copy_from_the_page():
    campaign, owner = owned(state="open")
    answer = logged_in(owner).post(reverse("campaign-copy", args=[campaign.slug]), {"name": "v2"})
    assert answer.status_code == 302 and Campaign.objects.get(slug="v2").copied_from == campaign


# --- the API twins ------------------------------------------------------------------------------


def test_api_create_open_patch_state_copy(admin_api):
    made = admin_api.post(
        "/api/campaigns/",
        {"name": "API round", "kind": "pairwise", "preset": "simple-pairwise", "overlap": 2, "open": True},
        format="json",
    )
    assert made.status_code == 201 and made.json()["state"] == "open"
    ref = made.json()["slug"]
    patched = admin_api.patch(f"/api/campaigns/{ref}/", {"overlap": 4, "gold_rate": 0.1}, format="json")
    assert patched.status_code == 200 and patched.json()["overlap"] == 4 and patched.json()["gold_rate"] == 0.1
    bad = admin_api.patch(f"/api/campaigns/{ref}/", {"overlap": 0}, format="json")
    assert bad.status_code == 400 and "overlap" in bad.json()
    paused = admin_api.post(f"/api/campaigns/{ref}/state/", {"state": "pause"}, format="json")
    assert paused.status_code == 200 and paused.json()["state"] == "paused" and paused.json()["notices"]
    refused = admin_api.post(f"/api/campaigns/{ref}/state/", {"state": "draft"}, format="json")
    assert refused.status_code == 400 and "can only become" in refused.json()["state"][0]
    copied = admin_api.post(f"/api/campaigns/{ref}/copy/", {"name": "API round v2"}, format="json")
    assert copied.status_code == 201 and copied.json()["state"] == "draft"


def test_api_lifecycle_needs_a_managing_role(annotator_api, annotator):
    campaign, _ = owned(state="open")
    assert annotator_api.post(f"/api/campaigns/{campaign.slug}/state/", {"state": "closed"}).status_code == 403
    CampaignMember.objects.create(campaign=campaign, user=annotator, role="viewer")
    assert annotator_api.patch(f"/api/campaigns/{campaign.slug}/", {"overlap": 2}).status_code == 403
    other = CampaignFactory(state="draft")
    other.annotators.add(UserFactory())  # a pool without this person: the campaign is not theirs to know
    assert annotator_api.post(f"/api/campaigns/{other.slug}/state/", {"state": "open"}).status_code == 404
    assert annotator_api.post("/api/campaigns/", {"name": "x", "kind": "pairwise"}).status_code == 403


# --- annotators and campaigns not open to them ----------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "status", "words"),
    [
        ("draft", 200, "has not opened yet"),
        ("paused", 200, "is paused"),
        ("closed", 200, "is closed"),
    ],
)
def test_an_annotator_following_a_link_gets_a_clear_page(state, status, words):
    campaign = CampaignFactory(state=state, name="Round 9")
    page = logged_in(UserFactory()).get(reverse("annotate", args=[campaign.slug]))
    assert page.status_code == status and words in page.content.decode()


def test_not_in_the_pool_and_no_such_campaign():
    campaign = CampaignFactory(state="open")
    campaign.annotators.add(UserFactory())
    outsider = logged_in(UserFactory())
    page = outsider.get(reverse("annotate", args=[campaign.slug]))
    assert page.status_code == 404 and "No such campaign" in page.content.decode()
    missing = outsider.get(reverse("annotate", args=["no-such-thing"]))
    assert missing.status_code == 404 and "No such campaign" in missing.content.decode()


def test_an_owner_outside_the_pool_is_told_so():
    campaign, owner = owned(state="open")
    campaign.annotators.add(UserFactory())
    page = logged_in(owner).get(reverse("annotate", args=[campaign.slug]))
    assert page.status_code == 403 and "not open to your account" in page.content.decode()


def test_the_open_campaign_is_labelled_after_an_import():
    """The whole path in services: create, import, open, and an annotator gets an item."""
    from annotate.services.assignments import next_assignment_for
    from annotate.services.imports import items_import

    campaign, _ = owned()
    items_import(campaign=campaign, stream=jsonl(pair(1), pair(2)), filename="items.jsonl")
    annotator = UserFactory()
    campaign_state_set(campaign=campaign, state="open")
    lease = next_assignment_for(annotator=annotator, campaign=campaign)
    assert lease.item.external_id in ("p1", "p2")
