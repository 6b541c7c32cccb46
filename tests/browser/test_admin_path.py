"""The admin's whole path in Chromium, with no command line: create a campaign from a preset, import a
file with a bad row (line and field shown, nothing written), fix it and import, invite an annotator, open
the campaign, label as that annotator, and watch the campaign home move."""

import json

import pytest

from annotate.models import Annotation, Campaign, CampaignMember, Item
from tests.factories import UserFactory

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "a-long-Passw0rd-for-sam"


@pytest.fixture(autouse=True)
def upload_dir(settings, tmp_path):
    settings.TANDEM_UPLOAD_DIR = tmp_path / "uploads"


def pair(i, **extra):
    return {"id": f"p{i}", "prompt": f"Question {i}?", "response_a": f"Answer A{i}", "response_b": f"B{i}", **extra}


def test_from_nothing_to_annotators_labelling(page, browser, live_server, tmp_path):
    admin = UserFactory(is_staff=True)
    login(page, live_server, admin)

    # 1. A campaign from a preset, with the preview of what annotators will see.
    page.click("#new-campaign")
    page.wait_for_selector("#annotator-preview")
    page.fill("#f-name", "Helpfulness pairs")
    page.select_option("#f-preset", "simple-pairwise")
    page.fill("#f-overlap", "1")
    page.wait_for_function("() => document.querySelector('#error-name').textContent === ''")
    assert "A is better" in page.inner_text("#annotator-preview")
    page.click("#create")
    page.wait_for_url(f"{live_server.url}/c/helpfulness-pairs/")
    campaign = Campaign.objects.get(slug="helpfulness-pairs")
    assert campaign.state == "draft"
    assert CampaignMember.objects.get(campaign=campaign, user=admin).role == "owner"

    # 2. Import: the bad row is named by line and field, and nothing is written; then the fixed file.
    bad = tmp_path / "items.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in (pair(1), {"id": "p2", "prompt": "Q?", "response_a": "x"})))
    page.click("nav.tabs >> text=Import")
    page.set_input_files("#import-file", str(bad))
    page.click("#import-upload-submit")
    page.wait_for_selector("#problems")
    problem = page.locator("#problems tbody tr").first
    assert problem.locator("td").nth(0).inner_text() == "line 2"
    assert problem.locator("td").nth(1).inner_text() == "response_b"
    assert Item.objects.count() == 0
    page.click("#import-discard")
    good = tmp_path / "fixed.jsonl"
    good.write_text("".join(json.dumps(pair(i)) + "\n" for i in range(1, 4)))
    page.set_input_files("#import-file", str(good))
    page.click("#import-upload-submit")
    page.wait_for_selector("#problems-none")
    page.click("#import-run")
    page.wait_for_selector("#import-report")
    assert page.locator("#done-created").inner_text().startswith("3")
    assert Item.objects.filter(campaign=campaign).count() == 3

    # 3. Invite an annotator.
    page.goto(f"{live_server.url}/c/{campaign.slug}/people/")
    page.fill("#f-note", "for Sam")
    page.locator("#f-note").press("Enter")
    page.wait_for_selector("#new-link-url")
    link = page.input_value("#new-link-url")

    # 4. Open the campaign: the state panel says why annotators do not see the draft, then opens it.
    page.goto(f"{live_server.url}/c/{campaign.slug}/settings/")
    assert "draft: annotators do not see it" in page.inner_text("#campaign-state")
    page.click("#campaign-state button[data-state=open]")
    page.wait_for_selector("#campaign-state button[data-state=paused]")

    # 5. The annotator signs up through the link and labels one item with the keyboard.
    annotator = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        tab = annotator.new_page()
        tab.goto(link)
        tab.fill("#f-username", "sam")
        tab.fill("#f-password", PASSWORD)
        tab.fill("#f-password-again", PASSWORD)
        tab.click("#sign-up")
        tab.wait_for_url(f"{live_server.url}/c/{campaign.slug}/annotate/")
        tab.wait_for_selector("#current form.item fieldset.scale-row.active")
        tab.keyboard.press("1")
        tab.keyboard.press("Enter")
        tab.wait_for_function("() => Number(document.querySelector('#progress .mine').textContent) === 1")
    finally:
        annotator.close()
    assert Annotation.objects.filter(campaign=campaign, annotator__username="sam").count() == 1

    # 6. The admin's home has moved.
    page.goto(f"{live_server.url}/c/{campaign.slug}/")
    page.wait_for_selector("#budget-figures")
    assert page.inner_text("#budget-figures").startswith("1 of 3")
