"""API roles: campaign admins are staff; annotators see only their own work."""

from rest_framework.permissions import BasePermission


class IsCampaignAdmin(BasePermission):
    message = "Only campaign admins (staff accounts) may do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)
