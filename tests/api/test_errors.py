"""One error body on the API: `{"detail", "code", "field"}` for validation, auth, permission, not found, an
unknown path, a crash, and a database that went away (503 with Retry-After); the unversioned aliases keep
their old bodies where they had JSON ones."""

import psycopg
import pytest
from django.db import OperationalError, connection
from rest_framework.test import APIClient

from annotate.models import Annotation
from annotate.services.imports import items_import
from tests.conftest import jsonl, pair

pytestmark = pytest.mark.django_db

SHAPE = {"detail", "code", "field"}


def _shaped(body: dict) -> bool:
    return SHAPE <= body.keys() and isinstance(body["detail"], str) and isinstance(body["code"], str)


def test_a_validation_error_names_each_field(admin_api):
    response = admin_api.post("/api/v1/campaigns/", {"kind": "nonsense"}, format="json")
    body = response.json()
    assert response.status_code == 400 and _shaped(body)
    fields = {error["field"] for error in body["errors"]}
    assert {"name", "kind"} <= fields and body["field"] in fields
    assert {error["code"] for error in body["errors"]} >= {"required", "invalid_choice"}


def test_the_alias_keeps_drf_s_validation_body(admin_api):
    response = admin_api.post("/api/campaigns/", {"kind": "nonsense"}, format="json")
    assert response.status_code == 400 and {"name", "kind"} <= response.json().keys()


@pytest.mark.parametrize(
    ("who", "method", "url", "status", "code"),
    [
        ("anonymous", "get", "/api/v1/campaigns/", 401, "not_authenticated"),
        ("annotator", "post", "/api/v1/campaigns/", 403, "permission_denied"),
        ("admin", "get", "/api/v1/campaigns/no-such-campaign/", 404, "not_found"),
        ("admin", "get", "/api/v1/jobs/999999/", 404, "not_found"),
        ("admin", "put", "/api/v1/campaigns/", 405, "method_not_allowed"),
        ("admin", "get", "/api/v1/no/such/path/", 404, "not_found"),
        ("admin", "get", "/api/no/such/path/", 404, "not_found"),
    ],
)
def test_every_failure_answers_the_one_shape(who, method, url, status, code, admin_api, annotator_api):
    client = {"anonymous": APIClient(), "annotator": annotator_api, "admin": admin_api}[who]
    response = getattr(client, method)(url, {"name": "x", "kind": "pairwise"}, format="json")
    assert response.status_code == status and response["Content-Type"].startswith("application/json")
    assert _shaped(response.json()) and response.json()["code"] == code


@pytest.mark.parametrize("ref", ["%C2%B9", "%C2%B9%C2%B2", "%00", "x%00y", "99999999999999999999999", "%F0%9F%98%80"])
@pytest.mark.parametrize("tail", ["", "items/", "stats/", "routing/", "next/", "review/", "exports/"])
def test_odd_campaign_refs_are_404_not_500(ref, tail, admin_api):
    for prefix in ("/api/v1", "/api"):
        method = admin_api.post if tail == "next/" else admin_api.get
        response = method(f"{prefix}/campaigns/{ref}/{tail}")
        assert response.status_code == 404, (prefix, ref, tail, response.content[:200])


@pytest.fixture
def leased(campaign, annotator_api):
    items_import(campaign=campaign, stream=jsonl(pair(1), pair(2)), filename="items.jsonl")
    lease = annotator_api.post(f"/api/v1/campaigns/{campaign.slug}/next/", {}, format="json").json()
    return lease["assignment"]["assignment"]


def _fail_annotation_inserts(execute, sql, params, many, context):
    if sql.lstrip().upper().startswith("INSERT") and '"annotate_annotation"' in sql:
        raise OperationalError("server closed the connection unexpectedly")
    return execute(sql, params, many, context)


def test_a_database_error_while_submitting_is_a_503_with_retry_after(leased, annotator_api):
    url = f"/api/v1/assignments/{leased}/submit/"
    with connection.execute_wrapper(_fail_annotation_inserts):
        response = annotator_api.post(url, {"label": {"overall": -1}}, format="json")
    assert response.status_code == 503 and response["Retry-After"].isdigit()
    assert response.json() == {
        "detail": "The database is unavailable; nothing was stored. Retry in a few seconds.",
        "code": "database_unavailable",
        "field": None,
    }
    assert not Annotation.objects.exists()
    retried = annotator_api.post(url, {"label": {"overall": -1}}, format="json")
    assert retried.status_code == 201 and Annotation.objects.count() == 1


def test_the_alias_answers_a_database_error_the_same_way(leased, annotator_api):
    with connection.execute_wrapper(_fail_annotation_inserts):
        response = annotator_api.post(f"/api/assignments/{leased}/submit/", {"label": {"overall": 1}}, format="json")
    assert response.status_code == 503 and response.json()["code"] == "database_unavailable"


def _crash(execute, sql, params, many, context):
    if '"annotate_statssnapshot"' in sql:
        raise ZeroDivisionError("a bug")
    return execute(sql, params, many, context)


def test_a_crash_under_the_api_is_json_not_django_s_page(campaign, admin_api):
    admin_api.raise_request_exception = False
    with connection.execute_wrapper(_crash):
        response = admin_api.get(f"/api/v1/campaigns/{campaign.slug}/stats/")
    assert response.status_code == 500 and response["Content-Type"].startswith("application/json")
    assert response.json() == {
        "detail": "The server failed to answer; the error is logged.",
        "code": "server_error",
        "field": None,
    }


def test_a_crash_outside_the_api_keeps_django_s_page(client, admin_user, campaign):
    client.raise_request_exception = False
    client.force_login(admin_user)
    with connection.execute_wrapper(_crash):
        response = client.get(f"/c/{campaign.slug}/stats/")
    assert response.status_code == 500 and response["Content-Type"].startswith("text/html")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_connection_killed_under_a_submit_answers_503_and_stores_once(campaign, annotator_api):
    """The server end of the connection is terminated (as a failover or a restart does): the submit answers
    a 503 the client retries, and the retry stores the label exactly once."""
    if connection.vendor != "postgresql":
        pytest.skip("terminates a PostgreSQL backend")
    items_import(campaign=campaign, stream=jsonl(pair(1)), filename="items.jsonl")
    lease = annotator_api.post(f"/api/v1/campaigns/{campaign.slug}/next/", {}, format="json").json()
    url = f"/api/v1/assignments/{lease['assignment']['assignment']}/submit/"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    settings = connection.settings_dict
    with psycopg.connect(
        dbname=settings["NAME"], user=settings["USER"], password=settings["PASSWORD"] or None,
        host=settings["HOST"] or None, port=settings["PORT"] or None, autocommit=True,
    ) as killer:  # fmt: skip
        killer.execute("SELECT pg_terminate_backend(%s)", [pid])
    response = annotator_api.post(url, {"label": {"overall": -1}}, format="json")
    assert response.status_code == 503 and response.json()["code"] == "database_unavailable"
    assert response["Retry-After"].isdigit()
    connection.close()
    retried = annotator_api.post(url, {"label": {"overall": -1}}, format="json")
    again = annotator_api.post(url, {"label": {"overall": -1}}, format="json")
    assert retried.status_code == 201 and again.status_code == 200
    assert Annotation.objects.filter(assignment_id=lease["assignment"]["assignment"]).count() == 1
