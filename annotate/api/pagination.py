"""Limit/offset pages that cannot fail on odd input: a `limit` above API_MAX_PAGE_SIZE is clamped to it, an
`offset` past the end gives an empty page, and anything that is not a plain ASCII number is a 400 naming
the parameter (DRF's own pagination slices with whatever it was given: a 22-digit limit overflowed
PostgreSQL's bigint and answered 500)."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

NUMBER = re.compile(r"[0-9]{1,30}")


def _max_page_size() -> int:
    value = settings.API_MAX_PAGE_SIZE
    if value < 1:
        raise ImproperlyConfigured(f"API_MAX_PAGE_SIZE={value} must be at least 1 (annotate/settings.py)")
    return value


def _number(request, name: str, *, minimum: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not NUMBER.fullmatch(raw) or int(raw) < minimum:
        raise ValidationError({name: [f"{name} must be a whole number of at least {minimum}"]}, code="invalid")
    return int(raw)


class ClampedLimitOffsetPagination(LimitOffsetPagination):
    def get_limit(self, request) -> int:
        maximum = _max_page_size()
        limit = _number(request, self.limit_query_param, minimum=1)
        return min(limit if limit is not None else self.default_limit, maximum)

    def get_offset(self, request) -> int:
        return _number(request, self.offset_query_param, minimum=0) or 0

    def paginate_queryset(self, queryset, request, view=None):
        self.limit = self.get_limit(request)
        self.offset = self.get_offset(request)
        self.count = self.get_count(queryset)
        self.request = request
        self.offset = min(self.offset, self.count)
        if self.count > self.limit and self.template is not None:
            self.display_page_controls = True
        if self.count == 0 or self.offset >= self.count:
            return []
        return list(queryset[self.offset : self.offset + self.limit])

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"] |= {"minimum": 1, "maximum": _max_page_size()}
                parameter["description"] = f"Number of results per page (at most {_max_page_size()})."
            else:
                parameter["schema"] |= {"minimum": 0}
        return parameters
