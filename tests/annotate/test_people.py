"""People: accounts, pools, a campaign's annotators and roles, invitation links — services, pages and API."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from annotate.models import AnnotatorPool, Assignment, CampaignMember, Invitation
from annotate.models.tokens import api_token_create
from annotate.selectors import campaigns_for_annotator, in_campaign_pool
from annotate.services.assignments import next_assignment_for
from annotate.services.imports import items_import
from annotate.services.people import (
    InvitationUnusable,
    PeopleError,
    account_active_set,
    account_create,
    campaign_annotator_add,
    campaign_annotator_remove,
    campaign_member_remove,
    campaign_member_set,
    campaign_pool_attach,
    campaign_pool_detach,
    invitation_accept,
    invitation_create,
    invitation_revoke,
    invitation_signup,
    invitation_state,
    pool_create,
    pool_delete,
    pool_member_add,
    pool_member_remove,
    pool_update,
)
from tests.conftest import jsonl, pair
from tests.factories import CampaignFactory, UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()
PASSWORD = "a-Long-enough-passphrase-42"
WEEK = timedelta(days=7)


def campaign_with_items(n=4, **kw):
    campaign = CampaignFactory(overlap=1, **kw)
    items_import(campaign=campaign, stream=jsonl(*[pair(i) for i in range(n)]), filename="items.jsonl")
    return campaign


def owned(**kw):
    campaign = CampaignFactory(**kw)
    owner = UserFactory(is_staff=True)
    CampaignMember.objects.create(campaign=campaign, user=owner, role="owner")
    return campaign, owner


def live_leases(user, campaign=None) -> int:
    rows = Assignment.objects.filter(annotator=user, state=Assignment.State.LEASED)
    return rows.filter(campaign=campaign).count() if campaign else rows.count()


def api_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user, name='tests').key}")
    return client


# --- services ----------------------------------------------------------------------------------


def test_account_create_checks_the_username_and_django_password_validators():
    UserFactory(username="Alice")
    with pytest.raises(PeopleError, match="taken") as exc:
        account_create(username="alice", password=PASSWORD)
    assert exc.value.field == "username"
    with pytest.raises(PeopleError) as exc:
        account_create(username="bob", password="123")
    assert exc.value.field == "password" and "too short" in str(exc.value)
    with pytest.raises(PeopleError) as exc:
        account_create(username="no spaces allowed", password=PASSWORD)
    assert exc.value.field == "username"
    assert not User.objects.filter(username__in=["bob", "no spaces allowed"]).exists()
    linked = account_create(username="carol", password=None)
    assert linked.is_active and not linked.has_usable_password()
    made = account_create(username="dave", password=PASSWORD)
    assert made.check_password(PASSWORD)


def test_deactivating_ends_every_live_lease_and_reactivating_restores_the_account():
    staff = UserFactory(is_staff=True)
    worker = UserFactory()
    first, second = campaign_with_items(), campaign_with_items()
    next_assignment_for(annotator=worker, campaign=first)
    next_assignment_for(annotator=worker, campaign=second)
    assert live_leases(worker) == 2
    assert account_active_set(user=worker, active=False, by=staff) == 2
    worker.refresh_from_db()
    assert not worker.is_active and live_leases(worker) == 0
    # The slots went back: the items can be leased by someone else straight away.
    assert first.items.filter(assigned_count=0).count() == 4
    assert account_active_set(user=worker, active=True, by=staff) == 0
    worker.refresh_from_db()
    assert worker.is_active
    with pytest.raises(PeopleError, match="your own"):
        account_active_set(user=staff, active=False, by=staff)


def test_removing_an_annotator_ends_their_leases_in_that_campaign_only():
    worker, other = UserFactory(), UserFactory()
    here, elsewhere = campaign_with_items(), campaign_with_items()
    campaign_annotator_add(campaign=here, user=worker)
    next_assignment_for(annotator=worker, campaign=here)
    next_assignment_for(annotator=worker, campaign=elsewhere)
    assert campaign_annotator_remove(campaign=here, user=worker) == 1
    assert live_leases(worker, here) == 0 and live_leases(worker, elsewhere) == 1
    with pytest.raises(PeopleError, match="not one of") as exc:
        campaign_annotator_remove(campaign=here, user=other)
    assert exc.value.field == "username"


def test_a_first_annotator_closes_an_open_campaign_and_ends_outsiders_leases():
    insider, outsider = UserFactory(), UserFactory()
    campaign = campaign_with_items()
    next_assignment_for(annotator=outsider, campaign=campaign)
    assert campaign_annotator_add(campaign=campaign, user=insider) is True
    assert campaign_annotator_add(campaign=campaign, user=insider) is False
    assert live_leases(outsider, campaign) == 0
    assert not in_campaign_pool(user=outsider, campaign=campaign)


def test_pools_give_campaigns_and_leaving_one_ends_the_leases_it_gave():
    member = UserFactory()
    pool = pool_create(name="  experts ", created_by=None)
    assert pool.name == "experts"
    with pytest.raises(PeopleError, match="already a pool") as exc:
        pool_create(name="Experts", created_by=None)
    assert exc.value.field == "name"
    campaign = campaign_with_items()
    campaign_pool_attach(campaign=campaign, pool=pool)
    assert list(campaigns_for_annotator(user=member)) == []
    assert pool_member_add(pool=pool, user=member) is True
    assert list(campaigns_for_annotator(user=member)) == [campaign]
    next_assignment_for(annotator=member, campaign=campaign)
    assert pool_member_remove(pool=pool, user=member) == 1
    assert live_leases(member) == 0
    pool_update(pool=pool, name="senior experts", description="PhDs")
    pool.refresh_from_db()
    assert (pool.name, pool.description) == ("senior experts", "PhDs")
    pool_member_add(pool=pool, user=member)
    next_assignment_for(annotator=member, campaign=campaign)
    campaign_annotator_add(campaign=campaign, user=UserFactory())  # so that detaching does not open it to all
    assert campaign_pool_detach(campaign=campaign, pool=pool) == 1
    campaign.annotators.clear()
    campaign_pool_attach(campaign=campaign, pool=pool)
    next_assignment_for(annotator=member, campaign=campaign)
    assert pool_delete(pool=pool) == 0  # with no pool left the campaign is open to all: nobody is out
    assert not AnnotatorPool.objects.exists()


def test_the_last_owner_cannot_be_demoted_or_removed():
    campaign, owner = owned()
    with pytest.raises(PeopleError, match="last owner") as exc:
        campaign_member_set(campaign=campaign, user=owner, role="viewer")
    assert exc.value.field == "role"
    with pytest.raises(PeopleError, match="last owner"):
        campaign_member_remove(campaign=campaign, user=owner)
    second = UserFactory()
    campaign_member_set(campaign=campaign, user=second, role="owner")
    campaign_member_set(campaign=campaign, user=owner, role="viewer")
    assert CampaignMember.objects.get(campaign=campaign, user=owner).role == "viewer"
    campaign_member_remove(campaign=campaign, user=owner)
    assert list(CampaignMember.objects.filter(campaign=campaign).values_list("user", "role")) == [(second.pk, "owner")]
    with pytest.raises(PeopleError, match="Choose a role") as exc:
        campaign_member_set(campaign=campaign, user=owner, role="boss")
    assert exc.value.field == "role"


def test_an_annotator_invitation_is_spent_once_and_stores_only_a_hash():
    campaign, owner = owned()
    new = invitation_create(campaign=campaign, expires_in=WEEK, note="for Ann", created_by=owner)
    stored = Invitation.objects.get()
    assert stored.token_hash == Invitation.hash_token(new.token) and new.token not in stored.token_hash
    ann = UserFactory()
    invitation_accept(token=new.token, user=ann)
    stored.refresh_from_db()
    assert stored.used_by == ann and stored.used_at and invitation_state(stored) == "used"
    assert list(campaign.annotators.all()) == [ann]
    with pytest.raises(InvitationUnusable) as exc:
        invitation_accept(token=new.token, user=UserFactory())
    assert exc.value.state == "used"
    assert campaign.annotators.count() == 1
    with pytest.raises(InvitationUnusable) as exc:
        invitation_accept(token="not-a-token", user=ann)
    assert exc.value.state == "unknown"


def test_expired_and_revoked_links_do_nothing():
    campaign, owner = owned()
    expired = invitation_create(campaign=campaign, expires_in=timedelta(hours=1), created_by=owner)
    Invitation.objects.filter(pk=expired.invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    revoked = invitation_create(campaign=campaign, expires_in=WEEK, created_by=owner)
    invitation_revoke(invitation=revoked.invitation)
    for new, state in ((expired, "expired"), (revoked, "revoked")):
        with pytest.raises(InvitationUnusable) as exc:
            invitation_accept(token=new.token, user=UserFactory())
        assert exc.value.state == state
    assert not campaign.annotators.exists()
    with pytest.raises(PeopleError, match="90 days") as exc:
        invitation_create(campaign=campaign, expires_in=timedelta(days=91), created_by=owner)
    assert exc.value.field == "expires"
    with pytest.raises(PeopleError, match="pool invitation") as exc:
        invitation_create(pool=pool_create(name="p", created_by=None), role="admin", expires_in=WEEK, created_by=owner)
    assert exc.value.field == "role"


def test_a_used_link_cannot_be_revoked():
    campaign, owner = owned()
    new = invitation_create(campaign=campaign, expires_in=WEEK, created_by=owner)
    invitation_accept(token=new.token, user=UserFactory())
    with pytest.raises(PeopleError, match="used already"):
        invitation_revoke(invitation=new.invitation)


def test_role_links_make_members_and_never_demote():
    campaign, owner = owned()
    viewer_link = invitation_create(campaign=campaign, role="viewer", expires_in=WEEK, created_by=owner)
    invitation_accept(token=viewer_link.token, user=owner)
    assert CampaignMember.objects.get(campaign=campaign, user=owner).role == "owner"
    admin_link = invitation_create(campaign=campaign, role="admin", expires_in=WEEK, created_by=owner)
    newcomer = UserFactory()
    invitation_accept(token=admin_link.token, user=newcomer)
    assert CampaignMember.objects.get(campaign=campaign, user=newcomer).role == "admin"
    assert not campaign.annotators.exists()


def test_signup_makes_the_account_and_spends_the_link_or_does_neither():
    campaign, owner = owned()
    new = invitation_create(campaign=campaign, expires_in=WEEK, created_by=owner)
    with pytest.raises(PeopleError) as exc:
        invitation_signup(token=new.token, username="newbie", password="newbie", password_again="newbie")
    assert exc.value.field == "password"
    with pytest.raises(PeopleError) as exc:
        invitation_signup(token=new.token, username="newbie", password=PASSWORD, password_again=PASSWORD + "x")
    assert exc.value.field == "password_again"
    assert not User.objects.filter(username="newbie").exists()
    assert invitation_state(Invitation.objects.get()) == "pending"
    user, invitation = invitation_signup(token=new.token, username="newbie", password=PASSWORD, password_again=PASSWORD)
    assert user.check_password(PASSWORD) and invitation.used_by == user
    assert list(campaign.annotators.all()) == [user]


def test_a_pool_link_adds_to_the_pool():
    pool = pool_create(name="general", created_by=None)
    new = invitation_create(pool=pool, expires_in=WEEK, created_by=None)
    user = UserFactory()
    invitation_accept(token=new.token, user=user)
    assert list(pool.members.all()) == [user]


# --- pages -------------------------------------------------------------------------------------


def test_the_people_page_is_for_staff_and_lists_accounts(client):
    worker = UserFactory(username="worker")
    campaign = CampaignFactory(name="Helpfulness")
    campaign.annotators.add(worker)
    pool = pool_create(name="experts", created_by=None)
    pool.members.add(worker)
    client.force_login(worker)
    assert client.get(reverse("people")).status_code == 403
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    row = re.search(r'<tr data-user="worker">.*?</tr>', client.get(reverse("people")).content.decode(), re.S).group(0)
    # Staff see the campaigns they hold a role on, not every campaign's name.
    assert "experts" in row and "Helpfulness" not in row
    CampaignMember.objects.create(campaign=campaign, user=staff, role="viewer")
    page = client.get(reverse("people")).content.decode()
    row = re.search(r'<tr data-user="worker">.*?</tr>', page, re.S).group(0)
    assert "experts" in row and "Helpfulness" in row and timezone.localtime().strftime("%Y-%m-%d") in row
    newcomer = UserFactory().username
    page = client.get(reverse("people")).content.decode()
    assert "never" in re.search(rf'<tr data-user="{newcomer}">.*?</tr>', page, re.S).group(0)
    assert "worker" in client.get(reverse("people"), {"q": "work"}).content.decode()
    assert 'data-user="worker"' not in client.get(reverse("people"), {"q": "zzz"}).content.decode()


def test_an_account_made_without_a_password_sets_one_through_its_one_time_link(client):
    client.force_login(UserFactory(is_staff=True))
    bad = client.post(reverse("people-account-create"), {"username": "", "mode": "link"})
    assert bad.status_code == 400 and "Enter a username" in bad.content.decode()
    response = client.post(reverse("people-account-create"), {"username": "zoe", "mode": "link"})
    assert response.status_code == 201
    link = re.search(r'id="new-link-url" value="([^"]+)"', response.content.decode()).group(1)
    assert "/accounts/set-password/" in link
    client.logout()
    form = client.get(link, follow=True)
    assert "Choose your password" in form.content.decode()
    done = client.post(form.redirect_chain[-1][0], {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert done.status_code == 302
    assert User.objects.get(username="zoe").check_password(PASSWORD)
    again = client.get(link, follow=True)
    assert "no longer works" in again.content.decode()


def test_deactivating_from_the_people_page(client):
    staff, worker = UserFactory(is_staff=True), UserFactory()
    next_assignment_for(annotator=worker, campaign=campaign_with_items())
    client.force_login(staff)
    response = client.post(reverse("people-account-active", args=[worker.pk]), {"active": "0"}, follow=True)
    assert "1 live lease(s) ended" in response.content.decode()
    worker.refresh_from_db()
    assert not worker.is_active


def test_pool_pages_create_rename_add_members_and_refuse_bad_input(client):
    client.force_login(UserFactory(is_staff=True))
    UserFactory(username="ann")
    response = client.post(reverse("people-pool-create"), {"name": "experts"})
    pool = AnnotatorPool.objects.get(name="experts")
    assert response.url == reverse("people-pool", args=[pool.pk])
    dup = client.post(reverse("people-pool-create"), {"name": "EXPERTS"})
    assert dup.status_code == 400 and 'id="error-pool_name"' in dup.content.decode()
    assert "already a pool" in dup.content.decode()
    missing = client.post(reverse("people-pool-member-add", args=[pool.pk]), {"username": "nobody"})
    assert missing.status_code == 400 and "no account named" in missing.content.decode()
    client.post(reverse("people-pool-member-add", args=[pool.pk]), {"username": "ann"})
    assert list(pool.members.values_list("username", flat=True)) == ["ann"]
    client.post(reverse("people-pool-update", args=[pool.pk]), {"name": "senior", "description": ""})
    pool.refresh_from_db()
    assert pool.name == "senior"
    invite = client.post(reverse("people-pool-invite", args=[pool.pk]), {"expires": "2", "expires_unit": "days"})
    assert invite.status_code == 201 and "/invite/" in invite.content.decode()
    client.post(reverse("people-pool-delete", args=[pool.pk]))
    assert not AnnotatorPool.objects.exists()


def test_the_campaign_people_tab_for_a_viewer_is_read_only(client):
    campaign, owner = owned()
    viewer = UserFactory()
    CampaignMember.objects.create(campaign=campaign, user=viewer, role="viewer")
    client.force_login(viewer)
    page = client.get(reverse("campaign-people", args=[campaign.slug])).content.decode()
    assert 'id="open-to-all"' in page and 'id="read-only"' in page
    assert '<form method="post"' not in page.split("<main>")[1]
    assert (
        client.post(reverse("campaign-people-annotator-add", args=[campaign.slug]), {"username": "x"}).status_code
        == 403
    )


def test_the_campaign_people_tab_adds_annotators_and_pools_and_names_bad_fields(client):
    campaign, owner = owned()
    ann = UserFactory(username="ann")
    pool = pool_create(name="experts", created_by=None)
    client.force_login(owner)
    url = reverse("campaign-people", args=[campaign.slug])
    bad = client.post(reverse("campaign-people-annotator-add", args=[campaign.slug]), {"username": "ghost"})
    assert bad.status_code == 400
    assert re.search(r'id="error-username"[^>]*>There is no account named &#x27;ghost&#x27;', bad.content.decode())
    assert client.post(reverse("campaign-people-annotator-add", args=[campaign.slug]), {"username": "ann"}).url == url
    client.post(reverse("campaign-people-pool-attach", args=[campaign.slug]), {"pool": pool.pk})
    page = client.get(url).content.decode()
    assert 'data-user="ann"' in page and 'data-pool="experts"' in page and 'id="open-to-all"' not in page
    client.post(reverse("campaign-people-annotator-remove", args=[campaign.slug, ann.pk]))
    client.post(reverse("campaign-people-pool-detach", args=[campaign.slug, pool.pk]))
    assert 'id="open-to-all"' in client.get(url).content.decode()


def test_roles_on_the_tab_only_owners_change_them(client):
    campaign, owner = owned()
    admin = UserFactory(username="adm")
    CampaignMember.objects.create(campaign=campaign, user=admin, role="admin")
    client.force_login(admin)
    assert (
        client.post(
            reverse("campaign-people-role-add", args=[campaign.slug]), {"username": "adm", "role": "owner"}
        ).status_code
        == 403
    )
    client.force_login(owner)
    last = client.post(reverse("campaign-people-role-change", args=[campaign.slug, owner.pk]), {"role": "viewer"})
    assert last.status_code == 400 and "last owner" in last.content.decode()
    assert 'id="error-row_role"' in last.content.decode()
    client.post(reverse("campaign-people-role-change", args=[campaign.slug, admin.pk]), {"role": "viewer"})
    assert CampaignMember.objects.get(user=admin).role == "viewer"
    bad = client.post(reverse("campaign-people-role-add", args=[campaign.slug]), {"username": "", "role": "viewer"})
    assert (
        bad.status_code == 400 and 'id="error-member_username" role="alert" >Enter a username.' in bad.content.decode()
    )
    client.post(reverse("campaign-people-role-remove", args=[campaign.slug, admin.pk]))
    assert not CampaignMember.objects.filter(user=admin).exists()


def test_an_invitation_link_is_shown_once_and_admins_make_only_annotator_links(client):
    campaign, owner = owned()
    admin = UserFactory()
    CampaignMember.objects.create(campaign=campaign, user=admin, role="admin")
    client.force_login(admin)
    create = reverse("campaign-people-invite", args=[campaign.slug])
    assert client.post(create, {"role": "admin", "expires": "1", "expires_unit": "days"}).status_code == 403
    bad = client.post(create, {"role": "annotator", "expires": "0", "expires_unit": "days", "note": "x"})
    assert bad.status_code == 400 and 'id="error-expires"' in bad.content.decode() and not Invitation.objects.exists()
    made = client.post(create, {"role": "annotator", "expires": "12", "expires_unit": "hours", "note": "for Ann"})
    assert made.status_code == 201
    link = re.search(r'id="new-link-url" value="([^"]+)"', made.content.decode()).group(1)
    token = link.rstrip("/").rsplit("/", 1)[1]
    invitation = Invitation.objects.get()
    assert invitation.token_hash == Invitation.hash_token(token)
    assert timedelta(hours=11) < invitation.expires_at - timezone.now() <= timedelta(hours=12)
    later = client.get(reverse("campaign-people", args=[campaign.slug])).content.decode()
    assert token not in later and "for Ann" in later and "pending" in later
    client.post(reverse("campaign-people-invite-revoke", args=[campaign.slug, invitation.pk]))
    assert invitation_state(Invitation.objects.get()) == "revoked"


def test_accepting_a_link_logged_out_signs_up_and_lands_on_the_campaign(client):
    campaign, owner = owned()
    new = invitation_create(campaign=campaign, expires_in=WEEK, created_by=owner)
    url = reverse("invitation-accept", args=[new.token])
    form = client.get(url).content.decode()
    assert f"Join {campaign.name}" in form and 'name="password_again"' in form
    short = client.post(url, {"username": "newbie", "password": "short", "password_again": "short"})
    assert short.status_code == 400 and 'id="error-password"' in short.content.decode()
    assert not User.objects.filter(username="newbie").exists()
    done = client.post(url, {"username": "newbie", "password": PASSWORD, "password_again": PASSWORD})
    assert done.url == reverse("annotate", args=[campaign.slug])
    assert client.get(reverse("home")).context["user"].username == "newbie"
    used = client.get(url)
    assert used.status_code == 410 and "already used" in used.content.decode()


def test_accepting_a_link_logged_in_is_one_button(client):
    campaign, owner = owned()
    new = invitation_create(campaign=campaign, role="viewer", expires_in=WEEK, created_by=owner)
    me = UserFactory(username="me")
    client.force_login(me)
    url = reverse("invitation-accept", args=[new.token])
    assert f"Join {campaign.name} as me" in client.get(url).content.decode()
    assert client.post(url).status_code == 302
    assert CampaignMember.objects.get(campaign=campaign, user=me).role == "viewer"


@pytest.mark.parametrize("state", ["unknown", "expired", "revoked"])
def test_unusable_links_get_a_clear_page(client, state):
    campaign, owner = owned()
    new = invitation_create(campaign=campaign, expires_in=WEEK, created_by=owner)
    token = new.token
    if state == "unknown":
        token = "x" + token[1:]
    elif state == "expired":
        Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    else:
        invitation_revoke(invitation=new.invitation)
    response = client.get(reverse("invitation-accept", args=[token]))
    assert response.status_code == (404 if state == "unknown" else 410)
    assert f'data-state="{state}"' in response.content.decode()
    posted = client.post(reverse("invitation-accept", args=[token]), {"username": "a", "password": PASSWORD})
    assert posted.status_code == response.status_code and not User.objects.filter(username="a").exists()


# --- API ---------------------------------------------------------------------------------------


def test_api_members_follow_the_same_rules():
    campaign, owner = owned()
    api = api_for(owner)
    base = f"/api/campaigns/{campaign.slug}/members/"
    assert [m["role"] for m in api.get(base).json()] == ["owner"]
    bad = api.post(base, {"username": "ghost", "role": "viewer"}, format="json")
    assert bad.status_code == 400 and "username" in bad.json()
    assert api.post(
        base, {"username": UserFactory(username="v").username, "role": "chief"}, format="json"
    ).json().keys() == {"role"}
    made = api.post(base, {"username": "v", "role": "viewer"}, format="json")
    assert made.status_code == 201 and made.json()["user"]["username"] == "v"
    viewer = User.objects.get(username="v")
    assert api_for(viewer).post(base, {"username": "v", "role": "owner"}, format="json").status_code == 403
    last = api.patch(f"{base}{owner.pk}/", {"role": "admin"}, format="json")
    assert last.status_code == 400 and "last owner" in last.json()["role"][0]
    assert api.patch(f"{base}{viewer.pk}/", {"role": "admin"}, format="json").json()["role"] == "admin"
    assert api.delete(f"{base}{owner.pk}/").status_code == 400
    assert api.delete(f"{base}{viewer.pk}/").status_code == 204
    assert api.delete(f"{base}{viewer.pk}/").status_code == 404


def test_api_annotators_and_pools_of_a_campaign():
    campaign, owner = owned()
    api = api_for(owner)
    base = f"/api/campaigns/{campaign.pk}/annotators/"
    assert api.get(base).json() == {"open_to_all": True, "annotators": [], "pools": []}
    ann = UserFactory()
    assert api.post(base, {"user": ann.pk}, format="json").status_code == 201
    assert api.post(base, {"user": ann.pk}, format="json").status_code == 200
    assert api.post(base, {"user": 10**9}, format="json").json() == {"user": [f"There is no account with id {10**9}."]}
    body = api.get(base).json()
    assert body["open_to_all"] is False and [a["id"] for a in body["annotators"]] == [ann.pk]
    assert api.delete(base, {"user": ann.pk}, format="json").json()["open_to_all"] is True
    pool = pool_create(name="experts", created_by=None)
    pools = f"/api/campaigns/{campaign.pk}/pools/"
    assert api.post(pools, {"pool": pool.pk}, format="json").json()["pools"][0]["name"] == "experts"
    assert api.post(pools, {"pool": 999999}, format="json").json().keys() == {"pool"}
    assert api.delete(pools, {"pool": pool.pk}, format="json").json()["pools"] == []


def test_api_invitations_return_the_link_once():
    campaign, owner = owned()
    api = api_for(owner)
    base = f"/api/campaigns/{campaign.slug}/invitations/"
    bad = api.post(base, {"role": "annotator", "expires_hours": 0}, format="json")
    assert bad.status_code == 400 and bad.json().keys() == {"expires_hours"}
    made = api.post(base, {"role": "admin", "expires_hours": 48, "note": "for Bo"}, format="json")
    assert made.status_code == 201
    body = made.json()
    assert body["url"].endswith(f"/invite/{body['token']}/") and body["state"] == "pending"
    listed = api.get(base).json()
    assert len(listed) == 1 and "token" not in listed[0] and "url" not in listed[0]
    admin = UserFactory()
    CampaignMember.objects.create(campaign=campaign, user=admin, role="admin")
    assert api_for(admin).post(base, {"role": "admin"}, format="json").status_code == 403
    assert api_for(admin).post(base, {"role": "annotator"}, format="json").status_code == 201
    revoked = api.post(f"{base}{body['id']}/revoke/")
    assert revoked.json()["state"] == "revoked"
    assert api.post(f"{base}999999/revoke/").status_code == 404


def test_api_pools_are_for_staff():
    staff, plain = UserFactory(is_staff=True), UserFactory(username="pat")
    api = api_for(staff)
    assert api_for(plain).get("/api/pools/").status_code == 403
    made = api.post("/api/pools/", {"name": "general"}, format="json")
    assert made.status_code == 201
    pk = made.json()["id"]
    assert api.post("/api/pools/", {"name": "GENERAL"}, format="json").json().keys() == {"name"}
    assert (
        api.patch(f"/api/pools/{pk}/", {"description": "everyone"}, format="json").json()["description"] == "everyone"
    )
    assert api.post(f"/api/pools/{pk}/members/", {"username": "pat"}, format="json").status_code == 201
    assert [m["username"] for m in api.get(f"/api/pools/{pk}/members/").json()] == ["pat"]
    assert api.delete(f"/api/pools/{pk}/members/", {"username": "pat"}, format="json").json()["members"] == []
    link = api.post(f"/api/pools/{pk}/invitations/", {"expires_hours": 5}, format="json")
    assert link.status_code == 201 and "/invite/" in link.json()["url"]
    assert api.delete(f"/api/pools/{pk}/").status_code == 204
    assert not AnnotatorPool.objects.exists()


def _people_routes():
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns, prefix=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern) and (entry.name or "").startswith("people"):
                yield entry.name, prefix + str(entry.pattern)

    return sorted(walk(get_resolver().url_patterns))


@pytest.mark.parametrize(("name", "route"), _people_routes())
def test_every_accounts_and_pools_route_is_for_staff_only(client, name, route):
    """Every /people/ route (found in the resolver, so new ones are covered too) refuses non-staff."""
    url = "/" + re.sub(r"<int:\w+>", "1", route)
    method = client.get if name in ("people", "people-pool") else client.post
    anonymous = method(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))
    client.force_login(UserFactory())
    assert method(url).status_code == 403


def test_a_lost_password_link_can_be_made_again_but_never_for_an_account_with_a_password(client):
    client.force_login(UserFactory(is_staff=True))
    fresh = account_create(username="noa", password=None)
    again = client.post(reverse("people-account-link", args=[fresh.pk]))
    assert again.status_code == 200 and "/accounts/set-password/" in again.content.decode()
    set_up = UserFactory()
    refused = client.post(reverse("people-account-link", args=[set_up.pk]), follow=True)
    assert (
        "has a password already" in refused.content.decode()
        and "/accounts/set-password/" not in refused.content.decode()
    )
