import pytest
from django.db import connection  # noqa: F401 - the skipif condition names it

from tests.conftest import HTMX
from tests.factories import DeviceFactory, FirmwareFactory, GroupFactory

pytestmark = pytest.mark.django_db

URL = "/products/acme/devices/"


def test_it_shows_devices_with_group_tags_firmware_and_target(personas, client_for):
    product = personas.product
    v5 = FirmwareFactory(product=product, version=5)
    device = DeviceFactory(product=product, name="truck-1", firmware_version=3, online=True)
    GroupFactory(product=product, name="beta", color="#8b5cf6", devices=[device], released_firmware=v5)

    response = client_for(personas.viewer).get(URL)

    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    assert device.device_id in html and "truck-1" in html
    assert 'style="--pill: #8b5cf6"' in html and ">beta</a>" in html
    assert "v3" in html and "v5" in html
    assert "HX-Request" in response["Vary"]


def test_it_filters_by_two_groups_any_of_and_all_of(personas, client_for):
    product = personas.product
    only_a, only_b, both = (DeviceFactory(product=product, name=name) for name in ("only-a", "only-b", "both"))
    GroupFactory(product=product, name="europe", devices=[only_a, both])
    GroupFactory(product=product, name="beta", devices=[only_b, both])
    client = client_for(personas.viewer)

    any_of = client.get(URL, {"groups": ["europe", "beta"]}).content.decode()
    all_of = client.get(URL, {"groups": ["europe", "beta"], "groups_match": "all"}).content.decode()

    assert all(name in any_of for name in ("only-a", "only-b", "both"))
    assert "both" in all_of and "only-a" not in all_of and "only-b" not in all_of


def test_it_searches_id_name_and_serial(personas, client_for):
    DeviceFactory(product=personas.product, name="truck-7", serial_number="SER-1")
    DeviceFactory(product=personas.product, name="boat-1", serial_number="ZED-9")
    html = client_for(personas.viewer).get(URL, {"q": "zed"}).content.decode()
    assert "boat-1" in html and "truck-7" not in html


def test_it_sorts_by_name_and_marks_the_sorted_column(personas, client_for):
    for name in ("charlie", "alpha", "bravo"):
        DeviceFactory(product=personas.product, name=name)
    html = client_for(personas.viewer).get(URL, {"sort": "-name"}).content.decode()
    assert html.index("charlie") < html.index("bravo") < html.index("alpha")
    assert 'aria-sort="descending"' in html
    assert 'href="?sort=name"' in html


def test_it_paginates_and_keeps_the_filter_in_the_page_links(personas, client_for):
    devices = DeviceFactory.create_batch(30, product=personas.product)
    GroupFactory(product=personas.product, name="europe", devices=devices)
    html = client_for(personas.viewer).get(URL, {"groups": "europe", "page": "2"}).content.decode()
    assert "26–30 of 30 devices" in html
    assert 'href="?groups=europe&amp;page=1"' in html


def test_the_htmx_request_returns_only_the_table_and_pushes_a_clean_address(personas, client_for):
    DeviceFactory(product=personas.product, name="truck-1")
    response = client_for(personas.viewer).get(
        URL + "?q=truck&groups_match=any&online=&sort=name", **HTMX, HTTP_HX_TARGET="device-table",
        HTTP_HX_TRIGGER="device-filter-form",
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="device-table"') and "<html" not in html
    assert "truck-1" in html
    assert response["HX-Push-Url"] == "/products/acme/devices/?q=truck&groups_match=any&sort=name"


def test_the_filter_refreshes_itself_with_new_groups(personas, client_for):
    GroupFactory(product=personas.product, name="brand-new")
    response = client_for(personas.viewer).get(URL + "?q=x", **HTMX, HTTP_HX_TARGET="device-filter")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="device-filter"') and 'value="brand-new"' in html
    assert "HX-Push-Url" not in response


def test_a_history_restore_gets_the_full_page(personas, client_for):
    response = client_for(personas.viewer).get(URL, **HTMX, HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in response.content.decode()


def test_an_unknown_group_is_reported_next_to_the_field(personas, client_for):
    DeviceFactory(product=personas.product, name="truck-1")
    html = client_for(personas.viewer).get(URL, {"groups": "nowhere"}).content.decode()
    assert "Unknown group: nowhere." in html and "This filter is not valid." in html
    assert "truck-1" not in html


def test_an_empty_product_says_what_happens_next(personas, client_for):
    html = client_for(personas.viewer).get(URL).content.decode()
    assert "No devices in Acme yet." in html


def test_view_only_and_support_members_get_no_edit_controls(personas, client_for):
    DeviceFactory(product=personas.product)
    for user in (personas.viewer, personas.support):
        html = client_for(user).get(URL).content.decode()
        assert "Edit groups" not in html and "New Group" not in html and "data-row-select" not in html


def test_writers_get_checkboxes_edit_groups_and_new_group(personas, client_for):
    DeviceFactory(product=personas.product)
    html = client_for(personas.developer).get(URL).content.decode()
    assert "Edit groups" in html and "New Group" in html and "data-row-select" in html


def test_the_select_all_matching_offer_appears_when_more_devices_match_than_the_page_shows(personas, client_for):
    DeviceFactory.create_batch(27, product=personas.product)
    html = client_for(personas.developer).get(URL).content.decode()
    assert "Select all 27 devices matching this filter" in html


def test_a_restricted_member_sees_only_devices_and_tags_of_their_groups(personas, client_for):
    inside = DeviceFactory(product=personas.product, name="inside")
    DeviceFactory(product=personas.product, name="outside")
    personas.restricted_group.memberships.create(device=inside)
    GroupFactory(product=personas.product, name="secret-customer", devices=[inside])

    html = client_for(personas.restricted).get(URL).content.decode()

    assert "inside" in html and "outside" not in html
    assert "secret-customer" not in html


def test_outsiders_get_404(personas, client_for):
    assert client_for(personas.outsider).get(URL).status_code == 404


def test_post_is_not_allowed(personas, client_for):
    assert client_for(personas.admin).post(URL).status_code == 405


# session, user, membership, its group restriction, the filter's groups, COUNT, the page, its tags,
# the product switcher.
LIST_QUERIES = 8


@pytest.mark.parametrize("per_page", ["25", "100"])
def test_the_query_count_grows_neither_with_page_size_nor_with_groups_per_device(
    personas, client_for, django_assert_num_queries, per_page
):
    product = personas.product
    client = client_for(personas.viewer)
    few = DeviceFactory.create_batch(3, product=product)
    GroupFactory(product=product, devices=few)
    with django_assert_num_queries(LIST_QUERIES - 1):  # unfiltered: the product keeps its count
        client.get(URL, {"per_page": per_page})

    many = DeviceFactory.create_batch(120, product=product)
    for _ in range(6):
        GroupFactory(product=product, devices=many)
    with django_assert_num_queries(LIST_QUERIES - 1):
        response = client.get(URL, {"per_page": per_page})
    assert response.content.decode().count("data-row-select") == 0  # the viewer has no checkboxes
    assert response.content.decode().count('class="mono"><a') == int(per_page)


def test_the_query_count_is_the_same_when_filtering_by_groups(personas, client_for, django_assert_num_queries):
    devices = DeviceFactory.create_batch(5, product=personas.product)
    GroupFactory(product=personas.product, name="europe", devices=devices)
    GroupFactory(product=personas.product, name="beta", devices=devices[:2])
    client = client_for(personas.viewer)
    with django_assert_num_queries(LIST_QUERIES):
        client.get(URL, {"groups": "europe,beta", "groups_match": "all"})


def test_an_invalid_parameter_without_a_field_on_the_page_is_still_explained(personas, client_for):
    html = client_for(personas.viewer).get(URL, {"sort": "colour"}).content.decode()
    assert "This filter is not valid." in html
    assert "Sort: Select a valid choice. colour is not one of the available choices." in html


def test_a_large_match_is_counted_only_up_to_the_cap(personas, client_for, monkeypatch):
    from devices.views import CappedPaginator

    monkeypatch.setattr(CappedPaginator, "COUNT_CAP", 30)
    DeviceFactory.create_batch(40, product=personas.product)
    response = client_for(personas.developer).get(URL)
    assert "1–25 of 40 devices" in " ".join(response.content.decode().split())  # the product's own count

    response = client_for(personas.developer).get(URL, {"online": "false"})
    page = " ".join(response.content.decode().split())
    assert len(response.context["devices"]) == 25
    assert "1–25 of 30+ devices" in page
    assert "Select all 30+ devices matching this filter" in page
    assert "Page 1 of 2+" in page


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="elsewhere a group's few members are counted to choose the page's shape"
)
def test_a_filter_by_one_group_takes_its_count_from_the_group_without_counting(
    personas, client_for, django_assert_num_queries, monkeypatch
):
    from devices.views import CappedPaginator

    monkeypatch.setattr(CappedPaginator, "COUNT_CAP", 30)
    members = DeviceFactory.create_batch(40, product=personas.product)
    GroupFactory(product=personas.product, name="europe", devices=members[:35])
    client = client_for(personas.viewer)

    with django_assert_num_queries(LIST_QUERIES - 1):  # no COUNT: the group keeps its own
        response = client.get(URL, {"groups": "europe"})
    page = " ".join(response.content.decode().split())
    assert "1–25 of 35 devices" in page and "Page 1 of 2" in page and "2+" not in page

    with django_assert_num_queries(LIST_QUERIES):  # another filter beside the group: counted
        response = client.get(URL, {"groups": "europe", "online": "false"})
    assert "1–25 of 30+ devices" in " ".join(response.content.decode().split())
