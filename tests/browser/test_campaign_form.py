"""The new-campaign page in Chromium: the custom-schema path with the form editor, checked as it is
typed, the annotator's preview following each change, then the campaign opened from its settings."""

import json

import pytest

from annotate.models import Campaign
from tests.factories import UserFactory

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_custom_rubric_schema_built_in_the_form_and_opened(page, live_server):
    admin = UserFactory(is_staff=True)
    login(page, live_server, admin)
    page.click("#new-campaign")
    page.wait_for_selector("#annotator-preview")
    page.fill("#f-name", "Code review rubric")
    page.check("input[name=kind][value=rubric]")
    page.check("input[name=schema_mode][value=custom]")
    # The form editor starts from the rubric preset that fits the kind; rename its first criterion.
    page.wait_for_selector("#schema-builder .criterion")
    name = page.locator("#schema-builder .criterion .criterion-name").first
    name.fill("Accuracy")  # capitals are not allowed in names: the field says so, the preview waits
    page.wait_for_function(
        "() => document.querySelector('#error-label_schema').textContent.includes('lowercase letters')"
    )
    assert page.locator("#preview-blocked").is_visible()
    name.fill("accuracy")
    page.wait_for_function("() => document.querySelector('#error-label_schema').textContent === ''")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#annotator-preview .row-title')].some(e => e.textContent === 'Accuracy')"
    )
    # Add a criterion with its own scale and score words, all from the form.
    page.click("#schema-builder .add-criterion")
    added = page.locator("#schema-builder .criterion").last
    added.locator(".criterion-name").fill("style")
    added.locator("input[type=number]").first.fill("1")
    added.locator("input[type=number]").last.fill("3")
    added.locator("textarea").fill("1: Messy\n2: Fine\n3: Idiomatic")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#annotator-preview .score-desc')]"
        ".some(e => e.textContent === 'Idiomatic')"
    )
    # The JSON editor holds the same schema the form built.
    schema = json.loads(page.locator("#f-label_schema").input_value())
    assert [c["name"] for c in schema["rubric"]["criteria"]][-1] == "style"
    page.fill("#f-guidelines", "Rate **accuracy** first.")
    page.click("#create")
    page.wait_for_url(f"{live_server.url}/c/code-review-rubric/")
    campaign = Campaign.objects.get(slug="code-review-rubric")
    assert campaign.state == "draft" and campaign.kind == "rubric"
    criteria = {c["name"]: c for c in campaign.label_schema["rubric"]["criteria"]}
    assert criteria["style"]["min"] == 1 and criteria["style"]["max"] == 3
    assert criteria["style"]["scores"] == {"1": "Messy", "2": "Fine", "3": "Idiomatic"}
    # Open it from the settings page's state panel, without a reload.
    page.goto(f"{live_server.url}/c/{campaign.slug}/settings/")
    assert "draft: annotators do not see it" in page.locator("#campaign-state").inner_text()
    page.click("#campaign-state button[data-state=open]")
    page.wait_for_selector("#campaign-state button[data-state=paused]")
    campaign.refresh_from_db()
    assert campaign.state == "open"
