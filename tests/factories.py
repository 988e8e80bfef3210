"""factory-boy factories and the personas of STYLE.md."""

import hashlib
from dataclasses import dataclass

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.utils import timezone

from console.models import Membership, Product, Role
from devices import keys
from devices.models import Device
from firmware.models import Firmware
from groups.models import Group, GroupMembership

PASSWORD = "fleet-test-pass-1"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password(PASSWORD)


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Product {n}")
    slug = factory.Sequence(lambda n: f"product-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    product = factory.SubFactory(ProductFactory)
    role = Role.DEVELOPER

    @factory.post_generation
    def restricted_to(self, create, groups, **kwargs):
        if create and groups:
            self.restricted_groups.set(groups)
            self.is_restricted = True
            self.save(update_fields=["is_restricted"])


class DeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Device

    product = factory.SubFactory(ProductFactory)
    device_id = factory.Sequence(lambda n: f"{n:024x}")
    name = factory.Sequence(lambda n: f"tracker-{n}")
    serial_number = factory.Sequence(lambda n: f"SN{n:08d}")

    class Params:
        # A device key whose raw form nobody keeps (tests.gateway.keyed_device keeps it).
        keyed = factory.Trait(
            key_hash=factory.LazyFunction(lambda: keys.key_hash(keys.new_key())),
            key_rotated_at=factory.LazyFunction(timezone.now),
        )


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group
        skip_postgeneration_save = True

    product = factory.SubFactory(ProductFactory)
    name = factory.Sequence(lambda n: f"group-{n}")
    color = "#0ea5e9"

    @factory.post_generation
    def devices(self, create, devices, **kwargs):
        if create and devices:
            GroupMembership.objects.bulk_create(GroupMembership(group=self, device=device) for device in devices)


class FirmwareFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Firmware

    product = factory.SubFactory(ProductFactory)
    version = factory.Sequence(lambda n: n + 1)
    title = factory.LazyAttribute(lambda fw: f"Release {fw.version}")
    sha256 = factory.LazyAttribute(lambda fw: hashlib.sha256(f"firmware {fw.version}".encode()).hexdigest())
    size = factory.LazyAttribute(lambda fw: len(f"firmware {fw.version}"))
    binary = factory.LazyAttribute(lambda fw: ContentFile(f"firmware {fw.version}".encode(), name="firmware.bin"))


@dataclass
class Personas:
    """Product A with an administrator, a view-only member and a member restricted to one group;
    an outsider who belongs to product B only."""

    product: Product
    other_product: Product
    admin: object
    developer: object
    support: object
    viewer: object
    restricted: object
    outsider: object
    restricted_group: Group


def make_personas() -> Personas:
    product = ProductFactory(slug="acme", name="Acme")
    other = ProductFactory(slug="other", name="Other")
    restricted_group = GroupFactory(product=product, name="partner-fleet")
    users = {}
    for role in (Role.OWNER, Role.ADMINISTRATOR, Role.DEVELOPER, Role.SUPPORT, Role.VIEWER):
        users[role] = UserFactory(username=str(role))
        MembershipFactory(user=users[role], product=product, role=role)
    restricted = UserFactory(username="partner")
    MembershipFactory(user=restricted, product=product, role=Role.DEVELOPER, restricted_to=[restricted_group])
    outsider = UserFactory(username="outsider")
    MembershipFactory(user=outsider, product=other, role=Role.OWNER)
    return Personas(
        product=product,
        other_product=other,
        admin=users[Role.ADMINISTRATOR],
        developer=users[Role.DEVELOPER],
        support=users[Role.SUPPORT],
        viewer=users[Role.VIEWER],
        restricted=restricted,
        outsider=outsider,
        restricted_group=restricted_group,
    )
