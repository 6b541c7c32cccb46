"""API roles. Campaign endpoints check the caller's role on that campaign (annotate/access.py) in the
view, through `campaign_for(..., need=...)`; these classes are the gate in front of it."""

from rest_framework.permissions import BasePermission


class IsCampaignAdmin(BasePermission):
    """Signed in; the view then asks for a role on the campaign (no role: 404, too low: 403)."""

    message = "Sign in as an owner, admin or viewer of the campaign."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_active)


class IsJudgeAdmin(BasePermission):
    """Judges are shared by campaigns and hold endpoints and key names: staff accounts only."""

    message = "Only staff accounts may list, create or change judges."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)
