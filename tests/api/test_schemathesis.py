"""Schemathesis against the published schema, in-process through the WSGI app, as staff and as an annotator:
no answer is a 5xx and every answer matches the schema (body and content type).

Bounded for CI: a few derandomized examples per operation (the same cases on every run), no deadline. Path
ids point at a seeded campaign, item, lease, label, export, job, pool and judge most of the time, so the
cases reach real objects and not only 404s; the rest keep the generated (fuzzed) value.
"""

import zlib

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, settings

from annotate.models import AnnotatorPool, DatasetExport, Item, Judge
from annotate.models.tokens import api_token_create
from annotate.services.assignments import annotation_submit, next_assignment_for
from annotate.services.imports import items_import
from annotate.wsgi import application
from tests.conftest import jsonl, pair
from tests.factories import AdminFactory, CampaignFactory, JobFactory, UserFactory

raw = SchemaGenerator().get_schema(request=None, public=True)
schema = schemathesis.openapi.from_dict(raw)
schema.app = application
# Judges' create, change and probe call the judge's URL: the judges' own tests cover them with a fake server.
schema = (
    schema.exclude(path_regex=r"/judges/\{id\}/probe/$")
    .exclude(path_regex=r"^/api/v1/judges/$", method="POST")
    .exclude(path_regex=r"^/api/v1/judges/\{id\}/$", method="PATCH")
)

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.specs.openapi.checks.response_schema_conformance,
    schemathesis.specs.openapi.checks.content_type_conformance,
]
BOUNDED = settings(
    max_examples=2,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Seeded once for the module and committed (each case runs in its own rolled-back transaction on top),
    then removed: one campaign with items, a lease, a label, an export, a job, a pool and a judge."""
    with django_db_blocker.unblock():
        seeded = _seeded()
    yield seeded[:2]
    with django_db_blocker.unblock():
        campaign, pool, judge, users = seeded[2]
        campaign.delete()
        pool.delete()
        judge.delete()
        for user in users:
            user.delete()


def _seeded():
    staff = AdminFactory()
    annotator = UserFactory()
    campaign = CampaignFactory(preset_name="simple-pairwise", overlap=2, created_by=staff)
    items_import(campaign=campaign, stream=jsonl(*(pair(i) for i in range(6))), filename="items.jsonl")
    labelled = next_assignment_for(annotator=annotator, campaign=campaign)
    annotation, _ = annotation_submit(assignment_id=labelled.pk, annotator=annotator, label={"overall": -1},
                                      justification="", rater_confidence=None, active_seconds=None)  # fmt: skip
    lease = next_assignment_for(annotator=annotator, campaign=campaign)
    export = DatasetExport.objects.create(campaign=campaign, options={"format": "trl"})
    pool = AnnotatorPool.objects.create(name="seeded pool")
    judge = Judge.objects.create(name="seeded", base_url="http://127.0.0.1:9/v1", model="m")
    ids = {
        "ref": campaign.slug,
        "items": Item.objects.filter(campaign=campaign).first().pk,
        "assignments": lease.pk,
        "annotations": annotation.pk,
        "exports": export.pk,
        "jobs": JobFactory(campaign=campaign).pk,
        "pools": pool.pk,
        "judges": judge.pk,
    }
    tokens = {
        "staff": api_token_create(user=staff, name="schemathesis").key,
        "annotator": api_token_create(user=annotator, name="schemathesis").key,
    }
    return ids, tokens, (campaign, pool, judge, [staff, annotator])


@pytest.fixture
def wsgi_requests():
    """The WSGI app runs in this thread on the test's connection: keep Django from closing it per request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _seed(case, ids: dict) -> None:
    """Point most path ids at seeded objects (a stable choice per case: the same run every time)."""
    parameters = case.path_parameters or {}
    if zlib.crc32(repr(sorted(parameters.items())).encode()) % 4 == 0:
        return
    for name in parameters:
        if name == "ref":
            parameters[name] = ids["ref"]
        elif name in ("id", "pk", "item_id"):
            collection = case.path.removeprefix("/api/v1/").split("/")[0]
            key = "items" if name == "item_id" else ("items" if collection == "campaigns" else collection)
            if key in ids:
                parameters[name] = ids[key]


def _run(case, world, who: str) -> None:
    ids, tokens = world
    _seed(case, ids)
    case.call_and_validate(headers={"Authorization": f"Token {tokens[who]}"}, checks=CHECKS)


@schema.parametrize()
@BOUNDED
def test_api_as_staff(case, world, wsgi_requests, db):
    _run(case, world, "staff")


@schema.parametrize()
@BOUNDED
def test_api_as_annotator(case, world, wsgi_requests, db):
    _run(case, world, "annotator")
