"""Upload a firmware, prove it on a development device, release it to a group: in Chromium."""

import re
from pathlib import Path

from playwright.sync_api import expect

from devices.models import Device
from firmware.models import Firmware
from groups.models import Group
from tests.browser.conftest import ARTIFACTS, sign_in
from tests.factories import DeviceFactory, GroupFactory
from tests.gateway import basic, keyed_device


def test_a_developer_uploads_proves_and_releases_firmware_to_a_group(transactional_db, personas, page, tmp_path):
    product = personas.product
    europe = GroupFactory(product=product, name="europe", color="#22c55e",
                          devices=DeviceFactory.create_batch(37, product=product, firmware_version=4))
    GroupFactory(product=product, name="beta", color="#8b5cf6")
    bench, bench_key = keyed_device(product, name="bench-unit", development=True, firmware_version=4)
    image = Path(tmp_path) / "tracker-v5.bin"
    image.write_bytes(b"\x7fFIRMWARE" * 512)

    sign_in(page, personas.developer.username)
    page.goto("/products/acme/firmware/")
    expect(page.get_by_text("Upload your first firmware", exact=False).first).to_be_visible()

    page.get_by_role("button", name="Upload").first.click()
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_role("heading", name="Upload firmware")).to_be_visible()
    dialog.get_by_label("Version").fill("5")
    dialog.get_by_label("Title").fill("Battery saver")
    dialog.get_by_label("Binary file").set_input_files(str(image))
    dialog.get_by_role("button", name="Upload").click()
    expect(page.locator("dialog[open]")).to_have_count(0)
    row = page.locator("#firmware-v5")
    expect(row).to_contain_text("Battery saver")
    expect(row).to_contain_text("Not released")

    # The development device flashes v5 and reports it at its next handshake, through the gateway.
    reported = page.request.post("/v1/device/handshake", data={"firmware_version": 5},
                                 headers={"Authorization": basic(bench.device_id, bench_key)})
    assert reported.status == 200

    row.get_by_role("button", name="Release this firmware").click()
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_role("heading", name="Release this firmware")).to_be_visible()
    dialog.locator(".ts-control input").click()
    page.locator(".ts-dropdown .option", has_text="europe").click()
    dialog.get_by_role("heading", name="Release this firmware").click()
    dialog.get_by_role("button", name="Next").click()

    dialog = page.locator("dialog[open]")
    expect(dialog.locator("#impact-total")).to_have_text("37")
    expect(dialog).to_contain_text("devices will be targeted for an OTA update to v5")
    expect(dialog.locator(".target-groups")).to_contain_text("europe")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "firmware-release-confirm.png"))
    dialog.get_by_role("button", name="Release this firmware").click()

    expect(page.locator("dialog[open]")).to_have_count(0)
    expect(row.locator(".released-to .pill")).to_have_text(["europe"])
    expect(row.locator(".rollout")).to_contain_text(re.compile(r"37\s+targeted"))
    page.screenshot(path=str(ARTIFACTS / "firmware-list.png"), full_page=True)

    europe.refresh_from_db()
    assert europe.released_firmware == Firmware.objects.get(product=product, version=5)
    assert Firmware.objects.get(product=product, version=5).ever_released is True
    assert Device.objects.with_target().filter(target_version=5).count() == 37
    assert Group.objects.get(name="beta").released_firmware is None
