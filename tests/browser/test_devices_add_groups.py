from playwright.sync_api import expect

from groups.models import Group, GroupMembership
from tests.browser.conftest import sign_in
from tests.factories import DeviceFactory, GroupFactory


def test_add_groups_on_a_device_creates_a_new_group_from_the_dropdown(transactional_db, personas, page):
    device = DeviceFactory(product=personas.product, name="truck-1")
    GroupFactory(product=personas.product, name="europe")
    sign_in(page, personas.developer.username)
    page.goto(f"/products/acme/devices/{device.device_id}/")

    page.get_by_role("button", name="+ Add groups").click()
    editor = page.locator("#device-header .group-editor")
    expect(editor).to_be_visible()
    search = page.locator("#id_groups-ts-control")
    expect(search).to_be_focused()

    search.fill("euro")
    page.locator(".ts-dropdown .option", has_text="europe").click()
    search.fill("night-shift")
    expect(page.locator(".ts-dropdown .create")).to_contain_text("Create group night-shift")
    search.press("Enter")
    page.get_by_role("button", name="Done").click()

    tags = page.locator("#device-groups")
    expect(tags.locator(".pill")).to_have_text(["europe", "night-shift"])
    expect(page.get_by_role("button", name="Edit")).to_be_visible()
    expect(page.locator("#device-history")).to_contain_text("Added to europe, night-shift")

    assert sorted(GroupMembership.objects.filter(device=device).values_list("group__name", flat=True)) == [
        "europe", "night-shift"
    ]
    assert Group.objects.filter(product=personas.product, name="night-shift").exists()


def test_cancel_leaves_the_groups_unchanged(transactional_db, personas, page):
    device = DeviceFactory(product=personas.product)
    GroupFactory(product=personas.product, name="europe", devices=[device])
    sign_in(page, personas.developer.username)
    page.goto(f"/products/acme/devices/{device.device_id}/")

    page.get_by_role("button", name="Edit").click()
    page.locator("#device-header .ts-control .item[data-value='europe'] .remove").click()
    page.get_by_role("button", name="Cancel").click()

    expect(page.locator("#device-groups .pill")).to_have_text(["europe"])
    assert list(GroupMembership.objects.filter(device=device).values_list("group__name", flat=True)) == ["europe"]
