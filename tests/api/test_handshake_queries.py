"""The gateway handshake's statements: the common handshake is one prepared statement, one round
trip to PostgreSQL with its commit; anything more takes a fixed, small number."""

import io
import json
import tempfile
from wsgiref.util import setup_testing_defaults

import pytest
from django.db import connection

from firmware.models import FirmwareUpdate
from tests.factories import FirmwareFactory, GroupFactory
from tests.gateway import basic, device_client, keyed_device

# The one statement; then, when an update must be created or settled, the device and the general
# path: a savepoint, the device UPDATE, the proof, the target with its pending update, the update
# row, its audit event and the device it names, the savepoint's release.
COMMON = 1
FIRST_TARGETED = COMMON + 1 + 8

on_postgresql = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the one statement is PostgreSQL's")


@pytest.fixture
def fleet(personas):
    v5 = FirmwareFactory(product=personas.product, version=5, ever_released=True)
    device, key = keyed_device(personas.product, firmware_version=4)
    GroupFactory(product=personas.product, name="beta", devices=[device], released_firmware=v5)
    return v5, device, key


@on_postgresql
@pytest.mark.django_db
def test_a_handshake_on_target_is_one_statement(fleet, django_assert_num_queries):
    v5, device, key = fleet
    client = device_client(device, key)

    with django_assert_num_queries(COMMON) as captured:
        response = client.handshake(5)

    assert response.json() == {"update": None}
    assert captured[0]["sql"].startswith("EXECUTE fleet_gateway_handshake(")
    device.refresh_from_db()
    assert device.firmware_version == 5 and device.online


@on_postgresql
@pytest.mark.django_db
def test_a_first_targeting_handshake_adds_only_the_update_and_its_audit_event(fleet, django_assert_num_queries):
    v5, device, key = fleet

    with django_assert_num_queries(FIRST_TARGETED):
        response = device_client(device, key).handshake(4)

    assert response.json()["update"]["version"] == 5
    assert FirmwareUpdate.objects.get(device=device).status == FirmwareUpdate.Status.PENDING


@on_postgresql
@pytest.mark.django_db
def test_an_offer_repeated_while_its_update_is_pending_is_one_statement(fleet, django_assert_num_queries):
    v5, device, key = fleet
    client = device_client(device, key)
    client.handshake(4)

    with django_assert_num_queries(COMMON):
        response = client.handshake(4)

    assert response.json()["update"]["sha256"] == v5.sha256
    assert FirmwareUpdate.objects.filter(device=device).count() == 1


@on_postgresql
@pytest.mark.django_db
def test_a_wrong_key_costs_the_statement_and_the_failure_count(fleet, django_assert_num_queries):
    v5, device, key = fleet

    with django_assert_num_queries(COMMON + 2):  # the statement; expired windows go, this one counts
        response = device_client(device, "wrong-key").handshake(5)

    assert response.status_code == 401


def _frontend_queries(trace: str) -> list[str]:
    """The simple-protocol queries the client sent, from a libpq protocol trace."""
    return [line.split("\t", 3)[3] for line in trace.splitlines() if line.split("\t")[2:3] == ["Query"]
            and line.startswith("F")]


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_the_common_handshake_is_one_round_trip_to_postgresql_commit_included(fleet):
    """Through the WSGI application as gunicorn serves it: no health check, no BEGIN or COMMIT."""
    from psycopg.pq import Trace

    from console.wsgi import application

    v5, device, key = fleet
    body = json.dumps({"firmware_version": 5}).encode()

    def handshake():
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/device/handshake", "wsgi.input": io.BytesIO(body),
                   "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/json",
                   "HTTP_AUTHORIZATION": basic(device.device_id, key)}
        setup_testing_defaults(environ)
        chunks = application(environ, lambda status, headers, exc_info=None: None)
        answer = b"".join(chunks)
        chunks.close()
        return json.loads(answer)

    assert handshake() == {"update": None}  # the connection prepares its statement
    raw = connection.connection
    with tempfile.TemporaryFile("w+") as trace:
        raw.pgconn.trace(trace.fileno())
        raw.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS)
        try:
            answer = handshake()
        finally:
            raw.pgconn.untrace()
        trace.seek(0)
        queries = _frontend_queries(trace.read())

    assert answer == {"update": None}
    assert len(queries) == 1 and queries[0].strip().startswith('"EXECUTE fleet_gateway_handshake(')
    assert connection.connection is raw  # the same kept connection, not a new one
