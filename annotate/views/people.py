"""People pages: accounts and pools (staff), a campaign's People tab (annotators, pools, roles,
invitation links) and the page that accepts an invitation."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Prefetch, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, path, reverse, reverse_lazy
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotate.access import (
    admin_campaign,
    campaign_allows,
    campaign_role,
    campaigns_administered,
    can_create_campaigns,
)
from annotate.models import Annotation, AnnotatorPool, Campaign, CampaignMember, Invitation
from annotate.services.people import (
    InvitationUnusable,
    PeopleError,
    account_active_set,
    account_create,
    account_password_path,
    campaign_annotator_add,
    campaign_annotator_remove,
    campaign_member_remove,
    campaign_member_set,
    campaign_open_to_all,
    campaign_pool_attach,
    campaign_pool_detach,
    invitation_accept,
    invitation_create,
    invitation_find,
    invitation_revoke,
    invitation_signup,
    invitation_state,
    member_role_need,
    pool_create,
    pool_delete,
    pool_member_add,
    pool_member_remove,
    pool_update,
)

User = get_user_model()
ACCOUNTS_SHOWN = 500
EXPIRY_UNITS = {"hours": timedelta(hours=1), "days": timedelta(days=1)}
INVITATION_ROLE_WORDS = {
    "annotator": "Annotator — labels the campaign",
    "viewer": "Viewer — sees the admin pages, changes nothing",
    "admin": "Admin — runs the campaign (settings, imports, people, judges, exports)",
}


def _user_named(username: str, *, field: str = "username") -> User:
    username = (username or "").strip()
    if not username:
        raise PeopleError("Enter a username.", field=field)
    user = User.objects.filter(username__iexact=username).first()
    if user is None:
        raise PeopleError(f"There is no account named {username!r}.", field=field)
    return user


def _expiry(form) -> timedelta:
    amount, unit = (form.get("expires") or "").strip(), form.get("expires_unit", "days")
    if unit not in EXPIRY_UNITS:
        raise PeopleError("Choose hours or days.", field="expires")
    if not amount.isdigit() or int(amount) == 0:
        raise PeopleError(f"Enter a whole number of {unit} above 0 (not {amount!r}).", field="expires")
    if int(amount) > 24 * 90:
        raise PeopleError("Links expire after 90 days at the latest.", field="expires")
    return int(amount) * EXPIRY_UNITS[unit]


def _link(request, token: str) -> str:
    return request.build_absolute_uri(reverse("invitation-accept", kwargs={"token": token}))


def _with_states(invitations) -> list[Invitation]:
    now = timezone.now()
    rows = list(invitations)
    for invitation in rows:
        invitation.state = invitation_state(invitation, now=now)
    return rows


# --- accounts and pools (staff) ----------------------------------------------------------------


def _staff(request) -> None:
    if not can_create_campaigns(request.user):
        raise PermissionDenied("Only staff accounts manage accounts and pools.")


def _visible_campaigns(user):
    """Staff manage every account and pool, but learn of no campaign they hold no role on."""
    return Campaign.objects.filter(pk__in=campaigns_administered(user=user).values("pk")).order_by("name")


def _people_page(request, *, errors=None, values=None, new_account=None, status=200):
    query = (request.GET.get("q") or "").strip()
    accounts = User.objects.order_by("username")
    if query:
        accounts = accounts.filter(username__icontains=query)
    accounts = accounts.annotate(
        n_labels=Count("annotations", filter=Q(annotations__source=Annotation.Source.HUMAN), distinct=True)
    ).prefetch_related(
        "annotator_pools",
        Prefetch("annotator_campaigns", queryset=_visible_campaigns(request.user)),
        Prefetch(
            "campaign_memberships",
            queryset=CampaignMember.objects.filter(campaign__in=_visible_campaigns(request.user)).select_related(
                "campaign"
            ),
        ),
    )
    total = accounts.count()
    pools = AnnotatorPool.objects.annotate(
        n_members=Count("members", distinct=True), n_campaigns=Count("campaigns", distinct=True)
    )
    context = {
        "accounts": list(accounts[:ACCOUNTS_SHOWN]),
        "total": total,
        "shown": ACCOUNTS_SHOWN,
        "query": query,
        "pools": pools,
        "errors": errors or {},
        "values": values or {},
        "new_account": new_account,
    }
    return render(request, "annotate/people/people.html", context, status=status)


@login_required
@require_GET
def people_page(request):
    _staff(request)
    return _people_page(request)


@login_required
@require_POST
def account_create_view(request):
    _staff(request)
    form = request.POST
    with_link = form.get("mode") == "link"
    try:
        user = account_create(username=form.get("username", ""), password=None if with_link else form.get("password"))
    except PeopleError as exc:
        values = {"username": form.get("username", ""), "mode": form.get("mode", "password")}
        return _people_page(request, errors={exc.field: str(exc)}, values=values, status=400)
    if with_link:
        link = request.build_absolute_uri(account_password_path(user=user))
        return _people_page(request, new_account={"user": user, "link": link}, status=201)
    messages.success(request, f"Account {user.username} created; it can log in now.")
    return redirect("people")


@login_required
@require_POST
def account_link_view(request, user_id: int):
    """A fresh one-time link for an account that never set its password (the first one got lost)."""
    _staff(request)
    user = get_object_or_404(User, pk=user_id)
    if user.has_usable_password():
        messages.error(request, f"{user.username} has a password already; only they can change it.")
        return redirect("people")
    link = request.build_absolute_uri(account_password_path(user=user))
    return _people_page(request, new_account={"user": user, "link": link})


@login_required
@require_POST
def account_active_view(request, user_id: int):
    _staff(request)
    user = get_object_or_404(User, pk=user_id)
    active = request.POST.get("active") == "1"
    try:
        ended = account_active_set(user=user, active=active, by=request.user)
    except PeopleError as exc:
        messages.error(request, str(exc))
        return redirect("people")
    if active:
        messages.success(request, f"{user.username} is active again.")
    else:
        messages.success(request, f"{user.username} is deactivated; {ended} live lease(s) ended.")
    return redirect("people")


@login_required
@require_POST
def pool_create_view(request):
    _staff(request)
    try:
        pool = pool_create(
            name=request.POST.get("name", ""), description=request.POST.get("description", ""), created_by=request.user
        )
    except PeopleError as exc:
        values = {"pool_name": request.POST.get("name", ""), "pool_description": request.POST.get("description", "")}
        return _people_page(request, errors={f"pool_{exc.field}": str(exc)}, values=values, status=400)
    messages.success(request, f"Pool {pool.name!r} created.")
    return redirect("people-pool", pool_id=pool.pk)


def _pool_page(request, pool: AnnotatorPool, *, errors=None, values=None, new_link=None, status=200):
    context = {
        "pool": pool,
        "members": pool.members.order_by("username"),
        "campaigns": pool.campaigns.filter(pk__in=_visible_campaigns(request.user)).order_by("name"),
        "invitations": _with_states(pool.invitations.select_related("used_by", "created_by")),
        "errors": errors or {},
        "values": values or {"expires": "7", "expires_unit": "days"},
        "new_link": new_link,
    }
    return render(request, "annotate/people/pool.html", context, status=status)


@login_required
@require_GET
def pool_page(request, pool_id: int):
    _staff(request)
    return _pool_page(request, get_object_or_404(AnnotatorPool, pk=pool_id))


@login_required
@require_POST
def pool_update_view(request, pool_id: int):
    _staff(request)
    pool = get_object_or_404(AnnotatorPool, pk=pool_id)
    try:
        pool_update(pool=pool, name=request.POST.get("name", ""), description=request.POST.get("description", ""))
    except PeopleError as exc:
        pool.refresh_from_db()
        return _pool_page(request, pool, errors={f"pool_{exc.field}": str(exc)}, status=400)
    messages.success(request, f"Pool {pool.name!r} saved.")
    return redirect("people-pool", pool_id=pool.pk)


@login_required
@require_POST
def pool_delete_view(request, pool_id: int):
    _staff(request)
    pool = get_object_or_404(AnnotatorPool, pk=pool_id)
    name = pool.name
    ended = pool_delete(pool=pool)
    messages.success(request, f"Pool {name!r} deleted; {ended} live lease(s) ended.")
    return redirect("people")


@login_required
@require_POST
def pool_member_add_view(request, pool_id: int):
    _staff(request)
    pool = get_object_or_404(AnnotatorPool, pk=pool_id)
    try:
        user = _user_named(request.POST.get("username", ""))
        added = pool_member_add(pool=pool, user=user)
    except PeopleError as exc:
        values = {"username": request.POST.get("username", ""), "expires": "7", "expires_unit": "days"}
        return _pool_page(request, pool, errors={exc.field: str(exc)}, values=values, status=400)
    messages.success(request, f"{user.username} {'added to' if added else 'was already in'} {pool.name!r}.")
    return redirect("people-pool", pool_id=pool.pk)


@login_required
@require_POST
def pool_member_remove_view(request, pool_id: int, user_id: int):
    _staff(request)
    pool = get_object_or_404(AnnotatorPool, pk=pool_id)
    user = get_object_or_404(User, pk=user_id)
    try:
        ended = pool_member_remove(pool=pool, user=user)
    except PeopleError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{user.username} removed from {pool.name!r}; {ended} live lease(s) ended.")
    return redirect("people-pool", pool_id=pool.pk)


@login_required
@require_POST
def pool_invite_view(request, pool_id: int):
    _staff(request)
    pool = get_object_or_404(AnnotatorPool, pk=pool_id)
    form = request.POST
    try:
        new = invitation_create(pool=pool, expires_in=_expiry(form), note=form.get("note", ""), created_by=request.user)
    except PeopleError as exc:
        values = {k: form.get(k, "") for k in ("expires", "expires_unit", "note")}
        return _pool_page(request, pool, errors={exc.field: str(exc)}, values=values, status=400)
    expires = timezone.localtime(new.invitation.expires_at).strftime("%Y-%m-%d %H:%M")
    what = f"Whoever opens this link first joins the pool {pool.name!r}; it works until {expires}."
    new_link = {"invitation": new.invitation, "url": _link(request, new.token), "what": what}
    return _pool_page(request, pool, new_link=new_link, status=201)


@login_required
@require_POST
def pool_invite_revoke_view(request, pool_id: int, invitation_id: int):
    _staff(request)
    invitation = get_object_or_404(Invitation, pk=invitation_id, pool_id=pool_id)
    try:
        invitation_revoke(invitation=invitation)
    except PeopleError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Link revoked: it no longer works.")
    return redirect("people-pool", pool_id=pool_id)


set_password_view = auth_views.PasswordResetConfirmView.as_view(
    template_name="registration/set_password.html", post_reset_login=True, success_url=reverse_lazy("home")
)


# --- a campaign's People tab -------------------------------------------------------------------


def _campaign_page(request, campaign: Campaign, *, errors=None, values=None, new_link=None, status=200):
    role = campaign_role(user=request.user, campaign=campaign)
    can_manage = campaign_allows(user=request.user, campaign=campaign, need="manage")
    can_own = campaign_allows(user=request.user, campaign=campaign, need="own")
    annotators = campaign.annotators.order_by("username").annotate(
        n_labels=Count("annotations", filter=Q(annotations__campaign=campaign), distinct=True)
    )
    pools = campaign.pools.annotate(n_members=Count("members", distinct=True)).order_by("name")
    attached = {p.pk for p in pools}
    invitation_roles = [r for r in Invitation.Role.values if can_own or r == Invitation.Role.ANNOTATOR]
    context = {
        "campaign": campaign,
        "my_role": role,
        "can_manage": can_manage,
        "can_own": can_own,
        "annotators": annotators,
        "pools": pools,
        "open_to_all": not annotators.exists() and not attached,
        "other_pools": [p for p in AnnotatorPool.objects.order_by("name") if p.pk not in attached],
        "members": CampaignMember.objects.filter(campaign=campaign).select_related("user").order_by("role", "user"),
        "roles": CampaignMember.Role.values,
        "invitations": _with_states(campaign.invitations.select_related("used_by", "created_by")),
        "invitation_roles": [(r, INVITATION_ROLE_WORDS[r]) for r in invitation_roles],
        "errors": errors or {},
        "values": values or {"expires": "7", "expires_unit": "days", "invite_role": "annotator"},
        "new_link": new_link,
    }
    return render(request, "annotate/people/campaign_people.html", context, status=status)


@login_required
@require_GET
def campaign_people(request, slug: str):
    return _campaign_page(request, admin_campaign(user=request.user, ref=slug, need="view"))


def _open_note(campaign: Campaign) -> str:
    if campaign_open_to_all(campaign=campaign):
        return " With no annotators and no pools left, the campaign is now open to every account."
    return ""


def _done(request, campaign: Campaign, message: str):
    messages.success(request, message)
    return redirect("campaign-people", slug=campaign.slug)


def _refused(request, campaign: Campaign, exc: PeopleError, **values):
    return _campaign_page(request, campaign, errors={exc.field: str(exc)}, values=values, status=400)


@login_required
@require_POST
def annotator_add(request, slug: str):
    campaign = admin_campaign(user=request.user, ref=slug, need="manage")
    username = request.POST.get("username", "")
    try:
        user = _user_named(username)
        added = campaign_annotator_add(campaign=campaign, user=user)
    except PeopleError as exc:
        return _refused(request, campaign, exc, username=username)
    return _done(request, campaign, f"{user.username} {'may label now' if added else 'was already an annotator'}.")


@login_required
@require_POST
def annotator_remove(request, slug: str, user_id: int):
    campaign = admin_campaign(user=request.user, ref=slug, need="manage")
    user = get_object_or_404(User, pk=user_id)
    try:
        ended = campaign_annotator_remove(campaign=campaign, user=user)
    except PeopleError as exc:
        return _refused(request, campaign, exc)
    return _done(request, campaign, f"{user.username} removed; {ended} live lease(s) ended.{_open_note(campaign)}")


@login_required
@require_POST
def pool_attach(request, slug: str):
    campaign = admin_campaign(user=request.user, ref=slug, need="manage")
    chosen = (request.POST.get("pool") or "").strip()
    pool = AnnotatorPool.objects.filter(pk=int(chosen)).first() if chosen.isdigit() else None
    if pool is None:
        return _refused(request, campaign, PeopleError("Choose a pool to attach.", field="pool"))
    attached = campaign_pool_attach(campaign=campaign, pool=pool)
    return _done(request, campaign, f"Pool {pool.name!r} {'attached' if attached else 'was already attached'}.")


@login_required
@require_POST
def pool_detach(request, slug: str, pool_id: int):
    campaign = admin_campaign(user=request.user, ref=slug, need="manage")
    pool = get_object_or_404(AnnotatorPool, pk=pool_id)
    try:
        ended = campaign_pool_detach(campaign=campaign, pool=pool)
    except PeopleError as exc:
        return _refused(request, campaign, exc)
    return _done(request, campaign, f"Pool {pool.name!r} detached; {ended} live lease(s) ended.{_open_note(campaign)}")


def _role_allowed(request, campaign: Campaign, *, user, role: str | None) -> None:
    """403 unless the caller may make this role change (`member_role_need`: admins handle reviewers)."""
    need = member_role_need(campaign=campaign, user=user, role=role)
    if not campaign_allows(user=request.user, campaign=campaign, need=need):
        raise PermissionDenied(
            f"Only the owners of {campaign.name!r} change roles; admins may give and take the reviewer role."
        )


@login_required
@require_POST
def role_add(request, slug: str):
    role = request.POST.get("role", "")
    campaign = admin_campaign(
        user=request.user, ref=slug, need="manage" if role == CampaignMember.Role.REVIEWER else "own"
    )
    username = request.POST.get("username", "")
    try:
        user = _user_named(username, field="member_username")
        _role_allowed(request, campaign, user=user, role=role)
        member = campaign_member_set(campaign=campaign, user=user, role=role)
    except PeopleError as exc:
        field = "member_username" if exc.field in ("username", "member_username") else f"member_{exc.field}"
        return _campaign_page(
            request,
            campaign,
            errors={field: str(exc)},
            values={"member_username": username, "member_role": role},
            status=400,
        )
    return _done(request, campaign, f"{user.username} is now {member.role} of {campaign.name}.")


@login_required
@require_POST
def role_change(request, slug: str, user_id: int):
    campaign = admin_campaign(user=request.user, ref=slug, need="manage")
    member = get_object_or_404(CampaignMember, campaign=campaign, user_id=user_id)
    _role_allowed(request, campaign, user=member.user, role=request.POST.get("role", ""))
    try:
        member = campaign_member_set(campaign=campaign, user=member.user, role=request.POST.get("role", ""))
    except PeopleError as exc:
        return _campaign_page(
            request, campaign, errors={"row_role": str(exc)}, values={"error_user": user_id}, status=400
        )
    return _done(request, campaign, f"{member.user.username} is now {member.role}.")


@login_required
@require_POST
def role_remove(request, slug: str, user_id: int):
    campaign = admin_campaign(user=request.user, ref=slug, need="manage")
    member = get_object_or_404(CampaignMember, campaign=campaign, user_id=user_id)
    _role_allowed(request, campaign, user=member.user, role=None)
    try:
        campaign_member_remove(campaign=campaign, user=member.user)
    except PeopleError as exc:
        return _campaign_page(
            request, campaign, errors={"row_role": str(exc)}, values={"error_user": user_id}, status=400
        )
    return _done(request, campaign, f"{member.user.username} no longer has a role on {campaign.name}.")


@login_required
@require_POST
def invitation_create_view(request, slug: str):
    form = request.POST
    role = form.get("role", Invitation.Role.ANNOTATOR)
    # Links that give admin roles are role changes, which only owners make.
    campaign = admin_campaign(user=request.user, ref=slug, need="manage" if role == "annotator" else "own")
    try:
        new = invitation_create(
            campaign=campaign, role=role, expires_in=_expiry(form), note=form.get("note", ""), created_by=request.user
        )
    except PeopleError as exc:
        values = {"invite_role": role, **{k: form.get(k, "") for k in ("expires", "expires_unit", "note")}}
        return _campaign_page(request, campaign, errors={exc.field: str(exc)}, values=values, status=400)
    expires = timezone.localtime(new.invitation.expires_at).strftime("%Y-%m-%d %H:%M")
    what = f"Whoever opens this link first joins {campaign.name} as {role}; it works until {expires}."
    new_link = {"invitation": new.invitation, "url": _link(request, new.token), "what": what}
    return _campaign_page(request, campaign, new_link=new_link, status=201)


@login_required
@require_POST
def invitation_revoke_view(request, slug: str, invitation_id: int):
    campaign = admin_campaign(user=request.user, ref=slug, need="manage")
    invitation = get_object_or_404(Invitation, pk=invitation_id, campaign=campaign)
    try:
        invitation_revoke(invitation=invitation)
    except PeopleError as exc:
        return _refused(request, campaign, exc)
    return _done(request, campaign, "Link revoked: it no longer works.")


# --- accepting an invitation -------------------------------------------------------------------

UNUSABLE_STATUS = {"unknown": 404, "used": 410, "expired": 410, "revoked": 410}


def _landing(invitation: Invitation) -> str:
    campaign = invitation.campaign
    if campaign is None:
        return reverse("home")
    if invitation.role == Invitation.Role.ANNOTATOR:
        return reverse("annotate", kwargs={"slug": campaign.slug}) if campaign.state == "open" else reverse("home")
    for name in ("campaign-home", "campaign-settings", "campaign-people"):
        try:
            return reverse(name, kwargs={"slug": campaign.slug})
        except NoReverseMatch:
            continue
    return reverse("home")


def _unusable(request, state: str, invitation: Invitation | None = None):
    context = {"state": state, "invitation": invitation}
    return render(request, "annotate/people/invitation_unusable.html", context, status=UNUSABLE_STATUS[state])


@require_http_methods(["GET", "POST"])
def invitation_accept_view(request, token: str):
    invitation = invitation_find(token=token)
    if invitation is None:
        return _unusable(request, "unknown")
    state = invitation_state(invitation)
    if state != "pending":
        return _unusable(request, state, invitation)
    errors, values = {}, {}
    if request.method == "POST":
        try:
            if request.user.is_authenticated:
                invitation = invitation_accept(token=token, user=request.user)
            else:
                user, invitation = invitation_signup(
                    token=token,
                    username=request.POST.get("username", ""),
                    password=request.POST.get("password", ""),
                    password_again=request.POST.get("password_again", ""),
                )
                login(request, user)
        except InvitationUnusable as exc:  # someone else used or revoked it between the page and the click
            return _unusable(request, exc.state, invitation)
        except PeopleError as exc:
            errors, values = {exc.field: str(exc)}, {"username": request.POST.get("username", "")}
        else:
            where = invitation.campaign.name if invitation.campaign else invitation.pool.name
            messages.success(request, f"Welcome, {request.user.username}: you joined {where}.")
            return redirect(_landing(invitation))
    context = {"invitation": invitation, "errors": errors, "values": values}
    return render(request, "annotate/people/invitation_accept.html", context, status=400 if errors else 200)


# Mounted at the site root by annotate/urls.py.
urlpatterns = [
    path("people/", people_page, name="people"),
    path("people/accounts/new/", account_create_view, name="people-account-create"),
    path("people/accounts/<int:user_id>/active/", account_active_view, name="people-account-active"),
    path("people/accounts/<int:user_id>/link/", account_link_view, name="people-account-link"),
    path("people/pools/new/", pool_create_view, name="people-pool-create"),
    path("people/pools/<int:pool_id>/", pool_page, name="people-pool"),
    path("people/pools/<int:pool_id>/edit/", pool_update_view, name="people-pool-update"),
    path("people/pools/<int:pool_id>/delete/", pool_delete_view, name="people-pool-delete"),
    path("people/pools/<int:pool_id>/members/", pool_member_add_view, name="people-pool-member-add"),
    path(
        "people/pools/<int:pool_id>/members/<int:user_id>/remove/",
        pool_member_remove_view,
        name="people-pool-member-remove",
    ),
    path("people/pools/<int:pool_id>/invitations/", pool_invite_view, name="people-pool-invite"),
    path(
        "people/pools/<int:pool_id>/invitations/<int:invitation_id>/revoke/",
        pool_invite_revoke_view,
        name="people-pool-invite-revoke",
    ),
    path("accounts/set-password/<uidb64>/<token>/", set_password_view, name="account-set-password"),
    path("invite/<str:token>/", invitation_accept_view, name="invitation-accept"),
    path("c/<slug:slug>/people/", campaign_people, name="campaign-people"),
    path("c/<slug:slug>/people/annotators/", annotator_add, name="campaign-people-annotator-add"),
    path(
        "c/<slug:slug>/people/annotators/<int:user_id>/remove/",
        annotator_remove,
        name="campaign-people-annotator-remove",
    ),
    path("c/<slug:slug>/people/pools/", pool_attach, name="campaign-people-pool-attach"),
    path(
        "c/<slug:slug>/people/pools/<int:pool_id>/detach/",
        pool_detach,
        name="campaign-people-pool-detach",
    ),
    path("c/<slug:slug>/people/roles/", role_add, name="campaign-people-role-add"),
    path("c/<slug:slug>/people/roles/<int:user_id>/", role_change, name="campaign-people-role-change"),
    path(
        "c/<slug:slug>/people/roles/<int:user_id>/remove/",
        role_remove,
        name="campaign-people-role-remove",
    ),
    path("c/<slug:slug>/people/invitations/", invitation_create_view, name="campaign-people-invite"),
    path(
        "c/<slug:slug>/people/invitations/<int:invitation_id>/revoke/",
        invitation_revoke_view,
        name="campaign-people-invite-revoke",
    ),
]
