"""Per-user API tokens: only a hash of each key is kept, and every token expires and can be revoked."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

KEY_PREFIX = "tdm_"
# The part of a key shown in lists: enough to tell tokens apart, far too little to guess the rest.
VISIBLE_CHARS = 12
# Writing last_used_at on every request would make each API call a write; once a minute is enough to tell.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiToken(models.Model):
    """One API token: `Authorization: Token <key>` (or `Bearer <key>`) until it expires or is revoked."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=VISIBLE_CHARS)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="apitoken_user_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def state(self, now: datetime | None = None) -> str:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True)
class NewToken:
    """A token just made, with its key: the only moment the key exists outside the client."""

    token: ApiToken
    key: str


class TokenError(ValueError):
    """A token request that cannot be honoured; `field` names the input at fault."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


def token_days_bounds() -> tuple[int, int]:
    return settings.TANDEM_TOKEN_DAYS, settings.TANDEM_TOKEN_MAX_DAYS


def api_token_create(*, user, name: str, days: int | None = None) -> NewToken:
    """Make a token for `user` that expires after `days` (default TANDEM_TOKEN_DAYS, at most TANDEM_TOKEN_MAX_DAYS)."""
    default_days, max_days = token_days_bounds()
    days = default_days if days is None else days
    if not 1 <= days <= max_days:
        raise TokenError(f"A token lasts 1 to {max_days} days; {days} was asked.", field="expires_in_days")
    name = name.strip()
    if not name:
        raise TokenError("Give the token a name, e.g. the script or machine that will use it.", field="name")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        key_hash=key_hash(key),
        prefix=key[:VISIBLE_CHARS],
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    return NewToken(token=token, key=key)


def api_token_revoke(*, token: ApiToken) -> ApiToken:
    """Revoke a token at once; revoking twice keeps the first time."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=token.revoked_at)
    return token


def api_token_touch(*, token: ApiToken, now: datetime | None = None) -> None:
    """Record use, at most once per LAST_USED_RESOLUTION, so reads stay reads."""
    now = now or timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now
