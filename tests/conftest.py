"""Shared fixtures: API clients per role, campaigns, and a helper to write import files."""

import io
import json
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from annotate.celery import app as celery_app
from annotate.models.tokens import api_token_create

from .factories import AdminFactory, CampaignFactory, UserFactory

LLMBAR = Path(__file__).resolve().parent.parent / "demo" / "llmbar" / "natural"
SHARED_LLMBAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "llmbar"


@pytest.fixture(autouse=True, scope="session")
def fast_password_hashing():
    """Test users' passwords hashed with MD5: the default PBKDF2 (a million rounds) costs about half a second
    per user on a 2-core machine, and the suite makes thousands of users. Logins still check a password; the
    default hasher stays listed, so a hash made elsewhere verifies too."""
    from django.conf import settings
    from django.test.utils import override_settings

    hashers = ["django.contrib.auth.hashers.MD5PasswordHasher", *settings.PASSWORD_HASHERS]
    with override_settings(PASSWORD_HASHERS=hashers):
        yield


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    """Each test counts throttles and caches from zero, in this process's memory (not var/cache, shared
    with other runs and xdist workers)."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"}}
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _broker_reachable_again():
    """Each test starts with the dispatcher trying the broker: a test that found it down (on purpose) must not
    leave the next test's dispatches in the few seconds in which they do not even try."""
    from jobs import dispatch

    dispatch.broker_try_again()
    yield


@pytest.fixture
def eager_celery():
    """Run tasks in-process for tests that are about our code, not about the broker."""
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = old


@pytest.fixture
def admin_user(db):
    return AdminFactory()


@pytest.fixture
def annotator(db):
    return UserFactory()


@pytest.fixture
def admin_api(admin_user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=admin_user, name='tests').key}")
    return client


@pytest.fixture
def annotator_api(annotator):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=annotator, name='tests').key}")
    return client


@pytest.fixture
def campaign(db):
    return CampaignFactory(preset_name="simple-pairwise")


@pytest.fixture
def multipref(db):
    return CampaignFactory(preset_name="multipref")


@pytest.fixture
def rubric_campaign(db):
    return CampaignFactory(preset_name="helpsteer2")


def jsonl(*rows) -> io.BytesIO:
    """Rows as a JSONL stream; a str row is written verbatim (for broken lines)."""
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    return io.BytesIO(("\n".join(lines) + "\n").encode("utf-8"))


def pair(i, **extra) -> dict:
    return {
        "id": f"p{i}",
        "prompt": f"Question {i}?",
        "response_a": f"Answer A{i}",
        "response_b": f"Answer B{i}",
        **extra,
    }


def subprocess_env(connection) -> dict:
    """The environment a child process (CLI, worker) needs to reach the test database."""
    import os

    env = dict(os.environ)
    settings_dict = connection.settings_dict
    if connection.vendor == "postgresql":
        user, password = settings_dict["USER"], settings_dict.get("PASSWORD") or ""
        host, port = settings_dict["HOST"] or "127.0.0.1", settings_dict["PORT"] or 5432
        env["DATABASE_URL"] = f"postgres://{user}:{password}@{host}:{port}/{settings_dict['NAME']}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{settings_dict['NAME']}"
    return env
