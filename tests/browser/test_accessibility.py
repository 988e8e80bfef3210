"""Keyboard and accessibility in Chromium: a skip link, focus into and back out of dialogs, and
axe-core over every page and dialog with no serious or critical violation."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import assert_accessible, sign_in
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory
from tests.firmware.helpers import proven_firmware

DEVICE_ID = "00000000000000000000a11c"


@pytest.fixture
def fleet(personas):
    product = personas.product
    v3 = proven_firmware(product, 3, title="Stable")
    FirmwareFactory(product=product, version=4, title="Unproven")
    product.default_firmware = v3
    product.save(update_fields=["default_firmware"])
    europe = GroupFactory(product=product, name="europe", color="#22c55e", description="EU trucks", released_firmware=v3)
    device = DeviceFactory(product=product, device_id=DEVICE_ID, name="truck-1", firmware_version=3, desired_firmware_version=3)
    europe.memberships.create(device=device)
    personas.restricted_group.memberships.create(device=DeviceFactory(product=product, name="partner-1"))
    DeviceFactory.create_batch(5, product=product)
    return europe


PAGES = [
    "/products/acme/",
    "/products/acme/devices/",
    "/products/acme/devices/?groups=europe&locked=true",
    f"/products/acme/devices/{DEVICE_ID}/",
    "/products/acme/groups/",
    "/products/acme/firmware/",
    "/products/acme/firmware/progress/",
    "/products/acme/activity/",
    "/products/acme/team/",
    "/account/tokens/?product=acme",
]

# (page, the control that opens the dialog)
DIALOGS = [
    ("/products/acme/devices/", "role=button[name='New Group']"),
    ("/products/acme/groups/", "role=link[name='Edit europe']"),
    ("/products/acme/groups/", "role=link[name='Delete europe']"),
    ("/products/acme/firmware/", "role=button[name='Upload']"),
    ("/products/acme/firmware/", "#firmware-v3 >> role=button[name='Release this firmware']"),
    ("/products/acme/firmware/", "#firmware-v4 >> role=button[name='Release this firmware']"),
    ("/products/acme/firmware/", "#firmware-v3 >> role=button[name='Unrelease']"),
    ("/products/acme/firmware/", "#firmware-v4 >> role=button[name='Delete']"),
    (f"/products/acme/devices/{DEVICE_ID}/", "role=button[name='Change lock']"),
    (f"/products/acme/devices/{DEVICE_ID}/", "role=button[name='Unlock']"),
    (f"/products/acme/devices/{DEVICE_ID}/", "role=button[name='Mark as development device']"),
    (f"/products/acme/devices/{DEVICE_ID}/", "role=button[name='Edit']"),
]


def test_the_sign_in_page_is_accessible(transactional_db, personas, page):
    page.goto("/login/")
    assert_accessible(page, "/login/")


@pytest.mark.parametrize("persona", ["developer", "viewer", "restricted"])
def test_every_page_has_no_serious_accessibility_violation(transactional_db, personas, fleet, page, persona):
    sign_in(page, getattr(personas, persona).username)
    group = personas.restricted_group if persona == "restricted" else fleet
    for url in [*PAGES, f"/products/acme/groups/{group.id}/"]:
        page.goto(url)
        page.wait_for_load_state("networkidle")
        assert_accessible(page, f"{persona} {url}")


def test_every_dialog_has_no_serious_accessibility_violation_and_gives_focus_back(transactional_db, personas, fleet, page):
    sign_in(page, personas.admin.username)
    for url, opener in DIALOGS:
        page.goto(url)
        page.wait_for_load_state("networkidle")
        control = page.locator(opener).first
        control.focus()
        page.keyboard.press("Enter")
        if opener.endswith("[name='Edit']"):  # the header editor opens in place, not as a dialog
            expect(page.locator("#id_groups-ts-control")).to_be_focused()
            assert_accessible(page, f"{url} group editor")
            continue
        dialog = page.locator("dialog[open]")
        expect(dialog).to_be_visible()
        # The focus moved into the dialog...
        assert page.evaluate("document.querySelector('dialog[open]').contains(document.activeElement)"), opener
        assert_accessible(page, f"{url} {opener}")
        # ...and comes back to the control that opened it when it closes.
        page.keyboard.press("Escape")
        expect(page.locator("dialog[open]")).to_have_count(0)
        expect(page.locator(opener).first).to_be_focused()


def test_a_keyboard_user_skips_to_the_content_in_one_tab(transactional_db, personas, fleet, page):
    sign_in(page, personas.developer.username)
    page.goto("/products/acme/devices/")

    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.getElementById('main').contains(document.activeElement)")
    tabs = 1
    while tabs < 5 and page.evaluate("document.activeElement.textContent.trim()") != "New Group":
        page.keyboard.press("Tab")
        tabs += 1
    expect(page.get_by_role("button", name="New Group")).to_be_focused()
    assert tabs <= 3, f"{tabs} Tabs after the skip link to reach New Group"
