import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import RequestFactory

from console.models import Membership, Product
from devices.models import Device
from firmware.models import Firmware
from groups.models import Group, GroupMembership

pytestmark = pytest.mark.django_db


def snapshot():
    return {
        "products": sorted(Product.objects.values_list("slug", flat=True)),
        "devices": Device.objects.count(),
        "groups": Group.objects.count(),
        "memberships": GroupMembership.objects.count(),
        "firmware": Firmware.objects.count(),
        "team": sorted(Membership.objects.values_list("user__username", "product__slug", "role")),
        "releases": sorted(Group.objects.filter(released_firmware__isnull=False).values_list("name", "released_firmware__version")),
    }


def test_seed_demo_builds_the_demo_and_running_it_again_changes_nothing(capsys):
    call_command("seed_demo", devices=120, password="demo-pass-123")
    first = snapshot()
    call_command("seed_demo", devices=120, password="demo-pass-123")

    assert snapshot() == first
    assert first["products"] == ["acme-tracker", "other-fleet"]
    assert Device.objects.filter(product__slug="acme-tracker").count() == 120
    assert Group.objects.filter(product__slug="acme-tracker").count() == 8
    assert Firmware.objects.filter(product__slug="acme-tracker").count() == 5
    assert first["releases"] == [("europe", 4), ("prerelease", 5)]
    assert Product.objects.get(slug="acme-tracker").default_firmware.version == 3
    assert Device.objects.filter(product__slug="acme-tracker", development=True).exists()
    assert Device.objects.filter(product__slug="acme-tracker", desired_firmware_version__isnull=False).exists()
    assert "demo-pass-123" in capsys.readouterr().out


def test_seed_demo_users_sign_in_with_the_given_password_and_have_their_roles():
    call_command("seed_demo", devices=40, password="demo-pass-123")
    for username in ("owner", "admin", "developer", "support", "viewer", "partner", "outsider"):
        assert authenticate(RequestFactory().post("/login/"), username=username, password="demo-pass-123") is not None, username
    partner = Membership.objects.get(user__username="partner")
    assert [group.name for group in partner.restricted_groups.all()] == ["field-service"]
    outsider = Membership.objects.get(user__username="outsider")
    assert outsider.product.slug == "other-fleet"
    assert not Membership.objects.filter(user__username="outsider", product__slug="acme-tracker").exists()


def test_the_demo_support_user_may_only_view_in_the_admin():
    call_command("seed_demo", devices=10, password="demo-pass-123")
    support = User.objects.get(username="support")
    assert support.is_staff
    assert {perm.split(".")[1].split("_")[0] for perm in support.get_all_permissions()} == {"view"}
