"""People through the API: a campaign's roles, annotators, pools and invitation links; annotator pools."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.access import campaign_allows, can_create_campaigns
from annotate.models import AnnotatorPool, CampaignMember, Invitation
from annotate.services.people import (
    INVITATION_MAX,
    INVITATION_MIN,
    PeopleError,
    campaign_annotator_add,
    campaign_annotator_remove,
    campaign_member_remove,
    campaign_member_set,
    campaign_pool_attach,
    campaign_pool_detach,
    invitation_create,
    invitation_revoke,
    invitation_state,
    member_role_need,
    pool_create,
    pool_delete,
    pool_member_add,
    pool_member_remove,
    pool_update,
)

from .permissions import IsCampaignAdmin
from .views import campaign_for

User = get_user_model()


def _refused(exc: PeopleError) -> Response:
    return Response({exc.field or "detail": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)


def _invitation_post(request, values: dict, **target) -> Response:
    """Create an invitation to a campaign or a pool from checked input; the link is in the answer once."""
    try:
        new = invitation_create(
            role=values["role"],
            expires_in=timedelta(hours=values["expires_hours"]),
            note=values["note"],
            created_by=request.user,
            **target,
        )
    except PeopleError as exc:
        return _refused(exc)
    return _invitation_created(request, new)


class IsStaff(BasePermission):
    message = "Only staff accounts manage annotator pools."

    def has_permission(self, request, view) -> bool:
        return can_create_campaigns(request.user)


# --- serializers --------------------------------------------------------------------------------


class UserBrief(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    is_active = serializers.BooleanField()


class MemberOutput(serializers.Serializer):
    user = UserBrief()
    role = serializers.CharField()
    created_at = serializers.DateTimeField()


class PersonInput(serializers.Serializer):
    """Someone by id (`user`) or by `username`."""

    user = serializers.IntegerField(required=False, min_value=1)
    username = serializers.CharField(required=False, max_length=150)

    def validate(self, data):
        if "user" in data:
            found = User.objects.filter(pk=data["user"]).first()
            if found is None:
                raise serializers.ValidationError({"user": [f"There is no account with id {data['user']}."]})
        elif data.get("username"):
            found = User.objects.filter(username__iexact=data["username"].strip()).first()
            if found is None:
                raise serializers.ValidationError({"username": [f"There is no account named {data['username']!r}."]})
        else:
            raise serializers.ValidationError({"username": ["Give `username` or `user` (an account id)."]})
        data["person"] = found
        return data


class MemberInput(PersonInput):
    role = serializers.ChoiceField(choices=CampaignMember.Role.choices)


class RoleInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=CampaignMember.Role.choices)


class PoolOutput(serializers.ModelSerializer):
    n_members = serializers.SerializerMethodField()

    class Meta:
        model = AnnotatorPool
        fields = ["id", "name", "description", "n_members", "created_at"]

    def get_n_members(self, pool) -> int:
        return pool.members.count()


class LabellersOutput(serializers.Serializer):
    """Who may label: annotators one by one, pools, and whether the campaign is open to every account."""

    open_to_all = serializers.BooleanField()
    annotators = UserBrief(many=True)
    pools = PoolOutput(many=True)
    leases_ended = serializers.IntegerField(required=False, help_text="After a removal: the leases it ended.")


class PoolInput(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class PoolRef(serializers.Serializer):
    pool = serializers.IntegerField(min_value=1)

    def validate_pool(self, value):
        found = AnnotatorPool.objects.filter(pk=value).first()
        if found is None:
            raise serializers.ValidationError(f"There is no pool with id {value}.")
        return found


class InvitationOutput(serializers.ModelSerializer):
    state = serializers.SerializerMethodField()
    used_by = UserBrief(allow_null=True)

    class Meta:
        model = Invitation
        fields = ["id", "campaign", "pool", "role", "note", "state", "created_at", "expires_at", "used_at", "used_by"]

    def get_state(self, invitation) -> str:
        return invitation_state(invitation)


class InvitationInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=Invitation.Role.choices, default=Invitation.Role.ANNOTATOR)
    expires_hours = serializers.IntegerField(
        min_value=int(INVITATION_MIN.total_seconds() // 3600),
        max_value=int(INVITATION_MAX.total_seconds() // 3600),
        default=24 * 7,
        help_text="How long the link works, in hours (1 to 2160).",
    )
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


def _invitation_created(request, new) -> Response:
    body = InvitationOutput(new.invitation).data
    body["url"] = request.build_absolute_uri(reverse("invitation-accept", kwargs={"token": new.token}))
    body["token"] = new.token  # returned this once; only its hash is stored
    return Response(body, status=status.HTTP_201_CREATED)


# --- a campaign's roles -------------------------------------------------------------------------


def _role_allowed(request, campaign, *, user, role: str | None) -> None:
    """403 unless the caller may make this role change (`member_role_need`: admins handle reviewers)."""
    if not campaign_allows(
        user=request.user, campaign=campaign, need=member_role_need(campaign=campaign, user=user, role=role)
    ):
        raise PermissionDenied("Only the campaign's owners change roles; admins may give and take the reviewer role.")


class CampaignMembers(APIView):
    """GET the roles (viewers and up); POST {username | user, role} to give one (owners; admins may make
    someone without a role a reviewer)."""

    permission_classes = [IsCampaignAdmin]

    @extend_schema(responses=MemberOutput(many=True))
    def get(self, request, ref: str):
        campaign = campaign_for(request, ref)
        rows = CampaignMember.objects.filter(campaign=campaign).select_related("user").order_by("role", "user")
        return Response(MemberOutput(rows, many=True).data)

    @extend_schema(request=MemberInput, responses=MemberOutput)
    def post(self, request, ref: str):
        reviewer = isinstance(request.data, dict) and request.data.get("role") == CampaignMember.Role.REVIEWER
        campaign = campaign_for(request, ref, need="manage" if reviewer else "own")
        data = MemberInput(data=request.data)
        data.is_valid(raise_exception=True)
        _role_allowed(request, campaign, user=data.validated_data["person"], role=data.validated_data["role"])
        existed = CampaignMember.objects.filter(campaign=campaign, user=data.validated_data["person"]).exists()
        try:
            member = campaign_member_set(
                campaign=campaign, user=data.validated_data["person"], role=data.validated_data["role"]
            )
        except PeopleError as exc:
            return _refused(exc)
        return Response(MemberOutput(member).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)


class CampaignMemberDetail(APIView):
    """PATCH {role} to change a role, DELETE to remove it (owners; never the last owner; admins may remove
    the reviewer role)."""

    permission_classes = [IsCampaignAdmin]

    @extend_schema(request=RoleInput, responses=MemberOutput)
    def patch(self, request, ref: str, user_id: int):
        campaign = campaign_for(request, ref, need="manage")
        member = get_object_or_404(CampaignMember, campaign=campaign, user_id=user_id)
        data = RoleInput(data=request.data)
        data.is_valid(raise_exception=True)
        _role_allowed(request, campaign, user=member.user, role=data.validated_data["role"])
        try:
            member = campaign_member_set(campaign=campaign, user=member.user, role=data.validated_data["role"])
        except PeopleError as exc:
            return _refused(exc)
        return Response(MemberOutput(member).data)

    @extend_schema(responses={204: None})
    def delete(self, request, ref: str, user_id: int):
        campaign = campaign_for(request, ref, need="manage")
        member = get_object_or_404(CampaignMember, campaign=campaign, user_id=user_id)
        _role_allowed(request, campaign, user=member.user, role=None)
        try:
            campaign_member_remove(campaign=campaign, user=member.user)
        except PeopleError as exc:
            return _refused(exc)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- who may label ------------------------------------------------------------------------------


def _labellers(campaign) -> dict:
    annotators = list(campaign.annotators.order_by("username"))
    pools = list(campaign.pools.order_by("name"))
    return {
        "open_to_all": not annotators and not pools,
        "annotators": UserBrief(annotators, many=True).data,
        "pools": PoolOutput(pools, many=True).data,
    }


class CampaignAnnotators(APIView):
    """GET who may label (annotators one by one, pools, and whether it is open to every account);
    POST / DELETE {username | user} to add or remove an annotator (owners and admins)."""

    permission_classes = [IsCampaignAdmin]

    @extend_schema(responses=LabellersOutput)
    def get(self, request, ref: str):
        return Response(_labellers(campaign_for(request, ref)))

    @extend_schema(request=PersonInput, responses={200: LabellersOutput, 201: LabellersOutput})
    def post(self, request, ref: str):
        campaign = campaign_for(request, ref, need="manage")
        data = PersonInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            added = campaign_annotator_add(campaign=campaign, user=data.validated_data["person"])
        except PeopleError as exc:
            return _refused(exc)
        return Response(_labellers(campaign), status=status.HTTP_201_CREATED if added else status.HTTP_200_OK)

    @extend_schema(request=PersonInput, responses=LabellersOutput)
    def delete(self, request, ref: str):
        campaign = campaign_for(request, ref, need="manage")
        data = PersonInput(data=request.data or request.query_params)
        data.is_valid(raise_exception=True)
        try:
            ended = campaign_annotator_remove(campaign=campaign, user=data.validated_data["person"])
        except PeopleError as exc:
            return _refused(exc)
        return Response({**_labellers(campaign), "leases_ended": ended})


class CampaignPools(APIView):
    """POST / DELETE {pool: id} to attach or detach a pool (owners and admins)."""

    permission_classes = [IsCampaignAdmin]

    @extend_schema(responses=PoolOutput(many=True))
    def get(self, request, ref: str):
        return Response(_labellers(campaign_for(request, ref))["pools"])

    @extend_schema(request=PoolRef, responses={200: LabellersOutput, 201: LabellersOutput})
    def post(self, request, ref: str):
        campaign = campaign_for(request, ref, need="manage")
        data = PoolRef(data=request.data)
        data.is_valid(raise_exception=True)
        attached = campaign_pool_attach(campaign=campaign, pool=data.validated_data["pool"])
        return Response(_labellers(campaign), status=status.HTTP_201_CREATED if attached else status.HTTP_200_OK)

    @extend_schema(request=PoolRef, responses=LabellersOutput)
    def delete(self, request, ref: str):
        campaign = campaign_for(request, ref, need="manage")
        data = PoolRef(data=request.data or request.query_params)
        data.is_valid(raise_exception=True)
        try:
            ended = campaign_pool_detach(campaign=campaign, pool=data.validated_data["pool"])
        except PeopleError as exc:
            return _refused(exc)
        return Response({**_labellers(campaign), "leases_ended": ended})


# --- invitation links ---------------------------------------------------------------------------


class CampaignInvitations(APIView):
    """GET the campaign's links with their state (viewers and up); POST {role, expires_hours, note}
    to make one — the response carries the link this once. Annotator links: owners and admins;
    viewer and admin links give roles, so owners only."""

    permission_classes = [IsCampaignAdmin]

    @extend_schema(responses=InvitationOutput(many=True))
    def get(self, request, ref: str):
        campaign = campaign_for(request, ref)
        return Response(InvitationOutput(campaign.invitations.select_related("used_by"), many=True).data)

    @extend_schema(request=InvitationInput, responses=InvitationOutput)
    def post(self, request, ref: str):
        campaign = campaign_for(request, ref, need="manage")
        data = InvitationInput(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data["role"] != Invitation.Role.ANNOTATOR:
            campaign = campaign_for(request, ref, need="own")
        return _invitation_post(request, data.validated_data, campaign=campaign)


class CampaignInvitationRevoke(APIView):
    permission_classes = [IsCampaignAdmin]

    @extend_schema(request=None, responses=InvitationOutput)
    def post(self, request, ref: str, pk: int):
        campaign = campaign_for(request, ref, need="manage")
        invitation = get_object_or_404(Invitation, pk=pk, campaign=campaign)
        try:
            invitation = invitation_revoke(invitation=invitation)
        except PeopleError as exc:
            return _refused(exc)
        return Response(InvitationOutput(invitation).data)


# --- pools (staff) ------------------------------------------------------------------------------


class PoolListCreate(APIView):
    permission_classes = [IsStaff]

    @extend_schema(responses=PoolOutput(many=True))
    def get(self, request):
        return Response(PoolOutput(AnnotatorPool.objects.prefetch_related("members"), many=True).data)

    @extend_schema(request=PoolInput, responses=PoolOutput)
    def post(self, request):
        data = PoolInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            pool = pool_create(**data.validated_data, created_by=request.user)
        except PeopleError as exc:
            return _refused(exc)
        return Response(PoolOutput(pool).data, status=status.HTTP_201_CREATED)


class PoolDetail(APIView):
    permission_classes = [IsStaff]

    @extend_schema(responses=PoolOutput)
    def get(self, request, pk: int):
        return Response(PoolOutput(get_object_or_404(AnnotatorPool, pk=pk)).data)

    @extend_schema(request=PoolInput, responses=PoolOutput)
    def patch(self, request, pk: int):
        pool = get_object_or_404(AnnotatorPool, pk=pk)
        data = PoolInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        try:
            pool = pool_update(
                pool=pool, name=data.validated_data.get("name"), description=data.validated_data.get("description")
            )
        except PeopleError as exc:
            return _refused(exc)
        return Response(PoolOutput(pool).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        pool_delete(pool=get_object_or_404(AnnotatorPool, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PoolMembersAfterRemoval(serializers.Serializer):
    members = UserBrief(many=True)
    leases_ended = serializers.IntegerField()


class PoolMembers(APIView):
    """GET a pool's members; POST / DELETE {username | user} to add or remove one (staff)."""

    permission_classes = [IsStaff]

    @extend_schema(responses=UserBrief(many=True))
    def get(self, request, pk: int):
        pool = get_object_or_404(AnnotatorPool, pk=pk)
        return Response(UserBrief(pool.members.order_by("username"), many=True).data)

    @extend_schema(request=PersonInput, responses=UserBrief(many=True))
    def post(self, request, pk: int):
        pool = get_object_or_404(AnnotatorPool, pk=pk)
        data = PersonInput(data=request.data)
        data.is_valid(raise_exception=True)
        added = pool_member_add(pool=pool, user=data.validated_data["person"])
        members = UserBrief(pool.members.order_by("username"), many=True).data
        return Response(members, status=status.HTTP_201_CREATED if added else status.HTTP_200_OK)

    @extend_schema(request=PersonInput, responses=PoolMembersAfterRemoval)
    def delete(self, request, pk: int):
        pool = get_object_or_404(AnnotatorPool, pk=pk)
        data = PersonInput(data=request.data or request.query_params)
        data.is_valid(raise_exception=True)
        try:
            ended = pool_member_remove(pool=pool, user=data.validated_data["person"])
        except PeopleError as exc:
            return _refused(exc)
        return Response(
            {"members": UserBrief(pool.members.order_by("username"), many=True).data, "leases_ended": ended}
        )


class PoolInvitations(APIView):
    """GET a pool's links; POST {expires_hours, note} to make one (staff; the link is returned once)."""

    permission_classes = [IsStaff]

    @extend_schema(responses=InvitationOutput(many=True))
    def get(self, request, pk: int):
        pool = get_object_or_404(AnnotatorPool, pk=pk)
        return Response(InvitationOutput(pool.invitations.select_related("used_by"), many=True).data)

    @extend_schema(request=InvitationInput, responses=InvitationOutput)
    def post(self, request, pk: int):
        pool = get_object_or_404(AnnotatorPool, pk=pk)
        data = InvitationInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _invitation_post(request, data.validated_data, pool=pool)


class PoolInvitationRevoke(APIView):
    permission_classes = [IsStaff]

    @extend_schema(request=None, responses=InvitationOutput)
    def post(self, request, pk: int, invitation_id: int):
        invitation = get_object_or_404(Invitation, pk=invitation_id, pool_id=pk)
        try:
            invitation = invitation_revoke(invitation=invitation)
        except PeopleError as exc:
            return _refused(exc)
        return Response(InvitationOutput(invitation).data)


# Mounted under /api/ by annotate/api/urls.py.
urlpatterns = [
    path("campaigns/<str:ref>/members/", CampaignMembers.as_view(), name="api-members"),
    path("campaigns/<str:ref>/members/<int:user_id>/", CampaignMemberDetail.as_view(), name="api-member"),
    path("campaigns/<str:ref>/annotators/", CampaignAnnotators.as_view(), name="api-annotators"),
    path("campaigns/<str:ref>/pools/", CampaignPools.as_view(), name="api-campaign-pools"),
    path("campaigns/<str:ref>/invitations/", CampaignInvitations.as_view(), name="api-invitations"),
    path(
        "campaigns/<str:ref>/invitations/<int:pk>/revoke/",
        CampaignInvitationRevoke.as_view(),
        name="api-invitation-revoke",
    ),
    path("pools/", PoolListCreate.as_view(), name="api-pools"),
    path("pools/<int:pk>/", PoolDetail.as_view(), name="api-pool"),
    path("pools/<int:pk>/members/", PoolMembers.as_view(), name="api-pool-members"),
    path("pools/<int:pk>/invitations/", PoolInvitations.as_view(), name="api-pool-invitations"),
    path(
        "pools/<int:pk>/invitations/<int:invitation_id>/revoke/",
        PoolInvitationRevoke.as_view(),
        name="api-pool-invitation-revoke",
    ),
]
