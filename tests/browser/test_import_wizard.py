"""The import wizard in Chromium: a bad row found before anything is written, the fixed file previewed and
imported, and an unrecognised CSV mapped column by column."""

import json

import pytest

from annotate.models import CampaignMember, Item
from tests.factories import CampaignFactory, UserFactory

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def upload_dir(settings, tmp_path):
    settings.TANDEM_UPLOAD_DIR = tmp_path / "uploads"


def rows(*items) -> str:
    return "".join(json.dumps(item) + "\n" for item in items)


def pair(i, **extra):
    return {
        "id": f"p{i}",
        "prompt": f"Question {i}?",
        "response_a": f"Answer A{i}",
        "response_b": f"Answer B{i}",
        **extra,
    }


def campaign_admin():
    campaign = CampaignFactory(preset_name="simple-pairwise")
    user = UserFactory()
    CampaignMember.objects.create(campaign=campaign, user=user, role=CampaignMember.Role.ADMIN)
    return campaign, user


def test_bad_row_then_fixed_file_then_import(page, live_server, tmp_path):
    campaign, user = campaign_admin()
    bad = tmp_path / "items.jsonl"
    bad.write_text(rows(pair(1), {"id": "p2", "prompt": "Q?", "response_a": "only one"}, pair(3)))
    login(page, live_server, user)
    page.goto(f"{live_server.url}/c/{campaign.slug}/import/")
    assert page.locator('nav.tabs a[aria-current="page"]').inner_text() == "Import"
    page.set_input_files("#import-file", str(bad))
    page.click("#import-upload-submit")
    page.wait_for_selector("#problems")
    problem = page.locator("#problems tbody tr").first
    assert problem.locator("td").nth(0).inner_text() == "line 2"
    assert problem.locator("td").nth(1).inner_text() == "response_b"
    assert page.locator("#import-run").is_disabled()
    assert page.locator("#import-preview tr.bad").count() == 1
    assert Item.objects.count() == 0

    page.click("#import-discard")
    page.wait_for_selector("#import-file")
    fixed = tmp_path / "fixed.jsonl"
    fixed.write_text(rows(pair(1), pair(2, model_a="gpt", model_b="llama"), pair(3, metadata={"domain": "math"})))
    page.set_input_files("#import-file", str(fixed))
    page.click("#import-upload-submit")
    page.wait_for_selector("#problems-none")
    preview = page.locator("#import-preview tbody tr")
    assert preview.count() == 3
    assert "Answer B2" in preview.nth(1).inner_text() and "gpt" in preview.nth(1).inner_text()
    assert page.locator("#count-created").inner_text().startswith("3")
    assert Item.objects.count() == 0  # still nothing written
    page.locator("#import-run").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#import-report")
    assert page.locator("#done-created").inner_text().startswith("3")
    assert page.locator("#to-campaign").get_attribute("href") == f"/c/{campaign.slug}/"
    assert Item.objects.filter(campaign=campaign).count() == 3

    # The same file again: everything unchanged.
    page.click("#import-another")
    page.set_input_files("#import-file", str(fixed))
    page.click("#import-upload-submit")
    page.wait_for_selector("#problems-none")
    assert page.locator("#count-unchanged").inner_text().startswith("3")
    page.click("#import-run")
    page.wait_for_selector("#import-report")
    assert page.locator("#done-unchanged").inner_text().startswith("3")
    assert page.locator("#done-created").inner_text().startswith("0")


def test_an_unrecognised_csv_mapped_column_by_column(page, live_server, tmp_path):
    campaign, user = campaign_admin()
    quiz = tmp_path / "quiz.csv"
    quiz.write_text(
        "qid,question,answer1,answer2,topic\n"
        "q1,What is 1+1?,It is 2.,Maybe 3.,math\n"
        "q2,Capital of France?,Paris.,Lyon.,geography\n"
    )
    login(page, live_server, user)
    page.goto(f"{live_server.url}/c/{campaign.slug}/import/")
    page.set_input_files("#import-file", str(quiz))
    page.click("#import-upload-submit")
    page.wait_for_selector("#problems")
    assert page.locator("#mapping").get_attribute("open") is not None
    assert "not recognised" in page.locator("#mapping summary").inner_text()
    for column, target in (("qid", "id"), ("question", "prompt"), ("answer1", "response_a"), ("answer2", "response_b")):
        page.select_option(f'select[data-column="{column}"]', target)
    page.click("#apply-mapping")
    page.wait_for_selector("#problems-none")
    preview = page.locator("#import-preview tbody tr")
    assert preview.count() == 2 and "Capital of France?" in preview.nth(1).inner_text()
    assert "geography" in preview.nth(1).inner_text()  # an unmapped column lands in metadata
    assert page.locator('select[data-column="question"]').input_value() == "prompt"  # the choice is kept
    page.click("#import-run")
    page.wait_for_selector("#import-report")
    item = Item.objects.get(campaign=campaign, external_id="q2")
    assert (item.prompt, item.response_a, item.response_b, item.metadata) == (
        "Capital of France?",
        "Paris.",
        "Lyon.",
        {"topic": "geography"},
    )
