"""Web and worker processes stay small at rest: the SDKs and the dataframe stack load only where they are used.

A gunicorn process carried openai, aiohttp, pandas and pyarrow (~140 MiB of its ~250) before serving anything,
because routing.api, the statistics job and the exports imported them at the top. Each check runs in a fresh
interpreter (this test process has imported everything long ago) and names the import chain that brought a
package back, so a new top-level import fails here rather than in a production memory graph.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Loaded by the code that calls a judge, computes statistics or writes an export, and by nothing else.
LAZY = ("openai", "aiohttp", "httpx2", "tenacity", "pandas", "pyarrow", "sklearn", "scipy", "statsmodels")

# Records, for each package in LAZY, the chain of project modules that imported it first.
_PROBE = """
import json, os, sys, traceback
LAZY = set(json.loads(sys.argv[1]))
first = {}

class Recorder:
    def find_spec(self, name, path=None, target=None):
        if name in LAZY and name not in first:
            first[name] = [
                f"{os.path.relpath(frame.filename, ROOT)}:{frame.lineno}"
                for frame in traceback.extract_stack()
                if frame.filename.startswith(ROOT) and "/.venv/" not in frame.filename
            ]
        return None

ROOT = os.getcwd() + "/"
sys.meta_path.insert(0, Recorder())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
"""

_WEB = """
import annotate.wsgi
from django.test import Client
from django.urls import get_resolver, resolve

get_resolver().reverse_dict  # every URLconf and view module imported
for path in ("/", "/accounts/login/", "/c/c/annotate/", "/c/c/", "/c/c/quality/", "/c/c/stats/", "/c/c/exports/",
             "/c/c/judges/", "/c/c/routing/", "/c/c/flags/", "/c/c/import/", "/api/", "/api/v1/campaigns/c/next/",
             "/api/v1/campaigns/c/stats/", "/api/v1/campaigns/c/exports/", "/api/v1/judges/", "/admin/"):
    resolve(path)
response = Client(raise_request_exception=True).get("/accounts/login/")
assert response.status_code == 200, response.status_code
"""

_WORKER = """
import django
django.setup()
from annotate.celery import app
app.loader.import_default_modules()  # what `celery worker` imports before it takes a task
from jobs.registry import handler_for
for kind in ("import_items", "import_annotations", "compute_stats", "export"):
    handler_for(kind)
"""

_REPORT = """
print(json.dumps({name: first.get(name) for name in LAZY if name in sys.modules}))
"""


def _loaded(body: str) -> dict[str, list[str]]:
    """The packages of LAZY that `body` loaded, each with the project frames that imported it first."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", _PROBE + body + _REPORT, json.dumps(LAZY)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _chains(loaded: dict[str, list[str]]) -> str:
    return "\n".join(f"{name}: {' > '.join(chain or ['(outside the project)'])}" for name, chain in loaded.items())


@pytest.mark.parametrize(("process", "body"), [("web", _WEB), ("worker", _WORKER)])
def test_a_process_at_rest_loads_no_sdk_and_no_dataframes(process, body):
    loaded = _loaded(body)
    assert not loaded, f"the {process} process imported at startup:\n{_chains(loaded)}"


def test_the_probe_sees_a_package_that_is_imported():
    """The check above can fail: computing statistics does load pandas, and the probe names who did."""
    loaded = _loaded("import django\ndjango.setup()\nimport annotate.services.stats_figures\n")
    assert "pandas" in loaded
    assert any("annotate/services/stats_figures.py" in frame for frame in loaded["pandas"])
