"""GET /products/<slug>/firmware/ and its rollout progress."""

import pytest

from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory
from tests.firmware.helpers import proven_firmware

pytestmark = pytest.mark.django_db


def test_it_lists_versions_newest_first_with_badges_groups_and_device_counts(client, personas):
    product = personas.product
    v3 = FirmwareFactory(product=product, version=3, title="Stable", uploaded_by=personas.developer)
    FirmwareFactory(product=product, version=5, title="Beta build")
    GroupFactory(product=product, name="europe", released_firmware=v3)
    product.default_firmware = v3
    product.save(update_fields=["default_firmware"])
    DeviceFactory.create_batch(4, product=product, firmware_version=3)
    DeviceFactory.create_batch(2, product=personas.other_product, firmware_version=3)
    client.force_login(personas.viewer)

    response = client.get("/products/acme/firmware/")

    assert response.status_code == 200
    body = response.content.decode()
    # Row ids, not bare "v3": the page's random CSRF token can contain "v3".
    assert body.index('id="firmware-v5"') < body.index('id="firmware-v3"')
    row = body[body.index('id="firmware-v3"'):]
    row = row[: row.index("</tr>")]
    assert "Product default" in row and "europe" in row and "Stable" in row and "by developer" in row
    assert '<span class="device-count">4</span>' in row


def test_it_shows_the_upload_prompt_when_there_is_no_firmware(client, personas):
    client.force_login(personas.developer)

    response = client.get("/products/acme/firmware/")

    assert "Upload your first firmware" in response.content.decode()


def test_read_only_members_see_no_controls(client, personas):
    FirmwareFactory(product=personas.product, version=3)
    client.force_login(personas.support)

    body = client.get("/products/acme/firmware/").content.decode()

    assert "Release this firmware" not in body
    assert "/firmware/upload/" not in body
    assert "/delete/" not in body


def test_delete_is_offered_only_for_versions_never_released(client, personas):
    FirmwareFactory(product=personas.product, version=3, ever_released=True)
    FirmwareFactory(product=personas.product, version=4)
    client.force_login(personas.developer)

    body = client.get("/products/acme/firmware/").content.decode()

    assert "/products/acme/firmware/4/delete/" in body
    assert "/products/acme/firmware/3/delete/" not in body


def test_outsiders_get_404(client, personas):
    client.force_login(personas.outsider)

    assert client.get("/products/acme/firmware/").status_code == 404


def test_anonymous_users_are_sent_to_sign_in(client, personas):
    response = client.get("/products/acme/firmware/")

    assert response.status_code == 302 and "/login/" in response["Location"]


def test_post_is_not_allowed(client, personas):
    client.force_login(personas.developer)

    assert client.post("/products/acme/firmware/").status_code == 405


def test_an_htmx_request_gets_only_the_table(client, personas):
    FirmwareFactory(product=personas.product, version=3)
    client.force_login(personas.viewer)

    response = client.get("/products/acme/firmware/", headers={"HX-Request": "true"})

    body = response.content.decode()
    assert "<html" not in body
    assert body.lstrip().startswith('<div id="firmware-table"')
    assert response["Vary"].count("HX-Request") == 1


def test_the_list_takes_the_same_number_of_queries_for_any_number_of_versions_and_devices(client, personas, django_assert_num_queries):
    product = personas.product
    client.force_login(personas.developer)
    client.get("/products/acme/firmware/")
    for round_ in range(2):
        for version in range(round_ * 10 + 1, round_ * 10 + 8):
            firmware = FirmwareFactory(product=product, version=version, uploaded_by=personas.developer)
            GroupFactory(product=product, released_firmware=firmware, devices=DeviceFactory.create_batch(3, product=product, firmware_version=version))
        # session, user, membership, versions, released groups, device counts, product switcher
        with django_assert_num_queries(7):
            assert client.get("/products/acme/firmware/").status_code == 200


def test_rollout_progress_counts_targeted_updated_failed_and_pending(client, personas):
    from firmware.models import FirmwareUpdate

    product = personas.product
    v5 = proven_firmware(product, 5)
    updated = DeviceFactory.create_batch(3, product=product, firmware_version=5)
    failed = DeviceFactory(product=product, firmware_version=4)
    waiting = DeviceFactory.create_batch(2, product=product, firmware_version=4)
    GroupFactory(product=product, name="beta", released_firmware=v5, devices=[*updated, failed, *waiting])
    FirmwareUpdate.objects.create(product=product, device=failed, from_version=4, to_version=5, status="failed")
    FirmwareUpdate.objects.create(product=product, device=waiting[0], from_version=4, to_version=5)
    client.force_login(personas.viewer)

    response = client.get("/products/acme/firmware/progress/", headers={"HX-Request": "true"})

    body = response.content.decode()
    cell = body[body.index('id="rollout-5"'):]
    cell = cell[: cell.index('id="rollout-', 5) if 'id="rollout-' in cell[5:] else len(cell)]
    assert "<strong>6</strong> targeted" in cell
    assert "3 updated" in cell and "1 failed" in cell and "2 pending" in cell
    assert 'hx-swap-oob="true"' in cell
    assert "<html" not in body


def test_rollout_progress_is_one_statement_over_the_fleet(client, personas, django_assert_num_queries):
    product = personas.product
    v5 = proven_firmware(product, 5)
    client.force_login(personas.viewer)
    for size in (2, 30):
        GroupFactory(product=product, released_firmware=v5, devices=DeviceFactory.create_batch(size, product=product))
        # session, user, membership, the versions released to groups, rollouts, versions
        with django_assert_num_queries(7):  # +1: the live rollout, if any
            client.get("/products/acme/firmware/progress/", headers={"HX-Request": "true"})


def test_rollout_progress_without_javascript_is_a_full_page(client, personas):
    proven_firmware(personas.product, 5)
    client.force_login(personas.viewer)

    body = client.get("/products/acme/firmware/progress/").content.decode()

    assert "<html" in body and "Rollout progress" in body


def test_a_restricted_member_sees_only_their_groups_tags(client, personas):
    v3 = FirmwareFactory(product=personas.product, version=3)
    GroupFactory(product=personas.product, name="secret-customer", released_firmware=v3)
    personas.restricted_group.released_firmware = v3
    personas.restricted_group.save(update_fields=["released_firmware"])
    client.force_login(personas.restricted)

    body = client.get("/products/acme/firmware/").content.decode()

    assert "partner-fleet" in body
    assert "secret-customer" not in body
