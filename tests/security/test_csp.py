"""Content-Security-Policy: the header on every page and no inline script or handler in any template. In Chromium
(the main pages, the account page and Django's admin, without a single violation): tests/browser/test_csp_pages.py."""

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from tests.factories import AdminFactory

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)
TEMPLATES = Path(settings.BASE_DIR) / "templates"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE)
HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.IGNORECASE)


def header_directives(value: str) -> set[str]:
    return {part.strip() for part in value.split(";") if part.strip()}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/api/auth/token/", "/healthz"])
def test_every_answer_carries_the_policy(client, path):
    answer = client.get(path)
    assert header_directives(answer["Content-Security-Policy"]) == header_directives(POLICY)


@pytest.mark.django_db
def test_signed_in_pages_and_the_admin_carry_it_too(client):
    client.force_login(AdminFactory())
    for path in (reverse("home"), reverse("account"), "/admin/"):
        answer = client.get(path)
        assert answer.status_code == 200
        assert header_directives(answer["Content-Security-Policy"]) == header_directives(POLICY)


def test_no_template_has_inline_script_or_event_handlers():
    found = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        text = template.read_text()
        for pattern in (INLINE_SCRIPT, HANDLER):
            found += [f"{template.relative_to(TEMPLATES)}: {m.group(0)[:80]}" for m in pattern.finditer(text)]
        if "hx-on" in text or "javascript:" in text:
            found.append(f"{template.relative_to(TEMPLATES)}: hx-on or javascript: URL")
    assert not found, "\n".join(found)


def test_htmx_is_told_not_to_eval_or_inject_styles():
    base = (TEMPLATES / "base.html").read_text()
    config = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", base)
    assert config, "base.html has no htmx-config meta"
    assert json.loads(config.group(1)) == {"includeIndicatorStyles": False, "allowEval": False}
