from playwright.sync_api import expect

from console.models import AuditEvent
from groups.models import GroupMembership
from tests.browser.conftest import sign_in
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory


def test_a_csv_is_dry_run_then_imported_skipping_the_unknown_device(transactional_db, personas, page, tmp_path):
    product = personas.product
    devices = [DeviceFactory(product=product, serial_number=f"SN-{i}", firmware_version=1) for i in range(3)]
    v5 = FirmwareFactory(product=product, version=5)
    GroupFactory(product=product, name="beta", released_firmware=v5)
    sheet = tmp_path / "fleet.csv"
    sheet.write_text(f"device,groups\n{devices[0].device_id},beta;asia\nSN-1,beta\nSN-404,beta\n")
    sign_in(page, personas.developer.username)
    page.goto("/products/acme/groups/")

    page.get_by_role("button", name="Import CSV").click()
    dialog = page.get_by_role("dialog", name="Import group memberships")
    dialog.get_by_label("CSV file").set_input_files(str(sheet))
    dialog.get_by_role("button", name="Dry run").click()

    plan = dialog.locator("#import-plan")
    expect(plan).to_contain_text("2 devices found, 1 not found.")
    expect(plan).to_contain_text("3 memberships added, 0 removed.")
    expect(plan).to_contain_text("Groups to be created: asia.")
    expect(plan.locator("#import-impact")).to_contain_text("2 devices will be targeted for an OTA firmware update: 2 to v5.")
    expect(plan.locator("#import-not-found")).to_contain_text("Line 4: SN-404")
    assert GroupMembership.objects.count() == 0

    # The file is still chosen: importing refuses the unknown device until it is skipped.
    dialog.get_by_role("button", name="Import", exact=True).click()
    expect(dialog.locator("#import-result")).to_contain_text("Nothing was imported: 1 row(s) cannot be applied.")
    dialog.get_by_label("Skip rows that cannot be applied").check()
    dialog.get_by_role("button", name="Import", exact=True).click()

    expect(page.locator("#toast")).to_have_text("Imported: 2 devices changed (3 memberships added, 0 removed).")
    expect(page.locator("#group-table")).to_contain_text("asia")
    assert GroupMembership.objects.filter(group__name="beta").count() == 2
    assert AuditEvent.objects.get(action="device.groups_import").device_count == 2
