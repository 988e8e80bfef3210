"""Playwright harness: Debian's Chromium against pytest-django's live server (real HTTP).

Every test here is marked `browser`. Without /usr/bin/chromium they are skipped, and the skip
says why. A failing test leaves a screenshot in test-artifacts/screenshots/.
"""

import os
from pathlib import Path

import pytest

from tests.factories import PASSWORD

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
AXE = next((ROOT / "static" / "vendor").glob("axe-core-*.min.js"))
# A phone as Playwright emulates one: 390 CSS pixels wide, touch, a mobile viewport.
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True, "has_touch": True}

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still
# synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(pytest.mark.skip(reason=f"browser test: {CHROMIUM} is not installed (apt-get install chromium)"))


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


def _browser_page(chromium, live_server, request, *, name: str, **options):
    """A page in a fresh browser context; a failing test leaves a screenshot of it."""
    context = chromium.new_context(base_url=live_server.url, **options)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}{name}.png"), full_page=True)
    context.close()


@pytest.fixture
def page(chromium, live_server, request):
    yield from _browser_page(chromium, live_server, request, name="", viewport={"width": 1400, "height": 900})


@pytest.fixture
def phone(chromium, live_server, request):
    """A page in a phone-sized browser."""
    yield from _browser_page(chromium, live_server, request, name="-phone", **PHONE)


def assert_accessible(page, what: str) -> None:
    """Run axe-core over the page as it is now (an open dialog included) and fail on any
    serious or critical violation, naming the rule and the elements."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # From our own origin: the Content-Security-Policy refuses an inline copy.
        page.add_script_tag(url=f"/static/vendor/{AXE.name}")
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    bad = [v for v in results["violations"] if v["impact"] in ("serious", "critical")]
    report = "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {', '.join(n['target'][0] for n in v['nodes'][:3])}" for v in bad
    )
    assert not bad, f"{what}: {report}"


def assert_fits(page, what: str) -> None:
    """Nothing makes the page scroll sideways, and an open dialog's buttons are on screen."""
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size["width"]
    widest = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth && !e.parentElement.closest('.table-wrap'))
        .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')).slice(0, 3)""")
    assert width <= viewport, f"{what}: the page is {width}px wide on a {viewport}px screen ({widest})"
    for box in page.locator("dialog[open] footer :is(button, [role=button])").all():
        rect = box.bounding_box()
        assert rect and rect["x"] >= 0 and rect["x"] + rect["width"] <= viewport, f"{what}: a dialog button is off screen"


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def sign_in(page, username: str, password: str = PASSWORD) -> None:
    """Sign in through the real login form."""
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login/" not in url)
