"""The Content-Security-Policy in Chromium: the annotate page, the campaign home, the statistics page, the import
wizard, the account page and Django's admin work (an htmx action included) without a single violation."""

import json

import pytest
from django.urls import reverse

from annotate.models import Annotation, ApiToken, CampaignMember
from annotate.services.imports import items_import
from annotate.services.stats import stats_snapshot_create
from tests.conftest import jsonl, pair
from tests.factories import AdminFactory, CampaignFactory, ItemFactory, UserFactory

from .conftest import login

WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture
def watched(request):
    """The browser tests' `page`, recording CSP violations from the DOM event and from the console."""
    tab = request.getfixturevalue("page")
    console: list[str] = []
    tab.context.add_init_script(WATCH)
    tab.on("console", lambda message: console.append(message.text))

    def violations() -> list[str]:
        seen = tab.evaluate("window.__csp || []")
        return seen + [text for text in console if "Content Security Policy" in text]

    tab.csp_violations = violations
    return tab


def assert_clean(tab, where: str) -> None:
    tab.wait_for_timeout(150)  # violation events are dispatched asynchronously
    assert tab.csp_violations() == [], f"CSP violations on {where}"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_annotator_pages_raise_no_violation(watched, live_server):
    campaign = CampaignFactory(preset_name="multipref", overlap=1)
    items_import(campaign=campaign, stream=jsonl(*[pair(i) for i in range(3)]), filename="items.jsonl")
    user = UserFactory()
    login(watched, live_server, user)
    assert_clean(watched, "home")
    watched.goto(f"{live_server.url}/c/{campaign.slug}/annotate/")
    watched.wait_for_selector("#current form.item fieldset.scale-row.active")
    before = watched.locator("#current form.item").get_attribute("data-assignment")
    for key in ("1", "2", "3", "5", "4", "Enter"):
        watched.keyboard.press(key)
    watched.wait_for_function(
        "prev => { const f = document.querySelector('#current form.item');"
        " return f && f.dataset.assignment !== prev; }",
        arg=before,
    )
    assert Annotation.objects.filter(annotator=user).count() == 1
    assert_clean(watched, "the annotate page")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_admin_pages_raise_no_violation(watched, live_server, tmp_path, settings):
    settings.TANDEM_UPLOAD_DIR = tmp_path / "uploads"
    campaign = CampaignFactory(preset_name="simple-pairwise")
    raters = [UserFactory() for _ in range(2)]
    for i in range(4):
        item = ItemFactory(campaign=campaign, model_a="m1", model_b="m2")
        for rater in raters:
            Annotation.objects.create(
                item=item, campaign=campaign, source="human", annotator=rater, label={"overall": 1 if i % 2 else -1}
            )
    stats_snapshot_create(campaign=campaign, bootstrap=0)
    admin = UserFactory()
    CampaignMember.objects.create(campaign=campaign, user=admin, role=CampaignMember.Role.ADMIN)
    login(watched, live_server, admin)

    watched.goto(f"{live_server.url}/c/{campaign.slug}/")
    watched.wait_for_function("() => window.Chart && Chart.getChart('items-chart')")
    watched.wait_for_selector("#annotators-table")  # the htmx-loaded quality part arrived
    assert_clean(watched, "the campaign home")

    watched.goto(f"{live_server.url}/c/{campaign.slug}/stats/")
    watched.wait_for_function("() => window.Chart && Chart.getChart('alpha-over-time') !== undefined")
    assert_clean(watched, "the statistics page")

    upload = tmp_path / "items.jsonl"
    upload.write_text("".join(json.dumps(pair(i)) + "\n" for i in range(20, 23)))
    watched.goto(f"{live_server.url}/c/{campaign.slug}/import/")
    watched.set_input_files("#import-file", str(upload))
    watched.click("#import-upload-submit")
    watched.wait_for_selector("#import-preview tbody tr")
    assert_clean(watched, "the import wizard")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_account_page_creates_copies_and_revokes_without_violation(watched, live_server):
    user = UserFactory()
    login(watched, live_server, user)
    watched.click(f"header a[href='{reverse('account')}']")
    watched.wait_for_selector("#api-tokens")
    watched.fill("#f-token-name", "notebook")
    watched.fill("#f-token-days", "7")
    watched.click("#create-token")
    watched.wait_for_selector("#new-token-key")
    assert watched.url == f"{live_server.url}{reverse('account')}"  # swapped in place by htmx, no reload
    key = watched.input_value("#new-token-key")
    token = ApiToken.objects.get(user=user)
    assert key.startswith(token.prefix)
    watched.wait_for_function("() => document.activeElement && document.activeElement.id === 'new-token-key'")
    assert watched.evaluate("() => window.getSelection().toString() || document.activeElement.selectionEnd") in (
        key,
        len(key),
    )
    watched.click("[data-copy='#new-token-key']")
    watched.wait_for_function("() => document.getElementById('new-token-copied').textContent === 'Copied.'")
    watched.click(f"tr[data-token='{token.pk}'] button")
    watched.wait_for_selector(f"tr[data-token='{token.pk}'][data-state='revoked']")
    assert ApiToken.objects.get(pk=token.pk).state() == "revoked"
    assert_clean(watched, "the account page")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_django_admin_works_under_the_policy(watched, live_server):
    login(watched, live_server, AdminFactory())
    watched.goto(f"{live_server.url}/admin/")
    watched.wait_for_selector("#content-main")
    watched.goto(f"{live_server.url}/admin/annotate/campaign/add/")
    watched.wait_for_selector("form#campaign_form")
    watched.goto(f"{live_server.url}/admin/auth/user/")
    watched.wait_for_selector("#result_list")
    watched.click("#action-toggle")  # the admin's own script ticks every row
    assert watched.locator("#result_list tbody input.action-select:checked").count() >= 1
    assert_clean(watched, "Django admin")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_watch_sees_an_inline_script_blocked(watched, live_server):
    """The check above can fail: an inline script added to a served page is blocked and reported."""
    watched.goto(f"{live_server.url}/accounts/login/")
    watched.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1';"
        " document.body.appendChild(s); }"
    )
    watched.wait_for_function("() => window.__csp.length > 0")
    assert watched.evaluate("window.ran") is None
    assert any(v.startswith("script-src") for v in watched.csp_violations())
