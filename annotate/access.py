"""Who may do what on a campaign: the one place roles are turned into answers.

Roles per campaign (`CampaignMember`): **owner** (everything, roles and state included), **admin**
(settings, imports, annotators, judges, routing, exports), **viewer** (every admin page, read-only),
**reviewer** (the review queue only: final labels on contested items; admins and owners review too).
Superusers are owners of every campaign. **Annotators** are the campaign's pool (`Campaign.annotators`
and the members of its `pools`; with neither, every active account) and see only the annotate pages.
Staff accounts may create campaigns and own what they create; they see no other campaign unless
given a role on it.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from annotate.models import Campaign, CampaignMember
from annotate.selectors import in_campaign_pool

Role = CampaignMember.Role

# What each need asks for; a role grants every need at or below its own.
NEEDS = {"view": 1, "manage": 2, "own": 3}
ROLE_LEVEL = {Role.REVIEWER: 0, Role.VIEWER: 1, Role.ADMIN: 2, Role.OWNER: 3}
NEED_WORDS = {"view": "view", "manage": "change", "own": "own"}
# "review" (the adjudication queue) is not on the ladder: reviewers have it, viewers do not.
REVIEW_ROLES = (Role.REVIEWER, Role.ADMIN, Role.OWNER)


def campaign_role(*, user, campaign: Campaign) -> str | None:
    """The user's admin role on the campaign (owner, admin, viewer), or None."""
    if not user or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.OWNER
    cache = getattr(user, "_campaign_roles", None)
    if cache is None:
        cache = user._campaign_roles = {}
    if campaign.pk not in cache:
        cache[campaign.pk] = (
            CampaignMember.objects.filter(campaign=campaign, user=user).values_list("role", flat=True).first()
        )
    return cache[campaign.pk]


def campaign_roles(*, user, campaigns) -> dict[int, str | None]:
    """`campaign_role` for many campaigns in one read (lists of campaigns)."""
    ids = [c.pk for c in campaigns]
    if not user or not user.is_authenticated or not user.is_active:
        return dict.fromkeys(ids)
    if user.is_superuser:
        return dict.fromkeys(ids, Role.OWNER)
    found = dict(CampaignMember.objects.filter(user=user, campaign__in=ids).values_list("campaign_id", "role"))
    return {pk: found.get(pk) for pk in ids}


def _grants(role: str | None, need: str) -> bool:
    if role is None:
        return False
    if need == "review":
        return role in REVIEW_ROLES
    return ROLE_LEVEL[role] >= NEEDS[need]


def campaign_allows(*, user, campaign: Campaign, need: str) -> bool:
    return _grants(campaign_role(user=user, campaign=campaign), need)


def can_create_campaigns(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and (user.is_staff or user.is_superuser))


def campaigns_administered(*, user, need: str = "view") -> QuerySet[Campaign]:
    """Campaigns on which the user holds at least `need`."""
    if not user or not user.is_authenticated or not user.is_active:
        return Campaign.objects.none()
    if user.is_superuser:
        return Campaign.objects.all()
    roles = [role for role in ROLE_LEVEL if _grants(role, need)]
    return Campaign.objects.filter(members__user=user, members__role__in=roles).distinct()


def is_campaign_admin_anywhere(user) -> bool:
    """Shows the admin links in the page header."""
    if not user or not user.is_authenticated:
        return False
    return user.is_superuser or can_create_campaigns(user) or CampaignMember.objects.filter(user=user).exists()


def campaign_lookup(ref: str) -> Campaign | None:
    """By slug, or (for API clients) by id; a ref that only looks numeric is a slug."""
    ref = str(ref).strip()
    if ref.isascii() and ref.isdigit() and len(ref) < 19:
        found = Campaign.objects.filter(pk=int(ref)).first() or Campaign.objects.filter(slug=ref).first()
    else:
        found = Campaign.objects.filter(slug=ref).first()
    return found


def admin_campaign(*, user, ref: str, need: str = "view") -> Campaign:
    """The campaign for an admin page or API call, or an error.

    No role at all is a 404 (nobody learns which campaigns exist) unless the caller annotates the
    campaign and so knows it exists; a role too low for the action is a 403 that names what is missing.
    """
    campaign = campaign_lookup(ref)
    if campaign is None:
        raise Http404("no such campaign")
    role = campaign_role(user=user, campaign=campaign)
    if role is None:
        if user.is_authenticated and in_campaign_pool(user=user, campaign=campaign):
            raise PermissionDenied(
                f"You annotate {campaign.name!r}; its admin pages are for its owners, admins and viewers."
            )
        raise Http404("no such campaign")
    if need == "review" and not _grants(role, need):
        raise PermissionDenied(
            f"You are a {role} of {campaign.name!r}; only its reviewers, admins and owners may review labels."
        )
    if role == Role.REVIEWER and need != "review":
        raise PermissionDenied(
            f"You review {campaign.name!r}; its other admin pages are for its owners, admins and viewers."
        )
    if not _grants(role, need):
        raise PermissionDenied(
            f"You are {'an' if role in (Role.ADMIN, Role.OWNER) else 'a'} {role} of {campaign.name!r}; "
            f"only its {'owners' if need == 'own' else 'owners and admins'} may {NEED_WORDS[need]} this."
        )
    return campaign
