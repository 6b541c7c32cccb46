"""Annotators' flags on items: who may flag what, repeats, the admins' page (filters, resolve, downloads,
sanitized comments, CSRF) and the API (list, resolve, an annotator's add)."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from annotate.models import AnnotatorPool, Assignment, CampaignMember, ItemFlag
from annotate.models.tokens import api_token_create
from annotate.services.quality.flags import FLAG_COLUMNS, flag_add, flag_resolve, flags_list
from tests.factories import CampaignFactory, ItemFactory, UserFactory

pytestmark = pytest.mark.django_db


def lease(item, annotator) -> Assignment:
    return Assignment.objects.create(
        campaign=item.campaign, item=item, annotator=annotator, expires_at=datetime.now(UTC) + timedelta(hours=1)
    )


@pytest.fixture
def world(db):
    """A campaign whose pool is one group, two of its annotators with leases, an admin and a viewer."""
    campaign = CampaignFactory()
    pool = AnnotatorPool.objects.create(name="crowd")
    campaign.pools.add(pool)
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    pool.members.add(alice, bob)
    items = [ItemFactory(campaign=campaign, external_id=f"it{k}") for k in range(3)]
    for item in items:
        lease(item, alice)
    lease(items[0], bob)
    admin, viewer = UserFactory(username="the-admin"), UserFactory(username="the-viewer")
    CampaignMember.objects.create(campaign=campaign, user=admin, role="admin")
    CampaignMember.objects.create(campaign=campaign, user=viewer, role="viewer")
    return {"campaign": campaign, "items": items, "alice": alice, "bob": bob, "admin": admin, "viewer": viewer}


def browser(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user, name='tests').key}")
    return client


# --- the service ---------------------------------------------------------------------------------------


def test_a_repeat_is_the_same_flag_with_the_newer_comment_and_reopens_it(world):
    item, alice = world["items"][0], world["alice"]
    first = flag_add(item=item, annotator=alice, kind="broken_prompt", comment="  The prompt stops mid-sentence. ")
    assert first.comment == "The prompt stops mid-sentence." and first.campaign == world["campaign"]
    assert flag_add(item=item, annotator=alice, kind="broken_prompt").pk == first.pk  # a double click
    assert ItemFlag.objects.get(pk=first.pk).comment == "The prompt stops mid-sentence."  # no comment: kept
    flag_resolve(flag=first, by=world["admin"], resolution="Re-imported the item.")
    again = flag_add(item=item, annotator=alice, kind="broken_prompt", comment="Still cut off after the fix.")
    assert again.pk == first.pk and again.comment == "Still cut off after the fix."
    assert again.resolved_at is None and again.resolved_by is None and again.resolution == ""
    # Another kind on the same item is another flag.
    assert flag_add(item=item, annotator=alice, kind="needs_expert").pk != first.pk
    assert ItemFlag.objects.filter(item=item, annotator=alice).count() == 2


def test_only_an_annotator_given_the_item_may_flag_it_and_kinds_are_checked(world):
    items, bob = world["items"], world["bob"]
    with pytest.raises(ValueError, match="flag kind must be one of broken_prompt, both_bad, needs_expert, comment"):
        flag_add(item=items[0], annotator=bob, kind="spam")
    with pytest.raises(ValueError, match="item 'it1' was never given to bob"):
        flag_add(item=items[1], annotator=bob, kind="both_bad")
    stranger = UserFactory(username="stranger")
    lease(items[1], stranger)  # a lease from before they left the pool does not make them an annotator
    with pytest.raises(ValueError, match=f"stranger does not annotate campaign '{world['campaign'].slug}'"):
        flag_add(item=items[1], annotator=stranger, kind="both_bad")
    with pytest.raises(ValueError, match="at most 2000 characters"):
        flag_add(item=items[0], annotator=bob, kind="comment", comment="x" * 2001)
    assert not ItemFlag.objects.exists()


def test_the_list_filters_by_kind_and_state_and_resolve_keeps_the_first_time(world):
    items, alice, bob = world["items"], world["alice"], world["bob"]
    broken = flag_add(item=items[0], annotator=alice, kind="broken_prompt")
    flag_add(item=items[0], annotator=bob, kind="both_bad")
    flag_add(item=items[1], annotator=alice, kind="both_bad")
    resolved = flag_resolve(flag=broken, by=world["admin"], resolution="done")
    when = resolved.resolved_at
    assert flag_resolve(flag=broken, by=world["admin"], resolution="done, and told them").resolved_at == when
    campaign = world["campaign"]
    assert flags_list(campaign=campaign).count() == 3
    assert flags_list(campaign=campaign, kind="both_bad").count() == 2
    assert list(flags_list(campaign=campaign, resolved=True)) == [broken]
    assert flags_list(campaign=campaign, kind="broken_prompt", resolved=False).count() == 0
    with pytest.raises(ValueError, match="flag kind must be one of"):
        flags_list(campaign=campaign, kind="nope")
    with pytest.raises(ValueError, match="at most 500 characters"):
        flag_resolve(flag=broken, by=world["admin"], resolution="y" * 501)


@pytest.mark.django_db(transaction=True)
def test_two_clicks_at_once_make_one_flag(world):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL")
    item, alice = world["items"][0], world["alice"]
    start, found, errors = threading.Barrier(8), [], []

    def click():
        try:
            start.wait()
            found.append(flag_add(item=item, annotator=alice, kind="both_bad", comment="both wrong").pk)
        except Exception as exc:  # noqa: BLE001 — reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=click) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(found)) == 1 and ItemFlag.objects.count() == 1


# --- the page ------------------------------------------------------------------------------------------


def test_admins_see_filter_and_resolve_flags_on_the_page(world):
    items, alice = world["items"], world["alice"]
    flag_add(item=items[0], annotator=alice, kind="both_bad", comment="**Both** wrong <script>alert(1)</script>")
    flag_add(item=items[1], annotator=alice, kind="needs_expert", comment="Medical question.")
    admin = browser(world["admin"])
    url = reverse("campaign-flags", args=[world["campaign"].slug])
    page = admin.get(url).content.decode()
    assert "<strong>Both</strong> wrong" in page and "<script>alert(1)</script>" not in page  # sanitized Markdown
    assert "alice" in page and "Medical question." in page and 'id="flag-counts"' in page
    assert reverse("campaign-routing-item", args=[world["campaign"].slug, items[0].pk]) in page  # the item's link
    # The filter form's htmx request gets the list alone.
    fragment = admin.get(url, {"kind": "needs_expert", "state": "open"}, HTTP_HX_REQUEST="true").content.decode()
    assert '<div id="flags">' in fragment
    assert "Medical question." in fragment and "Both" not in fragment and "<html" not in fragment
    bad = admin.get(url, {"kind": "spam"})
    assert bad.status_code == 400 and "flag kind must be one of" in bad.content.decode()
    # Resolving answers the row again (htmx), with the note; the open filter no longer lists it.
    flag = ItemFlag.objects.get(kind="needs_expert")
    resolve = reverse("campaign-flags-resolve", args=[world["campaign"].slug, flag.pk])
    row = admin.post(resolve, {"resolution": "Asked a doctor."}, HTTP_HX_REQUEST="true").content.decode()
    assert row.lstrip().startswith('<tr id="flag-') and "Asked a doctor." in row and "resolved" in row
    assert "Medical question." not in admin.get(url, {"state": "open"}).content.decode()
    assert "Asked a doctor." in admin.get(url, {"state": "resolved"}).content.decode()
    # Viewers read, and are not offered the resolve form (nor may they post it).
    viewer = browser(world["viewer"])
    seen = viewer.get(url).content.decode()
    assert "Medical question." not in seen and "only the campaign's owners and admins resolve them" in seen
    assert "Both" in seen and "/resolve/" not in seen
    assert viewer.post(resolve, {"resolution": "no"}).status_code == 403
    # Annotators never see the page.
    assert browser(alice).get(url).status_code == 403


def test_the_resolve_form_needs_its_csrf_token(world):
    flag = flag_add(item=world["items"][0], annotator=world["alice"], kind="comment", comment="typo in A")
    client = browser(world["admin"], enforce_csrf_checks=True)
    resolve = reverse("campaign-flags-resolve", args=[world["campaign"].slug, flag.pk])
    assert client.post(resolve, {"resolution": "ok"}).status_code == 403
    page = client.get(reverse("campaign-flags", args=[world["campaign"].slug])).content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    answer = client.post(resolve, {"resolution": "ok", "csrfmiddlewaretoken": token})
    assert answer.status_code == 302 and ItemFlag.objects.get(pk=flag.pk).resolution == "ok"


def test_downloads_hold_every_filtered_flag_with_usernames(world):
    items, alice, bob = world["items"], world["alice"], world["bob"]
    flag_add(item=items[0], annotator=alice, kind="both_bad", comment='Both, "really", bad\nsecond line')
    flag_add(item=items[0], annotator=bob, kind="broken_prompt")
    resolved = flag_add(item=items[2], annotator=alice, kind="both_bad")
    flag_resolve(flag=resolved, by=world["admin"], resolution="fine")
    admin = browser(world["admin"])
    slug = world["campaign"].slug
    answer = admin.get(reverse("campaign-flags-download", args=[slug, "csv"]), {"kind": "both_bad", "state": "all"})
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
    assert f'filename="{slug}-flags-' in answer["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(answer.streaming_content).decode())))
    assert tuple(rows[0]) == FLAG_COLUMNS and len(rows) == 2
    by_item = {row["external_id"]: row for row in rows}
    assert by_item["it0"]["comment"] == 'Both, "really", bad\nsecond line' and by_item["it0"]["annotator"] == "alice"
    assert by_item["it0"]["resolved"] == "false" and by_item["it0"]["resolved_at"] == ""
    assert by_item["it2"]["resolved"] == "true" and by_item["it2"]["resolved_by"] == "the-admin"
    answer = admin.get(reverse("campaign-flags-download", args=[slug, "jsonl"]), {"state": "open"})
    lines = [json.loads(line) for line in b"".join(answer.streaming_content).decode().splitlines()]
    assert sorted(row["annotator"] for row in lines) == ["alice", "bob"] and all(not row["resolved"] for row in lines)
    assert admin.get(reverse("campaign-flags-download", args=[slug, "xlsx"])).status_code == 400
    assert admin.get(reverse("campaign-flags-download", args=[slug, "csv"]), {"state": "later"}).status_code == 400
    assert browser(alice).get(reverse("campaign-flags-download", args=[slug, "csv"])).status_code == 403


# --- the API -------------------------------------------------------------------------------------------


def test_the_api_lists_filters_and_resolves(world):
    items, alice = world["items"], world["alice"]
    flag_add(item=items[0], annotator=alice, kind="both_bad", comment="both")
    flag = flag_add(item=items[1], annotator=alice, kind="needs_expert")
    client = api(world["admin"])
    base = f"/api/campaigns/{world['campaign'].slug}/flags/"
    listed = client.get(base).json()
    assert listed["count"] == 2 and {row["kind"] for row in listed["results"]} == {"both_bad", "needs_expert"}
    assert listed["results"][0]["annotator"] == "alice" and set(listed["results"][0]) == set(FLAG_COLUMNS)
    assert client.get(base, {"kind": "needs_expert"}).json()["count"] == 1
    bad = client.get(base, {"state": "soon"})
    assert bad.status_code == 400 and "state must be one of open, resolved, all" in bad.json()["filter"][0]
    answer = client.post(f"{base}{flag.pk}/resolve/", {"resolution": "Sent to an expert."}, format="json")
    assert answer.status_code == 200 and answer.json()["resolved"] and answer.json()["resolved_by"] == "the-admin"
    assert client.get(base, {"state": "open"}).json()["count"] == 1
    assert api(world["viewer"]).post(f"{base}{flag.pk}/resolve/", {}, format="json").status_code == 403
    assert api(alice).get(base).status_code == 403


def test_an_annotator_flags_by_assignment_through_the_api(world):
    items, alice, bob = world["items"], world["alice"], world["bob"]
    client = api(bob)
    mine = Assignment.objects.get(item=items[0], annotator=bob)
    url = f"/api/assignments/{mine.pk}/flag/"
    answer = client.post(url, {"kind": "both_bad", "comment": "neither helps"}, format="json")
    assert answer.status_code == 201
    body = answer.json()
    assert body["kind"] == "both_bad" and body["comment"] == "neither helps" and "annotator" not in body
    again = client.post(url, {"kind": "both_bad"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == body["id"] and again.json()["comment"] == "neither helps"
    theirs = Assignment.objects.get(item=items[1], annotator=alice)
    refused = client.post(f"/api/assignments/{theirs.pk}/flag/", {"kind": "both_bad"}, format="json")
    assert refused.status_code == 404 and refused.json()["code"] == "not_found"
    unknown = client.post(url, {"kind": "spam"}, format="json")
    assert unknown.status_code == 400 and "kind" in unknown.json()
    empty = client.post(url, {"kind": "comment", "comment": " "}, format="json")
    assert empty.status_code == 400 and "a comment flag needs its comment" in empty.json()["detail"]
    # Someone else's lease is no lease of theirs.
    assert api(UserFactory()).post(url, {"kind": "both_bad"}, format="json").status_code == 404
    assert ItemFlag.objects.count() == 1
