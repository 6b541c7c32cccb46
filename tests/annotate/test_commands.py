"""The management commands: JSON on stdout, exit status 1 with a message that says where."""

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotate.models import Annotation, Campaign, Item
from tests.conftest import LLMBAR, pair, subprocess_env

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def call(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_create_campaign_prints_id_and_slug():
    printed = json.loads(
        call("create_campaign", "Helpfulness round 1", "--kind", "pairwise", "--preset", "multipref", "--overlap", "3")
    )
    campaign = Campaign.objects.get(pk=printed["id"])
    assert printed == {"id": campaign.pk, "slug": "helpfulness-round-1", "state": "draft"}
    assert campaign.overlap == 3 and campaign.preset == "multipref"
    assert json.loads(call("create_campaign", "Helpfulness round 1", "--kind", "pairwise", "--preset", "multipref"))[
        "slug"
    ] == ("helpfulness-round-1-2")


def test_create_campaign_refuses_a_preset_of_the_other_kind():
    with pytest.raises(CommandError, match="'helpsteer2' is a rubric preset"):
        call("create_campaign", "X", "--kind", "pairwise", "--preset", "helpsteer2")


def test_create_campaign_from_a_schema_file(tmp_path):
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"pairwise": {"aspects": [{"name": "quality", "scale": 2}]}}))
    with pytest.raises(CommandError, match="needs an 'overall' aspect"):
        call("create_campaign", "X", "--kind", "pairwise", "--schema", str(schema))


def test_import_items_by_slug_or_id_prints_a_report(tmp_path, campaign):
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(json.dumps(pair(i)) for i in range(4)))
    assert json.loads(call("import_items", campaign.slug, str(path)))["created"] == 4
    assert json.loads(call("import_items", str(campaign.pk), str(path)))["unchanged"] == 4


def test_import_items_failure_names_line_and_field(tmp_path, campaign):
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(pair(1)) + "\n" + json.dumps({"id": "x", "prompt": "P", "response_a": "A"}) + "\n")
    with pytest.raises(CommandError) as info:
        call("import_items", campaign.slug, str(path))
    assert f"{path}, line 2, field 'response_b': missing" in str(info.value)
    assert Item.objects.count() == 0


def test_unknown_campaign_and_missing_file(tmp_path, campaign):
    with pytest.raises(CommandError, match="no campaign with id or slug 'nope'"):
        call("import_items", "nope", str(tmp_path / "x.jsonl"))
    with pytest.raises(CommandError, match="No such file"):
        call("import_items", campaign.slug, str(tmp_path / "x.jsonl"))


def test_import_annotations_command(tmp_path, campaign):
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps(pair(1)))
    call("import_items", campaign.slug, str(items))
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"item": "p1", "judge": "j1", "label": {"overall": 0}}))
    assert json.loads(call("import_annotations", campaign.slug, str(labels)))["created"] == 1
    assert Annotation.objects.get().judge.name == "j1"


@pytest.mark.django_db(transaction=True)
def test_exit_status_is_1_and_the_message_is_on_stderr(tmp_path, settings):
    """Run the real CLI in a subprocess against the test database."""
    from django.db import connection

    env = subprocess_env(connection)
    create = subprocess.run(
        [sys.executable, "manage.py", "create_campaign", "CLI", "--kind", "pairwise", "--preset", "simple-pairwise"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    slug = json.loads(create.stdout)["slug"]
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(
        b'{"id": "a", "prompt": "P", "response_a": "A", "response_b": "B"}\n{"id": "b", "prompt": "\xff"}\n'
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "import_items", slug, str(bad)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert f"{bad}, line 2: not valid UTF-8 (byte 0xff" in result.stderr
    assert result.stdout == ""
    good = subprocess.run(
        [sys.executable, "manage.py", "import_items", slug, str(LLMBAR / "dataset.json")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["created"] == 100
