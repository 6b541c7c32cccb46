"""The campaign home in Chromium: it draws its charts from the vendored Chart.js, its live fragment picks up
a label submitted through the API while the page is open (updating the charts in place), and it stops
polling while the tab is hidden."""

import pytest
from rest_framework.test import APIClient

from annotate.models.tokens import api_token_create
from tests.factories import AdminFactory, CampaignFactory, ItemFactory, UserFactory

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ITEMS_CHART = "Chart.getChart('items-chart')"
HOURLY_SUM = "Chart.getChart('hourly-chart').data.datasets[0].data.reduce((a, b) => a + b, 0)"


def _human_items_in(state: int) -> str:
    """The items chart's count for the human route in state 0 (no labels), 1 (in progress) or 2 (complete)."""
    return f"{ITEMS_CHART}.data.datasets[{state}].data[{ITEMS_CHART}.data.labels.indexOf('human')]"


@pytest.fixture
def running():
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=2)
    for k in range(3):
        ItemFactory(campaign=campaign, external_id=f"home-{k}", route="human")
    ItemFactory(campaign=campaign, external_id="home-llm", route="llm")
    annotator = UserFactory(username="live-annotator")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=annotator, name='tests').key}")
    return campaign, api


def test_the_page_draws_its_charts_and_the_fragment_follows_a_label_given_through_the_api(page, live_server, running):
    campaign, api = running
    login(page, live_server, AdminFactory())
    page.goto(f"{live_server.url}/c/{campaign.slug}/")
    page.wait_for_function(
        "() => window.Chart && ['items-chart', 'hourly-chart', 'budget-chart'].every((id) => Chart.getChart(id))"
    )
    assert page.evaluate(f"{ITEMS_CHART}.data.labels") == ["unrouted", "human", "llm", "both"]
    assert page.evaluate(_human_items_in(0)) == 3
    assert page.evaluate("Chart.getChart('hourly-chart').data.labels.length") == 48
    assert page.evaluate(HOURLY_SUM) == 0
    assert page.evaluate("Chart.getChart('budget-chart').data.datasets[0].data") == [0, 6]
    page.wait_for_selector("#annotators-table >> text=No human labels yet.")  # the quality part loaded
    page.evaluate("window.hourlyCanvas = document.getElementById('hourly-chart')")

    leased = api.post(f"/api/campaigns/{campaign.slug}/next/", {}, format="json")
    assert leased.status_code == 200, leased.content
    assignment = leased.json()["assignment"]["assignment"]
    page.wait_for_selector("#working-table >> text=live-annotator", timeout=8000)  # a live lease: working now
    submitted = api.post(
        f"/api/assignments/{assignment}/submit/", {"label": {"overall": 1}, "active_seconds": 12}, format="json"
    )
    assert submitted.status_code == 201, submitted.content

    page.wait_for_function(f"() => {HOURLY_SUM} === 1", timeout=8000)
    assert page.evaluate(_human_items_in(1)) == 1 and page.evaluate(_human_items_in(0)) == 2
    assert page.evaluate("Chart.getChart('budget-chart').data.datasets[0].data") == [1, 5]
    assert "1 of 6 planned human labels" in page.locator("#budget-figures").inner_text()
    # The charts were updated in place: the canvas is the one the page started with.
    assert page.evaluate("document.getElementById('hourly-chart') === window.hourlyCanvas")
    assert page.locator("#campaign-live").count() == 1


def test_polling_pauses_while_the_tab_is_hidden(page, live_server, running):
    campaign, _ = running
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if request.url.endswith("/live/") else None)
    login(page, live_server, AdminFactory())
    page.goto(f"{live_server.url}/c/{campaign.slug}/")
    page.wait_for_function("() => window.Chart && Chart.getChart('items-chart')")
    page.wait_for_timeout(5600)
    assert len(polls) >= 1  # polled while visible
    page.evaluate(
        "Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    hidden_from = len(polls)
    page.wait_for_timeout(11000)
    assert len(polls) == hidden_from  # two poll intervals passed without a request
    page.evaluate(
        "Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'visible'});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    page.wait_for_timeout(1500)
    assert len(polls) > hidden_from  # back in view: refreshed at once, not at the next interval
