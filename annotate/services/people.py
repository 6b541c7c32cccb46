"""Who works on what: accounts, annotator pools, a campaign's annotators and roles, invitation links."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from annotate.models import AnnotatorPool, Assignment, Campaign, CampaignMember, Invitation
from annotate.selectors import in_campaign_pool
from annotate.services.assignments import leases_release

User = get_user_model()
Role = CampaignMember.Role
ROLE_RANK = {Role.VIEWER: 1, Role.ADMIN: 2, Role.OWNER: 3}

INVITATION_MIN = timedelta(hours=1)
INVITATION_MAX = timedelta(days=90)
TOKEN_BYTES = 32


class PeopleError(Exception):
    """A request refused with a message for people; `field` names the input it is about."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


# --- accounts ----------------------------------------------------------------------------------


def _username_clean(username: str) -> str:
    username = (username or "").strip()
    if not username:
        raise PeopleError("Enter a username.", field="username")
    field = User._meta.get_field(User.USERNAME_FIELD)
    try:
        field.run_validators(username)
    except ValidationError as exc:
        raise PeopleError(" ".join(exc.messages), field="username") from None
    if len(username) > field.max_length:
        raise PeopleError(f"Usernames have at most {field.max_length} characters.", field="username")
    if User.objects.filter(username__iexact=username).exists():
        raise PeopleError(f"The username {username!r} is taken.", field="username")
    return username


def _password_check(password: str, *, username: str, field: str = "password") -> None:
    if not password:
        raise PeopleError("Enter a password.", field=field)
    try:
        validate_password(password, user=User(username=username))
    except ValidationError as exc:
        raise PeopleError(" ".join(exc.messages), field=field) from None


def _account_save(user: User) -> None:
    """Insert the account; a name taken by a concurrent request is the same field error as a taken one."""
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        raise PeopleError(f"The username {user.username!r} is taken.", field="username") from None


def account_create(*, username: str, password: str | None) -> User:
    """A new active account. Without a password it cannot log in until it sets one through a
    one-time link (`account_password_link`)."""
    username = _username_clean(username)
    if password is not None:
        _password_check(password, username=username)
    with transaction.atomic():
        user = User(username=username)
        if password is None:
            user.set_unusable_password()
        else:
            user.set_password(password)
        _account_save(user)
    return user


def account_password_path(*, user: User) -> str:
    """The one-time "set your password" link for an account made without one (Django's reset token:
    spent once the password is set, expiring after PASSWORD_RESET_TIMEOUT)."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("account-set-password", kwargs={"uidb64": uid, "token": default_token_generator.make_token(user)})


def account_active_set(*, user: User, active: bool, by: User) -> int:
    """(De)activate an account; deactivating ends its live leases at once. Returns the leases ended."""
    if not active and user.pk == by.pk:
        raise PeopleError("You cannot deactivate your own account.", field="active")
    if not active and user.is_superuser and not by.is_superuser:
        raise PeopleError("Only a superuser may deactivate a superuser.", field="active")
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(is_active=active)
        user.is_active = active
        return 0 if active else leases_release(annotator=user)


# --- pools -------------------------------------------------------------------------------------


def _pool_name_clean(name: str, *, exclude: int | None = None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise PeopleError("Enter a name for the pool.", field="name")
    if len(name) > AnnotatorPool._meta.get_field("name").max_length:
        raise PeopleError("Pool names have at most 120 characters.", field="name")
    if AnnotatorPool.objects.filter(name__iexact=name).exclude(pk=exclude).exists():
        raise PeopleError(f"There is already a pool named {name!r}.", field="name")
    return name


def pool_create(*, name: str, description: str = "", created_by: User | None) -> AnnotatorPool:
    name = _pool_name_clean(name)
    with transaction.atomic():
        return AnnotatorPool.objects.create(name=name, description=description.strip(), created_by=created_by)


def pool_update(*, pool: AnnotatorPool, name: str | None = None, description: str | None = None) -> AnnotatorPool:
    fields = []
    if name is not None:
        pool.name = _pool_name_clean(name, exclude=pool.pk)
        fields.append("name")
    if description is not None:
        pool.description = description.strip()
        fields.append("description")
    if fields:
        with transaction.atomic():
            pool.save(update_fields=fields)
    return pool


def _release_outsiders(*, users, campaigns) -> int:
    """End live leases of those who are no longer in a campaign's pool (after a membership change)."""
    ended = 0
    for campaign in campaigns:
        for user in users:
            if not in_campaign_pool(user=user, campaign=campaign):
                ended += leases_release(annotator=user, campaign=campaign)
    return ended


def pool_delete(*, pool: AnnotatorPool) -> int:
    """Delete a pool; its members lose the campaigns it gave them (and their live leases there)."""
    with transaction.atomic():
        campaigns = list(pool.campaigns.all())
        members = list(pool.members.all())
        pool.delete()
        return _release_outsiders(users=members, campaigns=campaigns)


def pool_member_add(*, pool: AnnotatorPool, user: User) -> bool:
    """Add a member; False when they already were one."""
    with transaction.atomic():
        if pool.members.filter(pk=user.pk).exists():
            return False
        pool.members.add(user)
        return True


def pool_member_remove(*, pool: AnnotatorPool, user: User) -> int:
    """Remove a member; ends their live leases in campaigns they no longer label. Returns leases ended."""
    with transaction.atomic():
        if not pool.members.filter(pk=user.pk).exists():
            raise PeopleError(f"{user.username} is not in the pool {pool.name!r}.", field="username")
        pool.members.remove(user)
        return _release_outsiders(users=[user], campaigns=list(pool.campaigns.all()))


# --- a campaign's annotators and pools ---------------------------------------------------------


def _leaseholders(campaign: Campaign) -> list[User]:
    leased = Assignment.objects.filter(campaign=campaign, state=Assignment.State.LEASED).values("annotator_id")
    return list(User.objects.filter(pk__in=leased))


def campaign_annotator_add(*, campaign: Campaign, user: User) -> bool:
    """Add an annotator one by one; False when they already were one."""
    if not user.is_active:
        raise PeopleError(f"{user.username}'s account is deactivated.", field="username")
    with transaction.atomic():
        if campaign.annotators.filter(pk=user.pk).exists():
            return False
        campaign.annotators.add(user)
        # The first one closes a campaign that was open to every account: others' leases end now.
        _release_outsiders(users=_leaseholders(campaign), campaigns=[campaign])
        return True


def campaign_annotator_remove(*, campaign: Campaign, user: User) -> int:
    """Remove an annotator added one by one and end their live leases here (the work on screen goes
    back to the queue even when a pool, or an emptied list, still lets them in)."""
    with transaction.atomic():
        if not campaign.annotators.filter(pk=user.pk).exists():
            raise PeopleError(f"{user.username} is not one of this campaign's annotators.", field="username")
        campaign.annotators.remove(user)
        return leases_release(annotator=user, campaign=campaign)


def campaign_open_to_all(*, campaign: Campaign) -> bool:
    """No annotators and no pools: every active account may label."""
    return not campaign.annotators.exists() and not campaign.pools.exists()


def campaign_pool_attach(*, campaign: Campaign, pool: AnnotatorPool) -> bool:
    with transaction.atomic():
        if campaign.pools.filter(pk=pool.pk).exists():
            return False
        campaign.pools.add(pool)
        _release_outsiders(users=_leaseholders(campaign), campaigns=[campaign])
        return True


def campaign_pool_detach(*, campaign: Campaign, pool: AnnotatorPool) -> int:
    with transaction.atomic():
        if not campaign.pools.filter(pk=pool.pk).exists():
            raise PeopleError(f"The pool {pool.name!r} is not attached to this campaign.", field="pool")
        campaign.pools.remove(pool)
        return _release_outsiders(users=list(pool.members.all()), campaigns=[campaign])


# --- roles -------------------------------------------------------------------------------------


def _role_clean(role: str) -> str:
    if role not in Role.values:
        raise PeopleError(f"Choose a role: {', '.join(Role.values)} (not {role!r}).", field="role")
    return role


def _other_owners(campaign: Campaign, user: User) -> int:
    owners = CampaignMember.objects.select_for_update().filter(campaign=campaign, role=Role.OWNER)
    return sum(1 for member in owners if member.user_id != user.pk)


def member_role_need(*, campaign: Campaign, user: User | None, role: str | None) -> str:
    """The access need (annotate/access.py) for giving `user` the role `role`, or with None for removing theirs.

    Roles are the owners' to change ("own"), with one exception: the reviewer role grants the review queue
    only, so admins ("manage") may make someone without a role a reviewer and take that role away again.
    """
    current = None
    if user is not None:
        current = CampaignMember.objects.filter(campaign=campaign, user=user).values_list("role", flat=True).first()
    if role in (None, Role.REVIEWER) and current in (None, Role.REVIEWER) and (role or current):
        return "manage"
    return "own"


def campaign_member_set(*, campaign: Campaign, user: User, role: str) -> CampaignMember:
    """Give someone a role on the campaign, or change it; the last owner cannot be demoted."""
    role = _role_clean(role)
    if not user.is_active:
        raise PeopleError(f"{user.username}'s account is deactivated.", field="username")
    with transaction.atomic():
        member = CampaignMember.objects.select_for_update().filter(campaign=campaign, user=user).first()
        if member and member.role == Role.OWNER and role != Role.OWNER and not _other_owners(campaign, user):
            raise PeopleError(f"{user.username} is the last owner: make someone else owner first.", field="role")
        if member is None:
            member = CampaignMember.objects.create(campaign=campaign, user=user, role=role)
        elif member.role != role:
            member.role = role
            member.save(update_fields=["role"])
        return member


def campaign_member_remove(*, campaign: Campaign, user: User) -> None:
    with transaction.atomic():
        member = CampaignMember.objects.select_for_update().filter(campaign=campaign, user=user).first()
        if member is None:
            raise PeopleError(f"{user.username} has no role on this campaign.", field="username")
        if member.role == Role.OWNER and not _other_owners(campaign, user):
            raise PeopleError(f"{user.username} is the last owner and cannot be removed.", field="username")
        member.delete()


# --- invitations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewInvitation:
    invitation: Invitation
    token: str  # shown once; only its hash is stored


def invitation_state(invitation: Invitation, *, now: datetime | None = None) -> str:
    """pending, used, revoked or expired."""
    if invitation.used_at:
        return "used"
    if invitation.revoked_at:
        return "revoked"
    if invitation.expires_at <= (now or timezone.now()):
        return "expired"
    return "pending"


def invitation_create(
    *,
    campaign: Campaign | None = None,
    pool: AnnotatorPool | None = None,
    role: str = Invitation.Role.ANNOTATOR,
    expires_in: timedelta,
    note: str = "",
    created_by: User | None,
) -> NewInvitation:
    """A one-time link to a campaign (as annotator, viewer or admin) or to a pool (as member)."""
    if (campaign is None) == (pool is None):
        raise PeopleError("An invitation is to one campaign or to one pool.", field="campaign")
    if role not in Invitation.Role.values:
        raise PeopleError(f"Choose a role: {', '.join(Invitation.Role.values)} (not {role!r}).", field="role")
    if pool is not None and role != Invitation.Role.ANNOTATOR:
        raise PeopleError("A pool invitation makes an annotator; give roles on a campaign.", field="role")
    if not INVITATION_MIN <= expires_in <= INVITATION_MAX:
        raise PeopleError("Links expire after 1 hour at the soonest and 90 days at the latest.", field="expires")
    note = (note or "").strip()
    if len(note) > Invitation._meta.get_field("note").max_length:
        raise PeopleError("The note has at most 200 characters.", field="note")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with transaction.atomic():
        invitation = Invitation.objects.create(
            token_hash=Invitation.hash_token(token),
            campaign=campaign,
            pool=pool,
            role=role,
            note=note,
            created_by=created_by,
            expires_at=timezone.now() + expires_in,
        )
    return NewInvitation(invitation=invitation, token=token)


def invitation_revoke(*, invitation: Invitation) -> Invitation:
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.used_at:
            raise PeopleError("This link was used already; remove the person instead.", field="invitation")
        if invitation.revoked_at is None:
            invitation.revoked_at = timezone.now()
            invitation.save(update_fields=["revoked_at"])
        return invitation


def invitation_find(*, token: str) -> Invitation | None:
    if not token or len(token) > 200:
        return None
    return (
        Invitation.objects.select_related("campaign", "pool", "used_by")
        .filter(token_hash=Invitation.hash_token(token))
        .first()
    )


class InvitationUnusable(PeopleError):
    """The link cannot be used: `state` is unknown, used, expired or revoked."""

    def __init__(self, state: str):
        super().__init__(f"This invitation link is {state}.", field="token")
        self.state = state


def _invitation_lock(token: str) -> Invitation:
    found = invitation_find(token=token)
    if found is None:
        raise InvitationUnusable("unknown")
    invitation = Invitation.objects.select_for_update(of=("self",)).select_related("campaign", "pool").get(pk=found.pk)
    state = invitation_state(invitation)
    if state != "pending":
        raise InvitationUnusable(state)
    return invitation


def _invitation_apply(invitation: Invitation, user: User) -> None:
    if invitation.pool_id:
        invitation.pool.members.add(user)
    elif invitation.role == Invitation.Role.ANNOTATOR:
        invitation.campaign.annotators.add(user)
    else:
        member = CampaignMember.objects.select_for_update().filter(campaign=invitation.campaign, user=user).first()
        if member is None:
            CampaignMember.objects.create(campaign=invitation.campaign, user=user, role=invitation.role)
        elif ROLE_RANK[member.role] < ROLE_RANK[invitation.role]:  # a link never demotes anyone
            member.role = invitation.role
            member.save(update_fields=["role"])
    invitation.used_at = timezone.now()
    invitation.used_by = user
    invitation.save(update_fields=["used_at", "used_by"])


def invitation_accept(*, token: str, user: User) -> Invitation:
    """A signed-in account takes the link's place; the link is spent in the same transaction."""
    if not user.is_active:
        raise PeopleError("Your account is deactivated.", field="token")
    with transaction.atomic():
        invitation = _invitation_lock(token)
        _invitation_apply(invitation, user)
        return invitation


def invitation_signup(*, token: str, username: str, password: str, password_again: str) -> tuple[User, Invitation]:
    """A new account from the link, which is spent in the same transaction (nothing half-made)."""
    with transaction.atomic():
        invitation = _invitation_lock(token)
        username = _username_clean(username)
        _password_check(password, username=username)
        if password != password_again:
            raise PeopleError("The two passwords differ.", field="password_again")
        user = User(username=username)
        user.set_password(password)
        _account_save(user)
        _invitation_apply(invitation, user)
        return user, invitation


def invitation_destination(invitation: Invitation) -> Campaign | None:
    """Where the person lands afterwards: the campaign's annotate page (annotators) or admin pages."""
    return invitation.campaign
