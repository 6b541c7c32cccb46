"""API throttles: per user, per token, per anonymous address and at the token endpoint, each a 429 with Retry-After."""

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings
from django.urls import reverse
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from annotate.models.tokens import api_token_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle-tests"}}


def rates(**scopes) -> dict:
    """REST_FRAMEWORK with these throttle rates and generous ones for the other scopes."""
    merged = {"user": "1000/min", "token": "1000/min", "anon": "1000/min", "login": "1000/min", **scopes}
    return {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": merged}


@pytest.fixture(autouse=True)
def fresh_cache():
    with override_settings(CACHES=LOCMEM):
        cache.clear()
        yield
        cache.clear()


def token_client(user, name="t") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user, name=name).key}")
    return client


def test_a_user_over_their_rate_gets_429_with_retry_after():
    client = APIClient()
    client.force_authenticate(UserFactory())
    with override_settings(REST_FRAMEWORK=rates(user="3/min")):
        answers = [client.get(reverse("api-campaigns")) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert 0 < int(answers[-1]["Retry-After"]) <= 60


def test_the_user_rate_counts_every_token_and_session_of_that_user():
    user = UserFactory()
    session = APIClient()
    session.force_authenticate(user)
    with override_settings(REST_FRAMEWORK=rates(user="4/min")):
        codes = [
            c.get(reverse("api-campaigns")).status_code for c in (token_client(user, "a"), token_client(user, "b"))
        ]
        codes += [session.get(reverse("api-campaigns")).status_code for _ in range(3)]
    assert codes == [200, 200, 200, 200, 429]


def test_one_token_over_its_rate_does_not_stop_the_users_other_tokens():
    user = UserFactory()
    runaway, other = token_client(user, "runaway"), token_client(user, "other")
    with override_settings(REST_FRAMEWORK=rates(token="2/min")):
        codes = [runaway.get(reverse("api-campaigns")).status_code for _ in range(3)]
        assert other.get(reverse("api-campaigns")).status_code == 200
    assert codes == [200, 200, 429]


def test_users_are_counted_apart():
    first, second = APIClient(), APIClient()
    first.force_authenticate(UserFactory())
    second.force_authenticate(UserFactory())
    with override_settings(REST_FRAMEWORK=rates(user="1/min")):
        assert first.get(reverse("api-campaigns")).status_code == 200
        assert first.get(reverse("api-campaigns")).status_code == 429
        assert second.get(reverse("api-campaigns")).status_code == 200


class OpenView(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"ok": True})


def test_anonymous_clients_are_counted_per_address():
    factory, view = APIRequestFactory(), OpenView.as_view()
    with override_settings(REST_FRAMEWORK=rates(anon="2/min")):
        here = [view(factory.get("/open/", REMOTE_ADDR="10.0.0.1")).status_code for _ in range(3)]
        elsewhere = view(factory.get("/open/", REMOTE_ADDR="10.0.0.2")).status_code
    assert here == [200, 200, 429] and elsewhere == 200


def test_a_forwarded_address_counts_only_when_the_production_profile_trusts_the_header():
    factory, view = APIRequestFactory(), OpenView.as_view()

    def ask(forwarded):
        return view(factory.get("/open/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR=forwarded)).status_code

    with override_settings(REST_FRAMEWORK=rates(anon="1/min")):
        # Not trusted: a client cannot pick a fresh address per request.
        assert [ask("1.1.1.1"), ask("2.2.2.2")] == [200, 429]
        with override_settings(TANDEM_CLIENT_IP_HEADER="HTTP_X_FORWARDED_FOR"):
            assert [ask("spoofed, 3.3.3.3"), ask("4.4.4.4"), ask("4.4.4.4")] == [200, 200, 429]


def test_the_token_endpoint_has_its_own_rate_per_address():
    user = UserFactory()
    client = APIClient()
    with override_settings(REST_FRAMEWORK=rates(login="2/min")):
        codes = [
            client.post(reverse("api-token"), {"username": user.username, "password": "pw-for-tests-123"}).status_code
            for _ in range(3)
        ]
    assert codes == [200, 200, 429]


def test_bad_rates_in_the_environment_are_refused_by_name():
    import subprocess
    import sys

    env = {"TANDEM_THROTTLE_USER": "lots", "TANDEM_VAR_DIR": settings.VAR_DIR.as_posix(), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='annotate.settings'; django.setup()",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "TANDEM_THROTTLE_USER='lots' is not a rate" in done.stderr
