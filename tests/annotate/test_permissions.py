"""Who may open what: every campaign admin page and API route, for each kind of caller.

Complete by construction: `test_every_campaign_route_is_in_the_table` walks Django's resolver and
fails on any route under `c/<slug>/` (except the annotator's own `annotate…` and `labels…` pages)
or under `api/` taking a campaign ref that has no row in TABLE below. A new page gets a row saying
which need it has (view / manage / own) and what an owner gets back; the same rules then run for
every caller:

- anonymous: pages redirect to the login page; the API answers 401 or 403;
- an admin of another campaign (no role here, not in this campaign's pool): 404;
- an annotator of this campaign (in its pool): 403;
- a viewer: the owner's answer on reads (need "view"), 403 on writes;
- an admin of this campaign: the owner's answer up to need "manage", 403 on "own";
- the owner: the row's `ok` statuses.
"""

from __future__ import annotations

import importlib
import io
import json
import pkgutil
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from annotate.models import AnnotatorPool, CampaignMember, DatasetExport, Item, StatsSnapshot
from annotate.models.tokens import api_token_create
from annotate.services.imports import items_import
from annotate.services.people import invitation_create
from tests.annotate import permission_rows
from tests.annotate.permission_rows import Row, World
from tests.conftest import jsonl, pair
from tests.factories import CampaignFactory, JobFactory, JudgeFactory, UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()

ROLES = ("anonymous", "outsider", "annotator", "viewer", "admin", "owner")
NEEDS = {"view": 1, "manage": 2, "own": 3}
ROLE_LEVEL = {"viewer": 1, "admin": 2, "owner": 3}

# Routes under c/<slug>/ that are the annotator's own, not admin pages (tests/annotate/test_api_annotating.py,
# tests/browser/test_annotate_page.py); and API routes with a campaign ref that annotators use.
EXEMPT_PREFIXES = ("c/<slug:slug>/annotate", "c/<slug:slug>/labels")
EXEMPT_API = {
    "api-next": "the annotator's next item (annotators only)",
    "api-my-labels": "the annotator's own labels (annotators only)",
}


def _file(name: str, *rows) -> dict:
    upload = io.BytesIO(jsonl(*rows).getvalue())
    upload.name = name
    return {"file": upload}


_PASTE = '{"id": "w1", "prompt": "Why?", "response_a": "A", "response_b": "B"}\n'


def _upload(w: World) -> str:
    """A pasted upload of the campaign's owner, for the wizard's review, run and discard pages."""
    from annotate.services.imports.uploads import upload_store

    owner = w.users["owner"]
    upload = upload_store(
        campaign=w.campaign, user=owner, filename="paste.jsonl", chunks=[_PASTE.encode()], max_bytes=10**6
    )
    return upload.token


def _import_job(w: World) -> int:
    return JobFactory(kind="import_items", campaign=w.campaign, created_by=w.users["owner"], params={}).pk


PAGE_ROWS: dict[str, list[Row]] = {
    # campaign lifecycle (annotate/views/campaigns.py)
    "campaign-settings": [
        Row("get", "view", (200,)),
        Row("post", "manage", (302,), data=lambda w: {"name": "Renamed campaign"}),
    ],
    "campaign-state": [
        Row("get", "view", (200,)),
        Row("post", "manage", (302,), data=lambda w: {"state": "paused"}),
    ],
    # Copies are new campaigns, which only staff accounts make: a non-staff admin is refused.
    "campaign-copy": [Row("post", "manage", (302,), data=lambda w: {"name": "A copy"}, overrides={"admin": 403})],
    # people (annotate/views/people.py)
    "campaign-people": [Row("get", "view", (200,))],
    "campaign-people-annotator-add": [Row("post", "manage", (302,), data=lambda w: {"username": w.spare.username})],
    "campaign-people-annotator-remove": [Row("post", "manage", (302,), args=lambda w: [w.listed.pk])],
    "campaign-people-pool-attach": [
        Row("post", "manage", (302,), data=lambda w: {"pool": AnnotatorPool.objects.create(name="extra").pk})
    ],
    "campaign-people-pool-detach": [Row("post", "manage", (302,), args=lambda w: [w.pool.pk])],
    "campaign-people-role-add": [
        Row("post", "own", (302,), data=lambda w: {"username": w.spare.username, "role": "viewer"})
    ],
    "campaign-people-role-change": [
        Row("post", "own", (302,), args=lambda w: [w.users["viewer"].pk], data=lambda w: {"role": "admin"})
    ],
    "campaign-people-role-remove": [Row("post", "own", (302,), args=lambda w: [w.users["viewer"].pk])],
    "campaign-people-invite": [
        Row("post", "manage", (201,), data=lambda w: {"role": "annotator", "expires": "3", "expires_unit": "days"})
    ],
    "campaign-people-invite-revoke": [Row("post", "manage", (302,), args=lambda w: [w.invitation.pk])],
    # judges (routing/views.py)
    "campaign-judges": [Row("get", "view", (200,))],
    "campaign-judges-runs": [Row("get", "view", (200,))],
    "campaign-judges-run": [Row("post", "manage", (302,), data=lambda w: {"judge": w.judge.pk, "scope": "all"})],
    "campaign-judges-cancel": [Row("post", "manage", (200,), args=lambda w: [w.job.pk])],
    # routing
    "campaign-routing": [Row("get", "view", (200,))],
    "campaign-routing-pass": [Row("get", "view", (200,))],
    "campaign-routing-route": [Row("post", "manage", (302,))],
    "campaign-routing-settings": [Row("post", "manage", (302,), data=lambda w: {"routing_policy": "all_human"})],
    "campaign-routing-item": [Row("get", "view", (200,), args=lambda w: [w.item.pk])],
    "campaign-routing-override": [
        Row("post", "manage", (302,), args=lambda w: [w.item.pk], data=lambda w: {"destination": "human"})
    ],
    # statistics
    "campaign-stats": [Row("get", "view", (200,))],
    "campaign-stats-recompute": [Row("post", "manage", (302,))],
    # exports
    "campaign-exports": [Row("get", "view", (200,))],
    "campaign-exports-list": [Row("get", "view", (200,))],
    "campaign-exports-create": [Row("post", "manage", (302,), data=lambda w: {"format": "trl", "file_type": "jsonl"})],
    "campaign-exports-delete": [Row("post", "manage", (200,), args=lambda w: [w.export.pk])],
    # campaign home (annotate/views/campaign_home.py)
    "campaign-home": [Row("get", "view", (200,))],
    "campaign-home-live": [Row("get", "view", (200,))],
    "campaign-home-quality": [Row("get", "view", (200,))],
    # import wizard (annotate/views/imports.py): uploads belong to the person who made them, so another
    # admin of the same campaign finds none (400: the page says the upload is gone)
    "campaign-import": [Row("get", "manage", (200,))],
    "campaign-import-upload": [Row("post", "manage", (302,), data=lambda w: {"paste": _PASTE})],
    "campaign-import-review": [Row("get", "manage", (200,), args=lambda w: [_upload(w)], overrides={"admin": 400})],
    "campaign-import-run": [Row("post", "manage", (200, 302), args=lambda w: [_upload(w)], overrides={"admin": 400})],
    "campaign-import-discard": [Row("post", "manage", (302,), args=lambda w: [_upload(w)])],
    "campaign-import-job": [Row("get", "manage", (200,), args=lambda w: [_import_job(w)])],
    # queue
    "campaign-queue": [Row("get", "view", (200,))],
    "campaign-stranded": [Row("get", "view", (200,))],
    "campaign-stranded-act": [Row("post", "manage", (302,), data=lambda w: {"action": "give_back", "scope": "all"})],
}

API_ROWS: dict[str, list[Row]] = {
    "api-campaign": [
        Row("get", "view", (200,), overrides={"annotator": 200}),  # annotators read the campaigns they label
        Row("patch", "manage", (200,), data=lambda w: {"guidelines": "Be careful."}),
    ],
    "api-items": [Row("get", "view", (200,))],
    "api-items-import": [
        Row("post", "manage", (201,), multipart=True, data=lambda w: _file("more.jsonl", pair(100), pair(101)))
    ],
    "api-annotations-import": [
        Row(
            "post",
            "manage",
            (201,),
            multipart=True,
            data=lambda w: _file("labels.jsonl", {"item": "p0", "annotator": "imported", "label": {"overall": 1}}),
        )
    ],
    "api-stats": [Row("get", "view", (200,)), Row("post", "manage", (202,))],
    "api-stats-history": [Row("get", "view", (200,))],
    "api-exports": [Row("get", "view", (200,)), Row("post", "manage", (202,), data=lambda w: {"format": "trl"})],
    "api-judge-runs": [Row("post", "manage", (202,), data=lambda w: {"judges": [w.judge.name], "scope": "all"})],
    "api-routing": [
        Row("get", "view", (200,)),
        Row("patch", "manage", (200,), data=lambda w: {"routing_policy": "all_human"}),
    ],
    "api-route": [Row("post", "manage", (202,))],
    "api-tags": [
        Row("get", "view", (200,)),
        Row("post", "manage", (202,), data=lambda w: {"judge": w.judge.name}),
    ],
    "api-members": [
        Row("get", "view", (200,)),
        Row("post", "own", (201,), data=lambda w: {"username": w.spare.username, "role": "viewer"}),
    ],
    "api-member": [
        Row("patch", "own", (200,), args=lambda w: [w.users["viewer"].pk], data=lambda w: {"role": "admin"}),
        Row("delete", "own", (204,), args=lambda w: [w.users["viewer"].pk]),
    ],
    "api-annotators": [
        Row("get", "view", (200,)),
        Row("post", "manage", (201,), data=lambda w: {"user": w.spare.pk}),
        Row("delete", "manage", (200,), data=lambda w: {"user": w.listed.pk}),
    ],
    "api-campaign-pools": [
        Row("get", "view", (200,)),
        Row("post", "manage", (201,), data=lambda w: {"pool": AnnotatorPool.objects.create(name="extra").pk}),
        Row("delete", "manage", (200,), data=lambda w: {"pool": w.pool.pk}),
    ],
    "api-invitations": [
        Row("get", "view", (200,)),
        Row("post", "manage", (201,), data=lambda w: {"role": "annotator", "expires_hours": 24}),
    ],
    "api-invitation-revoke": [Row("post", "manage", (200,), args=lambda w: [w.invitation.pk])],
    "api-stranded": [
        Row("get", "view", (200,)),
        Row("post", "manage", (200,), data=lambda w: {"action": "give_back", "items": "all"}),
    ],
    "api-campaign-state": [Row("post", "manage", (200,), data=lambda w: {"state": "paused"})],
    # Copies are new campaigns, which only staff accounts make: a non-staff admin is refused.
    "api-campaign-copy": [Row("post", "manage", (201,), data=lambda w: {"name": "A copy"}, overrides={"admin": 403})],
}


def _merge_feature_rows() -> None:
    """Rows kept in tests/annotate/permission_rows/<feature>.py join the table."""
    for module_info in pkgutil.iter_modules(permission_rows.__path__):
        module = importlib.import_module(f"{permission_rows.__name__}.{module_info.name}")
        pairs = ((PAGE_ROWS, getattr(module, "PAGE_ROWS", {})), (API_ROWS, getattr(module, "API_ROWS", {})))
        for ours, theirs in pairs:
            clash = set(ours) & set(theirs)
            assert not clash, f"{module.__name__} repeats rows of the table: {sorted(clash)}"
            ours.update(theirs)


_merge_feature_rows()


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def campaign_routes() -> dict[str, tuple[str, URLPattern]]:
    """name → (route, pattern) of every campaign admin page and every API route taking a campaign ref."""
    found = {}
    for route, entry in _walk(get_resolver().url_patterns):
        is_page = route.startswith("c/<slug:slug>/") and not route.startswith(EXEMPT_PREFIXES)
        is_api = route.startswith("api/") and "<str:ref>" in route and entry.name not in EXEMPT_API
        if is_page or is_api:
            found[entry.name or f"<unnamed {route}>"] = (route, entry)
    return found


def test_every_campaign_route_is_in_the_table():
    table = {**PAGE_ROWS, **API_ROWS}
    routes = campaign_routes()
    problems = [
        f"{route} (URL name {name!r}) has no row in tests/annotate/test_permissions.py: add it to "
        f"{'API_ROWS' if route.startswith('api/') else 'PAGE_ROWS'} with its need (view/manage/own) and the "
        "owner's status"
        for name, (route, _) in sorted(routes.items())
        if name not in table
    ]
    problems += [
        f"{name!r} is in the permission table but no such campaign route is mounted: remove or rename its row"
        for name in sorted(table)
        if name not in routes
    ]
    for name, (route, entry) in sorted(routes.items()):
        view_class = getattr(entry.callback, "view_class", None)
        if view_class is None or name not in table:
            continue
        methods = {m for m in ("get", "post", "put", "patch", "delete") if hasattr(view_class, m)}
        missing = methods - {row.method for row in table[name]}
        if missing:
            problems.append(f"{route} ({name!r}) answers {sorted(missing)} with no row for them in the table")
    assert not problems, "\n".join(problems)


def expected(row: Row, role: str, *, api: bool) -> set[int]:
    if role in row.overrides:
        return {row.overrides[role]}
    if role == "anonymous":
        return {401, 403} if api else {302}
    if role == "outsider":
        return {404}
    if role == "annotator":
        return {403}
    return set(row.ok) if ROLE_LEVEL[role] >= NEEDS[row.need] else {403}


def _cases():
    for rows, api in ((PAGE_ROWS, False), (API_ROWS, True)):
        for name, entries in rows.items():
            for row in entries:
                for role in ROLES:
                    yield pytest.param(name, row, role, api, id=f"{row.method.upper()} {name} as {role}")


@pytest.fixture
def world(db, tmp_path, settings):
    settings.TANDEM_EXPORT_DIR = tmp_path / "exports"
    settings.TANDEM_UPLOAD_DIR = tmp_path / "uploads"
    campaign = CampaignFactory(overlap=1)
    items_import(campaign=campaign, stream=jsonl(*[pair(i) for i in range(3)]), filename="items.jsonl")
    owner = UserFactory(is_staff=True)
    users = {"owner": owner, "viewer": UserFactory(), "admin": UserFactory(), "annotator": UserFactory()}
    for role in ("owner", "viewer", "admin"):
        CampaignMember.objects.create(campaign=campaign, user=users[role], role=role)
    elsewhere = CampaignFactory()
    users["outsider"] = UserFactory()
    CampaignMember.objects.create(campaign=elsewhere, user=users["outsider"], role="admin")
    pool = AnnotatorPool.objects.create(name="crowd")
    pool.members.add(users["annotator"])
    campaign.pools.add(pool)
    listed = UserFactory()
    campaign.annotators.add(listed)
    judge = JudgeFactory()
    campaign.judges.add(judge)
    now = datetime.now(UTC)
    StatsSnapshot.objects.create(
        campaign=campaign,
        computed_at=now,
        n_items=3,
        n_human_labels=0,
        n_judge_labels=0,
        bootstrap=0,
        seconds=0.1,
        payload={"criteria": {}, "n_items": 3, "n_human_labels": 0, "n_judge_labels": 0},
    )
    return World(
        campaign=campaign,
        users=users,
        judge=judge,
        job=JobFactory(kind="judge_run", campaign=campaign, created_by=owner),
        export=DatasetExport.objects.create(campaign=campaign, options={"format": "trl"}),
        item=Item.objects.filter(campaign=campaign).first(),
        pool=pool,
        listed=listed,
        invitation=invitation_create(campaign=campaign, expires_in=timedelta(days=1), created_by=owner).invitation,
        spare=UserFactory(),
    )


def _call(client, row: Row, url: str, world: World, *, api: bool):
    data = row.data(world)
    if not api:
        return getattr(client, row.method)(url, data)
    if row.multipart:
        return getattr(client, row.method)(url, data, format="multipart")
    if row.method == "get":
        return client.get(url, data)
    return getattr(client, row.method)(url, json.dumps(data), content_type="application/json")


@pytest.mark.parametrize(("name", "row", "role", "api"), list(_cases()))
def test_who_gets_what(world, name, row, role, api, client):
    ref = str(world.campaign.pk) if api else world.campaign.slug  # API clients may use the id
    url = reverse(name, args=[ref, *row.args(world)])
    if api:
        client = APIClient()
        if role != "anonymous":
            token = api_token_create(user=world.users[role], name="tests")
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    elif role != "anonymous":
        client.force_login(world.users[role])
    response = _call(client, row, url, world, api=api)
    want = expected(row, role, api=api)
    body = getattr(response, "content", b"")[:300]
    assert response.status_code in want, (
        f"{row.method.upper()} {url} as {role}: {response.status_code}, want {want}: {body}"
    )
    if role == "anonymous" and not api:
        assert response["Location"].startswith(reverse("login")), response["Location"]
