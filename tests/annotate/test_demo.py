"""The demo campaign: LLMBar Natural with GPT-4's verdicts, loaded idempotently."""

import io
import json

import pytest
from django.contrib.auth import get_user_model

from annotate.models import Annotation, Campaign, Item
from annotate.services.demo import DEMO_JUDGE, DEMO_SLUG, demo_load
from tests.conftest import LLMBAR

pytestmark = pytest.mark.django_db


def test_demo_loads_once_and_again_changes_nothing():
    first = demo_load(password="demo-pass-123")
    assert first["items"]["created"] == 100 and first["judge_labels"]["created"] == 200
    second = demo_load(password="demo-pass-123")
    assert second["items"]["unchanged"] == 100 and second["judge_labels"]["unchanged"] == 200
    campaign = Campaign.objects.get(slug=DEMO_SLUG)
    assert campaign.state == "open" and Item.objects.filter(campaign=campaign).count() == 100
    # Routed by judge uncertainty: a 10 % calibration slice, then GPT-4's least certain items up to half.
    assert first["routing"]["destinations"] == {"unrouted": 0, "human": 40, "llm": 50, "both": 10}
    assert second["routing"] == first["routing"]
    flipped = {a.item_id for a in Annotation.objects.filter(judge__name=DEMO_JUDGE, position_swapped=True)
               if a.label != Annotation.objects.get(item_id=a.item_id, judge__name=DEMO_JUDGE,
                                                    position_swapped=False).label}  # fmt: skip
    assert not Item.objects.filter(pk__in=flipped, route="llm").exists()  # every flip goes to a human
    users = get_user_model().objects
    assert users.get(username="admin").is_staff
    assert all(users.get(username=f"annotator{i}").check_password("demo-pass-123") for i in (1, 2, 3))


def test_imported_verdicts_reproduce_the_llmbar_statistics():
    """Accuracy per order and order agreement from the stored labels equal the authors' figures."""
    demo_load(password="demo-pass-123")
    stats = json.loads((LLMBAR / "gpt4-vanilla-statistics.json").read_text())
    gold = {
        item.pk: (-1 if item.metadata["label"] == 1 else 1) for item in Item.objects.filter(campaign__slug=DEMO_SLUG)
    }
    verdicts = {}
    for a in Annotation.objects.filter(judge__name=DEMO_JUDGE):
        verdicts.setdefault(a.item_id, {})[a.position_swapped] = a.label["overall"]
    for swapped in (False, True):
        correct = sum(verdicts[i][swapped] == g for i, g in gold.items())
        assert f"{correct} / 100" in stats[f"correct_{swapped}"]
    equal = sum(v[False] == v[True] for v in verdicts.values())
    assert f"{equal} / 100" in stats["equal"]


def test_the_demo_admin_has_its_own_password_set_once_and_never_reset(settings, tmp_path):
    import stat

    from django.core.management import call_command

    from annotate.services.demo import demo_users_ensure

    settings.VAR_DIR, settings.DEMO_PASSWORD, settings.TANDEM_DEMO_ADMIN_PASSWORD = tmp_path, "", ""
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    annotators_password = (tmp_path / "demo_password").read_text().strip()
    secret_file = tmp_path / "demo-admin-password"
    admin_password = secret_file.read_text().strip()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert admin_password != annotators_password and len(admin_password) >= 16
    assert f"password: {admin_password}" in out.getvalue()  # printed this once
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(admin_password)
    assert not admin.check_password(annotators_password)
    # The next `make run`: the admin's password is neither printed nor changed, even after the owner changed it.
    admin.set_password("changed-by-its-owner")
    admin.save()
    again = io.StringIO()
    call_command("load_demo", stdout=again)
    assert admin_password not in again.getvalue() and "password unchanged" in again.getvalue()
    assert get_user_model().objects.get(username="admin").check_password("changed-by-its-owner")
    assert secret_file.read_text().strip() == admin_password
    assert get_user_model().objects.get(username="annotator1").check_password(annotators_password)
    # An admin left by an older demo with the annotators' password gets its own, once.
    admin.set_password(annotators_password)
    admin.save()
    fixed = demo_users_ensure(password=annotators_password)["admin"]
    assert fixed["password"] and fixed["password"] != annotators_password
    assert get_user_model().objects.get(username="admin").check_password(fixed["password"])
    assert demo_users_ensure(password=annotators_password)["admin"]["password"] is None


def test_the_demo_admin_password_from_the_environment(settings, tmp_path):
    from annotate.services.demo import demo_users_ensure

    settings.VAR_DIR, settings.TANDEM_DEMO_ADMIN_PASSWORD = tmp_path, "admin-own-secret-9"
    users = demo_users_ensure(password="annotators-pass-1")
    assert users["admin"] == {
        "username": "admin",
        "password": "admin-own-secret-9",
        "source": "TANDEM_DEMO_ADMIN_PASSWORD",
    }
    assert not (tmp_path / "demo-admin-password").exists()
    assert get_user_model().objects.get(username="admin").check_password("admin-own-secret-9")
    with pytest.raises(ValueError, match="must not be the demo admin's"):
        demo_users_ensure(password="admin-own-secret-9")
