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
