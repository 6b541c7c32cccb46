"""API tokens: the token endpoint (password for a token) and the signed-in user's tokens (create, list, revoke)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from annotate.models import ApiToken
from annotate.models.tokens import TokenError, api_token_create, api_token_revoke

from .auth import lockout_message
from .throttles import LoginRateThrottle


class CredentialsSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class IssuedTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The key. It is shown only in this answer; only its hash is kept.")
    expires_at = serializers.DateTimeField()


class ApiTokenSerializer(serializers.ModelSerializer):
    state = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at", "state"]
        read_only_fields = fields

    def get_state(self, token: ApiToken) -> str:
        return token.state()


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_in_days = serializers.IntegerField(
        required=False, min_value=1, help_text="Days until the token expires (default TANDEM_TOKEN_DAYS)."
    )

    def validate_expires_in_days(self, value: int) -> int:
        if value > settings.TANDEM_TOKEN_MAX_DAYS:
            raise serializers.ValidationError(f"A token lasts at most {settings.TANDEM_TOKEN_MAX_DAYS} days.")
        return value


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(
        source="issued_key", help_text="The key. It is shown only in this answer; only its hash is kept."
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


LOCKED_OUT = inline_serializer("LockedOut", fields={"detail": serializers.CharField(), "code": serializers.CharField()})


class TokenObtain(GenericAPIView):
    """Exchange a username and password for a new API token named "api" (default expiry)."""

    serializer_class = CredentialsSerializer
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginRateThrottle]

    @extend_schema(responses={200: IssuedTokenSerializer, 400: None, 429: LOCKED_OUT})
    def post(self, request):
        credentials = self.get_serializer(data=request.data)
        credentials.is_valid(raise_exception=True)
        username = credentials.validated_data["username"]
        user = authenticate(request=request, username=username, password=credentials.validated_data["password"])
        if getattr(request, "axes_locked_out", False):
            return Response(
                {"detail": lockout_message(request, username), "code": "locked_out", "field": None},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(int(settings.AXES_COOLOFF_TIME.total_seconds()))},
            )
        if user is None:
            return Response(
                {
                    "detail": "Unable to sign in with the username and password given.",
                    "code": "invalid_credentials",
                    "field": None,
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        new = api_token_create(user=user, name="api")
        return Response(IssuedTokenSerializer({"token": new.key, "expires_at": new.token.expires_at}).data)


class TokenListCreate(GenericAPIView):
    """My API tokens: list them (newest first), or create one; its key is in the answer once."""

    serializer_class = ApiTokenSerializer
    pagination_class = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=self.request.user)

    @extend_schema(responses={200: ApiTokenSerializer(many=True)})
    def get(self, request):
        return Response(self.get_serializer(self.get_queryset(), many=True).data)

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def post(self, request):
        values = ApiTokenCreateSerializer(data=request.data)
        values.is_valid(raise_exception=True)
        try:
            new = api_token_create(
                user=request.user, name=values.validated_data["name"], days=values.validated_data.get("expires_in_days")
            )
        except TokenError as exc:
            raise serializers.ValidationError({exc.field or "detail": [str(exc)]}) from exc
        new.token.issued_key = new.key
        return Response(ApiTokenCreatedSerializer(new.token).data, status=status.HTTP_201_CREATED)


class TokenDetail(GenericAPIView):
    """One of my tokens; DELETE revokes it at once (the row stays, marked revoked)."""

    serializer_class = ApiTokenSerializer

    def get_queryset(self):
        return ApiToken.objects.filter(user=self.request.user)

    def get(self, request, pk: int):
        return Response(self.get_serializer(get_object_or_404(self.get_queryset(), pk=pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        api_token_revoke(token=get_object_or_404(self.get_queryset(), pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("auth/token/", TokenObtain.as_view(), name="api-token"),
    path("tokens/", TokenListCreate.as_view(), name="api-tokens"),
    path("tokens/<int:pk>/", TokenDetail.as_view(), name="api-token-detail"),
]
