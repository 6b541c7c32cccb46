"""The API's docs pages render in Chromium from drf-spectacular-sidecar's own files under a strict CSP (no
inline script, nothing from another origin): Swagger UI lists the v1 operations, Redoc draws the schema."""

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STRICT = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "worker-src 'self' blob:"
)
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


def _strict_csp(page, live_server, seen: list[str]):
    """Serve every response of the live server with the strict policy, and note any request elsewhere."""

    def handle(route):
        if not route.request.url.startswith(live_server.url):
            seen.append(route.request.url)
            route.abort()
            return
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": STRICT})

    page.route("**/*", handle)
    page.add_init_script(RECORD_VIOLATIONS)


def test_swagger_ui_renders_the_v1_operations(page, live_server):
    elsewhere: list[str] = []
    _strict_csp(page, live_server, elsewhere)
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=20000)
    summaries = page.locator(".opblock-summary-path").all_inner_texts()
    assert any(re.search(r"/api/v1/campaigns/\{ref\}/next/", s.replace("\u200b", "")) for s in summaries)
    assert not any("/api/campaigns/" in s.replace("\u200b", "") for s in summaries)
    assert page.evaluate("window.__violations") == [] and elsewhere == []


def test_redoc_renders_the_schema(page, live_server):
    elsewhere: list[str] = []
    _strict_csp(page, live_server, elsewhere)
    page.goto(f"{live_server.url}/api/redoc/")
    page.wait_for_selector("text=Tandem API", timeout=20000)
    page.wait_for_selector("text=/api/v1/campaigns/", timeout=20000)
    script_violations = [v for v in page.evaluate("window.__violations") if v.startswith("script-src")]
    assert script_violations == [] and elsewhere == []
