"""Release and delete dialogs say what can and cannot happen before anyone clicks, with a way on."""

import pytest

from firmware.models import Firmware
from tests.conftest import HTMX
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory
from tests.firmware.helpers import proven_firmware

pytestmark = pytest.mark.django_db


def test_releasing_a_version_no_device_has_run_is_one_state_with_a_way_on(personas, client_for):
    FirmwareFactory(product=personas.product, version=6)
    GroupFactory(product=personas.product, name="europe")

    html = client_for(personas.developer).get("/products/acme/firmware/6/release/", **HTMX).content.decode()

    assert "v6 cannot be released yet" in html and "No device has reported running v6 yet" in html
    assert 'href="/products/acme/devices/?development=true"' in html
    assert ">Next</button>" not in html and "<form" not in html
    assert ">Close</a>" in html


def test_next_with_nothing_chosen_for_an_unreleased_version_asks_for_a_group(personas, client_for):
    proven_firmware(personas.product, 6)

    response = client_for(personas.developer).get("/products/acme/firmware/6/release/confirm/", **HTMX)

    html = response.content.decode()
    assert "Choose the groups to release v6 to, or make it the product default." in html
    assert "Unrelease" not in html and ">Next</button>" in html


def test_a_released_version_with_nothing_chosen_is_an_unrelease(personas, client_for):
    v6 = proven_firmware(personas.product, 6)
    GroupFactory(product=personas.product, name="europe", released_firmware=v6)

    html = client_for(personas.developer).get("/products/acme/firmware/6/release/confirm/", **HTMX).content.decode()

    assert "Unrelease v6?" in html


def test_the_delete_dialog_names_the_locked_devices_up_front_with_a_link(personas, client_for):
    FirmwareFactory(product=personas.product, version=2)
    DeviceFactory.create_batch(6, product=personas.product, desired_firmware_version=2)

    html = client_for(personas.developer).get("/products/acme/firmware/2/delete/", **HTMX).content.decode()

    assert "6 devices are locked to v2, so it cannot be deleted yet." in html
    assert 'href="/products/acme/devices/?locked=2"' in html
    assert "never released" not in html and "Delete v2</button>" not in html


def test_the_delete_dialog_of_a_free_version_offers_delete(personas, client_for):
    FirmwareFactory(product=personas.product, version=2)
    DeviceFactory.create_batch(3, product=personas.product, firmware_version=2)

    html = client_for(personas.developer).get("/products/acme/firmware/2/delete/", **HTMX).content.decode()

    assert "no device is locked to it" in html and "the 3 devices that report running it keep running it" in html
    assert "Delete v2</button>" in html


def test_the_delete_dialog_of_a_released_version_says_it_stays(personas, client_for):
    v2 = proven_firmware(personas.product, 2)
    Firmware.objects.filter(pk=v2.pk).update(ever_released=True)

    html = client_for(personas.developer).get("/products/acme/firmware/2/delete/", **HTMX).content.decode()

    assert "has been released, so it stays for the record" in html and "Delete v2</button>" not in html


def test_the_devices_list_filters_by_the_version_devices_are_locked_to(personas, client_for):
    locked = DeviceFactory(product=personas.product, name="held-back", desired_firmware_version=2)
    DeviceFactory(product=personas.product, name="locked-elsewhere", desired_firmware_version=3)
    DeviceFactory(product=personas.product, name="free")

    html = client_for(personas.developer).get("/products/acme/devices/?locked=2").content.decode()

    assert locked.device_id in html and "locked-elsewhere" not in html and ">free<" not in html
    assert '<option value="2" selected>To v2</option>' in html


def test_the_devices_list_shows_development_and_locked_devices_plainly(personas, client_for):
    DeviceFactory(product=personas.product, name="bench", development=True)
    DeviceFactory(product=personas.product, name="held", desired_firmware_version=2)

    html = client_for(personas.viewer).get("/products/acme/devices/").content.decode()

    assert '<span class="badge dev" title="Receives no automatic product firmware">Development</span>' in html
    assert '<span class="badge lock" title="Locked to v2">Locked</span>' in html
