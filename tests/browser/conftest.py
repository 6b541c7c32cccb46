"""Chromium (Debian's, not a downloaded one) driven by Playwright against pytest-django's live server."""

import os
import shutil
import time

import pytest

CHROMIUM = os.environ.get("TANDEM_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session", autouse=True)
def _flush_retried_on_deadlock():
    """Retry the test database's flush when it deadlocks with a request still in the live server.

    The page fixture stops the page and waits for what it sent, but a poll the browser had started and not
    yet reported can reach the server after that; its join, taking table locks one by one, then deadlocks
    with TRUNCATE. PostgreSQL aborts one of the two: the request (nobody waits for it any more) or the
    flush, which is safe to run again.
    """
    from django.core.management.base import CommandError
    from django.test import TransactionTestCase

    original = TransactionTestCase._fixture_teardown

    def teardown(self):
        for attempt in range(3):
            try:
                return original(self)
            except CommandError as exc:
                if "deadlock detected" not in str(exc.__cause__) or attempt == 2:
                    raise
                time.sleep(0.5)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TransactionTestCase, "_fixture_teardown", teardown)
        yield


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs the Debian packages chromium and chromium-driver")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium chromium-driver)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop; Django must allow sync DB calls from this thread.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: errors.append(f"unexpected dialog: {dialog.message}"))
    page.js_errors = errors
    in_flight: set = set()
    # Lambdas, not the bound set methods: Playwright inspects a handler's signature, which builtins lack.
    page.on("request", lambda request: in_flight.add(request))
    page.on("requestfinished", lambda request: in_flight.discard(request))
    page.on("requestfailed", lambda request: in_flight.discard(request))
    yield page
    _quiesce(context, page, in_flight)
    context.close()
    assert not errors, f"JavaScript errors or dialogs in the page: {errors}"


def _quiesce(context, page, in_flight: set, timeout_ms: int = 15000) -> None:
    """Stop the page from sending anything new and wait for what it already sent to be answered.

    A polling page (htmx `every 5s`) may have a request in the live server when the test ends; the
    test database's flush (TRUNCATE) would then deadlock with that request's reads.
    """
    context.route("**/*", lambda route: route.abort())
    waited = 0
    while in_flight and waited < timeout_ms and not page.is_closed():
        page.wait_for_timeout(50)
        waited += 50
    _wait_for_other_queries(timeout_ms - waited)


def _wait_for_other_queries(timeout_ms: int) -> None:
    """Wait until no other connection to the test database is running a statement.

    A request the page gave up on (htmx replacing a poll, a navigation) no longer counts as in flight for
    the browser, yet the live server may still be running its queries; a join taking its table locks one by
    one deadlocks with the flush's TRUNCATE taking them in another order.
    """
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND state = 'active'"
    )
    deadline = time.monotonic() + max(timeout_ms, 1000) / 1000
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(query)
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.05)


def login(page, live_server, user, password="pw-for-tests-123"):
    page.goto(f"{live_server.url}/accounts/login/")
    # The username box has autofocus; typing before the browser applied it would lose keystrokes.
    # Predicates are arrow functions: a bare expression that needs polling is evaluated with eval, which
    # the CSP (no 'unsafe-eval') refuses.
    page.wait_for_function("() => document.activeElement && document.activeElement.name === 'username'")
    page.keyboard.type(user.username)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/")
