from playwright.sync_api import expect

from groups import services
from tests.browser.conftest import sign_in
from tests.factories import DeviceFactory, GroupFactory


def test_a_group_tag_opens_its_page_which_edits_in_place_and_leads_to_its_devices(transactional_db, personas, page):
    devices = DeviceFactory.create_batch(3, product=personas.product, firmware_version=2)
    group = GroupFactory(product=personas.product, name="europe")
    services.devices_edit_groups(
        product=personas.product, devices=type(devices[0]).objects.filter(pk__in=[d.pk for d in devices]),
        add=[group], actor=personas.admin,
    )
    sign_in(page, personas.admin.username)
    page.goto("/products/acme/groups/")

    page.locator("#group-table").get_by_role("link", name="europe", exact=True).click()
    expect(page).to_have_url(f"/products/acme/groups/{group.id}/")
    expect(page.get_by_role("heading", name="Versions its devices run")).to_be_visible()
    expect(page.locator(".version-bars").first).to_contain_text("v2")
    expect(page.get_by_role("heading", name="Activity")).to_be_visible()
    expect(page.locator(".group-page")).to_contain_text("Added devices to the group (3 devices changed by this edit)")

    page.get_by_role("button", name="Edit", exact=True).click()
    dialog = page.get_by_role("dialog", name="Edit group europe")
    dialog.get_by_label("Description").fill("West of the EU")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator(".group-page")).to_contain_text("West of the EU")
    expect(page.locator(".group-page")).to_contain_text("Edited the group's description or color")

    page.get_by_role("link", name="Show them in the devices list").click()
    expect(page.locator("#device-table tbody tr")).to_have_count(3)
    page.go_back()
    expect(page).to_have_url(f"/products/acme/groups/{group.id}/")
