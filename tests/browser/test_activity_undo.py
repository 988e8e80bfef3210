import re

from playwright.sync_api import expect

from console.models import AuditEvent
from devices.models import Device
from groups import services
from groups.models import GroupMembership
from tests.browser.conftest import sign_in
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory


def test_a_batch_edit_is_undone_from_the_activity_page_after_its_preview(transactional_db, personas, page):
    product = personas.product
    devices = DeviceFactory.create_batch(3, product=product, firmware_version=1)
    v5 = FirmwareFactory(product=product, version=5)
    europe = GroupFactory(product=product, name="europe", devices=devices, released_firmware=v5)
    services.devices_edit_groups(product=product, devices=Device.objects.filter(pk__in=[d.pk for d in devices[:2]]),
                                 remove=[europe], actor=personas.developer)
    # Since then, one of them went back into europe by hand: the undo leaves it alone.
    services.devices_edit_groups(product=product, devices=Device.objects.filter(pk=devices[0].pk), add=[europe],
                                 actor=personas.developer)
    sign_in(page, personas.developer.username)
    page.goto("/products/acme/activity/")

    page.locator("#activity-table tr", has_text="2 devices").get_by_role("link", name=re.compile("^Undo this edit")).click()

    dialog = page.get_by_role("dialog", name="Undo this edit?")
    expect(dialog.locator("#undo-plan")).to_contain_text("1 device joins europe again")
    expect(dialog.locator("#undo-impact")).to_contain_text("1 device will be targeted for an OTA firmware update: 1 to v5.")
    dialog.locator("#undo-kept summary").click()
    expect(dialog.locator("#undo-kept")).to_contain_text(devices[0].device_id)
    expect(dialog.locator("#undo-kept")).to_contain_text("back in the group already")
    dialog.get_by_role("button", name="Undo this edit").click()

    expect(page.locator("#toast")).to_have_text("Undone: 1 device changed back.")
    expect(page.locator("#activity-table tbody tr").first).to_contain_text("undid a group edit, changing 1 device back")
    assert GroupMembership.objects.filter(group=europe).count() == 3
    assert AuditEvent.objects.filter(action="device.groups_undo").count() == 1
