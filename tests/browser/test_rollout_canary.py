"""A canary release through the dialog that halts by itself on failures reported through the
gateway's services, is resumed with an acknowledgement and completes: in Chromium, the rollout
page updating itself without a reload."""

from datetime import timedelta

from playwright.sync_api import expect

from devices.models import Device
from firmware import services
from firmware.models import Rollout
from firmware.services import rollouts
from tests.browser.conftest import ARTIFACTS, assert_accessible, assert_fits, sign_in
from tests.factories import DeviceFactory, GroupFactory
from tests.firmware.helpers import proven_firmware
from tests.firmware.test_rollouts import pass_time
from tests.tasks import run_due_tasks


def report(device, version):
    device = Device.objects.get(pk=device.pk)
    return services.device_handshake(device=device, firmware_version=version)


def failed(device, reason):
    device = Device.objects.get(pk=device.pk)
    services.device_update_failed(device=device, version=5, reason=reason)


def fleet(personas, size=40):
    product = personas.product
    v4, v5 = proven_firmware(product, 4), proven_firmware(product, 5)
    devices = DeviceFactory.create_batch(size, product=product, firmware_version=4)
    everyone = GroupFactory(product=product, name="everyone", color="#0ea5e9", devices=devices)
    services.firmware_release(firmware=v4, groups=[everyone], actor=personas.developer)
    GroupFactory(product=product, name="prerelease", color="#8b5cf6", devices=devices[:4])
    return v5, everyone, devices


def test_a_canary_rollout_halts_by_itself_is_resumed_and_completes(transactional_db, personas, page):
    v5, everyone, devices = fleet(personas)
    canary, rest = devices[:4], devices[4:]

    sign_in(page, personas.developer.username)
    page.goto("/products/acme/firmware/")
    page.locator("#firmware-v5").get_by_role("button", name="Release this firmware").click()
    dialog = page.locator("dialog[open]")
    dialog.locator(".ts-control input").click()
    page.locator(".ts-dropdown .option", has_text="everyone").click()
    dialog.get_by_role("heading", name="Release this firmware").click()
    expect(dialog.get_by_label("Soak time (minutes)")).to_be_hidden()  # all at once by default
    dialog.get_by_label("Custom stages").first.check()
    dialog.locator("#id_stages").fill("prerelease, 100%")
    dialog.get_by_label("Soak time (minutes)").fill("10")
    dialog.get_by_label("Max failure rate (%)").fill("25")
    dialog.get_by_label("Min devices updated").fill("1")
    assert_accessible(page, "release dialog with a staged release")
    dialog.get_by_role("button", name="Next").click()

    dialog = page.locator("dialog[open]")
    expect(dialog.locator("#stage-plan")).to_contain_text("Stage 1 (prerelease): 4 devices")
    expect(dialog.locator("#stage-plan")).to_contain_text("Stage 2 (100%): 36 devices")
    expect(dialog.locator("#rollout-gate")).to_contain_text("halts by itself if more than 25% of a stage's offered devices fail")
    assert_accessible(page, "staged release confirmation")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "rollout-confirm.png"))
    dialog.get_by_role("button", name="Start the rollout").click()
    expect(page.locator("#toast")).to_contain_text("Started the staged rollout of v5: prerelease → 100%")

    notice = page.locator("#live-rollout")
    expect(notice).to_contain_text("v5 is rolling out")
    expect(notice).to_contain_text("stage 1 of 2 (prerelease)")
    notice.get_by_role("link", name="See the rollout").click()
    expect(page.locator("#rollout-status")).to_have_text("Running")
    assert_accessible(page, "rollout page")
    rollout = Rollout.objects.get()

    # The canary devices report through the gateway's services: one updates, two fail.
    for device in canary:
        assert report(device, 4).version == 5
    report(canary[0], 5)
    failed(canary[1], "flash write error")
    failed(canary[2], "flash write error")

    # The page polls: the halt shows without a reload.
    expect(page.locator("#rollout-status")).to_have_text("Halted", timeout=15_000)
    expect(page.locator("#halted-reason")).to_contain_text("Halted: 2 of 4 devices in stage 1 failed, 50.0% > 25%")
    expect(page.locator(".failure-reasons")).to_contain_text("flash write error")
    offer = report(rest[0], 4)
    assert offer is None or offer.version != 5  # nothing more is offered

    page.locator("[data-action=resume]").click()
    dialog = page.locator("dialog[open]")
    expect(dialog.locator("#action-impact")).to_contain_text("Acknowledges 2 failures so far")
    assert_accessible(page, "resume dialog")
    dialog.get_by_label("I acknowledge the 2 failures").check()
    dialog.get_by_role("button", name="Resume").click()
    expect(page.locator("#toast")).to_contain_text("Resumed the v5 rollout.")
    expect(page.locator("#rollout-status")).to_have_text("Running")

    report(canary[3], 5)
    pass_time(rollout, timedelta(minutes=11))
    run_due_tasks()
    rollout.refresh_from_db()
    assert rollout.current_stage == 1
    expect(page.locator("tr[data-stage='2']")).to_have_attribute("aria-current", "step", timeout=15_000)

    for device in rest:
        assert report(device, 4).version == 5
        report(device, 5)
    pass_time(rollout, timedelta(minutes=11))
    run_due_tasks()

    expect(page.locator("#rollout-status")).to_have_text("Completed", timeout=15_000)
    expect(page.locator("#rollout-live")).not_to_have_attribute("hx-trigger", "every 5s, rolloutChanged from:body")
    rollout.refresh_from_db()
    everyone.refresh_from_db()
    assert rollout.status == Rollout.Status.COMPLETED and everyone.released_firmware == v5
    page.screenshot(path=str(ARTIFACTS / "rollout-completed.png"), full_page=True)


def test_the_rollout_page_and_its_dialogs_fit_a_phone(transactional_db, personas, phone):
    v5, everyone, devices = fleet(personas, size=20)
    spec = rollouts.rollout_spec(product=personas.product, stages="prerelease, 10%, 100%", max_failure_percent=50)
    services.firmware_release(firmware=v5, groups=[everyone], rollout=spec, actor=personas.developer)
    for device in devices[:2]:
        report(device, 4)
    failed(devices[0], "battery too low to install the update")
    rollout = Rollout.objects.get()

    sign_in(phone, personas.developer.username)
    phone.goto(f"/products/acme/firmware/rollouts/{rollout.pk}/")
    expect(phone.locator("#rollout-status")).to_be_visible()
    assert_fits(phone, "rollout page on a phone")
    assert_accessible(phone, "rollout page on a phone")
    phone.screenshot(path=str(ARTIFACTS / "rollout-phone.png"), full_page=True)
    phone.locator("[data-action=abort]").click()
    expect(phone.locator("dialog[open] #action-impact")).to_be_visible()
    assert_fits(phone, "abort dialog on a phone")
    assert_accessible(phone, "abort dialog")
    phone.goto("/products/acme/firmware/rollouts/")
    assert_fits(phone, "rollouts list on a phone")
    phone.goto("/products/acme/firmware/")
    expect(phone.locator("#live-rollout")).to_be_visible()
    assert_fits(phone, "firmware page with a live rollout on a phone")
