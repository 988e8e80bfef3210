import re

from playwright.sync_api import expect

from devices.models import Device
from tests.browser.conftest import sign_in
from tests.factories import DeviceFactory, GroupFactory


def choose_with_keyboard(page, field_id, name):
    search = page.locator(f"#{field_id}-ts-control")
    search.press_sequentially(name)
    # Tom Select refreshes its options a moment after typing; Enter picks the active one.
    expect(page.locator(f"#{field_id}-ts-dropdown .option.active")).to_have_attribute("data-value", name)
    search.press("Enter")


def shown_names(page):
    return sorted(page.locator("#device-table tbody tr td:nth-child(2)").all_inner_texts())


def test_filtering_by_two_groups_any_of_then_all_of_with_a_shareable_address(transactional_db, personas, page):
    product = personas.product
    only_europe = DeviceFactory(product=product, name="only-europe")
    only_beta = DeviceFactory(product=product, name="only-beta")
    both = DeviceFactory(product=product, name="both")
    DeviceFactory(product=product, name="neither")
    europe = GroupFactory(product=product, name="europe", devices=[only_europe, both])
    beta = GroupFactory(product=product, name="beta", devices=[only_beta, both])
    sign_in(page, personas.viewer.username)
    page.goto("/products/acme/devices/")
    expect(page.locator("#device-table tbody tr")).to_have_count(4)

    page.locator("#id_groups-ts-control").focus()
    choose_with_keyboard(page, "id_groups", "europe")
    choose_with_keyboard(page, "id_groups", "beta")
    page.keyboard.press("Escape")

    expect(page).to_have_url(re.compile(r"groups=europe&groups=beta"))
    expect(page.locator("#device-table tbody tr")).to_have_count(3)
    expected_any = sorted(Device.objects.in_groups([europe.id, beta.id]).values_list("name", flat=True))
    assert shown_names(page) == expected_any == ["both", "only-beta", "only-europe"]

    page.get_by_label("Match").select_option("all")
    expect(page).to_have_url(re.compile(r"groups_match=all"))
    expect(page.locator("#device-table tbody tr")).to_have_count(1)
    expected_all = list(Device.objects.in_groups([europe.id, beta.id], match_all=True).values_list("name", flat=True))
    assert shown_names(page) == expected_all == ["both"]

    # The address is the whole filter: opening it anew shows the same devices, and Back works.
    shared = page.url
    page.goto("/products/acme/devices/")
    page.goto(shared)
    expect(page.locator("#device-table tbody tr")).to_have_count(1)
    page.go_back()
    expect(page.locator("#device-table tbody tr")).to_have_count(4)
