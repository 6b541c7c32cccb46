"""The XSS corpus (tests/browser/xss_corpus.py) in every field, and every page in Chromium: nothing it carries runs.

Pages come from walking the URL conf (so a new page is visited without anyone listing it) and the Django admin's
registry (each model's changelist and change form); the annotator's pages are walked as annotator A, with the
item rendered and after the htmx swap to the next one. Each page is checked for markers that fired, dialogs,
page errors, requests the corpus asked for, and elements or attributes it injected. The walk runs once with the
app's CSP removed, so the sanitiser is proven alone, and once with it, where any violation is a failure too: an
injected script that only the CSP stopped is a hole in the sanitiser.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

import pytest
from django.conf import settings
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from annotate.models import Item

from .xss_corpus import BY_ID, LIVE_IN, MARK, NEVER_LIVE_ALONE, PAYLOADS, Corpus, world_build

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CSP_MIDDLEWARE = "csp.middleware.CSPMiddleware"
EVERYONES_ROUTES = {"home", "account"}
ANNOTATOR_ROUTES = {"invitation-accept"}  # and every route named annotate*: the annotator's own pages
SKIPPED_PREFIXES = ("api/", "admin/")  # the API is not a page; the admin is walked from its registry
NOT_PAGES = {"healthz", "logout"}  # a health probe, and a view whose GET would end the session being walked

INIT_SCRIPT = """
(() => {
  window.__xssFired = [];
  window.__cspViolations = [];
  window.MARK = (n) => { window.__xssFired.push(String(n)); };
  document.addEventListener("securitypolicyviolation", (e) => {
    window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}: ${e.sample || ""}`);
  });
})();
""".replace("MARK", MARK)

# What the corpus would leave in the DOM had a payload got through as markup, not text. Attribute values that
# hold a marker are fine where they are data (a form field's value, a title); as handlers, links, styles or
# htmx instructions they are not.
DOM_CHECK = r"""
(mark) => {
  const found = [];
  const bad = (el, why) => found.push(`${why}: ${el.outerHTML.slice(0, 240)}`);
  const isJsonData = (el) => {
    if (el.type !== "application/json") return false;
    try { JSON.parse(el.textContent); return true; } catch (e) { return false; }
  };
  // hx-confirm and hx-prompt are text htmx shows in a dialog, not instructions.
  const isHtmx = (name) => /^(data-)?hx-/.test(name) && !/^(data-)?hx-(confirm|prompt)$/.test(name);
  const urlAttrs = new Set(["href", "src", "action", "formaction", "xlink:href", "data", "poster", "background"]);
  for (const el of document.querySelectorAll("*")) {
    const tag = el.tagName.toLowerCase();
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      const value = attr.value;
      if (name.startsWith("on") && value.includes(mark)) bad(el, `event handler ${name}`);
      else if (isHtmx(name) && (value.includes(mark) || /^\/admin\//.test(value))) bad(el, `htmx attribute ${name}`);
      else if (urlAttrs.has(name) && tag !== "link" && /^\s*(javascript|vbscript|data):/i.test(value))
        bad(el, `${name} with a ${value.split(":")[0]}: URL`);
      else if (name === "style" && (value.includes(mark) || /url\s*\(/i.test(value))) bad(el, "style attribute");
      else if (name === "srcdoc") bad(el, "srcdoc");
    }
    if ((tag === "script" || tag === "style") && el.textContent.includes(mark) && !isJsonData(el))
      bad(el, `<${tag}> holding a marker`);
    if (["iframe", "object", "embed", "frame", "base", "math", "mglyph", "maction", "noscript"].includes(tag))
      bad(el, `<${tag}> element`);
    if (tag === "meta" && el.hasAttribute("http-equiv")) bad(el, "<meta http-equiv>");
    if (tag === "svg" && el.querySelector("script")) bad(el, "<svg> with a script");
    if (tag === "img" && el.closest(".md")) bad(el, "an image in rendered Markdown");
    if (tag === "a" && el.closest(".md") && el.hasAttribute("href")) {
      if (!/^(https?:|mailto:)/i.test(el.getAttribute("href"))) bad(el, "a Markdown link not to http(s) or mailto");
      if ((el.getAttribute("rel") || "") !== "noopener noreferrer nofollow") bad(el, "a Markdown link without rel");
    }
  }
  const text = document.body ? document.body.innerText : "";
  if (text.includes("tpl49tpl")) found.push("a template expression was evaluated (tpl49tpl)");
  if (text.includes("DEFAULT_MESSAGE_LEVELS")) found.push("{% debug %} was rendered");
  return found;
}
"""
MARKER_NUMBER = re.compile(re.escape(MARK) + r"\((\d+)\)|/__xss/(\d+)/")


@dataclass
class Walk:
    """What went wrong on which page; the report names page, field and payload."""

    corpus: Corpus
    mode: str
    problems: list[str] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)
    expected: int = 0

    def add(self, page_name: str, what: str) -> None:
        origins = sorted({self.corpus.origin(int(a or b)) for a, b in MARKER_NUMBER.findall(what)})
        where = f" [{'; '.join(origins)}]" if origins else ""
        self.problems.append(f"[{self.mode}] {page_name}: {what}{where}")

    def assert_clean(self) -> None:
        assert not self.problems, f"{len(self.problems)} problems on {len(self.visited)} pages:\n" + "\n".join(
            self.problems
        )
        assert self.expected and len(self.visited) >= self.expected, f"{self.expected} pages, visited {self.visited}"


def _allows_get(view) -> bool:
    """False for a view behind `require_POST` (or any `require_http_methods` without GET), found by unwrapping
    its decorators: navigating to those only shows Chromium's error page."""
    while view is not None:
        methods = inspect.getclosurevars(view).nonlocals.get("request_method_list") if callable(view) else None
        if methods is not None and "GET" not in methods:
            return False
        view = getattr(view, "__wrapped__", None)
    return True


def _routes(patterns=None, prefix: str = "", parameters: tuple = ()):
    """(route name, pattern text, parameter names) of every GET-able URL pattern, included ones too."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        names = (*parameters, *getattr(pattern.pattern, "converters", {}))
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern), names)
        elif isinstance(pattern, URLPattern) and _allows_get(pattern.callback):
            yield pattern.name, prefix + str(pattern.pattern), list(names)


def _url(world, name: str, parameters: list[str]) -> str:
    if name == "account-set-password":
        return world.set_password_path
    kwargs = {}
    for parameter in parameters:
        if parameter == "token":
            kwargs[parameter] = world.invitation_token if name == "invitation-accept" else world.params["upload_token"]
        elif parameter in world.params:
            kwargs[parameter] = world.params[parameter]
        else:
            raise AssertionError(f"route {name!r} has a parameter {parameter!r} the XSS world cannot fill")
    return reverse(name, kwargs=kwargs)


def page_urls(world, role: str) -> list[tuple[str, str]]:
    """(page name, path) for a role: the URL conf's routes outside the API, and for the superuser the admin."""
    urls = []
    for name, pattern, parameters in _routes():
        if pattern.startswith(SKIPPED_PREFIXES) or name in NOT_PAGES:
            continue
        annotators = name in ANNOTATOR_ROUTES or name.startswith("annotate")
        if annotators == (role == "annotator") or name in EVERYONES_ROUTES:
            urls.append((name, _url(world, name, parameters)))
    if role == "superuser":
        urls.append(("admin:index", reverse("admin:index")))
        for model in admin.site._registry:
            meta = model._meta
            urls.append((f"admin {meta.label} list", reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")))
            obj = model._default_manager.order_by("pk").first()
            if obj is not None:
                change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
                urls.append((f"admin {meta.label} change", change))
    return urls


@pytest.fixture(params=["sanitiser alone", "with the CSP"])
def csp_mode(request, live_server):
    """Sanitiser alone: no policy served (django-csp reads its settings per request, so excluding every path
    takes the header off the running live server, whose middleware chain was built at start-up) and the browser
    told to ignore any; with the CSP: the app as configured. The walk checks which one it got."""
    from django.test import override_settings

    present = CSP_MIDDLEWARE in settings.MIDDLEWARE
    if request.param == "with the CSP" and not present:
        pytest.skip(f"{CSP_MIDDLEWARE} is not in MIDDLEWARE: there is no CSP to run with")
    if request.param == "with the CSP" or not present:
        yield request.param
        return
    policy = {**(getattr(settings, "CONTENT_SECURITY_POLICY", None) or {}), "EXCLUDE_URL_PREFIXES": ["/"]}
    with override_settings(CONTENT_SECURITY_POLICY=policy):
        yield request.param


def _open(browser, walk: Walk, csp_off: bool):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=csp_off)
    context.add_init_script(INIT_SCRIPT)
    page = context.new_page()
    state = {"page": "(login)"}
    page.on("pageerror", lambda exc: walk.add(state["page"], f"page error: {exc}"))

    def on_dialog(dialog):
        walk.add(state["page"], f"dialog {dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("request", lambda request: _check_request(walk, state, request))
    context.route("**/static/**", lambda route: _static(route, STATIC_CACHE))
    return context, page, state


STATIC_CACHE: dict = {}


def _static(route, cache: dict) -> None:
    """Static files from memory after their first fetch: the live server sends each one again on every page,
    and the walk loads close to a hundred pages per role."""
    url = route.request.url
    if url not in cache:
        response = route.fetch()
        cache[url] = {"status": response.status, "headers": response.headers, "body": response.body()}
    route.fulfill(**cache[url])


def _check_request(walk: Walk, state: dict, request) -> None:
    path = request.url.split("//", 1)[-1].split("/", 1)[-1]
    if "__xss/" in request.url:
        walk.add(state["page"], f"the page requested {request.url}")
    elif path.startswith("admin/") and request.headers.get("hx-request"):
        walk.add(state["page"], f"htmx requested {request.url}")


FIRED = """() => [...window.__xssFired, ...[...document.querySelectorAll("iframe")].flatMap((f) => {
  try { return f.contentWindow.__xssFired || []; } catch (e) { return []; }
})]"""


def _inspect(walk: Walk, page, name: str) -> None:
    for number in page.evaluate(FIRED):
        walk.add(name, f"marker {MARK}({number}) fired")
    for violation in page.evaluate("() => window.__cspViolations"):
        walk.add(name, f"CSP violation {violation}")
    for finding in page.evaluate(DOM_CHECK, MARK):
        walk.add(name, f"injected {finding}")


def visit(walk: Walk, page, state: dict, base: str, name: str, path: str) -> None:
    state["page"] = f"{name} ({path})"
    try:
        response = page.goto(base + path, wait_until="load")
    except PlaywrightError as exc:
        if "Download is starting" in str(exc):
            walk.visited.append(f"{path} (a download)")  # the flags as CSV: not a page a browser renders
            return
        walk.add(state["page"], f"Chromium did not show it: {exc.message.splitlines()[0]}")
        _settle(page)
        return
    walk.visited.append(path)
    if response.status >= 400:
        walk.add(state["page"], f"answered {response.status}: the world does not reach this page, so it went unchecked")
        return
    if "html" not in (response.headers.get("content-type") or ""):
        return
    if page.locator("[hx-trigger*='load'], [hx-trigger*='every']").count():
        page.wait_for_timeout(200)  # htmx fragments loaded on `load` swap in
    _inspect(walk, page, state["page"])


def _settle(page) -> None:
    """After a failed navigation Chromium commits its error page a moment later, which would cut the next one."""
    try:
        page.wait_for_url("chrome-error://**", timeout=3000)
    except PlaywrightTimeout:
        pass


def _sign_in(context, live_server, user) -> None:
    """A session made on the server side: the walk is about what pages show, not about the sign-in form."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}])


def walk_pages(browser, live_server, world, role: str, mode: str) -> Walk:
    walk = Walk(corpus=world.corpus, mode=mode)
    context, page, state = _open(browser, walk, csp_off=mode == "sanitiser alone")
    user = world.superuser if role == "superuser" else world.annotator
    try:
        _sign_in(context, live_server, user)
        policy = page.request.get(f"{live_server.url}/").headers.get("content-security-policy")
        if (policy is None) != (mode == "sanitiser alone"):
            walk.add("/", f"the {mode!r} walk got the policy {policy!r}")
        urls = page_urls(world, role)
        walk.expected = len(urls)
        for name, path in urls:
            visit(walk, page, state, live_server.url, name, path)
        if role == "annotator":
            annotate_and_swap(walk, page, state, live_server.url, world)
    finally:
        context.route("**/*", lambda route: route.abort())
        context.close()
    return walk


def annotate_and_swap(walk: Walk, page, state: dict, base: str, world) -> None:
    """The annotate page with the item shown and prefetched, then after a submit swapped the next one in."""
    state["page"] = "annotate page, first item"
    page.goto(f"{base}/c/{world.campaign.slug}/annotate/")
    page.wait_for_selector("#current form.item fieldset.scale-row.active")
    page.wait_for_selector("#next form.item", state="attached")
    _inspect(walk, page, state["page"])
    before = page.locator("#current form.item").get_attribute("data-assignment")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    try:
        page.wait_for_function(
            "prev => { const f = document.querySelector('#current form.item');"
            " return f && f.dataset.assignment !== prev; }",
            arg=before,
            timeout=10000,
        )
    except PlaywrightTimeout:
        flash = page.locator("#flash").inner_text() if page.locator("#flash").count() else ""
        walk.add(state["page"], f"the submit did not swap the next item in (flash: {flash!r})")
        return
    page.wait_for_timeout(300)  # the next prefetch swaps in behind
    state["page"] = "annotate page, after the htmx swap"
    _inspect(walk, page, state["page"])
    walk.visited.append("annotate page (swapped)")
    walk.expected += 1


def test_the_superusers_pages_run_nothing_from_the_corpus(browser, live_server, csp_mode):
    world = world_build()
    walk = walk_pages(browser, live_server, world, "superuser", csp_mode)
    walk.assert_clean()


def test_the_annotators_pages_run_nothing_from_the_corpus(browser, live_server, csp_mode):
    world = world_build()
    assert Item.objects.filter(campaign=world.campaign, route=Item.Route.HUMAN).count() > 5
    walk = walk_pages(browser, live_server, world, "annotator", csp_mode)
    walk.assert_clean()


def _live(payload_id: str, text: str) -> str:
    """The payload as a hole would put it in a page."""
    where = LIVE_IN[payload_id]
    if where == "html":
        return text
    if where == "markdown":
        from markdown_it import MarkdownIt

        naive = MarkdownIt("commonmark", {"html": True})
        naive.validateLink = lambda url: True
        return f'<div class="md">{naive.render(text)}</div>'
    return where.replace("{p}", text)


def test_the_checks_catch_every_payload_where_it_would_be_live(browser, live_server):
    """The walk's checks are not blind: each payload, put in a page the way a hole would put it, is caught."""
    corpus = Corpus()
    walk = Walk(corpus=corpus, mode="live payloads")
    context, page, state = _open(browser, walk, csp_off=True)
    missed = []
    try:
        page.goto(f"{live_server.url}/healthz")
        for payload in PAYLOADS:
            if payload.id in NEVER_LIVE_ALONE:
                continue
            before = len(walk.problems)
            state["page"] = payload.id
            page.set_content(f"<!doctype html><html><body><main>{_live(payload.id, corpus.mark('live', payload.id))}"
                             "</main></body></html>")  # fmt: skip
            page.wait_for_timeout(50)
            _inspect(walk, page, payload.id)
            if len(walk.problems) == before:
                missed.append(payload.id)
    finally:
        context.close()
    assert not missed, f"the page checks did not notice these payloads when live: {missed}"
    assert set(NEVER_LIVE_ALONE) <= set(BY_ID)


@pytest.mark.parametrize(
    ("text", "wanted", "unwanted"),
    [
        ("[a](https://example.com/x)", '<a href="https://example.com/x" rel="noopener noreferrer nofollow">', None),
        ("[m](mailto:a@example.com)", 'href="mailto:a@example.com"', None),
        ("[j](javascript:alert(1))", None, "href"),
        ("[j](JaVaScRiPt:alert(1))", None, "href"),
        ("[d](data:text/html;base64,PHNjcmlwdD4=)", None, "href"),
        ("[r](/admin/auth/user/)", None, "href"),
        ("[p](//evil.example/)", None, "href"),
        ("![pic](data:image/png;base64,AAAA)", "pic", "<img"),
        ("![pic](javascript:alert(1))", None, "<img"),
        ("![pic](https://example.com/tracker.png)", "pic", "example.com"),
        ("<https://example.com>", 'rel="noopener noreferrer nofollow"', None),
    ],
)
def test_markdown_links_keep_safe_schemes_and_images_are_dropped(text, wanted, unwanted):
    from annotate.rendering import markdown_to_safe_html

    html = markdown_to_safe_html(text)
    assert wanted is None or wanted in html, html
    assert unwanted is None or unwanted not in html, html
