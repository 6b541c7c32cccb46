"""/healthz checks the database and the broker and names the one that failed."""

import pytest

from annotate.celery import app as celery_app


@pytest.mark.django_db
def test_healthy(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "failed": [], "database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_broker_down_is_named(client):
    old = celery_app.conf.broker_url, celery_app.conf.broker_write_url
    # Nothing listens on port 1.
    celery_app.conf.broker_url = celery_app.conf.broker_write_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/healthz")
    finally:
        celery_app.conf.broker_url, celery_app.conf.broker_write_url = old
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["broker"] and body["database"] == "ok" and body["broker"].startswith("error:")


@pytest.mark.django_db
def test_every_response_says_how_long_the_app_took(client):
    timing = client.get("/healthz")["Server-Timing"]
    assert timing.startswith("app;dur=") and float(timing.split("=")[1]) >= 0
