"""One error body for the API: `{"detail", "code", "field"}` (and `errors`, one entry per problem).

Every failure of a `/api/v1/` call answers in this shape, whatever raised it: a serializer's validation,
a service's refusal (`ApiError`), DRF's 401/403/404/405/429, a path that does not exist, an uncaught
exception, a database that went away (503 `database_unavailable` with `Retry-After`, so a client knows to
retry rather than to give up). The unversioned `/api/` aliases keep the bodies they always had (DRF's
`{field: [message]}` for validation) so clients written against them keep working; only the failures
they used to answer with an HTML page (unknown path, 500, database down) answer this shape there too.
"""

from __future__ import annotations

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from rest_framework import status as http
from rest_framework.exceptions import APIException
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

DATABASE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5
NON_FIELD_KEYS = {"detail", "non_field_errors"}
STATUS_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "throttled",
}


class ApiError(APIException):
    """A refusal a view raises with its machine-readable `code` and the input at fault (`field`)."""

    status_code = http.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, detail: str, *, code: str = "invalid", field: str | None = None, status: int = 400):
        super().__init__(detail, code)
        self.status_code = status
        self.code = code
        self.field = field or None

    def body(self) -> dict:
        return {"detail": str(self.detail), "code": self.code, "field": self.field}

    def legacy_body(self) -> dict:
        """What the unversioned aliases answered before v1: the field only when there is one."""
        body = {"detail": str(self.detail), "code": self.code}
        if self.field:
            body["field"] = self.field
        return body


def is_v1(request) -> bool:
    return bool(request is not None and request.path_info.startswith("/api/v1/"))


def _flatten(data, prefix: str | None, *, default_code: str) -> list[dict]:
    """DRF's nested validation details as a flat list, each naming its field by a dotted path."""
    if isinstance(data, dict):
        out = []
        for key, value in data.items():
            name = None if key in NON_FIELD_KEYS and prefix is None else (f"{prefix}.{key}" if prefix else str(key))
            out.extend(_flatten(value, name, default_code=default_code))
        return out
    if isinstance(data, list):
        out = []
        for index, value in enumerate(data):
            nested = isinstance(value, dict | list)
            out.extend(_flatten(value, f"{prefix}.{index}" if nested and prefix else prefix, default_code=default_code))
        return out
    return [{"detail": str(data), "code": getattr(data, "code", None) or default_code, "field": prefix}]


def error_body(data, *, status: int) -> dict:
    """Any DRF error payload (`{"detail": ...}`, `{field: [...]}`, `[...]`) in the one shape."""
    default_code = STATUS_CODES.get(status, "error")
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        detail = data["detail"]
        body = {"detail": str(detail), "code": data.get("code") or getattr(detail, "code", None) or default_code}
        body["field"] = data.get("field") or None
        return body | {k: v for k, v in data.items() if k not in body}
    errors = _flatten(data, None, default_code=default_code)
    if not errors:
        return {"detail": "invalid input", "code": default_code, "field": None}
    first = errors[0]
    body = {"detail": first["detail"], "code": first["code"], "field": first["field"]}
    if len(errors) > 1:
        body["errors"] = errors
    return body


def database_unavailable_body() -> dict:
    return {
        "detail": "The database is unavailable; nothing was stored. Retry in a few seconds.",
        "code": "database_unavailable",
        "field": None,
    }


def exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: DRF's answer (v1's renderer gives it the one shape); database failures a 503."""
    request = context.get("request")
    if isinstance(exc, DATABASE_ERRORS):
        logger.warning("database unavailable answering %s: %s", getattr(request, "path", "?"), exc)
        response = Response(database_unavailable_body(), status=http.HTTP_503_SERVICE_UNAVAILABLE)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    response = drf_exception_handler(exc, context)
    if isinstance(exc, ApiError):
        response.data = exc.body() if is_v1(request) else exc.legacy_body()
    return response


class ErrorShapeJSONRenderer(JSONRenderer):
    """JSON, with every v1 error answer in the one shape — those raised and handled above as well as the
    bodies a view returns itself with a 4xx — so no view can answer a v1 client in another shape."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        context = renderer_context or {}
        response, request = context.get("response"), context.get("request")
        if response is not None and response.status_code >= 400 and data is not None and is_v1(request):
            data = error_body(data, status=response.status_code)
        return super().render(data, accepted_media_type, renderer_context)


class AnyFirstNegotiation(DefaultContentNegotiation):
    """DRF's content negotiation, answered at once for a client that accepts anything (no Accept header, or
    `*/*`, as scripts and front ends send): the first renderer, which is what DRF's loop picks for it after
    parsing the header on every request. Anything else (a browser's list, `?format=`) goes through DRF."""

    def select_renderer(self, request, renderers, format_suffix=None):
        accepts_anything = request.META.get("HTTP_ACCEPT", "*/*") == "*/*"
        if renderers and accepts_anything and not format_suffix:
            override = self.settings.URL_FORMAT_OVERRIDE
            if not override or override not in request.query_params:
                return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)


def api_not_found(request) -> JsonResponse:
    return JsonResponse(
        {"detail": f"no API endpoint at {request.path}", "code": "not_found", "field": None}, status=404
    )


def api_server_error(request) -> JsonResponse:
    """An uncaught exception under /api/ (handler500 passes it here while it is being handled)."""
    exc = sys.exc_info()[1]
    if isinstance(exc, DATABASE_ERRORS):
        response = JsonResponse(database_unavailable_body(), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return JsonResponse(
        {"detail": "The server failed to answer; the error is logged.", "code": "server_error", "field": None},
        status=500,
    )
