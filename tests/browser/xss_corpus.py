"""The XSS corpus and the world it is planted in: every text a user, an import or an LLM can set carries payloads
that call `__xss(n)`, where n names the field and the payload (so a marker that fires says where it came from)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from annotate import schema as label_schema
from annotate.models import (
    Adjudication,
    Annotation,
    AnnotationRevision,
    AnnotatorPool,
    Assignment,
    CampaignMember,
    DatasetExport,
    Item,
    ItemFlag,
    Job,
    JudgeVerdict,
    RoutingDecision,
)
from annotate.models.quality import AnnotatorStanding
from annotate.models.routing import ItemTags
from annotate.models.tokens import api_token_create
from annotate.services.imports import items_import
from annotate.services.imports.uploads import upload_store
from annotate.services.people import account_password_path, invitation_create
from tests.factories import AdminFactory, CampaignFactory, JudgeFactory, UserFactory

MARK = "__xss"


@dataclass(frozen=True)
class Payload:
    """One attack; `{m}` becomes the marker call, `{n}` its number (for URLs the page must never request)."""

    id: str
    text: str


# Order matters where many payloads share one field: the ones that swallow what follows them when parsed as
# HTML (an unclosed <style>, <noscript>, a comment) come last, so a hole for an earlier one is not masked.
PAYLOADS = [
    Payload("script", "<script>{m}</script>"),
    Payload("img-onerror", "<img src=x onerror={m}>"),
    Payload("svg-onload", "<svg onload={m}>"),
    Payload("svg-script", "<svg><script>{m}</script></svg>"),
    Payload("details-ontoggle", "<details open ontoggle={m}>x</details>"),
    Payload("input-autofocus", "<input autofocus onfocus={m}>"),
    Payload("body-onload", "<body onload={m}>"),
    Payload("iframe-srcdoc", '<iframe srcdoc="<script>parent.{m}</script>"></iframe>'),
    Payload("object-data", '<object data="javascript:{m}"></object>'),
    Payload("md-js-link", "[click me](javascript:{m})"),
    Payload("md-js-link-entity", "[click me](jav&#x61;script:{m})"),
    Payload("md-data-link", "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)"),
    Payload("md-js-autolink", "<javascript:{m}>"),
    Payload("md-js-image", "![i](javascript:{m})"),
    Payload("md-data-image", "![i](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)"),
    Payload("md-link-title", '[t](https://example.com "x\\" onmouseover=\\"{m}")'),
    Payload("raw-js-link", '<a href="javascript:{m}">raw link</a>'),
    Payload("raw-data-link", '<a href="data:text/html,&lt;script&gt;{m}&lt;/script&gt;">data link</a>'),
    Payload("math-href", '<math><maction actiontype="statusline" xlink:href="javascript:{m}">m</maction></math>'),
    Payload("htmx-get-admin", '<div hx-get="/admin/" hx-trigger="load">hx</div>'),
    Payload("htmx-get-marker", '<div hx-get="/__xss/{n}/" hx-trigger="load" hx-on::after-request="{m}">hx</div>'),
    Payload("htmx-on-click", '<button hx-on:click="{m}">b</button>'),
    Payload("htmx-data-get", '<p data-hx-get="/__xss/{n}/" data-hx-trigger="load">hx</p>'),
    Payload("css-style-attr", '<div style="background:url(javascript:{m})">s</div>'),
    Payload("css-import", '<style>@import "/__xss/{n}/x.css";</style>'),
    Payload("template-django", "tpl{{7*7}}tpl {% debug %} {{ request.user }}"),
    Payload("template-js", "tpl${7*7}tpl #{7*7}"),
    Payload("attr-double", '" autofocus onfocus="{m}" x="'),
    Payload("attr-single", "' autofocus onfocus='{m}' x='"),
    Payload("attr-backtick", "` onmouseover={m} x=`"),
    Payload("json-break", "</script><script>{m}</script>"),
    Payload("js-string-break", "';{m};'\";{m};\""),
    Payload("broken-unclosed", "<img src=x onerror={m}//"),
    Payload("broken-nested", "<<script>{m}//<</script>"),
    Payload("broken-comment", '<!--<img src="--><img src=x onerror={m}>">'),
    Payload("meta-refresh", '<meta http-equiv="refresh" content="0;url=javascript:{m}">'),
    Payload("mxss-noscript", '<noscript><p title="</noscript><img src=x onerror={m}>">'),
    Payload("mxss-mglyph", "<math><mtext><table><mglyph><style><img src=x onerror={m}>"),
    Payload("css-style-tag", '<style>body{background:url("javascript:{m}")}</style>'),
]
BY_ID = {payload.id: payload for payload in PAYLOADS}
# Where each payload is live (how a hole would put it in a page), so the checks can be shown to catch it:
# "html" as markup, "markdown" through a renderer that allows raw HTML and every link, the others inside an
# attribute or a script. The payloads left out cannot be made live in Chromium by themselves.
LIVE_IN = {
    **{payload.id: "html" for payload in PAYLOADS},
    **{payload.id: "markdown" for payload in PAYLOADS if payload.id.startswith("md-")},
    "attr-double": '<input value="{p}">',
    "attr-single": "<input value='{p}'>",
    "js-string-break": "<script>var s = '{p}';</script>",
    "json-break": '<script type="application/json">{"text": "{p}"}</script>',
}
NEVER_LIVE_ALONE = {
    "attr-backtick": "no browser since Internet Explorer quotes attributes with backticks",
    "md-link-title": "every CommonMark renderer escapes a link title; kept for one that would not",
    "template-django": "needs a template engine, not a browser; the page check looks for its output",
    "template-js": "needs a template engine, not a browser; the page check looks for its output",
}
# Payloads that fit a short name field (a pool's name has 120 characters, a judge's 100), one per row.
SHORT = [
    "img-onerror", "svg-onload", "script", "attr-double", "attr-single", "json-break", "htmx-get-marker",
    "mxss-noscript", "broken-unclosed", "raw-js-link", "template-django", "css-style-attr",
]  # fmt: skip


class Corpus:
    """Hands out payloads with numbered markers and remembers which field and payload each number is."""

    def __init__(self) -> None:
        self.origins: dict[int, tuple[str, str]] = {}

    def mark(self, where: str, payload_id: str) -> str:
        number = len(self.origins) + 1
        self.origins[number] = (where, payload_id)
        call = f"{MARK}({number})"
        return BY_ID[payload_id].text.replace("{m}", call).replace("{n}", str(number))

    def all(self, where: str) -> str:
        """Every payload, one paragraph each: for the long texts (prompts, responses, justifications, ...)."""
        return "\n\n".join(self.mark(where, payload.id) for payload in PAYLOADS)

    def short(self, where: str, index: int, limit: int) -> str:
        """One payload for a short field: the index-th of SHORT, or the next one that fits in `limit`."""
        for step in range(len(SHORT)):
            payload_id = SHORT[(index + step) % len(SHORT)]
            if len(BY_ID[payload_id].text) + 12 <= limit:
                return self.mark(where, payload_id)
        raise AssertionError(f"{where}: no payload fits in {limit} characters")

    def origin(self, number: int) -> str:
        where, payload_id = self.origins.get(number, ("?", "?"))
        return f"field {where}, payload {payload_id} (marker {number})"


@dataclass
class World:
    """The rows the pages are filled from, and the value of each URL parameter."""

    corpus: Corpus
    superuser: object
    annotator: object
    campaign: object
    params: dict = field(default_factory=dict)
    invitation_token: str = ""
    set_password_path: str = ""


def _schema(corpus: Corpus) -> dict:
    schema = label_schema.preset("simple-pairwise")
    schema["pairwise"]["aspects"][0]["description"] = corpus.all("schema.aspect.description")
    schema["justification"] = "optional"
    return label_schema.schema_validate(schema, "pairwise")


def _item_row(corpus: Corpus, n: int) -> dict:
    return {
        "id": f"xss-{n}-{corpus.short('item.external_id', n, 200)}",
        "prompt": corpus.all(f"item[{n}].prompt"),
        "response_a": corpus.all(f"item[{n}].response_a"),
        "response_b": corpus.all(f"item[{n}].response_b"),
        "model_a": corpus.short(f"item[{n}].model_a", n, 200),
        "model_b": corpus.short(f"item[{n}].model_b", n + 1, 200),
        "reference": corpus.all(f"item[{n}].reference"),
        "metadata": {
            "source": corpus.all(f"item[{n}].metadata.source"),
            corpus.short(f"item[{n}].metadata key", n, 200): "value",
        },
    }


def _chat_row(corpus: Corpus) -> dict:
    return {
        "id": "xss-chat",
        "prompt": [
            {"role": "system", "content": corpus.all("chat.system")},
            {"role": "user", "content": corpus.all("chat.user")},
        ],
        "response_a": corpus.all("chat.response_a"),
        "response_b": corpus.all("chat.response_b"),
    }


def world_build(*, items: int = 6) -> World:
    """A campaign whose every text is hostile, with labels, judges, routing, flags, exports, people and jobs."""
    corpus = Corpus()
    superuser = AdminFactory(username="xss-root", first_name=corpus.short("superuser.first_name", 0, 150))
    annotator = UserFactory(
        username="xss-annotator-a",
        first_name=corpus.short("annotator.first_name", 1, 150),
        last_name=corpus.short("annotator.last_name", 2, 150),
    )
    others = [
        UserFactory(username=f"xss-user-{i}", first_name=corpus.short(f"user[{i}].first_name", i + 3, 150))
        for i in range(3)
    ]
    campaign = CampaignFactory(
        name=corpus.short("campaign.name", 0, 200),
        slug="xss-campaign",
        guidelines=corpus.all("campaign.guidelines"),
        label_schema=_schema(corpus),
        overlap=2,
        overlap_max=3,
        created_by=superuser,
    )
    CampaignFactory(name=corpus.short("campaign[2].name", 1, 200), slug="xss-other", guidelines=corpus.all("c2"))
    rows = [_item_row(corpus, n) for n in range(items)] + [_chat_row(corpus)]
    stream = io.BytesIO("\n".join(json.dumps(row) for row in rows).encode("utf-8"))
    items_import(campaign=campaign, stream=stream, filename="items.jsonl")
    item_rows = list(Item.objects.filter(campaign=campaign).order_by("id"))
    Item.objects.filter(pk__in=[i.pk for i in item_rows]).update(route=Item.Route.HUMAN)
    contested = item_rows[0]
    Item.objects.filter(pk=contested.pk).update(review_state=Item.ReviewState.CONTESTED)
    gold = item_rows[1]
    Item.objects.filter(pk=gold.pk).update(
        gold_label={"overall": 1}, gold_explanation=corpus.all("item.gold_explanation")
    )

    judges = [
        JudgeFactory(name=corpus.short(f"judge[{i}].name", i, 100), model=corpus.short(f"judge[{i}].model", i + 4, 200))
        for i in range(3)
    ]
    campaign.judges.set(judges)
    pools = []
    for i in range(3):
        pool = AnnotatorPool.objects.create(
            name=corpus.short(f"pool[{i}].name", i + 5, 120), description=corpus.all(f"pool[{i}].description")
        )
        pool.members.add(annotator, *others[:i])
        pools.append(pool)
    campaign.pools.set(pools[:2])
    campaign.annotators.add(annotator, *others)
    CampaignMember.objects.create(campaign=campaign, user=others[0], role=CampaignMember.Role.REVIEWER)
    CampaignMember.objects.create(campaign=campaign, user=others[1], role=CampaignMember.Role.VIEWER)

    labelled = _labels(corpus, campaign, item_rows, annotator, others, judges)
    _quality(corpus, campaign, item_rows, annotator, others, superuser)
    _routing(corpus, campaign, item_rows, judges[0], superuser)
    export, import_job = _jobs_and_exports(corpus, campaign, superuser)
    upload = upload_store(
        campaign=campaign,
        user=superuser,
        filename=corpus.short("upload.filename", 0, 120).replace("/", "") + ".jsonl",
        chunks=[stream.getvalue()],
        max_bytes=10_000_000,
    )
    invited = invitation_create(
        campaign=campaign,
        expires_in=timedelta(days=2),
        note=corpus.short("invitation.note", 3, 200),
        created_by=superuser,
    )
    pool_invitation = invitation_create(
        pool=pools[0],
        expires_in=timedelta(days=2),
        note=corpus.short("pool invitation.note", 4, 200),
        created_by=superuser,
    )
    unset = UserFactory(username="xss-no-password", first_name=corpus.short("unset.first_name", 6, 150))
    unset.set_unusable_password()
    unset.save()
    token = api_token_create(user=superuser, name=corpus.short("api token.name", 7, 100)).token
    api_token_create(user=annotator, name=corpus.short("annotator api token.name", 8, 100))
    assignment = Assignment.objects.filter(campaign=campaign).first()
    world = World(corpus=corpus, superuser=superuser, annotator=annotator, campaign=campaign)
    world.invitation_token = invited.token
    world.set_password_path = account_password_path(user=unset)
    world.params = {
        "slug": campaign.slug,
        "item_id": contested.pk,
        "assignment_id": assignment.pk,
        "annotation_id": labelled.pk,
        "export_id": export.pk,
        "job_id": import_job.pk,
        "pool_id": pools[0].pk,
        "user_id": others[0].pk,
        "annotator_id": annotator.pk,
        "invitation_id": pool_invitation.invitation.pk,
        "flag_id": ItemFlag.objects.filter(campaign=campaign).first().pk,
        "file_type": "csv",
        "upload_token": upload.token,
        "token_id": token.pk,
    }
    return world


def _labels(corpus, campaign, items, annotator, others, judges) -> Annotation:
    """Human labels (with revisions and leases) on most items, judge labels with hostile rationales."""
    now = timezone.now()
    mine = None
    for n, item in enumerate(items[:5]):
        for who in (annotator, others[1]) if n else (others[1], others[2]):
            assignment = Assignment.objects.create(
                campaign=campaign, item=item, annotator=who, state=Assignment.State.SUBMITTED,
                expires_at=now + timedelta(minutes=10), finished_at=now, position_swapped=bool(n % 2),
            )  # fmt: skip
            annotation = Annotation.objects.create(
                item=item, campaign=campaign, source=Annotation.Source.HUMAN, annotator=who,
                assignment=assignment, label={"overall": 1 if n % 2 else -1},
                justification=corpus.all(f"label[{n},{who.username}].justification"), position_swapped=bool(n % 2),
            )  # fmt: skip
            if who == annotator and mine is None:
                mine = annotation
        for i, judge in enumerate(judges):
            Annotation.objects.create(
                item=item, campaign=campaign, source=Annotation.Source.JUDGE, judge=judge, label={"overall": 1},
                justification=corpus.all(f"judgment[{n},{i}].rationale"),
                raw_output=corpus.all(f"judgment[{n},{i}].raw_output"), position_swapped=False, confidence=0.7,
                prompt_version=corpus.short("judgment.prompt_version", i, 64),
            )  # fmt: skip
        JudgeVerdict.objects.create(
            campaign=campaign, item=item, label={"overall": 1}, confidence=0.6, n_judgments=3,
            judges=[{"judge": j.name, "prompt_version": corpus.short("verdict.judges", n, 200)} for j in judges],
        )  # fmt: skip
    AnnotationRevision.objects.create(
        annotation=mine, revision=1, label={"overall": -1}, justification=corpus.all("revision.justification")
    )
    Annotation.objects.filter(pk=mine.pk).update(revision=2)
    Item.objects.filter(pk__in=[i.pk for i in items[:5]]).update(human_label_count=2, assigned_count=2)
    Assignment.objects.create(
        campaign=campaign, item=items[6], annotator=others[2], state=Assignment.State.SKIPPED,
        expires_at=now + timedelta(minutes=10), finished_at=now, skip_reason=corpus.short("skip_reason", 2, 500),
    )  # fmt: skip
    return mine


def _quality(corpus, campaign, items, annotator, others, superuser) -> None:
    for n, (item, who) in enumerate([(items[0], annotator), (items[2], others[0]), (items[3], others[1])]):
        ItemFlag.objects.create(
            campaign=campaign, item=item, annotator=who, kind=ItemFlag.Kind.COMMENT,
            comment=corpus.all(f"flag[{n}].comment"), resolution=corpus.short(f"flag[{n}].resolution", n, 500),
        )  # fmt: skip
    ItemFlag.objects.filter(campaign=campaign, annotator=others[1]).update(
        resolved_at=timezone.now(), resolved_by=superuser
    )
    Adjudication.objects.create(
        campaign=campaign,
        item=items[4],
        reviewer=others[0],
        label={"overall": 1},
        reason=corpus.all("adjudication.reason"),
    )
    for n, who in enumerate([annotator, *others]):
        AnnotatorStanding.objects.create(
            campaign=campaign, annotator=who, warning=corpus.short(f"standing[{n}].warning", n, 300),
            pause_reason=corpus.short(f"standing[{n}].pause_reason", n + 1, 300),
            note=corpus.short(f"standing[{n}].note", n + 2, 500), attention_checks=2, attention_failures=n % 2,
            paused_at=timezone.now() if n == 3 else None,
        )  # fmt: skip


def _routing(corpus, campaign, items, judge, superuser) -> None:
    for n, item in enumerate(items):
        RoutingDecision.objects.create(
            campaign=campaign, item=item, destination="human", policy=corpus.short(f"decision[{n}].policy", n, 40),
            score=0.5, reason=corpus.all(f"decision[{n}].reason"), overridden_by=superuser if n == 0 else None,
            features=[
                {"feature": corpus.short(f"decision[{n}].feature", n, 200), "value": 1.0, "contribution": 0.4},
                {"signal": corpus.short(f"decision[{n}].signal", n + 1, 200), "weight": 0.3},
            ],
        )  # fmt: skip
        ItemTags.objects.create(
            item=item, campaign=campaign, prompt_version="v1", tagger=judge,
            tags={"subject": corpus.short(f"tags[{n}].subject", n, 200), "safety": corpus.short("tags.safety", n, 200)},
            error=corpus.short(f"tags[{n}].error", n + 2, 200),
        )  # fmt: skip


def _jobs_and_exports(corpus, campaign, superuser):
    name = corpus.short("export.file name", 1, 120).replace("/", "")
    export_job = Job.objects.create(
        kind="export", campaign=campaign, state=Job.State.SUCCEEDED, created_by=superuser,
        error=corpus.all("export job.error"), result={"note": corpus.all("export job.result")},
    )  # fmt: skip
    export = DatasetExport.objects.create(
        campaign=campaign, job=export_job, created_by=superuser, complete=True, directory="xss",
        options={"format": "raw", "file_type": "jsonl", "source": "all"},
        files=[
            {"split": corpus.short("export.split", 2, 120), "name": f"{name}.jsonl", "rows": 3, "bytes": 10,
             "sha256": "0" * 64},
        ],
        counts={"rows": 3},
    )  # fmt: skip
    import_job = Job.objects.create(
        kind="import_items", campaign=campaign, state=Job.State.FAILED, created_by=superuser,
        params={"filename": corpus.short("import job.filename", 3, 120).replace("/", "") + ".csv"},
        error=corpus.all("import job.error"),
        result={"errors": [
            {"where": corpus.short("import error.where", 4, 200), "message": corpus.all("import error.message")},
        ]},
    )  # fmt: skip
    for kind, state in (
        ("judge_run", Job.State.FAILED),
        ("compute_stats", Job.State.RUNNING),
        ("route", Job.State.SUCCEEDED),
    ):
        Job.objects.create(
            kind=kind, campaign=campaign, state=state, created_by=superuser, error=corpus.all(f"{kind} job.error"),
            params={"note": corpus.short(f"{kind} job.params", 5, 200)},
        )  # fmt: skip
    return export, import_job
