"""Who works on what: annotator pools, per-campaign roles and one-time invitation links."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q


class AnnotatorPool(models.Model):
    """A named group of annotators (e.g. experts, general), attached to any number of campaigns."""

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="annotator_pools")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CampaignMember(models.Model):
    """A person's role on one campaign. Annotators are the campaign's pool (`Campaign.annotators`
    and its `pools`); these rows give the roles that see or run the campaign's admin pages."""

    class Role(models.TextChoices):
        OWNER = "owner"  # everything, including roles, state changes and deletion
        ADMIN = "admin"  # settings, imports, annotators, judges, routing, exports
        VIEWER = "viewer"  # every admin page and report, read-only
        REVIEWER = "reviewer"  # the review queue only: records final labels on contested items

    campaign = models.ForeignKey("annotate.Campaign", on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="campaign_memberships")
    role = models.CharField(max_length=10, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign", "role", "user"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "user"], name="campaign_member_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.role} of {self.campaign_id}"


class Invitation(models.Model):
    """A one-time, expiring link that creates an account (or signs in an existing one) and gives it
    a place: a campaign's pool, a role on a campaign, or a pool. Only the token's hash is stored."""

    class Role(models.TextChoices):
        ANNOTATOR = "annotator"
        VIEWER = "viewer"
        ADMIN = "admin"

    token_hash = models.CharField(max_length=64, unique=True)
    campaign = models.ForeignKey(
        "annotate.Campaign", null=True, blank=True, on_delete=models.CASCADE, related_name="invitations"
    )
    pool = models.ForeignKey(AnnotatorPool, null=True, blank=True, on_delete=models.CASCADE, related_name="invitations")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.ANNOTATOR)
    note = models.CharField(max_length=200, blank=True, help_text="Whom it is for (shown to admins only).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(campaign__isnull=False) | Q(pool__isnull=False), name="invitation_has_a_target"
            ),
        ]

    def __str__(self) -> str:
        return f"invitation {self.pk} ({self.role})"

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8")).hexdigest()
