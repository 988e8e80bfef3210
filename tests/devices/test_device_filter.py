import pytest
from django.http import QueryDict

from console.models import Membership
from devices.filters import DeviceFilter
from tests.factories import DeviceFactory, GroupFactory

pytestmark = pytest.mark.django_db


def names(devices):
    return sorted(device.name for device in devices)


def test_groups_any_of_and_all_of(personas):
    product = personas.product
    a, b, both, none = (DeviceFactory(product=product, name=n) for n in ("a", "b", "both", "none"))
    GroupFactory(product=product, name="europe", devices=[a, both])
    GroupFactory(product=product, name="beta", devices=[b, both])
    member = Membership.objects.get(user=personas.admin)

    any_of = DeviceFilter(QueryDict("groups=europe,beta"), membership=member)
    all_of = DeviceFilter(QueryDict("groups=europe&groups=beta&groups_match=all"), membership=member)

    assert any_of.is_valid() and all_of.is_valid()
    assert names(any_of.qs) == ["a", "b", "both"]
    assert names(all_of.qs) == ["both"]


def test_an_unknown_group_makes_the_filter_invalid(personas):
    member = Membership.objects.get(user=personas.admin)
    devices = DeviceFilter(QueryDict("groups=nowhere"), membership=member)
    assert not devices.is_valid()
    assert "Unknown group: nowhere." in devices.errors["groups"]


def test_search_matches_id_prefix_name_and_serial(personas):
    product = personas.product
    DeviceFactory(product=product, device_id="abcdef" + "0" * 18, name="x1", serial_number="S-1")
    DeviceFactory(product=product, name="Truck 7", serial_number="S-2")
    DeviceFactory(product=product, name="x3", serial_number="ZED-99")
    member = Membership.objects.get(user=personas.admin)
    for query, expected in (("ABCDEF", ["x1"]), ("truck", ["Truck 7"]), ("zed", ["x3"])):
        assert names(DeviceFilter(QueryDict(f"q={query}"), membership=member).qs) == expected


def test_a_restricted_member_only_filters_within_their_groups(personas):
    inside = DeviceFactory(product=personas.product, name="inside")
    DeviceFactory(product=personas.product, name="outside")
    GroupFactory(product=personas.product, name="europe", devices=[inside])
    personas.restricted_group.memberships.create(device=inside)
    member = Membership.objects.get(user=personas.restricted)

    assert names(DeviceFilter(QueryDict(""), membership=member).qs) == ["inside"]
    assert not DeviceFilter(QueryDict("groups=europe"), membership=member).is_valid()


@pytest.mark.parametrize("match_all", [False, True])
def test_group_filters_read_few_memberships_first_and_match_the_same_devices(personas, match_all):
    from django.db import connection

    from devices.models import Device

    product = personas.product
    devices = DeviceFactory.create_batch(12, product=product)
    big = GroupFactory(product=product, name="big", devices=devices[:10])
    small = GroupFactory(product=product, name="small", devices=devices[6:12])
    ids = [big.id, small.id]
    fleet = Device.objects.filter(product=product)

    walked = fleet.in_groups(ids, match_all=match_all)
    from_members = fleet.in_groups(ids, match_all=match_all, sizes={big.id: 10, small.id: 6})

    expected = devices[6:10] if match_all else devices
    assert sorted(walked.values_list("pk", flat=True)) == sorted(d.pk for d in expected)
    assert sorted(from_members.values_list("pk", flat=True)) == sorted(d.pk for d in expected)
    if connection.vendor == "postgresql":
        assert "OFFSET 0" in str(from_members.query) and "OFFSET 0" not in str(walked.query)


def test_the_search_can_use_the_trigram_indexes(personas):
    """The indexes must match the expressions Django writes for `icontains`, or they are dead
    weight. (Plain scans are switched off: on a small table the planner would rightly prefer them.)"""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("trigram indexes are PostgreSQL's")
    from django.db.models import Q

    from devices.models import Device

    DeviceFactory.create_batch(3, product=personas.product)
    search = Device.objects.filter(Q(name__icontains="tracker-1") | Q(serial_number__icontains="tracker-1"))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = search.order_by().explain()
    assert "device_name_trgm" in plan and "device_serial_trgm" in plan


ID = "0a1b2c3d4e5f60718293a4b5"


def matching(member, query: str) -> list[str]:
    return sorted(DeviceFilter(QueryDict(query), membership=member).qs.values_list("device_id", flat=True))


def test_the_device_id_filter_finds_a_pasted_start_middle_or_whole_id_in_any_case(personas):
    DeviceFactory(product=personas.product, device_id=ID)
    DeviceFactory(product=personas.product, device_id="ffffffffffff0a1bffffffff")
    DeviceFactory(product=personas.other_product, device_id="0a1b2c3d4e5f000000000000")
    member = Membership.objects.get(user=personas.admin)

    assert matching(member, "device_id=0a1b2c") == [ID]  # the start
    assert matching(member, "device_id=4E5F6") == [ID]  # the middle, in capitals
    assert matching(member, "device_id=0a1b") == sorted([ID, "ffffffffffff0a1bffffffff"])  # both places
    assert matching(member, f"device_id={ID.upper()}") == [ID]  # a whole ID
    assert matching(member, "device_id=0a1b2z") == []  # not hex: no ID can contain it
    assert matching(member, "q=3d4e5f") == [ID]  # the console's search box too


def test_the_id_search_can_use_the_trigram_index(personas):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("trigram indexes are PostgreSQL's")
    from devices.models import Device

    DeviceFactory.create_batch(3, product=personas.product)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = Device.objects.id_contains("4e5f6").order_by().explain()
    assert "device_id_trgm" in plan


@pytest.mark.parametrize(
    "spans, match_all, shape",
    [
        # (first device, size) per group, over 20 devices.
        (((0, 15), (14, 2), (16, 1)), False, "NOT EXISTS"),  # the smaller groups probed against the largest
        (((0, 6), (3, 6), (8, 6)), False, "count(DISTINCT device_id)"),  # one pass over all memberships
        (((11, 2), (0, 12)), True, "AND EXISTS"),  # the smallest group's members probed into the other
        (((0, 6), (2, 6), (4, 6)), True, " JOIN "),  # a join of the groups' memberships
    ],
)
def test_counting_several_groups_from_their_memberships_matches_counting_the_devices(
    personas, spans, match_all, shape, django_assert_num_queries
):
    from django.db import connection

    product = personas.product
    devices = DeviceFactory.create_batch(20, product=product)
    for index, (first, size) in enumerate(spans):
        GroupFactory(product=product, name=f"g{index}", devices=devices[first : first + size])
    member = Membership.objects.get(user=personas.admin)
    query = "&".join(f"groups=g{index}" for index in range(len(spans))) + ("&groups_match=all" if match_all else "")
    devices_filter = DeviceFilter(QueryDict(query), membership=member)
    expected = devices_filter.qs.count()
    assert expected > 0

    with django_assert_num_queries(1) as captured:
        assert devices_filter.count() == expected
    if connection.vendor == "postgresql":
        assert shape in captured.captured_queries[0]["sql"]
        # The console takes the probes as a known count; the other shapes leave it its capped count.
        assert devices_filter.known_count() == (expected if "EXISTS" in shape else None)


def test_a_page_of_few_matches_starts_from_them_and_shows_the_same_devices_in_the_same_order(personas):
    from django.db import connection

    product = personas.product
    for n in range(6):
        DeviceFactory(product=product, device_id=f"{n:02x}" + "ab" * 11, name=f"match-{n}")
    DeviceFactory.create_batch(4, product=product)
    member = Membership.objects.get(user=personas.admin)
    devices_filter = DeviceFilter(QueryDict("device_id=abab&sort=name"), membership=member)

    page = devices_filter.page_qs(devices_filter.count())

    assert [d.name for d in page] == [d.name for d in devices_filter.qs] == [f"match-{n}" for n in range(6)]
    if connection.vendor == "postgresql":
        assert "OFFSET 0" in str(page.query)
