"""The demo campaign: LLMBar "Natural" with GPT-4's verdicts as an imported judge, routed by judge
uncertainty (humans get the half of the items GPT-4 is least sure of), and demo users."""

from __future__ import annotations

import io
import json
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from annotate.models import Campaign
from annotate.schema import preset
from routing.api import route_now

from .campaigns import campaign_create
from .imports import annotations_import, items_import
from .imports.rows import item_row_parse

DEMO_DIR = Path(settings.BASE_DIR) / "demo" / "llmbar" / "natural"
DEMO_SLUG = "llmbar-natural"
DEMO_JUDGE = "gpt-4 (llmbar vanilla)"
DEMO_ANNOTATORS = ("annotator1", "annotator2", "annotator3")
GUIDELINES = """\
# Which output follows the instruction?

You see an **instruction** and two **outputs**. Choose the output that *follows the instruction*
more precisely — does what it asks, in the form it asks for — and is helpful, accurate and
harmless. Do not prefer an output for being longer, more polished or more confident.

- Choose a **tie** only when neither output is better on any of these points.
- Position means nothing: the outputs are shown in a random order.
- If the instruction is ambiguous, prefer the output that makes a reasonable reading explicit.

Data: LLMBar "Natural" (princeton-nlp/LLMBar, MIT licence).
"""


def llmbar_judge_rows(*, dataset: list[dict], results: list[dict], judge: str, prompt_version: str) -> list[dict]:
    """LLMBar's recorded verdicts (both orders, already mapped back) as annotation rows."""
    if len(dataset) != len(results):
        raise ValueError(f"{len(dataset)} dataset rows but {len(results)} results")
    schema = preset("simple-pairwise")
    rows = []
    for instance, result in zip(dataset, results, strict=True):
        external_id = item_row_parse(instance, kind="pairwise", schema=schema).external_id
        last_round = result["results"][-1]
        for swapped in (False, True):
            verdict = last_round[f"swap = {swapped}"]
            completion = verdict["completion"]
            raw = completion[0] if isinstance(completion, list) else str(completion)
            winner = str(verdict.get("winner", ""))
            label = {"overall": -1 if winner == "1" else 1} if winner in ("1", "2") else None
            rows.append(
                {
                    "item": external_id,
                    "judge": judge,
                    "label": label,
                    "raw": raw,
                    "position_swapped": swapped,
                    "prompt_version": prompt_version,
                }
            )
    return rows


DEMO_ADMIN = "admin"
ADMIN_PASSWORD_FILE = "demo-admin-password"


def _secret_file_write(path: Path, secret: str) -> None:
    """Write a secret readable by its owner only: created 0600, never world-readable for an instant."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        stream.write(secret + "\n")


def demo_password() -> tuple[str, bool]:
    """The annotators' password: DEMO_PASSWORD if set; otherwise one generated once and kept in
    VAR_DIR/demo_password (returned as new=True)."""
    if settings.DEMO_PASSWORD:
        return settings.DEMO_PASSWORD, False
    path = settings.VAR_DIR / "demo_password"
    if path.exists():
        return path.read_text().strip(), False
    password = secrets.token_urlsafe(9)
    _secret_file_write(path, password)
    return password, True


def demo_admin_ensure(*, annotator_password: str) -> dict:
    """The demo admin, with a password of its own, set when the account is created and never reset.

    TANDEM_DEMO_ADMIN_PASSWORD if set, else a random one written to VAR_DIR/demo-admin-password (0600)
    and returned once, to be printed once. An admin left by an older demo with the annotators' password
    gets its own now (the one case where an existing password changes: it was everybody's).
    Returns {"username", "password" (only when just set, else None), "source"}.
    """
    User = get_user_model()
    admin = User.objects.filter(username=DEMO_ADMIN).first()
    if admin is not None and not admin.check_password(annotator_password):
        return {"username": DEMO_ADMIN, "password": None, "source": "unchanged"}
    if settings.TANDEM_DEMO_ADMIN_PASSWORD:
        password, source = settings.TANDEM_DEMO_ADMIN_PASSWORD, "TANDEM_DEMO_ADMIN_PASSWORD"
    else:
        password = secrets.token_urlsafe(12)
        source = str(settings.VAR_DIR / ADMIN_PASSWORD_FILE)
        _secret_file_write(settings.VAR_DIR / ADMIN_PASSWORD_FILE, password)
    if admin is None:
        admin = User(username=DEMO_ADMIN, is_staff=True, is_superuser=True, is_active=True)
    admin.set_password(password)
    admin.save()
    return {"username": DEMO_ADMIN, "password": password, "source": source}


def demo_users_ensure(*, password: str) -> dict:
    """The demo annotators (with `password`) and the demo admin (with its own, see `demo_admin_ensure`)."""
    if password == settings.TANDEM_DEMO_ADMIN_PASSWORD:
        raise ValueError("the demo annotators' password must not be the demo admin's (TANDEM_DEMO_ADMIN_PASSWORD)")
    User = get_user_model()
    for name in DEMO_ANNOTATORS:
        user, created = User.objects.get_or_create(username=name)
        if created or not user.check_password(password) or not user.is_active:
            user.is_active = True
            user.set_password(password)
            user.save()
    admin = demo_admin_ensure(annotator_password=password)
    return {"admins": [DEMO_ADMIN], "annotators": list(DEMO_ANNOTATORS), "admin": admin}


@transaction.atomic
def demo_load(*, password: str) -> dict:
    """Create (or find) the demo campaign, import its items and judge labels, ensure the users."""
    campaign = Campaign.objects.filter(slug=DEMO_SLUG).first()
    if campaign is None:
        campaign = campaign_create(
            name="LLMBar Natural",
            slug=DEMO_SLUG,
            kind="pairwise",
            preset="simple-pairwise",
            overlap=3,
            guidelines=GUIDELINES,
            human_budget=0.5,
        )
        # Humans label the half of the items GPT-4 is least sure of (and a 10 % calibration slice).
        campaign.state = Campaign.State.OPEN
        campaign.routing_policy = Campaign.RoutingPolicy.JUDGE_UNCERTAINTY
        campaign.calibration_fraction = 0.1
        campaign.save(update_fields=["state", "routing_policy", "calibration_fraction"])
    dataset_path = DEMO_DIR / "dataset.json"
    with dataset_path.open("rb") as stream:
        items = items_import(campaign=campaign, stream=stream, filename=str(dataset_path))
    dataset = json.loads(dataset_path.read_text(encoding="utf-8"))
    results = json.loads((DEMO_DIR / "gpt4-vanilla-result.json").read_text(encoding="utf-8"))
    rows = llmbar_judge_rows(dataset=dataset, results=results, judge=DEMO_JUDGE, prompt_version="llmbar-vanilla")
    payload = "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8")
    labels = annotations_import(campaign=campaign, stream=io.BytesIO(payload), filename="gpt4-vanilla-result.json")
    users = demo_users_ensure(password=password)
    routing = route_now(campaign=campaign)
    return {
        "campaign": {"id": campaign.pk, "slug": campaign.slug},
        "items": items.as_dict(),
        "judge_labels": labels.as_dict(),
        "routing": {"policy": routing["policy"], "destinations": routing["destinations"]},
        "users": users,
    }
