"""The README's Python example (pull a finished export through the API, load it with `datasets`) runs
as printed against a live server: the code between the `readme-example` markers is executed unchanged,
with only the server's address and the token in the environment."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from annotate.models import Annotation, Job
from annotate.models.tokens import api_token_create
from annotate.services.exports import export_start
from jobs.runner import job_run
from tests.factories import AdminFactory, AnnotationFactory, CampaignFactory, ItemFactory, UserFactory

README = Path(__file__).resolve().parent.parent / "README.md"


def _example() -> str:
    text = README.read_text()
    found = re.search(r"<!-- readme-example: pull-export -->\s*```python\n(.*?)```", text, re.S)
    assert found, "README.md has no ```python block after <!-- readme-example: pull-export -->"
    return found.group(1)


def test_the_example_is_ten_lines_or_so():
    assert len([line for line in _example().splitlines() if line.strip()]) <= 12


@pytest.mark.django_db(transaction=True)
def test_the_readme_example_pulls_an_export_and_loads_it(live_server, settings, tmp_path):
    settings.TANDEM_EXPORT_DIR = tmp_path / "exports"
    campaign = CampaignFactory(slug="llmbar-natural", preset_name="simple-pairwise")
    raters = [UserFactory() for _ in range(3)]
    for i in range(6):
        item = ItemFactory(campaign=campaign, external_id=f"q{i}", model_a="m1", model_b="m2")
        for rater in raters:
            AnnotationFactory(item=item, annotator=rater, label={"overall": -1 if i % 2 else 1})
    assert Annotation.objects.filter(campaign=campaign).count() == 18
    export = export_start(campaign=campaign, options={"format": "trl", "file_type": "parquet"}, dispatch=False)
    assert job_run(job_id=export.job.pk).state == Job.State.SUCCEEDED
    admin = AdminFactory()
    campaign.members.create(user=admin, role="owner")
    env = {
        **os.environ,
        "TANDEM_URL": live_server.url,
        "TANDEM_TOKEN": api_token_create(user=admin, name="readme").key,
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
    }
    run = subprocess.run(
        [sys.executable, "-c", _example()], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert "num_rows: 6" in run.stdout and "chosen" in run.stdout, run.stdout
