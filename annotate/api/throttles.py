"""API rate limits per user, per token, per anonymous address and for sign-in, counted in Django's cache.

Rates are read when a request is throttled, not when the class is defined (as DRF's own classes do), so
`override_settings(REST_FRAMEWORK=...)` and a changed environment take effect without a re-import.

Each scope counts with a sliding-window counter: one integer per key and fixed window, incremented
atomically, and the previous window's count weighted by how much of it still lies within the last
`duration` seconds. DRF's own throttles keep a list of every request's time under the key and rewrite
it on each request: at 6,000/min that list is 6,000 floats pickled per request, and two processes
rewriting it at once lose each other's requests. The counters live in the cache alias "throttle" when
settings name one (the embedded default: `CounterCache`, diskcache's SQLite files of their own shared by
every process, whose `incr` is atomic across them), else in the default cache.
"""

from __future__ import annotations

import math

from diskcache import DjangoCache
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from annotate.models import ApiToken

from .auth import client_ip

THROTTLE_CACHE = "throttle"


def counter_cache() -> BaseCache:
    return caches[THROTTLE_CACHE if THROTTLE_CACHE in settings.CACHES else "default"]


class CounterCache(DjangoCache):
    """diskcache's Django cache, kept open between requests (the embedded default's "throttle" alias).

    Django closes every cache when a request finishes; diskcache's close shuts its SQLite files, so each
    request would open them again (four shards, their PRAGMAs and settings reads: ~4× the annotator's whole
    next + submit). Its connections are per thread and per process already, so keeping them is safe.
    """

    def close(self, **kwargs):
        pass


class _LiveRateThrottle(SimpleRateThrottle):
    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_ident(self, request) -> str:
        return client_ip(request)

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        cache = counter_cache()
        self.now = self.timer()
        window, into = divmod(self.now, self.duration)
        current = f"{self.key}:{int(window)}"
        count = _count_one(cache, current, timeout=2 * self.duration)
        self._into = into / self.duration
        # A window never keeps more than `num_requests` (a refused request is taken back), so while this
        # window's count is within its share so far, the previous one cannot tip it over: not read then.
        if count <= self.num_requests * self._into:
            return True
        previous = cache.get(f"{self.key}:{int(window) - 1}", 0)
        self._counts = (previous, count - 1)
        if previous * (1 - self._into) + count <= self.num_requests:
            return True
        cache.decr(current)  # a refused request is not counted, as with DRF's own throttles
        return False

    def wait(self) -> float:
        """Seconds until the next request would be let through (at most the rate's duration)."""
        previous, current = self._counts
        room = self.num_requests - 1
        if current > room:
            # Not in this window: in the next, where this window's count is the one that fades out.
            fraction = (1 - self._into) + max(0.0, 1 - room / current)
        else:
            fraction = max(0.0, 1 - (room - current) / previous - self._into) if previous else 0.0
        return max(1.0, min(float(self.duration), math.ceil(fraction * self.duration)))


def _count_one(cache: BaseCache, key: str, *, timeout: int) -> int:
    """Add one to the counter at `key` and return it; atomic wherever the cache's `incr` is."""
    for _ in range(3):
        try:
            return cache.incr(key)
        except ValueError:
            if cache.add(key, 1, timeout):
                return 1
    return cache.incr(key)


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
