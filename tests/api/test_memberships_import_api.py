import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from groups.models import GroupMembership
from tests.api.conftest import error_of
from tests.factories import DeviceFactory, GroupFactory

pytestmark = pytest.mark.django_db
URL = "/v1/products/acme/memberships/import"


@pytest.fixture
def devices(personas):
    GroupFactory(product=personas.product, name="europe")
    return [DeviceFactory(product=personas.product, serial_number=f"SN-{i}") for i in range(2)]


def csv(text):
    return SimpleUploadedFile("fleet.csv", text.encode(), content_type="text/csv")


def test_a_dry_run_answers_the_plan_and_changes_nothing(api, devices):
    response = api("developer").multipart(URL, {"file": csv("SN-0,europe;asia\nSN-9,europe\n"), "dry_run": "true"})
    body = response.json()
    assert response.status_code == 200
    assert (body["devices_found"], body["not_found"], body["groups_to_create"]) == (
        1, [{"line": 2, "device": "SN-9"}], ["asia"]
    )
    assert body["memberships_added"] == 2 and body["applied"] is False
    assert GroupMembership.objects.count() == 0


def test_an_import_applies_and_answers_what_changed(api, devices):
    response = api("developer").multipart(URL, {"file": csv("SN-0,europe\nSN-1,europe\n"), "mode": "replace"})
    assert response.json()["applied"] is True and response.json()["updated"] == 2
    assert GroupMembership.objects.filter(group__name="europe").count() == 2


def test_bad_rows_are_a_400_by_line_and_change_nothing(api, devices):
    response = api("developer").multipart(URL, {"file": csv("SN-0,europe\nSN-1,Europe\n")})
    body = error_of(response)
    assert response.status_code == 400
    assert any(message.startswith("Line 2:") for message in body["fields"]["file"])
    assert GroupMembership.objects.count() == 0


def test_an_unknown_mode_or_a_missing_file_is_a_400(api, devices):
    client = api("developer")
    assert error_of(client.multipart(URL, {"file": csv("SN-0,europe\n"), "mode": "merge"}))["fields"]["mode"]
    assert error_of(client.multipart(URL, {"mode": "add"}))["fields"]["file"] == ["Choose a CSV file to import."]


def test_outsiders_get_404_and_viewers_403(api, devices):
    assert api("outsider").multipart(URL, {"file": csv("SN-0,europe\n")}).status_code == 404
    assert api("viewer").multipart(URL, {"file": csv("SN-0,europe\n")}).status_code == 403
