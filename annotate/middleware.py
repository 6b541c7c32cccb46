"""Our middleware: Server-Timing on every response, and Django's message storage built only when used."""

import time

from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.utils.functional import SimpleLazyObject, empty


class ServerTimingMiddleware:
    """The app's own time, so clients and benchmarks can tell it apart from the network and their own overhead."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = time.perf_counter()
        response = self.get_response(request)
        response["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1000:.2f}"
        return response


class LazyMessageMiddleware(MessageMiddleware):
    """Django's MessageMiddleware, with each request's message storage made on first use.

    Django builds it on every request (a cookie signer and the fallback chain: about a sixth of all the
    middleware's cost on the annotator's next + submit), though only pages read or add messages.
    Storage nobody touched has nothing to save, so its response is left as Django would leave it.
    """

    def process_request(self, request):
        request._messages = SimpleLazyObject(lambda: default_storage(request))

    def process_response(self, request, response):
        messages = getattr(request, "_messages", None)
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:
            return response
        return super().process_response(request, response)
