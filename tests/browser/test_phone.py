"""The console on a phone (390 px, Playwright's mobile emulation): no page scrolls sideways, the
navigation folds behind "Menu", and dialogs fit with their buttons in reach."""

import re

from playwright.sync_api import expect

from firmware.models import Firmware
from groups.models import Group
from tests.browser.conftest import assert_accessible, assert_fits, sign_in
from tests.factories import DeviceFactory, GroupFactory
from tests.firmware.helpers import proven_firmware

PAGES = ["/products/acme/", "/products/acme/devices/", "/products/acme/groups/", "/products/acme/firmware/",
         "/products/acme/activity/", "/products/acme/team/", "/account/tokens/?product=acme"]


def test_every_page_fits_a_phone_and_the_navigation_folds(transactional_db, personas, phone):
    europe = GroupFactory(product=personas.product, name="europe", description="Trucks in the EU")
    device = DeviceFactory(product=personas.product, name="truck-1", firmware_version=3)
    europe.memberships.create(device=device)
    proven_firmware(personas.product, 3, title="Stable")
    sign_in(phone, personas.developer.username)

    for url in [*PAGES, f"/products/acme/devices/{device.device_id}/", f"/products/acme/groups/{europe.id}/"]:
        phone.goto(url)
        phone.wait_for_load_state("networkidle")
        assert_fits(phone, url)
        assert_accessible(phone, f"phone {url}")

    phone.goto("/products/acme/devices/")
    links = phone.get_by_role("navigation", name="Product").get_by_role("link")
    expect(links.first).to_be_hidden()
    phone.get_by_role("button", name="Menu").click()
    expect(phone.get_by_role("button", name="Menu")).to_have_attribute("aria-expanded", "true")
    phone.get_by_role("navigation", name="Product").get_by_role("link", name="Firmware").click()
    expect(phone).to_have_url(re.compile(r"/products/acme/firmware/$"))


def test_a_group_is_created_and_a_firmware_released_on_a_phone(transactional_db, personas, phone):
    DeviceFactory.create_batch(3, product=personas.product, firmware_version=3)
    v4 = proven_firmware(personas.product, 4, title="Battery saver")
    sign_in(phone, personas.developer.username)

    phone.goto("/products/acme/groups/")
    phone.get_by_role("button", name="New Group").click()
    dialog = phone.get_by_role("dialog", name="New Device Group")
    expect(dialog).to_be_visible()
    assert_fits(phone, "New Group dialog")
    dialog.get_by_label("Name").fill("night-shift")
    dialog.get_by_role("button", name="Violet").click()
    dialog.get_by_role("button", name="Create group").click()
    expect(phone.locator("dialog[open]")).to_have_count(0)
    assert Group.objects.get(product=personas.product, name="night-shift").color == "#8b5cf6"

    phone.goto("/products/acme/firmware/")
    phone.locator("#firmware-v4").get_by_role("button", name="Release this firmware").click()
    dialog = phone.locator("dialog[open]")
    expect(dialog.get_by_role("button", name="Next")).to_be_in_viewport()
    assert_fits(phone, "Release dialog")
    dialog.get_by_label("Product default").check()
    dialog.get_by_role("button", name="Next").click()
    dialog = phone.locator("dialog[open]")
    expect(dialog.get_by_role("heading")).to_have_text("Release v4?")
    assert_fits(phone, "Release confirmation")
    dialog.get_by_role("button", name="Release this firmware").click()
    expect(phone.locator("dialog[open]")).to_have_count(0)
    personas.product.refresh_from_db()
    assert personas.product.default_firmware == Firmware.objects.get(pk=v4.pk)
