import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.cache import cache

from devices import services
from tests.factories import PASSWORD, DeviceFactory, make_personas

QUARANTINED_SERIAL = "P046QUARANTINE1"
QUARANTINED = ["c0ffee" + "1" * 18, "c0ffee" + "2" * 18]


class FastPBKDF2(PBKDF2PasswordHasher):
    iterations = 1000  # verifying stays cheap; the server's own hashers recognise the hash


@pytest.fixture
def client_fleet(gunicorn_server):
    """Personas, three devices of product acme and two quarantined ones, served by gunicorn (the
    clients stream files given by path chunked, which only a production server decodes). The
    developer's password is hashed with a hasher the server has (the suite's MD5 is not)."""
    cache.clear()
    personas = make_personas()
    hasher = FastPBKDF2()
    personas.developer.password = hasher.encode(PASSWORD, hasher.salt())
    personas.developer.save(update_fields=["password"])
    devices = [DeviceFactory(product=personas.product) for _ in range(3)]
    services.device_contact(product=personas.product, device_id=QUARANTINED[0], serial_number=QUARANTINED_SERIAL)
    services.device_contact(product=personas.product, device_id=QUARANTINED[1])
    return personas, devices
