"""The device page's firmware section in Chromium: lock with a preview of the new target."""

from playwright.sync_api import expect

from devices.models import Device
from tests.browser.conftest import ARTIFACTS, sign_in
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

DEVICE_ID = "00000000000000000000abcd"


def test_a_developer_locks_a_device_after_seeing_its_new_target(transactional_db, personas, page):
    product = personas.product
    FirmwareFactory(product=product, version=3, title="Stable")
    v5 = FirmwareFactory(product=product, version=5, title="Battery saver")
    device = DeviceFactory(product=product, device_id=DEVICE_ID, name="truck-7", firmware_version=5)
    GroupFactory(product=product, name="europe", devices=[device], released_firmware=v5)

    sign_in(page, personas.developer.username)
    page.goto(f"/products/acme/devices/{DEVICE_ID}/")
    section = page.locator("#device-firmware")
    expect(section).to_contain_text("released to group")
    expect(section.locator(".why .pill")).to_have_text("europe")

    section.get_by_role("button", name="Lock to a version").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Firmware version").select_option("3")
    expect(page.locator("dialog[open] #target-after")).to_have_text("v3")
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text("targeted for an OTA update to v3")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "firmware-device-lock.png"))
    dialog.get_by_role("button", name="Lock to v3").click()

    expect(page.locator("dialog[open]")).to_have_count(0)
    expect(section).to_contain_text("Locked to v3")
    expect(section.locator(".why")).to_contain_text("locked to this version")
    page.screenshot(path=str(ARTIFACTS / "firmware-device-section.png"), full_page=True)
    assert Device.objects.get(device_id=DEVICE_ID).desired_firmware_version == 3
