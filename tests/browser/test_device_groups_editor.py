"""The device header's group editor in Chromium: removals warn too, two tabs both keep their
edits, new group names are lowercased, and the header's badges follow a lock or development mark."""

from playwright.sync_api import expect

from groups.models import GroupMembership
from tests.browser.conftest import sign_in
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory


def groups_of(device):
    return sorted(GroupMembership.objects.filter(device=device).values_list("group__name", flat=True))


def pick(page, name):
    page.locator("#id_groups-ts-control").fill(name)
    page.locator(".ts-dropdown .option", has_text=name).first.click()


def test_removing_a_devices_last_group_warns_that_its_target_changes(transactional_db, personas, page):
    product = personas.product
    v3, v4 = FirmwareFactory(product=product, version=3), FirmwareFactory(product=product, version=4)
    product.default_firmware = v3
    product.save(update_fields=["default_firmware"])
    device = DeviceFactory(product=product, firmware_version=4)
    GroupFactory(product=product, name="europe", released_firmware=v4, devices=[device])
    sign_in(page, personas.developer.username)
    page.goto(f"/products/acme/devices/{device.device_id}/")

    page.get_by_role("button", name="Edit").click()
    page.locator("#device-header .ts-control .item .remove").click()
    page.get_by_role("button", name="Done").click()

    warning = page.locator("#device-groups-warning")
    expect(warning).to_contain_text("from v4 to v3")
    assert groups_of(device) == ["europe"]
    page.get_by_role("button", name="Done").click()
    expect(page.locator("#device-groups")).to_contain_text("In no group")
    expect(page.locator("#device-firmware")).to_contain_text("v3")
    assert groups_of(device) == []


def test_two_tabs_adding_groups_to_one_device_both_keep_their_change(transactional_db, personas, page):
    product = personas.product
    device = DeviceFactory(product=product)
    GroupFactory(product=product, name="cold-chain", color="#14b8a6")
    GroupFactory(product=product, name="customer-initech")
    sign_in(page, personas.developer.username)
    tab_b = page.context.new_page()
    url = f"/products/acme/devices/{device.device_id}/"
    page.goto(url)
    tab_b.goto(url)

    page.get_by_role("button", name="+ Add groups").click()
    tab_b.get_by_role("button", name="+ Add groups").click()
    pick(page, "cold-chain")
    # The chip takes the group's color, not one blue for all.
    expect(page.locator("#device-header .ts-control .item")).to_have_attribute("style", "--pill: #14b8a6")
    page.get_by_role("button", name="Done").click()
    expect(page.locator("#device-groups .pill")).to_have_text(["cold-chain"])

    pick(tab_b, "customer-initech")
    tab_b.get_by_role("button", name="Done").click()

    expect(tab_b.locator("#device-groups .pill")).to_have_text(["cold-chain", "customer-initech"])
    expect(tab_b.locator("#device-groups-meanwhile")).to_contain_text("it is also in cold-chain")
    expect(tab_b.locator("#device-history")).to_contain_text("Added to customer-initech")
    expect(tab_b.locator("#device-history")).not_to_contain_text("removed from")
    assert groups_of(device) == ["cold-chain", "customer-initech"]


def test_typing_a_capitalised_name_offers_the_lowercase_group_or_says_why_not(transactional_db, personas, page):
    device = DeviceFactory(product=personas.product)
    sign_in(page, personas.developer.username)
    page.goto(f"/products/acme/devices/{device.device_id}/")
    page.get_by_role("button", name="+ Add groups").click()

    search = page.locator("#id_groups-ts-control")
    search.fill("Night-Shift")
    expect(page.locator(".ts-dropdown .create")).to_contain_text("Create group night-shift")
    search.fill("night shift!")
    expect(page.locator(".ts-dropdown .no-results")).to_contain_text("lowercase letters, digits, - and _ only")


def test_the_header_badges_follow_a_development_mark_and_a_lock_at_once(transactional_db, personas, page):
    product = personas.product
    FirmwareFactory(product=product, version=3)
    device = DeviceFactory(product=product, firmware_version=3)
    sign_in(page, personas.developer.username)
    page.goto(f"/products/acme/devices/{device.device_id}/")
    header = page.locator("#device-header")

    page.get_by_role("button", name="Mark as development device").click()
    page.locator("dialog[open]").get_by_role("button", name="Mark as development device").click()
    expect(header.locator(".badge.dev")).to_have_text("Development")

    page.get_by_role("button", name="Lock to a version").click()
    page.locator("dialog[open]").get_by_label("Firmware version").select_option("3")
    page.locator("dialog[open]").get_by_role("button", name="Lock to v3").click()
    expect(header.locator(".badge.lock")).to_have_text("Locked to v3")
