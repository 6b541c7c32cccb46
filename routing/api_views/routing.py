"""Routing through the API (campaign admins only): the campaign's policy and budget, routing passes,
and each item's decisions with an admin override. Annotators never reach these views."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.api.filters import DecisionFilter
from annotate.api.permissions import IsCampaignAdmin
from annotate.api.serializers import JobSerializer
from annotate.api.views import campaign_for
from annotate.models import Campaign, Item, RoutingDecision
from routing import api as routing_api


class RoutingSettings(serializers.Serializer):
    routing_policy = serializers.ChoiceField(choices=Campaign.RoutingPolicy.choices, required=False)
    human_budget = serializers.FloatField(
        min_value=0, allow_null=True, required=False, help_text="A fraction (≤ 1) or a whole count of items (> 1)."
    )
    calibration_fraction = serializers.FloatField(min_value=0, max_value=1, required=False)
    routing_params = serializers.DictField(
        required=False, help_text="Merged into the current ones: train_campaigns, auto_judge, embeddings."
    )


class DecisionSerializer(serializers.ModelSerializer):
    item = serializers.IntegerField(source="item_id", read_only=True)
    overridden_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    features = serializers.JSONField(
        read_only=True,
        help_text="What pushed the decision, largest first: the learned policy's signed contributions "
        '[{"feature", "value", "contribution"}], the judge-uncertainty signals [{"signal", "weight"}]; '
        "null where the policy reads no feature.",
    )

    class Meta:
        model = RoutingDecision
        fields = ("id", "item", "destination", "policy", "score", "reason", "features", "overridden_by", "created_at")
        read_only_fields = fields


class GoldGateSerializer(serializers.Serializer):
    allowed = serializers.BooleanField(help_text="Whether items may go to the judges alone.")
    reason = serializers.CharField()


class RoutingStatusSerializer(serializers.Serializer):
    """`routing.api.routing_status`: the campaign's routing at a glance."""

    policy = serializers.CharField()
    human_budget = serializers.FloatField(allow_null=True)
    calibration_fraction = serializers.FloatField()
    routing_params = serializers.DictField()
    destinations = serializers.DictField(child=serializers.IntegerField(), help_text="Routable items per route.")
    last_pass = JobSerializer(allow_null=True)
    forecast = serializers.JSONField(allow_null=True, help_text="What the budget is expected to buy.")
    gold_gate = GoldGateSerializer()


class ItemDecisionsSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    route = serializers.CharField()
    decisions = DecisionSerializer(many=True)


class CampaignDecisions(generics.ListAPIView):
    """Every routing decision of the campaign, newest first; filter by `destination`, `policy`, `item` (its
    external id) and `overridden`."""

    queryset = RoutingDecision.objects.none()  # for the schema; get_queryset is the campaign's
    permission_classes = [IsCampaignAdmin]
    serializer_class = DecisionSerializer
    filterset_class = DecisionFilter

    def get_queryset(self):
        campaign = campaign_for(self.request, self.kwargs["ref"])
        return (
            RoutingDecision.objects.filter(campaign=campaign)
            .select_related("overridden_by")
            .order_by("-created_at", "-id")
        )


class OverrideInput(serializers.Serializer):
    destination = serializers.ChoiceField(choices=RoutingDecision.Destination.choices)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


def _status(campaign: Campaign) -> dict:
    status_ = routing_api.routing_status(campaign=campaign)
    previous = status_["last_pass"]
    status_["last_pass"] = JobSerializer(previous).data if previous else None
    return status_


class CampaignRouting(APIView):
    """GET the campaign's routing: policy, budget, items per destination, the last pass and what the budget
    is expected to buy (from the calibration slice). PATCH the policy, budget or calibration slice: a
    routing pass follows."""

    permission_classes = [IsCampaignAdmin]

    @extend_schema(responses=RoutingStatusSerializer)
    def get(self, request, ref: str):
        return Response(_status(campaign_for(request, ref)))

    @extend_schema(request=RoutingSettings, responses=RoutingStatusSerializer)
    def patch(self, request, ref: str):
        campaign = campaign_for(request, ref, need="manage")
        data = RoutingSettings(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        try:
            routing_api.routing_update(campaign=campaign, **data.validated_data)
        except routing_api.RoutingSettingsError as exc:
            return Response({exc.field: [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(_status(campaign))


class CampaignRoute(APIView):
    """POST: start a routing pass now (202 with the job; 400 when the policy cannot run as configured)."""

    permission_classes = [IsCampaignAdmin]

    @extend_schema(request=None, responses={202: JobSerializer})
    def post(self, request, ref: str):
        campaign = campaign_for(request, ref, need="manage")
        try:
            job = routing_api.route_start(campaign=campaign, created_by=request.user)
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


def _item(request, pk: int, *, need: str) -> Item:
    item = get_object_or_404(Item.objects.select_related("campaign"), pk=pk)
    campaign_for(request, str(item.campaign_id), need=need)
    return item


class ItemRouting(APIView):
    """GET an item's routing decisions, newest first; POST {destination, reason} to override them."""

    permission_classes = [IsCampaignAdmin]

    @extend_schema(responses=ItemDecisionsSerializer)
    def get(self, request, pk: int):
        item = _item(request, pk, need="view")
        decisions = routing_api.item_decisions(item=item)
        return Response(
            {"item": item.pk, "route": item.route, "decisions": DecisionSerializer(decisions, many=True).data}
        )

    @extend_schema(request=OverrideInput, responses={201: DecisionSerializer})
    def post(self, request, pk: int):
        item = _item(request, pk, need="manage")
        data = OverrideInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            decision = routing_api.route_override(item=item, user=request.user, **data.validated_data)
        except ValueError as exc:
            return Response({"destination": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(DecisionSerializer(decision).data, status=status.HTTP_201_CREATED)
