import pytest

from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory
from tests.conftest import HTMX

pytestmark = pytest.mark.django_db


def test_it_lists_every_group_with_color_description_device_count_and_release(personas, client_for):
    product = personas.product
    devices = DeviceFactory.create_batch(3, product=product)
    v7 = FirmwareFactory(product=product, version=7)
    GroupFactory(product=product, name="europe", color="#22c55e", description="EU fleet", devices=devices,
                 released_firmware=v7)

    response = client_for(personas.viewer).get("/products/acme/groups/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "europe" in html and "#22c55e" in html and "EU fleet" in html
    assert '<td class="num">3</td>' in html
    assert "v7" in html
    assert "<html" in html


def test_view_only_members_get_no_edit_controls(personas, client_for):
    GroupFactory(product=personas.product, name="europe")
    html = client_for(personas.viewer).get("/products/acme/groups/").content.decode()
    assert "New Group" not in html
    assert "/groups/new/" not in html and "/delete/" not in html


def test_writers_get_new_edit_and_delete_controls(personas, client_for):
    group = GroupFactory(product=personas.product, name="europe")
    html = client_for(personas.developer).get("/products/acme/groups/").content.decode()
    assert "New Group" in html
    assert f"/products/acme/groups/{group.id}/edit/" in html
    assert f"/products/acme/groups/{group.id}/delete/" in html


def test_an_htmx_refresh_returns_only_the_table(personas, client_for):
    GroupFactory(product=personas.product, name="europe")
    response = client_for(personas.viewer).get("/products/acme/groups/", **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="group-table"') and "<html" not in html
    assert "HX-Request" in response["Vary"]


def test_a_history_restore_gets_the_full_page(personas, client_for):
    response = client_for(personas.viewer).get(
        "/products/acme/groups/", **HTMX, HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert "<html" in response.content.decode()


def test_an_empty_product_says_what_to_do_next(personas, client_for):
    personas.restricted_group.delete()
    html = client_for(personas.developer).get("/products/acme/groups/").content.decode()
    assert "No device groups yet." in html and "New Group" in html


def test_a_restricted_member_sees_only_their_groups(personas, client_for):
    GroupFactory(product=personas.product, name="europe")
    html = client_for(personas.restricted).get("/products/acme/groups/").content.decode()
    assert "partner-fleet" in html and "europe" not in html


def test_outsiders_get_404(personas, client_for):
    assert client_for(personas.outsider).get("/products/acme/groups/").status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(personas, client):
    response = client.get("/products/acme/groups/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_post_is_not_allowed(personas, client_for):
    assert client_for(personas.admin).post("/products/acme/groups/").status_code == 405


def test_the_query_count_does_not_grow_with_the_number_of_groups(personas, client_for, django_assert_num_queries):
    client = client_for(personas.viewer)
    GroupFactory(product=personas.product, devices=DeviceFactory.create_batch(2, product=personas.product))
    # session, user, membership, its group restriction, groups with counts, the product switcher
    with django_assert_num_queries(5):
        client.get("/products/acme/groups/")
    for _ in range(10):
        GroupFactory(product=personas.product, devices=DeviceFactory.create_batch(2, product=personas.product))
    with django_assert_num_queries(5):
        client.get("/products/acme/groups/")
