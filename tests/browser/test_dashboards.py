"""The admins' pages in Chromium: the statistics dashboard draws its charts from the vendored Chart.js,
and the judges page polls a running run's progress; no script errors on either."""

import pytest

from annotate.models import Annotation, Job
from annotate.services.stats import stats_snapshot_create
from tests.factories import AdminFactory, CampaignFactory, ItemFactory, JudgeFactory, UserFactory

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_statistics_dashboard_draws_its_charts(page, live_server):
    campaign = CampaignFactory(preset_name="simple-pairwise")
    raters = [UserFactory() for _ in range(3)]
    for i in range(12):
        item = ItemFactory(campaign=campaign, model_a="m1", model_b="m2" if i % 2 else "m3")
        for n, rater in enumerate(raters):
            value = -1 if (i + (n == 2)) % 3 else 1
            Annotation.objects.create(item=item, campaign=campaign, source="human", annotator=rater,
                                      label={"overall": value}, position_swapped=bool(n % 2))  # fmt: skip
    stats_snapshot_create(campaign=campaign, bootstrap=20)
    stats_snapshot_create(campaign=campaign, bootstrap=20)
    login(page, live_server, AdminFactory())
    page.goto(f"{live_server.url}/c/{campaign.slug}/stats/")
    page.wait_for_function("() => window.Chart && Chart.getChart('alpha-over-time') !== undefined")
    assert page.evaluate("Chart.getChart('alpha-over-time').data.datasets[0].data.length") == 2
    assert page.evaluate("Chart.getChart('leaderboard-chart').data.labels.length") == 3
    assert page.locator("#annotators tbody tr").count() == 3


def test_the_judges_page_polls_a_running_run(page, live_server):
    campaign = CampaignFactory(preset_name="simple-pairwise")
    campaign.judges.add(JudgeFactory(name="page-judge", base_url="http://127.0.0.1:9/v1"))
    job = Job.objects.create(kind="judge_run", campaign=campaign, state="running", progress_done=3, progress_total=10)
    login(page, live_server, AdminFactory())
    page.goto(f"{live_server.url}/c/{campaign.slug}/judges/")
    page.wait_for_selector("#runs >> text=3 / 10")
    Job.objects.filter(pk=job.pk).update(progress_done=7)
    page.wait_for_selector("#runs >> text=7 / 10", timeout=5000)  # the fragment refreshes by itself
    page.click("#runs button:has-text('Cancel')")
    page.wait_for_selector("#runs >> text=cancelled")
    assert Job.objects.get(pk=job.pk).state == "cancelled"


def test_the_dashboard_draws_what_the_budget_buys_and_the_routing_page_polls_its_pass(page, live_server):
    from routing.router import route_campaign
    from tests.routing.test_router import judge_items

    campaign = CampaignFactory(
        preset_name="simple-pairwise", routing_policy="judge_uncertainty", human_budget=0.25, calibration_fraction=0.2
    )
    judge = JudgeFactory(imported=True)
    campaign.judges.add(judge)
    items = [ItemFactory(campaign=campaign, external_id=f"b{k}") for k in range(150)]
    wrong = {k for k in range(150) if k % 5 == 0}
    judge_items(campaign, judge, items, wrong=wrong, flipped=wrong)
    route_campaign(campaign=campaign)
    rater = UserFactory()
    for item in campaign.items.filter(route="both"):
        Annotation.objects.create(item=item, campaign=campaign, source="human", annotator=rater, label={"overall": 1})
    stats_snapshot_create(campaign=campaign, bootstrap=0)
    login(page, live_server, AdminFactory())
    page.goto(f"{live_server.url}/c/{campaign.slug}/stats/")
    page.wait_for_function("() => window.Chart && Chart.getChart('routing-curve') !== undefined")
    names = page.evaluate("Chart.getChart('routing-curve').data.datasets.map(d => d.label)")
    assert names == ["judge_uncertainty", "random", "oracle", "your budget"]
    # 38 of the 150 items for humans, 30 of them the slice: the policy gets 8 of the other 120.
    assert page.evaluate("Chart.getChart('routing-curve').data.datasets[3].data[0].x") == pytest.approx(
        100 * 8 / 120, abs=0.01
    )  # rest_fraction is kept to 4 places
    assert "expected to give" in page.locator("#forecast").inner_text()
    job = Job.objects.create(kind="route", campaign=campaign, state="running")
    page.goto(f"{live_server.url}/c/{campaign.slug}/routing/")
    page.wait_for_selector("#routing-pass >> text=running")
    Job.objects.filter(pk=job.pk).update(
        state="succeeded", result={"decisions_written": 42, "calibration": {"items": 30}}
    )
    page.wait_for_selector("#routing-pass >> text=42 decisions written", timeout=5000)
