"""The seeded world of the permission matrix: two campaigns, ten callers, and the secrets they may not see.

Built once per test module (tests/security/conftest.py) inside a transaction that is rolled back at the end;
each request of the matrix runs in a savepoint of its own, so what one allowed POST changes never reaches the
next row. Every text an actor may not read carries a marker (`MARKS`); the matrix looks for each marker in
every answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.apps import apps
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from annotate.models import (
    Annotation,
    AnnotatorPool,
    Assignment,
    Campaign,
    CampaignMember,
    DatasetExport,
    Item,
    ItemFlag,
    Job,
    JudgeVerdict,
    RoutingDecision,
    StatsSnapshot,
)
from annotate.services.assignments import annotation_submit, next_assignment_for
from annotate.services.imports import items_import
from annotate.services.people import invitation_create
from tests.conftest import jsonl
from tests.factories import CampaignFactory, JobFactory, JudgeFactory, UserFactory

User = get_user_model()

ACTORS = (
    "anonymous",
    "ann_a",  # in campaign X's pool
    "ann_b",  # in X's pool too: must never see A's work
    "outsider",  # an active account in no pool of X
    "viewer",  # viewer of X
    "reviewer",  # reviewer of X
    "admin_x",  # admin of X
    "admin_y",  # admin of Y, no role on X
    "staff",  # staff, no role on X
    "superuser",
)

# Texts planted in the world, each readable only by the actors listed (the superuser reads everything).
X_ADMINS = frozenset({"viewer", "reviewer", "admin_x", "superuser"})
X_POOL = frozenset({"ann_a", "ann_b"})
MARKS: dict[str, frozenset[str]] = {
    "XRAYCAMPAIGN": X_ADMINS | X_POOL,  # campaign X's name
    "XRAYPROMPT": X_ADMINS | X_POOL,  # X's item prompts
    "YANKEECAMPAIGN": frozenset({"admin_y", "superuser"}),  # campaign Y's name
    "YANKEEPROMPT": frozenset({"admin_y", "superuser"}),
    "ALPHAJUSTIFICATION": X_ADMINS | {"ann_a"},  # A's label
    "ALPHAFLAGCOMMENT": X_ADMINS | {"ann_a"},  # A's flag
    "BRAVOJUSTIFICATION": X_ADMINS | {"ann_b"},  # B's label
    "JUDGEREASONING": X_ADMINS,  # a judge's verdict on X
    "GOLDEXPLANATION": X_ADMINS,  # X's gold item: why its gold label is right
    "ROUTINGREASON": X_ADMINS,  # a routing decision on X
    "INVITENOTE": frozenset({"admin_x", "viewer", "superuser"}),  # notes are for admins only
    "ALPHATOKEN": frozenset({"ann_a"}),  # the name of A's API token: no one else's business
}


@dataclass
class World:
    users: dict[str, object]
    x: Campaign
    y: Campaign
    item: Item  # an item of X that A and B both labelled
    contested: Item  # an item of X in the review queue
    y_item: Item
    lease_a: Assignment  # A's live lease on X
    lease_b: Assignment
    label_a: Annotation  # A's label on `item`
    label_b: Annotation
    judge: object
    judge_run: Job
    job_y: Job
    export: DatasetExport  # complete, with a file on disk
    export_spare: DatasetExport  # no files: what delete rows remove
    export_y: DatasetExport
    pool: AnnotatorPool  # X's pool (A and B)
    pool_y: AnnotatorPool
    spare_pool: AnnotatorPool
    invitation: object
    invitation_token: str
    pool_invitation: object
    flag: ItemFlag
    spare: object  # an account in no pool and no role: what "add" rows add
    listed: object  # an annotator added to X one by one
    token_a: object  # an API token of A's (revoked by the token rows, in their savepoints)
    clients: dict[str, Client] = field(default_factory=dict)
    api: dict[str, APIClient] = field(default_factory=dict)
    token_api: dict[str, APIClient] = field(default_factory=dict)


def _pairs(prefix: str, n: int) -> list[dict]:
    return [
        {"id": f"{prefix}{i}", "prompt": f"{prefix.upper()}PROMPT number {i}?", "response_a": "A", "response_b": "B"}
        for i in range(n)
    ]


def _users() -> dict[str, object]:
    users = {name: UserFactory(username=f"matrix-{name}") for name in ACTORS if name != "anonymous"}
    User.objects.filter(pk=users["staff"].pk).update(is_staff=True)
    User.objects.filter(pk=users["superuser"].pk).update(is_staff=True, is_superuser=True)
    for name in ("staff", "superuser"):
        users[name].refresh_from_db()
    return users


def _label(*, annotator, campaign: Campaign, justification: str) -> tuple[Assignment, Annotation]:
    lease = next_assignment_for(annotator=annotator, campaign=campaign)
    annotation, _ = annotation_submit(
        assignment_id=lease.pk, annotator=annotator, label={"overall": 1}, justification=justification
    )
    return lease, annotation


def _export(campaign: Campaign, *, user, root: Path, with_file: bool) -> DatasetExport:
    export = DatasetExport.objects.create(campaign=campaign, options={"format": "trl"}, created_by=user)
    if with_file:
        directory = root / f"{campaign.slug}-{export.pk}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "train.jsonl").write_text('{"prompt": "exported"}\n')
        (directory / "README.md").write_text("# card\n")
        DatasetExport.objects.filter(pk=export.pk).update(
            directory=str(directory),
            files=[{"split": "train", "name": "train.jsonl", "rows": 1, "bytes": 23, "sha256": ""}],
            complete=True,
        )
        export.refresh_from_db()
    return export


def world_build(*, export_root: Path) -> World:
    users = _users()
    owner = UserFactory(username="matrix-owner-x", is_staff=True)
    x = CampaignFactory(name="XRAYCAMPAIGN", slug="xray", overlap=2, created_by=owner)
    y = CampaignFactory(name="YANKEECAMPAIGN", slug="yankee", overlap=1, created_by=users["admin_y"])
    items_import(campaign=x, stream=jsonl(*_pairs("xray", 5)), filename="x.jsonl")
    items_import(campaign=y, stream=jsonl(*_pairs("yankee", 2)), filename="y.jsonl")
    CampaignMember.objects.create(campaign=x, user=owner, role="owner")
    for role, name in (("viewer", "viewer"), ("reviewer", "reviewer"), ("admin", "admin_x")):
        CampaignMember.objects.create(campaign=x, user=users[name], role=role)
    CampaignMember.objects.create(campaign=y, user=users["admin_y"], role="owner")
    pool = AnnotatorPool.objects.create(name="matrix-pool-x", created_by=owner)
    pool.members.add(users["ann_a"], users["ann_b"])
    x.pools.add(pool)
    y_annotator = UserFactory(username="matrix-y-annotator")
    pool_y = AnnotatorPool.objects.create(name="matrix-pool-y", created_by=users["admin_y"])
    pool_y.members.add(y_annotator)
    y.pools.add(pool_y)
    listed = UserFactory(username="matrix-listed")
    x.annotators.add(listed)

    _, label_a = _label(annotator=users["ann_a"], campaign=x, justification="ALPHAJUSTIFICATION")
    item = label_a.item
    lease_b_done = next_assignment_for(annotator=users["ann_b"], campaign=x)
    Assignment.objects.filter(pk=lease_b_done.pk).update(item=item)
    label_b, _ = annotation_submit(
        assignment_id=lease_b_done.pk,
        annotator=users["ann_b"],
        label={"overall": -1},
        justification="BRAVOJUSTIFICATION",
    )
    lease_a = next_assignment_for(annotator=users["ann_a"], campaign=x)
    lease_b = next_assignment_for(annotator=users["ann_b"], campaign=x)

    judge = JudgeFactory(name="matrix-judge", base_url="http://127.0.0.1:9/v1")
    x.judges.add(judge)
    Annotation.objects.create(
        item=item,
        campaign=x,
        source=Annotation.Source.JUDGE,
        judge=judge,
        label={"overall": 1},
        justification="JUDGEREASONING",
        raw_output="JUDGEREASONING raw",
        position_swapped=False,
    )
    JudgeVerdict.objects.create(campaign=x, item=item, label={"overall": 1}, confidence=0.9, n_judgments=1)
    RoutingDecision.objects.create(
        campaign=x, item=item, destination="human", policy="all_human", reason="ROUTINGREASON"
    )
    contested = Item.objects.filter(campaign=x).exclude(pk=item.pk).exclude(pk=lease_a.item_id).first()
    Item.objects.filter(pk=contested.pk).update(review_state=Item.ReviewState.CONTESTED)
    gold = Item.objects.filter(campaign=x).exclude(pk__in=[item.pk, contested.pk, lease_a.item_id, lease_b.item_id])
    gold.filter(pk=gold.first().pk).update(gold_label={"overall": 1}, gold_explanation="GOLDEXPLANATION")
    flag = ItemFlag.objects.create(
        campaign=x, item=item, annotator=users["ann_a"], kind=ItemFlag.Kind.BOTH_BAD, comment="ALPHAFLAGCOMMENT"
    )
    now = datetime.now(UTC)
    for campaign, n in ((x, 5), (y, 2)):
        StatsSnapshot.objects.create(
            campaign=campaign,
            computed_at=now,
            n_items=n,
            n_human_labels=0,
            n_judge_labels=0,
            bootstrap=0,
            seconds=0.1,
            payload={"criteria": {}, "n_items": n, "n_human_labels": 0, "n_judge_labels": 0},
        )
    made = invitation_create(campaign=x, expires_in=timedelta(days=1), created_by=owner, note="INVITENOTE")
    pool_made = invitation_create(pool=pool, expires_in=timedelta(days=1), created_by=owner)
    return World(
        users=users,
        x=x,
        y=y,
        item=item,
        contested=contested,
        y_item=Item.objects.filter(campaign=y).first(),
        lease_a=lease_a,
        lease_b=lease_b,
        label_a=label_a,
        label_b=label_b,
        judge=judge,
        judge_run=JobFactory(kind="judge_run", campaign=x, created_by=owner, params={"judges": [judge.pk]}),
        job_y=JobFactory(kind="judge_run", campaign=y, created_by=users["admin_y"], params={}),
        export=_export(x, user=owner, root=export_root, with_file=True),
        export_spare=_export(x, user=owner, root=export_root, with_file=False),
        export_y=_export(y, user=users["admin_y"], root=export_root, with_file=True),
        pool=pool,
        pool_y=pool_y,
        spare_pool=AnnotatorPool.objects.create(name="matrix-spare-pool"),
        invitation=made.invitation,
        invitation_token=made.token,
        pool_invitation=pool_made.invitation,
        flag=flag,
        spare=UserFactory(username="matrix-spare"),
        listed=listed,
        token_a=_token_of(users["ann_a"]),
    )


def _token_key(user) -> str:
    """An API key the configured authentication accepts: the project's own tokens when they are on."""
    from annotate.models.tokens import api_token_create

    return api_token_create(user=user, name="matrix").key


def clients_attach(world: World) -> None:
    """One signed-in page client, API client (session) and token client per actor, made before any snapshot."""
    for name in ACTORS:
        page = Client(raise_request_exception=False)
        api, token = APIClient(raise_request_exception=False), APIClient(raise_request_exception=False)
        user = world.users.get(name)
        if user is not None:
            page.force_login(user)
            api.force_authenticate(user=user)
            token.credentials(HTTP_AUTHORIZATION=f"Token {_token_key(user)}")
        world.clients[name], world.api[name], world.token_api[name] = page, api, token


# Rows and columns that change on any request and say nothing about who may do what.
VOLATILE_TABLES = {"django_session", "annotate_apitoken"}
VOLATILE_FIELDS = {"last_login", "last_used_at", "updated_at", "heartbeat_at"}


def snapshot() -> dict[str, list[tuple]]:
    """Every row of every model, minus the volatile: what an unauthorized call must leave as it was."""
    state = {}
    for model in apps.get_models():
        meta = model._meta
        if meta.db_table in VOLATILE_TABLES or meta.db_table.startswith("axes_") or not meta.managed:
            continue
        names = [f.attname for f in meta.concrete_fields if f.attname not in VOLATILE_FIELDS]
        state[meta.label] = list(model._base_manager.order_by("pk").values_list(*names))
    return state


def snapshot_diff(before: dict, after: dict) -> list[str]:
    changed = []
    for label, rows in before.items():
        if rows != after.get(label):
            added = len(after.get(label, [])) - len(rows)
            changed.append(f"{label} ({'+' if added >= 0 else ''}{added} rows)" if added else f"{label} (rows changed)")
    return changed


def upload_fresh(world: World, *, owner: str = "admin_x") -> str:
    """A pasted upload of X's admin (uploads are their maker's own): the wizard's review, run and discard."""
    from annotate.services.imports.uploads import upload_store

    chunk = b'{"id": "w1", "prompt": "Why?", "response_a": "A", "response_b": "B"}\n'
    upload = upload_store(
        campaign=world.x, user=world.users[owner], filename="paste.jsonl", chunks=[chunk], max_bytes=10**6
    )
    return upload.token


def import_job(world: World) -> int:
    return JobFactory(kind="import_items", campaign=world.x, created_by=world.users["admin_x"], params={}).pk


def set_password_kwargs(world: World) -> dict:
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    spare = world.spare
    return {"uidb64": urlsafe_base64_encode(force_bytes(spare.pk)), "token": default_token_generator.make_token(spare)}


def _token_of(user):
    from annotate.models.tokens import api_token_create

    return api_token_create(user=user, name="ALPHATOKEN").token


# What each path parameter is, unless a row says otherwise: always an object of campaign X (the one under test).
PARAMETERS = {
    "slug": lambda w: w.x.slug,
    "ref": lambda w: w.x.slug,
    "assignment_id": lambda w: w.lease_a.pk,
    "annotation_id": lambda w: w.label_a.pk,
    "export_id": lambda w: w.export_spare.pk,
    "job_id": lambda w: w.judge_run.pk,
    "item_id": lambda w: w.item.pk,
    "flag_id": lambda w: w.flag.pk,
    "file_type": lambda w: "csv",
    "annotator_id": lambda w: w.users["ann_a"].pk,
    "user_id": lambda w: w.spare.pk,
    "pool_id": lambda w: w.pool.pk,
    "invitation_id": lambda w: w.invitation.pk,
    "token_id": lambda w: w.token_a.pk,
    "name": lambda w: "train.jsonl",
}
