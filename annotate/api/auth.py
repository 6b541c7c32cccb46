"""Who is asking: API tokens in the Authorization header, and the client's address behind a proxy."""

from __future__ import annotations

import ipaddress
import math

from axes.backends import AxesStandaloneBackend
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from annotate.models import ApiToken
from annotate.models.tokens import api_token_touch, key_hash

KEYWORDS = (b"token", b"bearer")


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Token <key>` or `Bearer <key>`; an expired or revoked token is refused with the reason."""

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() not in KEYWORDS:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send the header as `Authorization: Token <key>`, with one key.")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("The API token contains characters no token has.") from exc
        token = ApiToken.objects.select_related("user").filter(key_hash=key_hash(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid API token.")
        now = timezone.now()
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(
                f"This API token ({token.prefix}…) was revoked on {token.revoked_at:%Y-%m-%d %H:%M} UTC; "
                "create a new one on your account page."
            )
        if token.expires_at <= now:
            raise exceptions.AuthenticationFailed(
                f"This API token ({token.prefix}…) expired on {token.expires_at:%Y-%m-%d %H:%M} UTC; "
                "create a new one on your account page."
            )
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("This account is inactive.")
        api_token_touch(token=token, now=now)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return "Token"


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Describes ApiTokenAuthentication in the OpenAPI schema."""

    target_class = "annotate.api.auth.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'API token from /api/auth/token/ or the account page: "Token <key>" or "Bearer <key>".',
        }


class LockoutModelBackend(AxesStandaloneBackend, ModelBackend):
    """Django's ModelBackend behind django-axes' lock-out check, as one backend: a locked-out username and
    address is refused before its password is compared, and `login()` needs no backend named (with two
    backends configured, Django's password-reset and sign-up logins would have to name one).

    A call without a request (the test client's `login`, a shell) is no sign-in over the network and is
    not counted; axes alone would raise on it."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is not None:
            super().authenticate(request, username=username, password=password, **kwargs)
        return ModelBackend.authenticate(self, request, username=username, password=password, **kwargs)


def client_ip(request) -> str | None:
    """The client's address: REMOTE_ADDR, or the header TANDEM_CLIENT_IP_HEADER names when the production
    profile trusts a reverse proxy (its right-most entry, the one the proxy itself appended)."""
    header = settings.TANDEM_CLIENT_IP_HEADER
    if header:
        hops = [hop.strip() for hop in request.META.get(header, "").split(",") if hop.strip()]
        if hops and _is_ip(hops[-1]):
            return hops[-1]
    remote = request.META.get("REMOTE_ADDR", "")
    return remote if _is_ip(remote) else None


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def lockout_minutes_left(request, username: str) -> int:
    """Whole minutes until a locked-out username may try again from this address (at least 1)."""
    cool_off = settings.AXES_COOLOFF_TIME
    last = (
        AccessAttempt.objects.filter(username=username, ip_address=client_ip(request))
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    if last is None:
        return max(1, math.ceil(cool_off.total_seconds() / 60))
    left = (last + cool_off - timezone.now()).total_seconds()
    return max(1, math.ceil(left / 60))


def lockout_message(request, username: str) -> str:
    minutes = lockout_minutes_left(request, username)
    unit = "minute" if minutes == 1 else "minutes"
    return f"Too many failed sign-ins for this account; try again in {minutes} {unit}."
