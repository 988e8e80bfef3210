"""Refused requests in Chromium: members see only the actions they may take, and a request the
server refuses anyway (the role changed meanwhile) shows the server's reason."""

from playwright.sync_api import expect

from console.models import Membership, Role
from tests.browser.conftest import sign_in
from tests.factories import DeviceFactory, FirmwareFactory


def test_a_member_restricted_to_groups_sees_no_upload_or_delete(transactional_db, personas, page):
    FirmwareFactory(product=personas.product, version=2)
    sign_in(page, personas.restricted.username)
    page.goto("/products/acme/firmware/")

    expect(page.locator("#firmware-v2")).to_be_visible()
    expect(page.get_by_role("button", name="Upload")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)


def test_a_refused_htmx_request_shows_the_servers_message(transactional_db, personas, page):
    device = DeviceFactory(product=personas.product)
    sign_in(page, personas.developer.username)
    page.goto(f"/products/acme/devices/{device.device_id}/")
    Membership.objects.filter(user=personas.developer).update(role=Role.VIEWER)

    page.get_by_role("button", name="+ Add groups").click()

    toast = page.locator("#toast")
    expect(toast).to_be_visible()
    expect(toast).to_have_text("Your role in this product cannot make changes.")
    expect(toast).to_have_attribute("role", "alert")


def test_a_request_that_cannot_reach_the_server_says_so(transactional_db, personas, page):
    device = DeviceFactory(product=personas.product)
    sign_in(page, personas.developer.username)
    page.goto(f"/products/acme/devices/{device.device_id}/")
    page.context.set_offline(True)

    page.get_by_role("button", name="+ Add groups").click()

    expect(page.locator("#toast")).to_contain_text("The server could not be reached")
