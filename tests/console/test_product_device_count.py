"""Product.device_count is kept by the database as devices come and go."""

import pytest
from django.db import IntegrityError, transaction

from console.models import Product
from devices import services
from devices.models import Device
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db


def count(product):
    return Product.objects.get(pk=product.pk).device_count


def test_imports_removals_and_cascades_keep_the_count_exact(personas):
    product = personas.product
    services.devices_import(product=product, ids=[f"{n:024x}" for n in range(900, 905)], actor=personas.admin)
    DeviceFactory.create_batch(2, product=product)
    assert count(product) == Device.objects.filter(product=product).count() == 7

    services.device_remove(device=Device.objects.filter(product=product).first(), actor=personas.admin)
    Device.objects.filter(product=product, device_id__startswith="0" * 20).delete()
    assert count(product) == Device.objects.filter(product=product).count()
    assert count(personas.other_product) == Device.objects.filter(product=personas.other_product).count()


def test_a_device_cannot_move_to_another_product(personas):
    device = DeviceFactory(product=personas.product)
    with pytest.raises(IntegrityError, match="cannot move"), transaction.atomic():
        Device.objects.filter(pk=device.pk).update(product=personas.other_product)
    assert Device.objects.get(pk=device.pk).product_id == personas.product.pk


def test_saving_a_stale_product_keeps_the_count(personas):
    stale = Product.objects.get(pk=personas.product.pk)
    DeviceFactory(product=personas.product)
    stale.name = "Renamed"
    stale.save()
    assert count(personas.product) == 1
