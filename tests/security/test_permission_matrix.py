"""The permission matrix: every page and API route, generated from the URL conf, for ten kinds of caller.

`test_every_route_has_a_row` walks `get_resolver().url_patterns` and fails on any named route (under `/`,
`/c/<slug>/`, `/api/`, `/api/v1/`) with no row in TABLE, so a new route cannot ship without saying who may
use it. Each row is (method, expected status per actor); the rule builders below write the usual shapes:

- `campaign(need, ok)`: an admin page or API call of campaign X. Anonymous → sign-in redirect (pages) or
  401/403 (API); X's annotators → 403 (they know X exists); the outsider, Y's admin and staff without a role
  → 404 (nobody learns which campaigns exist); viewer, reviewer, admin of X → `ok` when their role grants
  `need` (view / manage / own / review), else 403; the superuser → `ok`.
- `pool(ok)`: the annotator's own flow on X: A and B → `ok`, anyone else → 404 (or `others`).
- `own(ok)`: an object that is A's alone (a lease, a label, a token): A → `ok`, everyone else → 404.
- `staff(ok)`: account and pool management: staff and superuser → `ok`, other signed-in accounts → 403.
- `signed_in(ok)` and `public(ok)`.

For every answer the test also looks for the markers of `MARKS` (tests/security/matrix_world.py): B never
sees A's label or flag, annotators never a judge's verdict, a gold explanation or a routing reason, and no
one outside X sees X's name. A refused mutating call (POST/PATCH/PUT/DELETE answered 401/403/404, or the
sign-in redirect) must leave every row of the database as it was.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import transaction
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient
from rest_framework.views import APIView

from tests.security.matrix_world import (
    ACTORS,
    MARKS,
    PARAMETERS,
    World,
    import_job,
    set_password_kwargs,
    snapshot,
    snapshot_diff,
    upload_fresh,
)

pytestmark = pytest.mark.django_db

LOGIN = 0  # stands for "302 to the sign-in page"
DENIED = {401, 403, 404, LOGIN}
MUTATING = {"post", "put", "patch", "delete"}
NEED_ROLES = {
    "view": {"viewer", "admin_x", "superuser"},
    "manage": {"admin_x", "superuser"},
    "own": {"superuser"},
    "review": {"reviewer", "admin_x", "superuser"},
}
ALIAS_ACTORS = ("anonymous", "ann_b", "admin_y", "superuser")

# Routes the matrix does not walk, each with the reason.
EXCLUDED_NAMESPACES = {
    "admin": "Django's admin site: test_django_admin below checks its index and every registered model's pages",
}


@dataclass(frozen=True)
class Row:
    method: str
    expect: dict[str, set[int]]
    kwargs: Callable[[World], dict] = lambda w: {}
    data: Callable[[World], dict] = lambda w: {}
    multipart: bool = False
    token: bool = False  # through `Authorization: Token` instead of a session
    fresh: bool = False  # a client of its own (signing out ends the shared client's session)
    shows: frozenset[str] = frozenset()  # markers this route shows by design to whoever may call it
    actors: tuple[str, ...] = ACTORS
    htmx: bool = False
    note: str = ""


def _rule(ok, allowed: set[str], *, api: bool, refused: dict[str, int], **over) -> dict[str, set[int]]:
    ok = set(ok)
    rule = {actor: ok if actor in allowed else {refused[actor]} for actor in ACTORS}
    rule["anonymous"] = {401, 403} if api else {LOGIN}
    for actor, status in over.items():
        rule[actor] = set(status) if isinstance(status, (set, tuple, list)) else {status}
    return rule


def campaign(need: str, ok, *, api: bool = False, **over) -> dict[str, set[int]]:
    refused = dict.fromkeys(ACTORS, 404) | dict.fromkeys(("ann_a", "ann_b", "viewer", "reviewer", "admin_x"), 403)
    return _rule(ok, NEED_ROLES[need], api=api, refused=refused, **over)


def pool(ok, *, api: bool = False, others: int = 404, **over) -> dict[str, set[int]]:
    return _rule(ok, {"ann_a", "ann_b"}, api=api, refused=dict.fromkeys(ACTORS, others), **over)


def own(ok, *, api: bool = False, **over) -> dict[str, set[int]]:
    return _rule(ok, {"ann_a"}, api=api, refused=dict.fromkeys(ACTORS, 404), **over)


def staff(ok, *, api: bool = False, **over) -> dict[str, set[int]]:
    return _rule(ok, {"staff", "superuser"}, api=api, refused=dict.fromkeys(ACTORS, 403), **over)


def signed_in(ok, *, api: bool = False, **over) -> dict[str, set[int]]:
    return _rule(ok, set(ACTORS), api=api, refused={}, **over)


def public(ok) -> dict[str, set[int]]:
    return {actor: set(ok) for actor in ACTORS}


def _jsonl(name: str, *rows) -> dict:
    import io

    upload = io.BytesIO(("\n".join(json.dumps(r) for r in rows) + "\n").encode())
    upload.name = name
    return {"file": upload}


_PAIR = {"id": "new1", "prompt": "New?", "response_a": "A", "response_b": "B"}
_LABEL = {"label.overall": "1", "justification": "fine", "active_seconds": "5"}
_ADJUDICATE = {"label.overall": "1", "reason": "B answers the question."}
_SCHEMA_FORM = {"name": "New campaign", "slug": "new-campaign", "preset": "simple-pairwise", "overlap": "1"}
_CONTESTED = {"item_id": lambda w: w.contested.pk}
_STAFF_JUDGE = {"name": "new-judge", "model": "m", "base_url": "http://127.0.0.1:9/v1", "probe": False}


def _kw(**values) -> Callable[[World], dict]:
    return lambda w: {k: v(w) if callable(v) else v for k, v in values.items()}


# URL name → rows. API names stand for their /api/v1/ twins too (`v1:<name>`).
PAGES: dict[str, list[Row]] = {
    "home": [Row("get", signed_in({200}))],
    "healthz": [Row("get", public({200}))],
    "login": [Row("get", public({200})), Row("post", public({200}), data=lambda w: {"username": "", "password": ""})],
    "logout": [Row("post", public({LOGIN}), fresh=True)],
    "account": [Row("get", signed_in({200}))],
    "account-token-create": [Row("post", signed_in({200}), data=lambda w: {"name": "made in the matrix"})],
    "account-token-revoke": [Row("post", own({302}))],
    "account-set-password": [Row("get", public({200, 302}), kwargs=set_password_kwargs)],
    # the link's holder learns which campaign it is for: that is what the link is
    "invitation-accept": [
        Row("get", public({200}), kwargs=lambda w: {"token": w.invitation_token}, shows=frozenset({"XRAYCAMPAIGN"}))
    ],
    # the annotator's flow: X's annotators only; admins of X are told to use an annotator account
    "annotate": [Row("get", pool({200}, viewer=403, reviewer=403, admin_x=403, superuser=403))],
    "annotate-item": [Row("get", pool({200}))],
    "annotate-recent": [Row("get", pool({200}))],
    "annotate-submit": [Row("post", own({200, 302}), data=lambda w: _LABEL, htmx=True)],
    "annotate-skip": [Row("post", own({200, 302}), data=lambda w: {"reason": "broken"}, htmx=True)],
    "annotate-flag": [Row("post", own({200, 201}), data=lambda w: {"kind": "both_bad"}, htmx=True)],
    "annotate-heartbeat": [Row("post", own({204}))],
    "annotate-label-edit": [Row("get", own({200})), Row("post", own({200, 302}), data=lambda w: _LABEL)],
    # accounts and pools: staff manage them (they are not any one campaign's)
    "people": [Row("get", staff({200}))],
    "people-account-create": [Row("post", staff({200, 302}), data=lambda w: {"username": "made-by-staff"})],
    "people-account-active": [Row("post", staff({302}), data=lambda w: {"active": "0"})],
    "people-account-link": [Row("post", staff({200, 302}))],
    "people-pool-create": [Row("post", staff({302}), data=lambda w: {"name": "a new pool"})],
    "people-pool": [Row("get", staff({200}))],
    "people-pool-update": [Row("post", staff({302}), data=lambda w: {"name": "renamed pool"})],
    "people-pool-delete": [Row("post", staff({302}), kwargs=_kw(pool_id=lambda w: w.spare_pool.pk))],
    "people-pool-member-add": [Row("post", staff({302}), data=lambda w: {"username": w.spare.username})],
    "people-pool-member-remove": [Row("post", staff({302}), kwargs=_kw(user_id=lambda w: w.users["ann_b"].pk))],
    "people-pool-invite": [Row("post", staff({200, 201}), data=lambda w: {"expires": "3", "expires_unit": "days"})],
    "people-pool-invite-revoke": [Row("post", staff({302}), kwargs=_kw(invitation_id=lambda w: w.pool_invitation.pk))],
    # campaign X's admin pages
    "campaign-new": [
        Row("get", staff({200})),
        Row("post", staff({200, 302, 400}), data=lambda w: _SCHEMA_FORM, note="a form, maybe refused"),
    ],
    "campaign-preview": [Row("post", staff({200}), data=lambda w: _SCHEMA_FORM)],
    "campaign-home": [Row("get", campaign("view", {200}))],
    "campaign-home-live": [Row("get", campaign("view", {200}))],
    "campaign-home-quality": [Row("get", campaign("view", {200}))],
    "campaign-settings": [
        Row("get", campaign("view", {200})),
        Row("post", campaign("manage", {302}), data=lambda w: {"name": "Renamed"}),
    ],
    "campaign-state": [
        Row("get", campaign("view", {200})),
        Row("post", campaign("manage", {302}), data=lambda w: {"state": "paused"}),
    ],
    # copies are new campaigns, which only staff accounts make: X's admin is not staff
    "campaign-copy": [Row("post", campaign("manage", {302}, admin_x=403), data=lambda w: {"name": "A copy"})],
    "campaign-people": [Row("get", campaign("view", {200}))],
    "campaign-people-annotator-add": [
        Row("post", campaign("manage", {302}), data=lambda w: {"username": w.spare.username})
    ],
    "campaign-people-annotator-remove": [
        Row("post", campaign("manage", {302}), kwargs=_kw(user_id=lambda w: w.listed.pk))
    ],
    "campaign-people-pool-attach": [Row("post", campaign("manage", {302}), data=lambda w: {"pool": w.spare_pool.pk})],
    "campaign-people-pool-detach": [Row("post", campaign("manage", {302}))],
    "campaign-people-role-add": [
        Row("post", campaign("own", {302}), data=lambda w: {"username": w.spare.username, "role": "viewer"})
    ],
    "campaign-people-role-change": [
        Row(
            "post",
            campaign("own", {302}),
            kwargs=_kw(user_id=lambda w: w.users["viewer"].pk),
            data=lambda w: {"role": "admin"},
        )
    ],
    "campaign-people-role-remove": [
        Row("post", campaign("own", {302}), kwargs=_kw(user_id=lambda w: w.users["viewer"].pk))
    ],
    "campaign-people-invite": [
        Row(
            "post",
            campaign("manage", {201}),
            data=lambda w: {"role": "annotator", "expires": "3", "expires_unit": "days"},
        )
    ],
    "campaign-people-invite-revoke": [Row("post", campaign("manage", {302}))],
    "campaign-exports": [Row("get", campaign("view", {200}))],
    "campaign-exports-list": [Row("get", campaign("view", {200}))],
    "campaign-exports-create": [
        Row("post", campaign("manage", {302}), data=lambda w: {"format": "trl", "file_type": "jsonl"})
    ],
    "campaign-exports-delete": [Row("post", campaign("manage", {200}))],
    "campaign-stats": [Row("get", campaign("view", {200}))],
    "campaign-stats-recompute": [Row("post", campaign("manage", {302}))],
    "campaign-judges": [Row("get", campaign("view", {200}))],
    "campaign-judges-runs": [Row("get", campaign("view", {200}))],
    "campaign-judges-run": [
        Row("post", campaign("manage", {302}), data=lambda w: {"judge": w.judge.pk, "scope": "all"})
    ],
    "campaign-judges-cancel": [Row("post", campaign("manage", {200}))],
    "campaign-routing": [Row("get", campaign("view", {200}))],
    "campaign-routing-pass": [Row("get", campaign("view", {200}))],
    "campaign-routing-route": [Row("post", campaign("manage", {302}))],
    "campaign-routing-settings": [
        Row("post", campaign("manage", {302}), data=lambda w: {"routing_policy": "all_human"})
    ],
    "campaign-routing-item": [Row("get", campaign("view", {200}))],
    "campaign-routing-override": [Row("post", campaign("manage", {302}), data=lambda w: {"destination": "human"})],
    # the import wizard: an upload is its maker's (X's admin); the superuser finds none of theirs (400)
    "campaign-import": [Row("get", campaign("manage", {200}))],
    "campaign-import-upload": [
        Row("post", campaign("manage", {302}), data=lambda w: {"paste": json.dumps(_PAIR) + "\n"})
    ],
    "campaign-import-review": [
        Row("get", campaign("manage", {200}, superuser=400), kwargs=lambda w: {"token": upload_fresh(w)})
    ],
    "campaign-import-run": [
        Row("post", campaign("manage", {200, 302}, superuser=400), kwargs=lambda w: {"token": upload_fresh(w)})
    ],
    "campaign-import-discard": [Row("post", campaign("manage", {302}), kwargs=lambda w: {"token": upload_fresh(w)})],
    "campaign-import-job": [Row("get", campaign("manage", {200}), kwargs=lambda w: {"job_id": import_job(w)})],
    "campaign-queue": [Row("get", campaign("view", {200}))],
    "campaign-stranded": [Row("get", campaign("view", {200}))],
    "campaign-stranded-act": [
        Row("post", campaign("manage", {302}), data=lambda w: {"action": "give_back", "scope": "all"})
    ],
    "campaign-review": [Row("get", campaign("review", {200}))],
    "campaign-review-list": [Row("get", campaign("review", {200}), data=lambda w: {"state": "all"})],
    "campaign-review-item": [Row("get", campaign("review", {200}), kwargs=_kw(**_CONTESTED))],
    "campaign-review-adjudicate": [
        Row("post", campaign("review", {302}), kwargs=_kw(**_CONTESTED), data=lambda w: _ADJUDICATE)
    ],
    "campaign-flags": [Row("get", campaign("view", {200}))],
    "campaign-flags-resolve": [
        Row("post", campaign("manage", {302}), data=lambda w: {"resolution": "Fixed the prompt."})
    ],
    "campaign-flags-download": [Row("get", campaign("view", {200}))],
    "campaign-standing-act": [Row("post", campaign("manage", {302}), data=lambda w: {"action": "pause"})],
}


def api(need: str, ok, **over):
    return campaign(need, ok, api=True, **over)


_EXPORT = _kw(pk=lambda w: w.export.pk)
_SPARE_EXPORT = _kw(pk=lambda w: w.export_spare.pk)
_LEASE_A = _kw(pk=lambda w: w.lease_a.pk)
_LABEL_A = _kw(pk=lambda w: w.label_a.pk)
_JOB = _kw(pk=lambda w: w.judge_run.pk)
_JUDGE = _kw(pk=lambda w: w.judge.pk)
_POOL = _kw(pk=lambda w: w.pool.pk)
_SUBMIT = {"label": {"overall": 1}, "justification": "fine"}

APIS: dict[str, list[Row]] = {
    "api-index": [Row("get", public({200}))],
    # one document for everyone, with nothing of any campaign in it; building it takes seconds, so three callers
    "api-schema": [Row("get", public({200}), actors=("anonymous", "ann_a", "superuser"))],
    "api-docs": [Row("get", public({200}))],
    "api-redoc": [Row("get", public({200}))],
    "api-token": [Row("post", public({400}), note="no credentials: refused for everyone, nothing issued")],
    # tokens: every account its own, and no one else's
    "api-tokens": [
        Row("get", signed_in({200}, api=True)),
        Row("post", signed_in({201}, api=True), data=lambda w: {"name": "from the API"}),
    ],
    "api-token-detail": [
        Row("get", own({200}, api=True), kwargs=lambda w: {"pk": w.token_a.pk}),
        Row("delete", own({200, 204}, api=True), kwargs=lambda w: {"pk": w.token_a.pk}),
    ],
    "api-campaigns": [
        Row("get", signed_in({200}, api=True), note="each sees the campaigns they annotate or administer"),
        Row("post", staff({201, 400}, api=True), data=lambda w: {"name": "By API", "preset": "simple-pairwise"}),
    ],
    # annotators read the campaigns they label; a reviewer's role is the review queue alone
    "api-campaign": [
        Row("get", api("view", {200}, ann_a=200, ann_b=200, reviewer=404)),
        Row("get", api("view", {200}, ann_a=200, ann_b=200, reviewer=404), token=True),
        Row("patch", api("manage", {200}), data=lambda w: {"guidelines": "Be careful."}),
    ],
    "api-items": [Row("get", api("view", {200}))],
    "api-labels": [Row("get", api("view", {200}))],
    "api-items-import": [Row("post", api("manage", {201}), multipart=True, data=lambda w: _jsonl("more.jsonl", _PAIR))],
    "api-annotations-import": [
        Row(
            "post",
            api("manage", {201}),
            multipart=True,
            data=lambda w: _jsonl("labels.jsonl", {"item": "xray0", "annotator": "imported", "label": {"overall": 1}}),
        )
    ],
    "api-next": [Row("post", pool({200}, api=True)), Row("post", pool({200}, api=True), token=True)],
    "api-my-labels": [Row("get", pool({200}, api=True))],
    "api-submit": [Row("post", own({200, 201}, api=True), kwargs=_LEASE_A, data=lambda w: _SUBMIT)],
    "api-skip": [Row("post", own({200}, api=True), kwargs=_LEASE_A, data=lambda w: {"reason": "broken"})],
    "api-flag": [Row("post", own({201}, api=True), kwargs=_LEASE_A, data=lambda w: {"kind": "both_bad"})],
    "api-heartbeat": [Row("post", own({200, 204}, api=True), kwargs=_LEASE_A)],
    "api-my-label": [
        Row("patch", own({200}, api=True), kwargs=_LABEL_A, data=lambda w: {"label": {"overall": -1}}),
    ],
    "api-stats": [Row("get", api("view", {200})), Row("post", api("manage", {202}))],
    "api-stats-history": [Row("get", api("view", {200}))],
    "api-exports": [
        Row("get", api("view", {200})),
        Row("post", api("manage", {202}), data=lambda w: {"format": "trl"}),
    ],
    "api-export": [
        Row("get", api("view", {200}), kwargs=_EXPORT),
        Row("delete", api("manage", {204}), kwargs=_SPARE_EXPORT),
    ],
    "api-export-file": [
        Row("get", api("view", {200}), kwargs=_EXPORT),
        Row("get", api("view", {200}), kwargs=_EXPORT, token=True),
    ],
    "api-jobs": [Row("get", signed_in({200}, api=True), note="each sees the jobs of campaigns they administer")],
    # a job by id: 404 to whoever may not see its campaign, annotators and reviewers included
    "api-job": [Row("get", api("view", {200}, ann_a=404, ann_b=404, reviewer=404), kwargs=_JOB)],
    "api-job-cancel": [Row("post", api("manage", {200}), kwargs=_JOB)],
    # judges are shared by campaigns and hold endpoints and key names: reading them is for staff, changing
    # them for the holders of annotate.manage_judges (the superuser here; `staff` lacks it)
    "api-judges": [
        Row("get", staff({200}, api=True)),
        Row("post", staff({201}, api=True, staff=403), data=lambda w: _STAFF_JUDGE),
    ],
    "api-judge": [
        Row("get", staff({200}, api=True), kwargs=_JUDGE),
        Row("patch", staff({200}, api=True, staff=403), kwargs=_JUDGE, data=lambda w: {"model": "changed"}),
    ],
    "api-judge-probe": [Row("post", staff({200, 502}, api=True, staff=403), kwargs=_JUDGE)],
    "api-judge-runs": [Row("post", api("manage", {202}), data=lambda w: {"judges": [w.judge.name], "scope": "all"})],
    "api-routing": [
        Row("get", api("view", {200})),
        Row("patch", api("manage", {200}), data=lambda w: {"routing_policy": "all_human"}),
    ],
    "api-route": [Row("post", api("manage", {202}))],
    "api-item-routing": [
        Row("get", api("view", {200}), kwargs=_kw(pk=lambda w: w.item.pk)),
        Row("post", api("manage", {201}), kwargs=_kw(pk=lambda w: w.item.pk), data=lambda w: {"destination": "human"}),
    ],
    "api-decisions": [Row("get", api("view", {200}))],
    "api-tags": [
        Row("get", api("view", {200})),
        Row("post", api("manage", {202}), data=lambda w: {"judge": w.judge.name}),
    ],
    "api-members": [
        Row("get", api("view", {200})),
        Row("post", api("own", {201}), data=lambda w: {"username": w.spare.username, "role": "viewer"}),
    ],
    "api-member": [
        Row(
            "patch",
            api("own", {200}),
            kwargs=_kw(user_id=lambda w: w.users["viewer"].pk),
            data=lambda w: {"role": "admin"},
        ),
        Row("delete", api("own", {204}), kwargs=_kw(user_id=lambda w: w.users["viewer"].pk)),
    ],
    "api-annotators": [
        Row("get", api("view", {200})),
        Row("post", api("manage", {201}), data=lambda w: {"user": w.spare.pk}),
        Row("delete", api("manage", {200}), data=lambda w: {"user": w.listed.pk}),
    ],
    "api-campaign-pools": [
        Row("get", api("view", {200})),
        Row("post", api("manage", {201}), data=lambda w: {"pool": w.spare_pool.pk}),
        Row("delete", api("manage", {200}), data=lambda w: {"pool": w.pool.pk}),
    ],
    "api-invitations": [
        Row("get", api("view", {200})),
        Row("post", api("manage", {201}), data=lambda w: {"role": "annotator", "expires_hours": 24}),
    ],
    "api-invitation-revoke": [Row("post", api("manage", {200}), kwargs=_kw(pk=lambda w: w.invitation.pk))],
    "api-pools": [
        Row("get", staff({200}, api=True)),
        Row("post", staff({201}, api=True), data=lambda w: {"name": "api pool"}),
    ],
    "api-pool": [
        Row("get", staff({200}, api=True), kwargs=_POOL),
        Row("patch", staff({200}, api=True), kwargs=_POOL, data=lambda w: {"description": "changed"}),
        Row("delete", staff({204}, api=True), kwargs=_kw(pk=lambda w: w.spare_pool.pk)),
    ],
    "api-pool-members": [
        Row("get", staff({200}, api=True), kwargs=_POOL),
        Row("post", staff({200, 201}, api=True), kwargs=_POOL, data=lambda w: {"user": w.spare.pk}),
        Row("delete", staff({200}, api=True), kwargs=_POOL, data=lambda w: {"user": w.users["ann_b"].pk}),
    ],
    "api-pool-invitations": [
        Row("get", staff({200}, api=True), kwargs=_POOL),
        Row("post", staff({201}, api=True), kwargs=_POOL, data=lambda w: {"expires_hours": 24}),
    ],
    "api-pool-invitation-revoke": [
        Row(
            "post",
            staff({200}, api=True),
            kwargs=_kw(pk=lambda w: w.pool.pk, invitation_id=lambda w: w.pool_invitation.pk),
        )
    ],
    "api-stranded": [
        Row("get", api("view", {200})),
        Row("post", api("manage", {200}), data=lambda w: {"action": "give_back", "items": "all"}),
    ],
    "api-review": [Row("get", api("review", {200}))],
    "api-review-item": [
        Row("get", api("review", {200}), kwargs=_kw(**_CONTESTED)),
        Row(
            "post",
            api("review", {201}),
            kwargs=_kw(**_CONTESTED),
            data=lambda w: {"label": {"overall": 1}, "reason": "B answers the question."},
        ),
    ],
    "api-flags": [Row("get", api("view", {200}))],
    "api-flag-resolve": [
        Row("post", api("manage", {200}), kwargs=_kw(pk=lambda w: w.flag.pk), data=lambda w: {"resolution": "Fixed."})
    ],
    "api-standings": [
        Row("get", api("view", {200})),
        Row("post", api("manage", {200}), data=lambda w: {"annotator": w.users["ann_a"].pk, "action": "exclude"}),
    ],
    "api-campaign-state": [Row("post", api("manage", {200}), data=lambda w: {"state": "paused"})],
    "api-campaign-copy": [Row("post", api("manage", {201}, admin_x=403), data=lambda w: {"name": "A copy"})],
}
TABLE = {**PAGES, **APIS}


@dataclass(frozen=True)
class Route:
    name: str  # as reverse() takes it: "api-next", "v1:api-next"
    path: str
    callback: object
    params: tuple[str, ...] = field(default=())

    @property
    def table_name(self) -> str:
        return self.name.split(":")[-1]


def _walk(patterns, prefix: str = "", namespace: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace or ""
            if ns in EXCLUDED_NAMESPACES:
                continue
            inner = f"{namespace}{ns}:" if ns else namespace
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            full = prefix + str(entry.pattern)
            params = tuple(re.findall(r"<(?:\w+:)?(\w+)>", full))
            yield Route(f"{namespace}{entry.name}" if entry.name else "", full, entry.callback, params)


def routes() -> list[Route]:
    return list(_walk(get_resolver().url_patterns))


def _view_class(callback):
    return getattr(callback, "view_class", None) or getattr(callback, "cls", None)


def test_every_route_has_a_row():
    problems = []
    for route in routes():
        if not route.name:
            problems.append(f"/{route.path} has no URL name: name it and give it a row in the permission matrix")
            continue
        if route.table_name not in TABLE:
            problems.append(
                f"new route {route.name!r} (/{route.path}) has no row in the permission matrix: add it to "
                f"{'APIS' if route.path.startswith('api/') else 'PAGES'} in tests/security/test_permission_matrix.py"
            )
            continue
        view_class = _view_class(route.callback)
        if view_class is not None and issubclass(view_class, APIView):
            methods = {m for m in ("get", "post", "put", "patch", "delete") if hasattr(view_class, m)}
            missing = methods - {row.method for row in TABLE[route.table_name]}
            if missing:
                problems.append(f"{route.name!r} answers {sorted(missing)} with no row for them in the matrix")
    present = {route.table_name for route in routes()}
    problems += [
        f"{name!r} has a row in the matrix but no such route is mounted" for name in TABLE if name not in present
    ]
    assert not problems, "\n".join(problems)


class _Rollback(Exception):
    pass


def _client(world: World, actor: str, *, api: bool, row: Row):
    if row.token and actor != "anonymous":
        return world.token_api[actor]
    return (world.api if api else world.clients)[actor]


def _fresh_client(world: World, actor: str, *, api: bool):
    client = APIClient(raise_request_exception=False) if api else Client(raise_request_exception=False)
    if actor != "anonymous":
        client.force_login(world.users[actor])
    return client


def _send(client, row: Row, url: str, data: dict, *, api: bool):
    headers = {"HTTP_HX_REQUEST": "true"} if row.htmx else {}
    if row.method == "get" or not api:
        return getattr(client, row.method)(url, data, **headers)
    if row.multipart:
        return getattr(client, row.method)(url, data, format="multipart", **headers)
    return getattr(client, row.method)(url, json.dumps(data), content_type="application/json", **headers)


def _status(response) -> int:
    if response.status_code == 302 and response["Location"].split("?")[0] in ("/accounts/login/", "/admin/login/"):
        return LOGIN
    return response.status_code


def _body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8", "replace")
    return response.content.decode("utf-8", "replace")


def _leaks(actor: str, body: str) -> list[str]:
    return [mark for mark, readers in MARKS.items() if actor not in readers and mark in body]


def _check(world: World, baseline: dict, route: Route, row: Row, actor: str) -> list[str]:
    """One request in a savepoint rolled back afterwards; the problems it shows."""
    api = route.path.startswith("api/")
    try:
        with transaction.atomic():
            kwargs = {name: PARAMETERS[name](world) for name in route.params if name in PARAMETERS}
            kwargs.update(row.kwargs(world))
            data = row.data(world)
            url = reverse(route.name, kwargs={k: v for k, v in kwargs.items() if k in route.params})
            client = _fresh_client(world, actor, api=api) if row.fresh else _client(world, actor, api=api, row=row)
            response = _send(client, row, url, data, api=api)
            status = _status(response)
            body = _body(response)
            changed = snapshot_diff(baseline, snapshot()) if row.method in MUTATING and status in DENIED else []
            raise _Rollback
    except _Rollback:
        pass
    finally:
        cache.clear()  # throttle counters: the matrix is thousands of requests in a minute
    want = row.expect[actor]
    label = f"{row.method.upper()} {url} as {actor}{' (token)' if row.token else ''}"
    problems = []
    if status not in want:
        shown = "sign-in redirect" if status == LOGIN else status
        wanted = sorted("sign-in redirect" if s == LOGIN else s for s in want)
        problems.append(f"{label}: {shown}, want {wanted}: {body[:200]!r}")
    if status < 500:
        leaks = [mark for mark in _leaks(actor, body) if mark not in row.shows]
        problems += [f"{label}: the answer shows {mark}, which {actor} may not read" for mark in leaks]
    if changed:
        problems.append(f"{label}: refused ({status}) but changed {', '.join(changed)}")
    return problems


def _cases():
    seen_views: dict[str, object] = {}
    found = routes()
    for route in found:
        if not route.name.startswith("v1:"):
            seen_views[route.name] = route.callback
    for route in found:
        if route.table_name not in TABLE:
            continue
        alias = route.name.startswith("v1:") and _same_view(route.callback, seen_views.get(route.table_name))
        yield pytest.param(route, alias, id=route.name)


def _same_view(a, b) -> bool:
    return b is not None and (_view_class(a) or a) is (_view_class(b) or b)


@pytest.fixture(scope="module")
def baseline(matrix_world):
    return snapshot()


@pytest.mark.parametrize(("route", "alias"), list(_cases()))
def test_matrix(matrix_world, baseline, route, alias):
    """Every row of the route, for every actor (for a /api/v1/ twin of the same view, four of them)."""
    actors = ALIAS_ACTORS if alias else ACTORS
    problems = []
    for row in TABLE[route.table_name]:
        for actor in (a for a in actors if a in row.actors):
            problems += _check(matrix_world, baseline, route, row, actor)
    assert not problems, "\n".join(problems)


def test_the_world_is_what_the_matrix_assumes(matrix_world):
    """The markers the matrix hunts for are really shown to those who may read them (else no leak could show)."""
    w = matrix_world
    seen = {
        "ALPHAJUSTIFICATION": _body(w.api["ann_a"].get(reverse("api-my-labels", args=[w.x.slug]))),
        "BRAVOJUSTIFICATION": _body(w.api["ann_b"].get(reverse("api-my-labels", args=[w.x.slug]))),
        "XRAYCAMPAIGN": _body(w.clients["ann_b"].get(reverse("home"))),
        "YANKEECAMPAIGN": _body(w.api["admin_y"].get(reverse("api-campaigns"))),
        "ALPHAFLAGCOMMENT": _body(w.clients["admin_x"].get(reverse("campaign-flags", args=[w.x.slug]))),
        "ROUTINGREASON": _body(w.clients["viewer"].get(reverse("campaign-routing-item", args=[w.x.slug, w.item.pk]))),
    }
    missing = [mark for mark, body in seen.items() if mark not in body]
    assert not missing, f"markers never shown even to their readers: {missing}"


def test_django_admin(matrix_world):
    """/admin/: non-staff are sent to its sign-in; staff without model permissions get 403 on every model's pages."""
    from django.contrib import admin

    w = matrix_world
    request = RequestFactory().get("/admin/")
    request.user = w.users["superuser"]
    pages = [reverse("admin:index")]
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        pages += [reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")]
        if model_admin.has_add_permission(request):  # django-axes' logs have no add page, even for superusers
            pages += [reverse(f"admin:{meta.app_label}_{meta.model_name}_add")]
    judge_change = reverse("admin:annotate_judge_change", args=[w.judge.pk])
    problems = []
    for url in [*pages, judge_change]:
        # the admin's own sign-in check turns every non-staff caller away alike: four pages show it for them
        callers = ACTORS if url in (*pages[:4], judge_change) else ("anonymous", "staff", "superuser")
        for actor in callers:
            response = w.clients[actor].get(url)
            status = _status(response)
            if actor in ("anonymous", "ann_a", "ann_b", "outsider", "viewer", "reviewer", "admin_x", "admin_y"):
                want = {LOGIN}
            elif actor == "staff":
                want = {200} if url == pages[0] else {403}
            else:
                want = {200}
            if status not in want:
                problems.append(f"GET {url} as {actor}: {status}, want {sorted(want)}")
            if actor == "staff" and status == 200 and _leaks("staff", _body(response)):
                problems.append(f"GET {url} as staff shows {_leaks('staff', _body(response))}")
    before = snapshot()
    with transaction.atomic():
        response = w.clients["staff"].post(judge_change, {"name": "renamed", "api_key_env": "SECRET_KEY"})
        changed = snapshot_diff(before, snapshot())
        transaction.set_rollback(True)
    if response.status_code != 403 or changed:
        problems.append(f"POST {judge_change} as staff without permissions: {response.status_code}, changed {changed}")
    granted = Permission.objects.filter(codename="manage_judges").exists()
    assert granted, "annotate.manage_judges (migration 0015) is missing"
    assert not problems, "\n".join(problems)
