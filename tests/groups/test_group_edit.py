import pytest

from console.models import AuditEvent
from tests.factories import GroupFactory
from tests.conftest import HTMX

pytestmark = pytest.mark.django_db


@pytest.fixture
def group(personas):
    return GroupFactory(product=personas.product, name="europe", description="EU", color="#0ea5e9")


def url(group):
    return f"/products/acme/groups/{group.id}/edit/"


def test_it_renames_and_recolors_a_group(personas, client_for, group):
    response = client_for(personas.admin).post(url(group), {"name": "eu-west", "description": "West", "color": "#ef4444"})

    assert response.status_code == 302 and response["Location"] == "/products/acme/groups/"
    group.refresh_from_db()
    assert (group.name, group.description, group.color) == ("eu-west", "West", "#ef4444")
    event = AuditEvent.objects.get(action="group.edit")
    assert event.actor == personas.admin and event.details["before"]["name"] == "europe"


def test_the_dialog_is_filled_in_with_the_group(personas, client_for, group):
    html = client_for(personas.admin).get(url(group), **HTMX).content.decode()
    assert html.startswith("<dialog data-modal") and 'value="europe"' in html and "#0ea5e9" in html


def test_an_htmx_save_closes_the_modal_and_refreshes_groups_and_devices(personas, client_for, group):
    response = client_for(personas.admin).post(url(group), {"name": "europe", "description": "", "color": "#0ea5e9"}, **HTMX)
    assert response.status_code == 204
    for event in ("closeModal", "groupsChanged", "devicesChanged"):
        assert event in response.headers["HX-Trigger"]
    group.refresh_from_db()
    assert group.description == ""


def test_it_refuses_a_name_taken_by_another_group(personas, client_for, group):
    GroupFactory(product=personas.product, name="asia")
    html = client_for(personas.admin).post(url(group), {"name": "asia", "color": "#0ea5e9"}, **HTMX).content.decode()
    assert "A group named “asia” already exists in this product." in html
    group.refresh_from_db()
    assert group.name == "europe"


def test_it_refuses_uppercase(personas, client_for, group):
    html = client_for(personas.admin).post(url(group), {"name": "Europe", "color": "#0ea5e9"}).content.decode()
    assert "is not a valid group name" in html
    group.refresh_from_db()
    assert group.name == "europe"


def test_view_only_members_get_403(personas, client_for, group):
    assert client_for(personas.viewer).post(url(group), {"name": "x"}).status_code == 403
    group.refresh_from_db()
    assert group.name == "europe"


def test_another_products_group_is_404(personas, client_for):
    foreign = GroupFactory(product=personas.other_product, name="theirs")
    assert client_for(personas.admin).get(f"/products/acme/groups/{foreign.id}/edit/").status_code == 404
    assert client_for(personas.outsider).get(url(personas.restricted_group)).status_code == 404


def test_delete_method_is_not_allowed(personas, client_for, group):
    assert client_for(personas.admin).delete(url(group)).status_code == 405
