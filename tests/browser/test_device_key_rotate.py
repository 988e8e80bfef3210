"""Rotate a device's key from its page, in Chromium: the dialog says the old key stops working
now, the new key is shown once, and the device authenticates with the new key only."""

from playwright.sync_api import expect

from devices import keys
from tests.browser.conftest import sign_in
from tests.gateway import basic, keyed_device


def test_a_developer_rotates_a_device_key_and_only_the_new_key_works(transactional_db, personas, page):
    device, old_key = keyed_device(personas.product, name="door-sensor", firmware_version=3)

    sign_in(page, personas.developer.username)
    page.goto(f"/products/acme/devices/{device.device_id}/")
    section = page.locator("#device-key")
    expect(section).to_contain_text("Set, issued")
    section.get_by_role("button", name="Rotate device key").click()

    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_role("heading", name="Rotate device key")).to_be_visible()
    expect(dialog).to_contain_text("The old key stops working now")
    dialog.get_by_role("button", name="Rotate device key").click()

    expect(dialog.get_by_role("heading", name="New device key")).to_be_visible()
    new_key = dialog.get_by_label("Device key").input_value()
    assert len(new_key) >= 22 and new_key != old_key
    dialog.get_by_role("button", name="Done").click()
    expect(page.locator("dialog[open]")).to_have_count(0)
    expect(page.locator("#device-history")).to_contain_text("Device key rotated")

    device.refresh_from_db()
    assert device.key_hash == keys.key_hash(new_key)
    for key, status in ((old_key, 401), (new_key, 200)):
        answer = page.request.post("/v1/device/handshake", data={"firmware_version": 3},
                                   headers={"Authorization": basic(device.device_id, key)})
        assert answer.status == status
    page.reload()
    expect(page.locator("body")).not_to_contain_text(new_key)
