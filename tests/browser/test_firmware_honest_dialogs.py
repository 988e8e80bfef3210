"""Firmware dialogs in Chromium say what can happen before anyone clicks, and lead somewhere."""

import re

from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory


def test_releasing_a_version_no_device_has_run_shows_one_state_and_the_way_on(transactional_db, personas, page):
    FirmwareFactory(product=personas.product, version=6, title="Night mode")
    GroupFactory(product=personas.product, name="europe")
    DeviceFactory(product=personas.product, name="bench", development=True)
    sign_in(page, personas.developer.username)
    page.goto("/products/acme/firmware/")

    page.locator("#firmware-v6").get_by_role("button", name="Release this firmware").click()
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_role("heading")).to_have_text("v6 cannot be released yet")
    expect(dialog.get_by_role("button", name="Next")).to_have_count(0)
    expect(dialog.get_by_role("button", name="Close")).to_be_focused()
    dialog.get_by_role("link", name="Show development devices").click()
    expect(page).to_have_url(re.compile(r"/products/acme/devices/\?development=true$"))
    expect(page.locator("#device-table")).to_contain_text("bench")


def test_the_delete_dialog_says_up_front_which_devices_hold_the_version(transactional_db, personas, page):
    FirmwareFactory(product=personas.product, version=2, title="Battery saver")
    held = DeviceFactory.create_batch(6, product=personas.product, desired_firmware_version=2)
    DeviceFactory(product=personas.product, name="not-held")
    sign_in(page, personas.developer.username)
    page.goto("/products/acme/firmware/")

    page.locator("#firmware-v2").get_by_role("button", name="Delete").click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text("6 devices are locked to v2, so it cannot be deleted yet.")
    expect(dialog).not_to_contain_text("never released")
    expect(dialog.get_by_role("button", name="Delete v2")).to_have_count(0)
    dialog.get_by_role("link", name="Show the locked devices").click()

    expect(page).to_have_url(re.compile(r"/products/acme/devices/\?locked=2$"))
    expect(page.locator("#id_locked")).to_have_value("2")
    rows = page.locator("#device-table tbody tr")
    expect(rows).to_have_count(6)
    expect(page.locator("#device-table")).not_to_contain_text("not-held")
    assert {device.device_id for device in held} == set(rows.locator("td.mono").all_inner_texts())
