"""The campaign's quality-control settings: checked with clear errors, on the form, the API and the command."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from annotate.models import Campaign, Item
from annotate.services.campaigns import (
    CampaignError,
    campaign_copy,
    campaign_create,
    campaign_notices,
    campaign_settings_check,
    campaign_update,
)
from tests.factories import CampaignFactory, ItemFactory, UserFactory

pytestmark = pytest.mark.django_db

GOOD = {
    "qualification_items": 5,
    "qualification_threshold": 0.75,
    "qualification_feedback": False,
    "requalify_on_guidelines": True,
    "attention_max_failures": 3,
    "min_seconds": 4.5,
    "overlap_max": 5,
    "agreement_threshold": 0.7,
    "overlap_on_judge_disagreement": False,
    "judge_gold_threshold": 0.9,
    "reviewers_see_identities": True,
}


def test_a_campaign_is_created_with_every_quality_setting():
    campaign = campaign_create(name="Q", kind="pairwise", preset="simple-pairwise", overlap=3, **GOOD)
    campaign.refresh_from_db()
    assert {name: getattr(campaign, name) for name in GOOD} == GOOD


def test_the_defaults_are_the_models():
    campaign = campaign_create(name="Plain", kind="pairwise", preset="simple-pairwise")
    assert (campaign.qualification_items, campaign.qualification_threshold, campaign.overlap_max) == (0, 0.8, None)
    assert campaign.qualification_feedback is True and campaign.reviewers_see_identities is False


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"qualification_items": -1}, "qualification_items", "from 0 (no qualification round) to 500"),
        ({"qualification_items": 2.5}, "qualification_items", "whole number"),
        ({"qualification_threshold": 1.2}, "qualification_threshold", "from 0 to 1 (the share of check items"),
        ({"agreement_threshold": -0.1}, "agreement_threshold", "from 0 to 1 (the agreement below which"),
        ({"judge_gold_threshold": 2}, "judge_gold_threshold", "or empty for none"),
        ({"qualification_feedback": "yes"}, "qualification_feedback", "true or false"),
        ({"attention_max_failures": 0}, "attention_max_failures", "or empty to never pause"),
        ({"min_seconds": 0}, "min_seconds", "above 0"),
        ({"min_seconds": 7200}, "min_seconds", "at most 3600"),
        ({"overlap": 3, "overlap_max": 2}, "overlap_max", "2 is below the overlap (3)"),
        ({"overlap_max": 60}, "overlap_max", "up to 50"),
    ],
)
def test_bad_settings_say_what_and_where(values, field, words):
    with pytest.raises(CampaignError) as caught:
        campaign_settings_check(campaign=None, values=values)
    assert caught.value.field == field and words in str(caught.value)
    assert str(caught.value).startswith(f"{field}: ")


def test_empty_optional_settings_are_allowed():
    checked = campaign_settings_check(
        campaign=None,
        values={"attention_max_failures": None, "min_seconds": None, "overlap_max": None, "judge_gold_threshold": None},
    )
    assert set(checked.values()) == {None}


def test_overlap_and_overlap_max_bound_each_other_on_update():
    campaign = CampaignFactory(overlap=2, overlap_max=4)
    with pytest.raises(CampaignError, match="overlap: 5 is above overlap_max"):
        campaign_update(campaign=campaign, overlap=5)
    with pytest.raises(CampaignError, match="overlap_max: 1 is below the overlap"):
        campaign_update(campaign=campaign, overlap_max=1)
    raised = campaign_update(campaign=campaign, overlap=5, overlap_max=6)
    assert (raised.overlap, raised.overlap_max) == (5, 6)
    assert campaign_update(campaign=raised, overlap_max=None).overlap_max is None


def test_new_guidelines_bump_the_version_other_settings_do_not():
    campaign = CampaignFactory(guidelines="Old.")
    campaign = campaign_update(campaign=campaign, qualification_items=3, requalify_on_guidelines=True)
    assert campaign.guidelines_version == 1
    campaign = campaign_update(campaign=campaign, guidelines="New.")
    assert campaign.guidelines_version == 2


def test_notices_warn_about_too_few_gold_items_without_refusing():
    campaign = CampaignFactory(qualification_items=3, gold_rate=0.1)
    ItemFactory(campaign=campaign, route=Item.Route.HUMAN)
    notices = " ".join(campaign_notices(campaign=campaign))
    assert "asks for 3 check items but it has 0 gold items: new annotators wait" in notices
    for _ in range(3):
        ItemFactory(campaign=campaign, gold_label={"overall": 1})
    notices = " ".join(campaign_notices(campaign=campaign))
    assert "all go to the qualification round, so none is left for attention checks" in notices
    ItemFactory(campaign=campaign, gold_label={"overall": 1})
    assert "qualification" not in " ".join(campaign_notices(campaign=campaign))
    paused_without_checks = CampaignFactory(attention_max_failures=2, gold_rate=0)
    assert "its gold rate is 0, so no check is mixed in" in " ".join(campaign_notices(campaign=paused_without_checks))


def test_a_copy_keeps_the_quality_settings():
    campaign = campaign_create(name="Q", kind="pairwise", preset="simple-pairwise", overlap=3, **GOOD)
    copy = campaign_copy(campaign=campaign, name="Q v2", with_items=False)
    copy.refresh_from_db()
    assert {name: getattr(copy, name) for name in GOOD} == GOOD


# --- the form -------------------------------------------------------------------------------------


FORM = {
    "name": "Checked",
    "kind": "pairwise",
    "schema_mode": "preset",
    "preset": "simple-pairwise",
    "overlap": "3",
    "lease_minutes": "10",
    "gold_rate": "10%",
    "guidelines": "Be fair.",
    "label_limit": "",
    "daily_label_limit": "",
    "qualification_items": "4",
    "qualification_threshold": "75%",
    "qualification_feedback": ["0", "1"],  # the hidden "0" and the ticked box
    "requalify_on_guidelines": "0",  # unticked: the hidden "0" alone
    "attention_max_failures": "2",
    "min_seconds": "3.5",
    "overlap_max": "5",
    "agreement_threshold": "0.65",
    "overlap_on_judge_disagreement": "0",
    "judge_gold_threshold": "",
    "reviewers_see_identities": ["0", "1"],
}


def test_the_new_campaign_form_has_a_quality_fieldset_and_saves_it(client):
    client.force_login(UserFactory(is_staff=True))
    page = client.get("/campaigns/new/").content.decode()
    assert "<legend>Quality control</legend>" in page and 'name="qualification_items" value="0"' in page
    assert 'id="f-qualification_feedback" name="qualification_feedback" value="1" checked' in page
    response = client.post("/campaigns/new/", FORM)
    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = Campaign.objects.get(name="Checked")
    assert (campaign.qualification_items, campaign.qualification_threshold) == (4, 0.75)
    assert campaign.qualification_feedback is True and campaign.requalify_on_guidelines is False
    assert (campaign.attention_max_failures, campaign.min_seconds, campaign.overlap_max) == (2, 3.5, 5)
    assert campaign.agreement_threshold == 0.65 and campaign.overlap_on_judge_disagreement is False
    assert campaign.judge_gold_threshold is None and campaign.reviewers_see_identities is True


def test_the_form_shows_each_error_at_its_field(client):
    client.force_login(UserFactory(is_staff=True))
    bad = {**FORM, "qualification_threshold": "lots", "overlap_max": "2", "min_seconds": "-1"}
    response = client.post("/campaigns/new/", bad)
    assert response.status_code == 400
    page = response.content.decode()
    assert "qualification threshold: &#x27;lots&#x27; is not a number" in page
    assert "overlap_max: 2 is below the overlap (3)" in page
    assert "min_seconds: must be a number of seconds above 0" in page
    assert not Campaign.objects.filter(name="Checked").exists()


def test_the_live_check_shows_quality_errors_as_you_type(client):
    client.force_login(UserFactory(is_staff=True))
    html = client.post("/campaigns/preview/", {**FORM, "overlap_max": "2"}).content.decode()
    assert 'id="error-overlap_max" role="alert" hx-swap-oob="true">overlap_max: 2 is below the overlap (3)' in html
    assert 'id="error-qualification_threshold" role="alert" hx-swap-oob="true"></p>' in html  # cleared when fine


def test_the_settings_page_shows_and_changes_them(client):
    owner = UserFactory(is_staff=True)
    campaign = campaign_create(name="Q", kind="pairwise", preset="simple-pairwise", overlap=3, created_by=owner, **GOOD)
    client.force_login(owner)
    page = client.get(f"/c/{campaign.slug}/settings/").content.decode()
    assert 'name="qualification_threshold" value="0.75"' in page and 'name="min_seconds" value="4.5"' in page
    assert 'id="f-qualification_feedback" name="qualification_feedback" value="1" >' in page, "unticked"
    data = {**FORM, "schema_mode": "custom", "label_schema": json.dumps(campaign.label_schema), "overlap_max": ""}
    response = client.post(f"/c/{campaign.slug}/settings/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    campaign.refresh_from_db()
    assert campaign.overlap_max is None and campaign.qualification_items == 4 and campaign.qualification_feedback


# --- the API ----------------------------------------------------------------------------------------


def test_the_api_reads_and_writes_them(admin_api):
    created = admin_api.post(
        "/api/campaigns/",
        {"name": "API", "kind": "pairwise", "preset": "simple-pairwise", "overlap": 3, **GOOD},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert {name: body[name] for name in GOOD} == GOOD
    plain = admin_api.post("/api/campaigns/", {"name": "Plain", "kind": "pairwise", "preset": "simple-pairwise"})
    assert plain.json()["qualification_items"] == 0 and plain.json()["qualification_feedback"] is True
    slug = body["slug"]
    changed = admin_api.patch(f"/api/campaigns/{slug}/", {"overlap_max": None, "min_seconds": 2}, format="json")
    assert changed.status_code == 200 and changed.json()["overlap_max"] is None and changed.json()["min_seconds"] == 2
    refused = admin_api.patch(f"/api/campaigns/{slug}/", {"qualification_threshold": 3}, format="json")
    assert refused.status_code == 400
    assert refused.json() == {"qualification_threshold": [
        "qualification_threshold: must be a number from 0 to 1 (the share of check items to get right)"
    ]}  # fmt: skip
    below = admin_api.patch(f"/api/campaigns/{slug}/", {"overlap_max": 1}, format="json")
    assert below.status_code == 400 and "below the overlap" in below.json()["overlap_max"][0]


# --- the command --------------------------------------------------------------------------------------


def test_the_command_takes_quality_flags():
    out = io.StringIO()
    call_command(
        "create_campaign",
        "Gated",
        "--kind=pairwise",
        "--preset=simple-pairwise",
        "--overlap=2",
        "--qualification-items=4",
        "--qualification-threshold=0.7",
        "--no-qualification-feedback",
        "--requalify-on-guidelines",
        "--attention-max-failures=3",
        "--min-seconds=2.5",
        "--overlap-max=4",
        "--agreement-threshold=0.5",
        "--no-overlap-on-judge-disagreement",
        "--judge-gold-threshold=0.85",
        "--reviewers-see-identities",
        stdout=out,
        stderr=io.StringIO(),
    )
    campaign = Campaign.objects.get(slug=json.loads(out.getvalue())["slug"])
    assert (campaign.qualification_items, campaign.qualification_threshold, campaign.qualification_feedback) == (
        4,
        0.7,
        False,
    )
    assert campaign.requalify_on_guidelines and campaign.reviewers_see_identities
    assert (campaign.attention_max_failures, campaign.min_seconds, campaign.overlap_max) == (3, 2.5, 4)
    assert campaign.agreement_threshold == 0.5 and not campaign.overlap_on_judge_disagreement
    assert campaign.judge_gold_threshold == 0.85


def test_the_command_names_a_bad_flag():
    with pytest.raises(CommandError, match="overlap_max: 1 is below the overlap"):
        call_command(
            "create_campaign",
            "Bad",
            "--kind=pairwise",
            "--preset=simple-pairwise",
            "--overlap=2",
            "--overlap-max=1",
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )


def test_a_copy_with_items_keeps_the_gold_explanations():
    campaign = CampaignFactory()
    ItemFactory(campaign=campaign, gold_label={"overall": -1}, gold_explanation="A cites the source.")
    copy = campaign_copy(campaign=campaign, name="With items")
    assert copy.items.get().gold_explanation == "A cites the source."
