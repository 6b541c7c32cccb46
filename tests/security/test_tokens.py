"""API tokens: issued by password or on the account page, hashed at rest, expiring, revocable, one's own only."""

import hashlib
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from annotate.models import ApiToken
from annotate.models.tokens import TokenError, api_token_create, api_token_revoke
from tests.factories import AdminFactory, UserFactory

PASSWORD = "pw-for-tests-123"
pytestmark = pytest.mark.django_db


def bearer(key: str, scheme: str = "Token") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
    return client


def test_the_token_endpoint_issues_an_expiring_token_and_keeps_only_its_hash():
    user = UserFactory()
    answer = APIClient().post("/api/auth/token/", {"username": user.username, "password": PASSWORD}, format="json")
    assert answer.status_code == 200, answer.content
    key = answer.json()["token"]
    token = ApiToken.objects.get(user=user)
    assert token.name == "api"
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in {token.key_hash, token.prefix} and key.startswith(token.prefix)
    expected_expiry = timezone.now() + timedelta(days=90)
    assert abs(token.expires_at - expected_expiry) < timedelta(minutes=1)
    assert answer.json()["expires_at"].startswith(token.expires_at.date().isoformat())
    assert bearer(key).get(reverse("api-campaigns")).status_code == 200
    assert bearer(key, "Bearer").get(reverse("api-campaigns")).status_code == 200


def test_the_versioned_token_endpoint_is_the_same_view():
    user = UserFactory()
    answer = APIClient().post(reverse("v1:api-token"), {"username": user.username, "password": PASSWORD})
    assert answer.status_code == 200 and set(answer.json()) == {"token", "expires_at"}


def test_a_wrong_password_gets_no_token():
    user = UserFactory()
    answer = APIClient().post("/api/auth/token/", {"username": user.username, "password": "nope"}, format="json")
    assert answer.status_code == 400
    assert answer.json()["detail"] == "Unable to sign in with the username and password given."
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"expires_at": timezone.now() - timedelta(seconds=1)}, "expired on"),
        ({"revoked_at": timezone.now() - timedelta(hours=1)}, "was revoked on"),
    ],
)
def test_expired_and_revoked_tokens_are_refused_with_the_reason(change, reason):
    new = api_token_create(user=UserFactory(), name="script")
    ApiToken.objects.filter(pk=new.token.pk).update(**change)
    answer = bearer(new.key).get(reverse("api-campaigns"))
    assert answer.status_code == 401
    assert reason in answer.json()["detail"] and new.token.prefix in answer.json()["detail"]
    assert answer["WWW-Authenticate"] == "Token"


def test_an_unknown_or_malformed_token_is_refused():
    assert bearer("tdm_not-a-key").get(reverse("api-campaigns")).status_code == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token two parts")
    assert client.get(reverse("api-campaigns")).status_code == 401


def test_an_inactive_account_cannot_use_its_token():
    user = UserFactory()
    new = api_token_create(user=user, name="script")
    user.is_active = False
    user.save()
    assert bearer(new.key).get(reverse("api-campaigns")).status_code == 401


def test_last_used_is_written_at_most_once_a_minute(django_assert_max_num_queries):
    new = api_token_create(user=UserFactory(), name="script")
    client = bearer(new.key)
    client.get(reverse("api-tokens"))
    first = ApiToken.objects.get(pk=new.token.pk).last_used_at
    assert first is not None
    client.get(reverse("api-tokens"))
    assert ApiToken.objects.get(pk=new.token.pk).last_used_at == first
    ApiToken.objects.filter(pk=new.token.pk).update(last_used_at=first - timedelta(minutes=2))
    client.get(reverse("api-tokens"))
    assert ApiToken.objects.get(pk=new.token.pk).last_used_at > first


def test_expiry_is_bounded():
    user = UserFactory()
    with pytest.raises(TokenError):
        api_token_create(user=user, name="x", days=366)
    with pytest.raises(TokenError):
        api_token_create(user=user, name="x", days=0)
    with pytest.raises(TokenError):
        api_token_create(user=user, name="   ")
    assert api_token_create(user=user, name="x", days=365).token.expires_at > timezone.now() + timedelta(days=364)


def test_the_api_lists_creates_and_revokes_my_tokens():
    user = UserFactory()
    client = APIClient()
    client.force_authenticate(user)
    created = client.post(reverse("api-tokens"), {"name": "nightly export", "expires_in_days": 7}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["state"] == "active" and body["token"].startswith(body["prefix"])
    listed = client.get(reverse("api-tokens")).json()
    assert [row["name"] for row in listed] == ["nightly export"]
    assert "token" not in listed[0] and "key_hash" not in listed[0]
    assert bearer(body["token"]).get(reverse("api-campaigns")).status_code == 200
    assert client.delete(reverse("api-token-detail", args=[body["id"]])).status_code == 204
    assert client.get(reverse("api-tokens")).json()[0]["state"] == "revoked"
    assert bearer(body["token"]).get(reverse("api-campaigns")).status_code == 401


def test_the_api_refuses_a_lifetime_beyond_the_maximum():
    client = APIClient()
    client.force_authenticate(UserFactory())
    answer = client.post(reverse("api-tokens"), {"name": "forever", "expires_in_days": 4000}, format="json")
    assert answer.status_code == 400
    assert "365" in str(answer.json())
    assert not ApiToken.objects.exists()


def test_nobody_sees_or_revokes_another_users_token_not_even_staff():
    mine = api_token_create(user=UserFactory(), name="mine")
    for other in (UserFactory(), AdminFactory()):
        client = APIClient()
        client.force_authenticate(other)
        assert client.get(reverse("api-tokens")).json() == []
        assert client.get(reverse("api-token-detail", args=[mine.token.pk])).status_code == 404
        assert client.delete(reverse("api-token-detail", args=[mine.token.pk])).status_code == 404
    mine.token.refresh_from_db()
    assert mine.token.state() == "active"


def test_revoking_twice_keeps_the_first_time():
    new = api_token_create(user=UserFactory(), name="x")
    first = api_token_revoke(token=new.token).revoked_at
    again = api_token_revoke(token=ApiToken.objects.get(pk=new.token.pk)).revoked_at
    assert first == again


def test_anonymous_clients_cannot_list_tokens():
    assert APIClient().get(reverse("api-tokens")).status_code in {401, 403}


class TestAccountPage:
    def test_it_creates_shows_the_key_once_and_revokes(self, client):
        user = UserFactory()
        client.force_login(user)
        page = client.get(reverse("account"))
        assert page.status_code == 200 and b"No tokens yet." in page.content
        created = client.post(reverse("account-token-create"), {"name": "laptop", "expires_in_days": "30"})
        assert created.status_code == 200
        token = ApiToken.objects.get(user=user)
        key = created.context["new_token"].key
        assert key.encode() in created.content and "It is shown only now" in created.content.decode()
        assert abs(token.expires_at - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)
        assert key.encode() not in client.get(reverse("account")).content
        revoked = client.post(reverse("account-token-revoke", args=[token.pk]))
        assert revoked.status_code == 302
        assert ApiToken.objects.get(pk=token.pk).state() == "revoked"

    def test_htmx_gets_the_tokens_section_only(self, client):
        user = UserFactory()
        client.force_login(user)
        answer = client.post(reverse("account-token-create"), {"name": "ci"}, HTTP_HX_REQUEST="true")
        assert answer.status_code == 200
        assert answer.content.decode().lstrip().startswith('<section class="card" id="api-tokens">')
        refused = client.post(
            reverse("account-token-create"), {"name": "ci", "expires_in_days": "999"}, HTTP_HX_REQUEST="true"
        )
        assert "A token lasts 1 to 365 days" in refused.content.decode()
        assert ApiToken.objects.filter(user=user).count() == 1

    def test_a_bad_expiry_is_refused_with_the_field_named(self, client):
        client.force_login(UserFactory())
        answer = client.post(reverse("account-token-create"), {"name": "x", "expires_in_days": "soon"})
        assert answer.status_code == 400
        assert "Enter a whole number of days" in answer.content.decode()
        assert 'id="error-expires_in_days"' in answer.content.decode()

    def test_revoke_needs_post_and_csrf_and_ones_own_token(self):
        from django.test import Client

        owner, other = UserFactory(), UserFactory()
        token = api_token_create(user=owner, name="x").token
        client = Client(enforce_csrf_checks=True)
        client.force_login(other)
        assert client.get(reverse("account-token-revoke", args=[token.pk])).status_code == 405
        assert client.post(reverse("account-token-revoke", args=[token.pk])).status_code == 403
        csrf = Client()
        csrf.force_login(other)
        assert csrf.post(reverse("account-token-revoke", args=[token.pk])).status_code == 404
        assert ApiToken.objects.get(pk=token.pk).state() == "active"

    def test_the_header_links_to_the_account_page(self, client):
        client.force_login(UserFactory())
        assert f'href="{reverse("account")}"'.encode() in client.get(reverse("home")).content

    def test_anonymous_visitors_are_sent_to_sign_in(self, client):
        answer = client.get(reverse("account"))
        assert answer.status_code == 302 and answer["Location"].startswith(reverse("login"))
