"""Who is asking: API tokens in the Authorization header, and the client's address behind a proxy."""

from __future__ import annotations

import ipaddress
import math

from axes.backends import AxesStandaloneBackend
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from annotate.models import ApiToken
from annotate.models.rawsql import converted_row
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
        token = api_token_with_user(key_hash=key_hash(key))
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


def api_token_with_user(*, key_hash: str) -> ApiToken | None:
    """The token with this hash and its user, in one indexed query on every API request.

    Read each time, never cached, so a revoked or expired token is refused on the very next request.
    Written out rather than `select_related(...).first()`: building that queryset costs several times the
    query itself (about 1 ms of Python per request on a small machine, for a 50 µs lookup); the statement
    and each column's converters are worked out once per connection.
    """
    db = connections[DEFAULT_DB_ALIAS]
    plan = db.__dict__.get("tandem_token_plan")  # on the connection: its converters are bound to it
    if plan is None:
        plan = db.__dict__["tandem_token_plan"] = _token_plan(db)
    sql, token_names, user_names, converters = plan
    with db.cursor() as cursor:
        cursor.execute(sql, [key_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    values = converted_row(row, converters, db)
    token = ApiToken.from_db(db.alias, token_names, values[: len(token_names)])
    token.user = get_user_model().from_db(db.alias, user_names, values[len(token_names) :])
    return token


def _token_plan(db) -> tuple:
    """The lookup's SQL, the two models' field names and each column's converters, for this connection."""
    user_model = get_user_model()
    token_fields = ApiToken._meta.concrete_fields
    user_fields = user_model._meta.concrete_fields
    columns = [f"t.{db.ops.quote_name(f.column)}" for f in token_fields]
    columns += [f"u.{db.ops.quote_name(f.column)}" for f in user_fields]
    sql = (
        f"SELECT {', '.join(columns)} FROM {ApiToken._meta.db_table} t "
        f"JOIN {user_model._meta.db_table} u ON u.id = t.user_id WHERE t.key_hash = %s"
    )
    converters = []
    for position, field in enumerate([*token_fields, *user_fields]):
        # What the ORM applies to a column it reads (SQLite returns datetimes as text, booleans as 0/1).
        expression = field.get_col(field.model._meta.db_table)
        functions = db.ops.get_db_converters(expression) + expression.get_db_converters(db)
        if functions:
            converters.append((position, functions, expression))
    return sql, [f.attname for f in token_fields], [f.attname for f in user_fields], converters


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
