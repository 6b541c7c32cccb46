"""The qualification gate in Chromium: a good annotator passes (with training feedback) and reaches real items,
a bad one is kept out kindly, and the admin sees both in the campaign home's annotator table."""

import pytest

from annotate.models import Assignment, Item
from annotate.schema import label_orient
from tests.factories import AdminFactory, CampaignFactory, ItemFactory, UserFactory

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GOLD = {"overall": -1}
KEYS = {-1: "1", 0: "2", 1: "3"}  # simple-pairwise: A is better, Tie, B is better


def current(page) -> Assignment:
    page.wait_for_selector("#current form.item fieldset.scale-row.active")
    return Assignment.objects.get(pk=page.locator("#current form.item").get_attribute("data-assignment"))


def answer(page, *, right: bool) -> None:
    """Press the key of the gold answer (or the opposite) as this lease shows the responses."""
    assignment = current(page)
    wanted = GOLD if right else {"overall": 1}
    shown = label_orient(
        schema=assignment.campaign.label_schema,
        kind="pairwise",
        label=wanted,
        position_swapped=assignment.position_swapped,
    )
    page.keyboard.press(KEYS[shown["overall"]])
    page.keyboard.press("Enter")


def take_round(page, live_server, campaign, user, *, right: bool) -> None:
    login(page, live_server, user)
    page.goto(f"{live_server.url}/c/{campaign.slug}/annotate/")
    for k in (1, 2):
        page.wait_for_selector(f"#gate-step:has-text('check item {k} of 2')")
        first = current(page).pk
        answer(page, right=right)
        verdict = "your answer matches" if right else "not the expected answer"
        page.wait_for_selector(f"#gate-feedback:has-text('{verdict}')")
        page.wait_for_selector("#gate-feedback .gate-explanation strong:has-text('helpful')")  # Markdown rendered
        assert page.locator("#current form.item").get_attribute("data-assignment") == str(first), "waits for Next"
        page.keyboard.press("Enter")  # Next
        page.wait_for_function(
            "prev => { const f = document.querySelector('#current form.item');"
            " return !f || f.dataset.assignment !== prev; }",
            arg=str(first),
        )


def test_the_gate_lets_a_good_annotator_in_and_keeps_a_bad_one_out(page, live_server):
    campaign = CampaignFactory(
        preset_name="simple-pairwise", overlap=2, qualification_items=2, qualification_threshold=1
    )
    for i in range(2):
        ItemFactory(
            campaign=campaign,
            route=Item.Route.HUMAN,
            gold_label=GOLD,
            gold_explanation=f"Response A is **helpful**; B is not ({i}).",
        )
    for _ in range(3):
        ItemFactory(campaign=campaign, route=Item.Route.HUMAN)
    good, bad = UserFactory(username="good-annotator"), UserFactory(username="bad-annotator")

    take_round(page, live_server, campaign, good, right=True)
    page.wait_for_selector("#flash .gate-decision:has-text('You passed the qualification round')")
    work = current(page)
    assert work.purpose == Assignment.Purpose.WORK and work.item.gold_label is None
    assert page.locator("#gate-step").count() == 0
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#progress .mine').textContent === '3'")

    page.context.clear_cookies()
    take_round(page, live_server, campaign, bad, right=False)
    page.wait_for_selector("#current .no-work[data-reason='not_qualified']:has-text('Thank you for trying')")
    assert "You matched 0 of 2 check items" in page.locator("#current .no-work").inner_text()
    assert not Assignment.objects.filter(annotator=bad, purpose=Assignment.Purpose.WORK).exists()

    page.context.clear_cookies()
    login(page, live_server, AdminFactory())
    page.goto(f"{live_server.url}/c/{campaign.slug}/")
    good_row = page.locator("#annotators-table tr[data-annotator='good-annotator']")
    bad_row = page.locator("#annotators-table tr[data-annotator='bad-annotator']")
    good_row.locator("td.qualification:has-text('passed 2/2')").wait_for()
    bad_row.locator("td.qualification:has-text('failed 0/2')").wait_for()
    bad_row.locator("button[value='exclude']").click()
    page.wait_for_selector("#standing-message:has-text('labels are excluded from statistics and exports')")
    page.locator("#annotators-table tr[data-annotator='bad-annotator'] .pill:has-text('excluded')").wait_for()


def test_flagging_an_item_with_the_keyboard(page, live_server):
    from annotate.models import ItemFlag

    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=1)
    for _ in range(2):
        ItemFactory(campaign=campaign, route=Item.Route.HUMAN)
    user = UserFactory()
    login(page, live_server, user)
    page.goto(f"{live_server.url}/c/{campaign.slug}/annotate/")
    assignment = current(page)
    page.keyboard.press("f")
    page.wait_for_selector("#flag-dialog[open]")
    page.keyboard.press("2")  # both are bad
    page.locator("#flag-comment").fill("Neither answers the question.")
    page.keyboard.press("Enter")
    page.wait_for_selector("#flash:has-text('flagged as “both are bad”')")
    flag = ItemFlag.objects.get()
    assert (flag.item_id, flag.kind, flag.comment) == (assignment.item_id, "both_bad", "Neither answers the question.")
    assert current(page).pk == assignment.pk, "a flag does not skip the item"
