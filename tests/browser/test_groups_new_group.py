import re

from playwright.sync_api import expect

from groups.models import Group
from tests.browser.conftest import sign_in
from tests.factories import DeviceFactory


def test_a_developer_creates_a_group_in_the_new_group_modal_and_can_filter_by_it_at_once(transactional_db, personas, page):
    DeviceFactory.create_batch(3, product=personas.product)
    sign_in(page, personas.developer.username)
    page.goto("/products/acme/devices/")

    page.get_by_role("button", name="New Group").click()
    dialog = page.get_by_role("dialog", name="New Device Group")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Name")).to_be_focused()
    expect(dialog).to_contain_text("Lowercase letters, digits, - and _ only")

    dialog.get_by_label("Name").fill("Europe Beta")
    dialog.get_by_role("button", name="Create group").click()
    expect(dialog.locator(".errorlist")).to_contain_text("“Europe Beta” is not a valid group name")
    expect(dialog.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    assert not Group.objects.filter(name__iexact="europe beta").exists()

    dialog.get_by_label("Name").fill("europe-beta")
    dialog.get_by_label("Description").fill("Beta testers in the EU")
    dialog.get_by_role("button", name="Create group").click()

    expect(page.locator("#modal dialog")).to_have_count(0)
    expect(page.locator("#toast")).to_have_text("Group europe-beta created.")
    # The filter picked up the new group without a page reload.
    expect(page.locator("#id_groups option[value='europe-beta']")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/products/acme/devices/$"))

    group = Group.objects.get(product=personas.product, name="europe-beta")
    assert group.description == "Beta testers in the EU"
    assert re.fullmatch(r"#[0-9a-f]{6}", group.color)


def test_a_duplicate_name_is_refused_inline(transactional_db, personas, page):
    sign_in(page, personas.developer.username)
    page.goto("/products/acme/groups/")

    page.get_by_role("button", name="New Group").click()
    dialog = page.get_by_role("dialog", name="New Device Group")
    dialog.get_by_label("Name").fill("partner-fleet")
    dialog.get_by_role("button", name="Create group").click()

    expect(dialog.locator(".errorlist")).to_contain_text("A group named “partner-fleet” already exists")
    assert Group.objects.filter(product=personas.product).count() == 1
