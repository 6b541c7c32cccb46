"""The annotator's round trip made cheap without giving anything up: tokens checked on every request, and
throttle counters in a SQLite file of their own that every process shares (annotate/api/throttles.py)."""

import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from annotate.api.auth import api_token_with_user
from annotate.models import ApiToken
from annotate.models.tokens import api_token_create, api_token_revoke, key_hash
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_a_revoked_token_is_refused_on_the_very_next_request():
    new = api_token_create(user=UserFactory(), name="script")
    client = token_client(new.key)
    assert client.get(reverse("api-campaigns")).status_code == 200
    api_token_revoke(token=ApiToken.objects.get(pk=new.token.pk))
    answer = client.get(reverse("api-campaigns"))
    assert answer.status_code == 401
    assert "revoked" in answer.json()["detail"]


def test_an_expired_token_and_an_inactive_account_are_refused_on_the_next_request():
    user = UserFactory()
    new = api_token_create(user=user, name="script")
    client = token_client(new.key)
    assert client.get(reverse("api-campaigns")).status_code == 200
    ApiToken.objects.filter(pk=new.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert "expired" in client.get(reverse("api-campaigns")).json()["detail"]
    ApiToken.objects.filter(pk=new.token.pk).update(expires_at=timezone.now() + timedelta(days=1))
    assert client.get(reverse("api-campaigns")).status_code == 200
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert client.get(reverse("api-campaigns")).status_code == 401


def test_the_token_lookup_reads_the_same_token_and_user_as_the_orm():
    new = api_token_create(user=UserFactory(), name="script")
    token = api_token_with_user(key_hash=key_hash(new.key))
    expected = ApiToken.objects.select_related("user").get(pk=new.token.pk)
    assert [getattr(token, f.attname) for f in ApiToken._meta.concrete_fields] == [
        getattr(expected, f.attname) for f in ApiToken._meta.concrete_fields
    ]
    fields = expected.user._meta.concrete_fields
    assert [getattr(token.user, f.attname) for f in fields] == [getattr(expected.user, f.attname) for f in fields]
    assert token.expires_at.tzinfo is not None and token.user.is_active is True
    assert api_token_with_user(key_hash=key_hash("tdm_no-such-key")) is None


# The embedded default's throttle cache, also when this run's settings use Redis.
EMBEDDED_THROTTLE = {
    "BACKEND": "annotate.api.throttles.CounterCache",
    "TIMEOUT": None,
    "SHARDS": 4,
    "DATABASE_TIMEOUT": 0.25,
}


def counter_caches(path):
    return {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "round-trip"},
        "throttle": {**EMBEDDED_THROTTLE, "LOCATION": str(path)},
    }


INCREMENTS = """
import sys
sys.path.insert(0, {root!r})
import django, os
os.environ["DJANGO_SETTINGS_MODULE"] = "annotate.settings"
django.setup()
from diskcache import DjangoCache
from annotate.api.throttles import _count_one
cache = DjangoCache({path!r}, {params!r})
for _ in range({n}):
    _count_one(cache, "shared", timeout=600)
"""


def test_throttle_counts_from_two_processes_at_once_add_up(tmp_path):
    from diskcache import DjangoCache

    path, n = tmp_path / "throttle", 300
    params = {k: v for k, v in EMBEDDED_THROTTLE.items() if k != "BACKEND"}
    script = INCREMENTS.format(root=str(settings.BASE_DIR), path=str(path), params=params, n=n)
    env = {"TANDEM_VAR_DIR": str(tmp_path / "var"), "PATH": "/usr/bin:/bin"}
    children = [
        subprocess.Popen([sys.executable, "-c", script], cwd=settings.BASE_DIR, env=env, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for child in children:
        assert child.wait(timeout=120) == 0, child.stderr.read().decode()[-2000:]
    assert DjangoCache(str(path), params).get("shared") == 2 * n  # none lost to the other process


def test_a_rate_is_enforced_with_requests_counted_by_another_process(tmp_path):
    path = tmp_path / "throttle.sqlite3"
    user = UserFactory()
    client = token_client(api_token_create(user=user, name="script").key)
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "5/min", "token": "1000/min"}
    with override_settings(
        CACHES=counter_caches(path), REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    ):
        assert [client.get(reverse("api-campaigns")).status_code for _ in range(2)] == [200, 200]
        # Another gunicorn process (its own connection to the same file) counts three more of this user's requests.
        from diskcache import FanoutCache

        # Its own handle on the same files, incrementing the stored key as that process's cache would.
        other = FanoutCache(str(path), shards=EMBEDDED_THROTTLE["SHARDS"])
        key = next(k for k in other if "throttle_user_" in k)
        other.incr(key, 3)
        refused = client.get(reverse("api-campaigns"))
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60


def test_the_counter_cache_stays_open_when_a_request_finishes(tmp_path):
    """Django closes every cache at the end of a request; reopening diskcache's files each time cost more
    than the annotator's whole next + submit."""
    from django.core.signals import request_finished

    with override_settings(CACHES=counter_caches(tmp_path / "throttle")):
        cache = caches["throttle"]
        cache.add("n", 1, 60)
        before = cache._cache._shards[0]._con
        request_finished.send(sender=None)
        assert caches["throttle"]._cache._shards[0]._con is before
