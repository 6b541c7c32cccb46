"""The annotate page in Chromium: keyboard only, rubric, skip, guidelines, hostile text, double submit."""

import pytest

from annotate.models import Annotation, Assignment
from annotate.schema import label_orient
from annotate.services.imports import items_import
from tests.conftest import jsonl, pair
from tests.factories import CampaignFactory, UserFactory

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def current_assignment(page) -> str:
    return page.locator("#current form.item").get_attribute("data-assignment")


def wait_for_next_item(page, previous: str) -> str:
    page.wait_for_function(
        "prev => { const f = document.querySelector('#current form.item');"
        " return f && f.dataset.assignment !== prev; }",
        arg=previous,
    )
    return current_assignment(page)


def open_annotate(page, live_server, campaign, user):
    login(page, live_server, user)
    page.goto(f"{live_server.url}/c/{campaign.slug}/annotate/")
    page.wait_for_selector("#current form.item fieldset.scale-row.active")
    page.wait_for_selector("#next form.item", state="attached")  # leased and rendered behind, hidden


def test_three_pairwise_items_with_the_keyboard_only(page, live_server):
    campaign = CampaignFactory(preset_name="multipref", overlap=1)
    items_import(campaign=campaign, stream=jsonl(*[pair(i) for i in range(4)]), filename="items.jsonl")
    user = UserFactory()
    open_annotate(page, live_server, campaign, user)
    chosen = []
    for _ in range(3):
        before = current_assignment(page)
        # overall: 1 = "A is much better"; auto-advance to the next row after each choice.
        for key in ("1", "2", "3", "5"):
            page.keyboard.press(key)
        page.keyboard.press("4")  # confidence
        page.keyboard.press("Enter")
        chosen.append(before)
        wait_for_next_item(page, before)
    page.wait_for_function("() => document.querySelector('#progress .mine').textContent === '3'")
    display = {"overall": -2, "helpfulness": -1, "truthfulness": 0, "harmlessness": 2}
    for assignment_id in chosen:
        assignment = Assignment.objects.get(pk=assignment_id)
        annotation = Annotation.objects.get(assignment=assignment)
        assert annotation.label == label_orient(
            schema=campaign.label_schema, kind="pairwise", label=display, position_swapped=assignment.position_swapped
        )
        assert annotation.rater_confidence == 4 and annotation.annotator == user


def test_enter_on_an_incomplete_item_points_at_the_missing_row(page, live_server):
    campaign = CampaignFactory(preset_name="multipref", overlap=1)
    items_import(campaign=campaign, stream=jsonl(pair(0), pair(1)), filename="items.jsonl")
    open_annotate(page, live_server, campaign, UserFactory())
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.wait_for_selector(".flash.error:has-text('Answer every row first')")
    assert page.locator("fieldset.scale-row.active").get_attribute("data-key") == "helpfulness"
    assert not Annotation.objects.exists()


def test_a_rubric_item(page, live_server):
    campaign = CampaignFactory(preset_name="helpsteer2", overlap=1)
    items_import(
        campaign=campaign,
        stream=jsonl(*[{"id": f"r{i}", "prompt": "P", "response": "R"} for i in range(2)]),
        filename="r.jsonl",
    )
    open_annotate(page, live_server, campaign, UserFactory())
    assert page.locator("fieldset[data-key=helpfulness] .score-desc").first.inner_text() == "Not helpful at all"
    before = current_assignment(page)
    for key in ("4", "3", "4", "1", "2"):
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    wait_for_next_item(page, before)
    assert Annotation.objects.get().label == {
        "helpfulness": 4,
        "correctness": 3,
        "coherence": 4,
        "complexity": 1,
        "verbosity": 2,
    }


def test_skip_with_a_reason(page, live_server):
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=1)
    items_import(campaign=campaign, stream=jsonl(pair(0), pair(1), pair(2)), filename="items.jsonl")
    open_annotate(page, live_server, campaign, UserFactory())
    before = current_assignment(page)
    page.keyboard.press("s")
    page.wait_for_selector("#skip-dialog[open]")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    wait_for_next_item(page, before)
    skipped = Assignment.objects.get(pk=before)
    assert skipped.state == "skipped" and skipped.skip_reason == "The prompt or a response is broken or empty"


def test_guidelines_and_shortcuts(page, live_server):
    campaign = CampaignFactory(preset_name="simple-pairwise", guidelines="# Rules\n\nPrefer **honest** answers.")
    items_import(campaign=campaign, stream=jsonl(pair(0)), filename="items.jsonl")
    open_annotate_single = page
    login(open_annotate_single, live_server, UserFactory())
    page.goto(f"{live_server.url}/c/{campaign.slug}/annotate/")
    page.wait_for_selector("#current form.item")
    assert not page.locator("#guidelines").is_visible()
    page.keyboard.press("g")
    assert page.locator("#guidelines h1").inner_text() == "Rules"
    assert page.locator("#guidelines strong").inner_text() == "honest"
    page.keyboard.press("g")
    assert not page.locator("#guidelines").is_visible()
    page.keyboard.press("?")
    assert page.locator("#shortcuts").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("#shortcuts").is_visible()


def test_hostile_text_renders_as_text_and_runs_nothing(page, live_server):
    campaign = CampaignFactory(preset_name="simple-pairwise")
    hostile = pair(
        0,
        prompt="<script>window.__pwned = 'prompt'</script>Hello",
        response_a="<img src=x onerror=\"window.__pwned = 'img'\">",
        response_b="[click](javascript:window.__pwned='link') "
        "<iframe src=\"javascript:window.__pwned='iframe'\"></iframe>",
    )
    items_import(campaign=campaign, stream=jsonl(hostile), filename="items.jsonl")
    login(page, live_server, UserFactory())
    page.goto(f"{live_server.url}/c/{campaign.slug}/annotate/")
    page.wait_for_selector("#current form.item")
    assert "<script>window.__pwned = 'prompt'</script>Hello" in page.locator(".prompt .md").inner_text()
    assert "<img src=x onerror=" in page.locator(".responses").inner_text()
    assert (
        page.locator(".responses img, .responses iframe, .prompt script, .responses a[href^=javascript]").count() == 0
    )
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__pwned") is None


def test_double_submit_stores_one_label(page, live_server):
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=1)
    items_import(campaign=campaign, stream=jsonl(pair(0), pair(1), pair(2)), filename="items.jsonl")
    user = UserFactory()
    open_annotate(page, live_server, campaign, user)
    before = current_assignment(page)
    page.keyboard.press("3")
    page.locator("#current button.submit").dblclick()
    page.keyboard.press("Enter")
    after = wait_for_next_item(page, before)
    page.wait_for_timeout(300)
    assert Annotation.objects.filter(annotator=user).count() == 1
    assert Assignment.objects.get(pk=after).state == "leased"


def test_progress_follows_my_labels_and_survives_back_and_reload(page, live_server):
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=1)
    items_import(campaign=campaign, stream=jsonl(*[pair(i) for i in range(5)]), filename="items.jsonl")
    user = UserFactory()
    open_annotate(page, live_server, campaign, user)
    assert page.locator("#mine-count").inner_text() == "0"
    assert page.locator("#left-count").inner_text() == "5"
    for n in (1, 2):
        before = current_assignment(page)
        page.keyboard.press("3")
        page.keyboard.press("Enter")
        wait_for_next_item(page, before)
        page.wait_for_function("n => document.querySelector('#mine-count').textContent === String(n)", arg=n)
    # The bar and the counts moved with each submit, without a reload.
    assert page.locator("#left-count").inner_text() == "3"
    assert page.locator("#my-progress .bar > span").get_attribute("style") == "width: 40%"
    assert page.locator("#campaign-labels").inner_text() == "2"
    # Away and Back: the header shows today's counts, not the page as it was first sent.
    page.get_by_role("link", name="My recent labels").click()
    page.wait_for_url(f"{live_server.url}/c/{campaign.slug}/labels/")
    page.go_back()
    page.wait_for_selector("#current form.item")
    assert page.locator("#mine-count").inner_text() == "2"
    assert page.locator("#campaign-labels").inner_text() == "2"
    assert page.locator("#left-count").inner_text() == "3"
    page.reload()
    page.wait_for_selector("#current form.item")
    assert page.locator("#mine-count").inner_text() == "2"
    assert Annotation.objects.filter(annotator=user).count() == 2


def test_the_stranded_page_gives_an_item_back_with_the_keyboard(page, live_server):
    from annotate.models import CampaignMember
    from annotate.services.assignments import annotation_submit, assignment_skip, next_assignment_for

    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=2)
    items_import(campaign=campaign, stream=jsonl(pair(0)), filename="items.jsonl")
    skipper, labeller, admin = UserFactory(), UserFactory(), UserFactory()
    campaign.annotators.add(skipper, labeller)
    CampaignMember.objects.create(campaign=campaign, user=admin, role="admin")
    skipped = next_assignment_for(annotator=skipper, campaign=campaign)
    assignment_skip(assignment_id=skipped.pk, annotator=skipper, reason="Too *long* <b>x</b>")
    labelled = next_assignment_for(annotator=labeller, campaign=campaign)
    annotation_submit(assignment_id=labelled.pk, annotator=labeller, label={"overall": 1})
    login(page, live_server, admin)
    page.goto(f"{live_server.url}/c/{campaign.slug}/queue/")
    row = page.locator(f"#stranded tr[data-item='{skipped.item_id}']")
    assert "1 / 2" in row.inner_text() and "Too long <b>x</b>" in row.inner_text()
    assert page.locator("#stranded b").count() == 0  # the reason is text, not markup
    row.get_by_role("button", name="Give back").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#stranded .flash.ok:has-text('Gave 1 item back')")
    assert "No stranded items" in page.locator("#stranded").inner_text()
    assert page.url == f"{live_server.url}/c/{campaign.slug}/queue/"  # swapped in place by htmx
    assert Assignment.objects.get(pk=skipped.pk).returned_at is not None
