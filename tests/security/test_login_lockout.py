"""Sign-in lock-out (django-axes): five failures for one username from one address lock that pair for the cool-off,
on the login form and at the API token endpoint, with a message that says how long."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.cache import cache
from django.test import Client, override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-123"
LOCKED = "Too many failed sign-ins for this account; try again in 15 minutes."


@pytest.fixture(autouse=True)
def fresh_cache():
    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}):
        cache.clear()
        yield


def sign_in(client, username, password, **extra):
    return client.post(reverse("login"), {"username": username, "password": password}, **extra)


def fail(client, username, times, **extra):
    return [sign_in(client, username, "wrong password", **extra) for _ in range(times)]


def test_the_fifth_failure_locks_the_form_with_a_clear_message():
    user = UserFactory()
    client = Client()
    answers = fail(client, user.username, 5)
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    assert "did not match" in answers[3].content.decode()
    assert LOCKED in answers[4].content.decode()
    assert answers[4]["Retry-After"] == str(15 * 60)
    # Locked means the right password does not help either, and nothing signs in.
    locked = sign_in(client, user.username, PASSWORD)
    assert locked.status_code == 429 and LOCKED in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_lock_is_per_username_and_address():
    user, neighbour = UserFactory(), UserFactory()
    fail(Client(), user.username, 5)
    assert sign_in(Client(), neighbour.username, PASSWORD).status_code == 302
    assert sign_in(Client(), user.username, PASSWORD, REMOTE_ADDR="10.1.2.3").status_code == 302
    assert sign_in(Client(), user.username, PASSWORD).status_code == 429


def test_the_lock_ends_after_the_cool_off_and_the_message_counts_down():
    user = UserFactory()
    fail(Client(), user.username, 5)
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=11))
    still = sign_in(Client(), user.username, PASSWORD)
    assert "try again in 4 minutes" in still.content.decode()
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=5))
    assert sign_in(Client(), user.username, PASSWORD).status_code == 302


def test_a_success_before_the_limit_resets_the_count():
    user = UserFactory()
    fail(Client(), user.username, 4)
    assert sign_in(Client(), user.username, PASSWORD).status_code == 302
    assert [a.status_code for a in fail(Client(), user.username, 4)] == [200] * 4


def test_the_token_endpoint_locks_too_and_answers_json():
    user = UserFactory()
    api = APIClient()
    codes = [
        api.post(reverse("api-token"), {"username": user.username, "password": "nope"}).status_code for _ in range(5)
    ]
    assert codes == [400, 400, 400, 400, 429]
    locked = api.post(reverse("api-token"), {"username": user.username, "password": PASSWORD})
    assert locked.status_code == 429
    assert locked.json()["detail"] == LOCKED and locked.json()["code"] == "locked_out"
    assert locked["Retry-After"] == str(15 * 60)
    # The form shares the count: the account is locked there as well.
    assert sign_in(Client(), user.username, PASSWORD).status_code == 429


def test_a_forwarded_address_is_not_trusted_outside_the_production_profile():
    user = UserFactory()
    for n in range(5):
        sign_in(Client(), user.username, "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert sign_in(Client(), user.username, PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429


@override_settings(TANDEM_CLIENT_IP_HEADER="HTTP_X_FORWARDED_FOR")
def test_behind_a_trusted_proxy_the_forwarded_address_is_the_one_locked():
    user = UserFactory()
    fail(Client(), user.username, 5, HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert sign_in(Client(), user.username, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 429
    assert sign_in(Client(), user.username, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 302


def test_force_login_and_sessions_still_work():
    client = Client()
    client.force_login(UserFactory())
    assert client.get(reverse("account")).status_code == 200
