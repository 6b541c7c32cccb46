"""The review queue in Chromium: a reviewer finds a contested item from the home page, reads its labels (annotators
by number) and records the final label with the keyboard; the list updates without a page load."""

import pytest

from annotate.models import Adjudication, CampaignMember, Item
from tests.factories import AnnotationFactory, CampaignFactory, ItemFactory, UserFactory

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_reviewer_adjudicates_a_contested_item(page, live_server):
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=2, overlap_max=2)
    item = ItemFactory(campaign=campaign, route=Item.Route.HUMAN, review_state=Item.ReviewState.CONTESTED,
                       prompt="Which answer is **right**?", response_a="Paris.", response_b="Lyon.")  # fmt: skip
    AnnotationFactory(item=item, annotator=UserFactory(username="ann-one"), label={"overall": -1},
                      justification="Paris is the capital.")  # fmt: skip
    AnnotationFactory(item=item, annotator=UserFactory(username="ann-two"), label={"overall": 1},
                      justification="Lyon is bigger, surely.")  # fmt: skip
    reviewer = UserFactory(username="the-reviewer")
    CampaignMember.objects.create(campaign=campaign, user=reviewer, role=CampaignMember.Role.REVIEWER)

    login(page, live_server, reviewer)
    page.click("#campaigns-i-review a:has-text('Review queue')")
    page.wait_for_selector("#review-list")
    assert page.locator("#review-counts").inner_text().startswith("1 contested")
    url = page.url
    page.focus(f"#review-list tr[data-item='{item.pk}'] a")
    page.keyboard.press("Enter")
    page.wait_for_selector("#review-labels")
    assert page.url != url and f"item={item.pk}" in page.url  # pushed, not loaded
    text = page.locator("#review-item").inner_text()
    assert "Annotator 1" in text and "Annotator 2" in text and "ann-one" not in text
    assert "Paris is the capital." in text

    # Keyboard only: the point "A is better", the reason, then Enter on the button.
    page.focus("#review-item input[name='label.overall'][value='-1']")
    page.keyboard.press("Space")
    page.focus("#review-reason")
    page.keyboard.type("Paris is the capital of France; the second label is wrong.")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#review-message")
    assert page.locator("#review-message").inner_text() == "Final label recorded."
    page.wait_for_selector("#review-empty")  # the list reloaded itself: nothing contested is left
    assert page.locator("#review-counts").inner_text().startswith("0 contested · 1 adjudicated")
    adjudication = Adjudication.objects.get(item=item)
    assert (adjudication.label, adjudication.reviewer) == ({"overall": -1}, reviewer)
    assert Item.objects.get(pk=item.pk).review_state == Item.ReviewState.ADJUDICATED
