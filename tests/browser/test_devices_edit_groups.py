from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from groups.models import GroupMembership
from tests.browser.conftest import sign_in
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory


def groups_by_device(devices):
    names = {device.pk: [] for device in devices}
    for device_pk, group in GroupMembership.objects.filter(device__in=devices).values_list("device_id", "group__name"):
        names[device_pk].append(group)
    return [sorted(names[device.pk]) for device in devices]


def pick(page, field_id, name):
    search = page.locator(f"#{field_id}-ts-control")
    search.fill(name)
    page.locator(f"#{field_id}-ts-dropdown .option[data-value='{name}']").click()
    search.press("Escape")


def test_selected_devices_get_one_group_added_and_another_removed(transactional_db, personas, page):
    product = personas.product
    now = timezone.now()
    # Newest handshake first, so the table lists them in this order.
    devices = [
        DeviceFactory(product=product, name=f"truck-{i}", firmware_version=3, last_handshake_at=now - timedelta(minutes=i))
        for i in range(4)
    ]
    v5 = FirmwareFactory(product=product, version=5)
    GroupFactory(product=product, name="europe", devices=devices)
    GroupFactory(product=product, name="beta", released_firmware=v5)
    sign_in(page, personas.developer.username)
    page.goto("/products/acme/devices/")

    expect(page.get_by_role("button", name="Edit groups")).to_be_disabled()
    page.get_by_label("Select truck-0").check()
    page.get_by_label("Select truck-2").check()
    expect(page.locator("[data-selection-count]")).to_have_text("2 selected")
    page.get_by_role("button", name="Edit groups").click()

    dialog = page.get_by_role("dialog", name="Edit groups")
    expect(dialog).to_contain_text("2 selected devices")
    pick(page, "id_add", "beta")
    expect(dialog.locator("#edit-groups-impact")).to_contain_text("2 to v5")
    # The live preview replaced part of the dialog without taking the focus away.
    expect(page.locator("#id_add-ts-control")).to_be_focused()
    pick(page, "id_remove", "europe")
    expect(dialog.locator("#edit-groups-impact")).to_contain_text(
        "2 devices will be targeted for an OTA firmware update (of 2): 2 to v5."
    )
    dialog.get_by_role("button", name="Save").click()

    expect(page.locator("#modal dialog")).to_have_count(0)
    expect(page.locator("#toast")).to_have_text("2 devices added to beta and removed from europe.")
    row = page.locator("tr", has_text="truck-0")
    expect(row.locator(".pill")).to_have_text(["beta"])
    assert groups_by_device(devices) == [["beta"], ["europe"], ["beta"], ["europe"]]


def test_select_all_matching_edits_every_device_of_the_filter_not_just_the_page(transactional_db, personas, page):
    product = personas.product
    europe_devices = DeviceFactory.create_batch(30, product=product)
    others = DeviceFactory.create_batch(2, product=product)
    GroupFactory(product=product, name="europe", devices=europe_devices)
    GroupFactory(product=product, name="asia")
    sign_in(page, personas.developer.username)
    page.goto("/products/acme/devices/?groups=europe")

    page.get_by_label("Select all on this page").check()
    page.get_by_role("button", name="Select all 30 devices matching this filter").click()
    expect(page.locator("[data-selection-count]")).to_have_text("All 30 devices selected")
    page.get_by_role("button", name="Edit groups").click()

    dialog = page.get_by_role("dialog", name="Edit groups")
    expect(dialog).to_contain_text("All 30 devices matching this filter")
    pick(page, "id_add", "asia")
    dialog.get_by_role("button", name="Save").click()

    expect(page.locator("#toast")).to_have_text("30 devices added to asia.")
    assert GroupMembership.objects.filter(group__name="asia").count() == 30
    assert groups_by_device(others) == [[], []]
