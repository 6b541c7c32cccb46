"""Invitation links in Chromium: an owner makes one on the People tab, a stranger opens it in a fresh
browser, signs up and lands on the campaign's annotate page; the link then says it was used."""

import pytest

from annotate.models import CampaignMember, Invitation
from annotate.services.imports import items_import
from tests.conftest import jsonl, pair
from tests.factories import CampaignFactory, UserFactory

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "a-Long-enough-passphrase-42"


def test_an_annotator_link_signs_a_stranger_up_once(page, browser, live_server):
    campaign = CampaignFactory(name="Helpfulness pairs", slug="helpfulness-pairs")
    items_import(campaign=campaign, stream=jsonl(*[pair(i) for i in range(3)]), filename="items.jsonl")
    owner = UserFactory(is_staff=True)
    CampaignMember.objects.create(campaign=campaign, user=owner, role="owner")
    login(page, live_server, owner)

    page.goto(f"{live_server.url}/c/{campaign.slug}/people/")
    assert page.locator("#open-to-all").is_visible()
    assert page.locator("input[name=role][value=annotator]").is_checked()
    page.fill("#f-expires", "2")
    page.select_option("select[name=expires_unit]", "days")
    page.fill("#f-note", "for Sam")
    page.locator("#f-note").press("Enter")  # the keyboard submits the form
    page.wait_for_selector("#new-link-url")
    link = page.input_value("#new-link-url")
    assert link.startswith(f"{live_server.url}/invite/")
    page.click("#copy-link")
    page.wait_for_function("() => document.getElementById('copy-done').textContent === 'Copied.'")
    row = page.locator("#invitations tbody tr").first
    assert row.get_attribute("data-state") == "pending" and "for Sam" in row.inner_text()

    stranger = browser.new_context(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    try:
        tab = stranger.new_page()
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(link)
        assert "Join Helpfulness pairs" in tab.inner_text("h1")
        tab.fill("#f-username", "sam")
        tab.fill("#f-password", PASSWORD)
        tab.fill("#f-password-again", PASSWORD + "!")
        tab.click("#sign-up")
        tab.wait_for_selector("#error-password_again:has-text('differ')")
        tab.fill("#f-password", PASSWORD)
        tab.fill("#f-password-again", PASSWORD)
        tab.click("#sign-up")
        tab.wait_for_url(f"{live_server.url}/c/{campaign.slug}/annotate/")
        assert "sam" in tab.inner_text(".who")

        tab.goto(link)
        assert tab.locator("#invitation").get_attribute("data-state") == "used"
        assert "already used" in tab.inner_text("h1")
    finally:
        stranger.close()
    assert not errors, errors

    invitation = Invitation.objects.get()
    assert invitation.used_by.username == "sam"
    assert list(campaign.annotators.values_list("username", flat=True)) == ["sam"]
    page.goto(f"{live_server.url}/c/{campaign.slug}/people/")
    assert page.locator("#invitations tbody tr").first.get_attribute("data-state") == "used"
    assert page.locator('#annotators tr[data-user="sam"]').count() == 1
