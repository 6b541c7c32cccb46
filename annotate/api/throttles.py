"""API rate limits per user, per token, per anonymous address and for sign-in, counted in Django's cache.

Rates are read when a request is throttled, not when the class is defined (as DRF's own classes do), so
`override_settings(REST_FRAMEWORK=...)` and a changed environment take effect without a re-import.
"""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from annotate.models import ApiToken

from .auth import client_ip


class _LiveRateThrottle(SimpleRateThrottle):
    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_ident(self, request) -> str:
        return client_ip(request)


class UserRateThrottle(_LiveRateThrottle):
    """Every request of a signed-in user, by session or by any of their tokens (TANDEM_THROTTLE_USER)."""

    scope = "user"

    def get_cache_key(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class TokenRateThrottle(_LiveRateThrottle):
    """Requests made with one API token (TANDEM_THROTTLE_TOKEN): a runaway script is stopped on its own token."""

    scope = "token"

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ApiToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}


class AnonRateThrottle(_LiveRateThrottle):
    """Requests without credentials, per client address (TANDEM_THROTTLE_ANON)."""

    scope = "anon"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginRateThrottle(_LiveRateThrottle):
    """Password exchanges at the token endpoint per client address (TANDEM_THROTTLE_LOGIN), before any lock-out."""

    scope = "login"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
