"""`/api/` and `/api/v1/`: a small index, so the API's root says where its schema, docs and main lists are."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

LINKS = {
    "schema": "v1:api-schema",
    "docs": "api-docs",
    "redoc": "api-redoc",
    "campaigns": "v1:api-campaigns",
    "jobs": "v1:api-jobs",
    "judges": "v1:api-judges",
    "token": "v1:api-token",
}

IndexSerializer = inline_serializer(
    "ApiIndex",
    {
        "version": serializers.CharField(),
        "links": serializers.DictField(child=serializers.URLField(), help_text="Name to absolute URL."),
    },
)


class ApiIndex(APIView):
    """Open to anyone: it names endpoints, it shows no data."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(responses=IndexSerializer, auth=[])
    def get(self, request):
        links = {name: reverse(url_name, request=request) for name, url_name in LINKS.items()}
        return Response({"version": "v1", "links": links})
