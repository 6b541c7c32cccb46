"""API roles. Campaign endpoints check the caller's role on that campaign (annotate/access.py) in the
view, through `campaign_for(..., need=...)`; these classes are the gate in front of it."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

MANAGE_JUDGES = "annotate.manage_judges"


class IsCampaignAdmin(BasePermission):
    """Signed in; the view then asks for a role on the campaign (no role: 404, too low: 403)."""

    message = "Sign in as an owner, admin or viewer of the campaign."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_active)


class IsJudgeAdmin(BasePermission):
    """Judges are shared by campaigns and decide where the server sends requests and with which key: staff
    accounts may list them; creating, changing, deleting or probing one needs the `manage_judges`
    permission (superusers have it)."""

    message = "Only staff accounts may list judges."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active and (user.is_staff or user.is_superuser)):
            return False
        if request.method in SAFE_METHODS or user.has_perm(MANAGE_JUDGES):
            return True
        self.message = f"Creating, changing, deleting or probing judges needs the {MANAGE_JUDGES} permission."
        return False
