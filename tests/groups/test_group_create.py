import pytest

from console.models import AuditEvent
from groups.models import Group
from tests.factories import GroupFactory
from tests.conftest import HTMX

pytestmark = pytest.mark.django_db

URL = "/products/acme/groups/new/"


def test_it_creates_a_group_and_redirects_back(personas, client_for):
    response = client_for(personas.developer).post(
        URL, {"name": "europe-beta", "description": "Beta testers in the EU", "color": "#22C55E",
              "next": "/products/acme/devices/?q=x"}
    )

    assert response.status_code == 302 and response["Location"] == "/products/acme/devices/?q=x"
    group = Group.objects.get(product=personas.product, name="europe-beta")
    assert (group.description, group.color) == ("Beta testers in the EU", "#22c55e")
    event = AuditEvent.objects.get(action="group.create")
    assert event.actor == personas.developer and event.object_repr == "europe-beta"


def test_it_ignores_an_offsite_next_address(personas, client_for):
    response = client_for(personas.developer).post(URL, {"name": "europe", "next": "https://evil.example/"})
    assert response["Location"] == "/products/acme/groups/"


def test_the_htmx_dialog_is_a_modal_with_the_name_hint(personas, client_for):
    response = client_for(personas.developer).get(URL, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith("<dialog data-modal") and "<html" not in html
    assert "New Device Group" in html
    assert "Lowercase letters, digits, - and _ only, at most 64 characters" in html
    assert "HX-Request" in response["Vary"]


def test_without_javascript_the_form_is_a_page(personas, client_for):
    html = client_for(personas.developer).get(URL).content.decode()
    assert "<html" in html and "New Device Group" in html and "<dialog" not in html


def test_an_htmx_create_closes_the_modal_and_announces_the_new_group(personas, client_for):
    response = client_for(personas.developer).post(URL, {"name": "europe", "color": "#22c55e"}, **HTMX)

    assert response.status_code == 204
    trigger = response.headers["HX-Trigger"]
    assert "closeModal" in trigger and "groupsChanged" in trigger and "Group europe created." in trigger
    assert Group.objects.filter(product=personas.product, name="europe").exists()


def test_a_group_without_a_color_gets_one_from_the_palette(personas, client_for):
    client_for(personas.developer).post(URL, {"name": "europe", "color": ""})
    assert Group.objects.get(name="europe").color.startswith("#")


@pytest.mark.parametrize(
    "name, message",
    [
        ("Europe", "is not a valid group name"),
        ("europe beta", "is not a valid group name"),
        ("x" * 65, "is not a valid group name"),
        ("", "This field is required."),
    ],
)
def test_it_rejects_invalid_names_inline_and_saves_nothing(personas, client_for, name, message):
    response = client_for(personas.developer).post(URL, {"name": name, "color": "#22c55e"}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<article class="dialog-body"')
    assert message in html and 'aria-invalid="true"' in html
    assert "Lowercase letters, digits, - and _ only" in html
    assert not Group.objects.exclude(name="partner-fleet").exists()


def test_it_rejects_a_duplicate_name(personas, client_for):
    GroupFactory(product=personas.product, name="europe", color="#ef4444")
    html = client_for(personas.developer).post(URL, {"name": "europe", "color": "#22c55e"}).content.decode()
    assert "A group named “europe” already exists in this product." in html
    assert Group.objects.get(name="europe").color == "#ef4444"


def test_the_same_name_in_another_product_is_fine(personas, client_for):
    GroupFactory(product=personas.other_product, name="europe")
    client_for(personas.developer).post(URL, {"name": "europe"})
    assert Group.objects.filter(product=personas.product, name="europe").exists()


def test_it_rejects_a_bad_color(personas, client_for):
    html = client_for(personas.developer).post(URL, {"name": "europe", "color": "red"}).content.decode()
    assert "Use a color in the form #rrggbb" in html
    assert not Group.objects.filter(name="europe").exists()


def test_it_rejects_a_description_over_255_characters(personas, client_for):
    html = client_for(personas.developer).post(URL, {"name": "europe", "description": "d" * 256}).content.decode()
    assert "Use at most 255 characters" in html
    assert not Group.objects.filter(name="europe").exists()


@pytest.mark.parametrize("persona", ["viewer", "support", "restricted"])
def test_members_who_cannot_create_groups_get_403(personas, client_for, persona):
    client = client_for(getattr(personas, persona))
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"name": "europe"}).status_code == 403
    assert not Group.objects.filter(name="europe").exists()


def test_outsiders_get_404(personas, client_for):
    response = client_for(personas.outsider).post(URL, {"name": "europe"})
    assert response.status_code == 404
    assert not Group.objects.filter(name="europe").exists()


def test_put_is_not_allowed(personas, client_for):
    assert client_for(personas.admin).put(URL).status_code == 405
