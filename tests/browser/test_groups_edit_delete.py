from playwright.sync_api import expect

from groups.models import Group, GroupMembership
from tests.browser.conftest import sign_in
from tests.factories import DeviceFactory, GroupFactory


def test_a_group_is_renamed_in_a_modal_and_deleted_after_a_confirmation_with_numbers(transactional_db, personas, page):
    devices = DeviceFactory.create_batch(3, product=personas.product)
    group = GroupFactory(product=personas.product, name="europe", devices=devices)
    sign_in(page, personas.admin.username)
    page.goto("/products/acme/groups/")

    page.get_by_role("link", name="Edit europe").click()
    dialog = page.get_by_role("dialog", name="Edit group europe")
    dialog.get_by_label("Name").fill("eu-west")
    dialog.get_by_label("Description").fill("West of the EU")
    dialog.get_by_role("button", name="Save").click()

    expect(page.locator("#modal dialog")).to_have_count(0)
    expect(page.locator("#group-table")).to_contain_text("eu-west")
    group.refresh_from_db()
    assert (group.name, group.description) == ("eu-west", "West of the EU")

    page.get_by_role("link", name="Delete eu-west").click()
    dialog = page.get_by_role("dialog", name="Delete group eu-west?")
    expect(dialog).to_contain_text("3 devices will leave the group.")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    dialog.get_by_role("button", name="Delete group").click()

    expect(page.locator("#toast")).to_have_text("Group eu-west deleted; 3 devices left it.")
    expect(page.locator("#group-table")).not_to_contain_text("eu-west")
    assert not Group.objects.filter(pk=group.pk).exists()
    assert not GroupMembership.objects.filter(device__in=devices).exists()
