import pytest

from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db


def test_a_member_sees_the_products_device_count(client, personas):
    DeviceFactory.create_batch(3, product=personas.product)
    client.force_login(personas.viewer)
    response = client.get("/products/acme/")
    assert response.status_code == 200
    assert b'id="device-count">3<' in response.content


def test_the_product_is_found_by_its_integer_id_too(client, personas):
    client.force_login(personas.viewer)
    assert client.get(f"/products/{personas.product.id}/").status_code == 200


def test_an_outsider_gets_404_for_another_product(client, personas):
    client.force_login(personas.outsider)
    assert client.get("/products/acme/").status_code == 404


def test_an_anonymous_visitor_is_sent_to_sign_in(client, personas):
    response = client.get("/products/acme/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_a_member_of_one_product_lands_on_it_after_signing_in(client, personas):
    client.force_login(personas.viewer)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/products/acme/"
