"""The devices an API call chooses: the list query parameters, through the console's own
DeviceFilter, or a list of device IDs. Used by the list, batch edits and impact previews."""

from django.http import QueryDict

from console.api.errors import ApiError, invalid
from devices.filters import DeviceFilter
from devices.models import Device, normalize_device_id
from devices.schemas import DeviceFilterParams

SORT_KEYS = {
    "deviceName": "name",
    "deviceId": "device_id",
    "firmwareVersion": "firmware",
    "lastConnection": "last_handshake",
}
# DeviceFilter's field names, by API parameter.
FILTER_FIELDS = {
    "groups": "groups",
    "groups_match": "groups_match",
    "deviceId": "device_id",
    "deviceName": "name",
    "serialNumber": "serial_number",
    "paste": "paste",
}
API_FIELDS = {value: key for key, value in FILTER_FIELDS.items()} | {"sort": "sortAttr"}


def device_filter(
    membership, params: DeviceFilterParams, *, sort: str | None = None, field_prefix: str = ""
) -> DeviceFilter:
    """The console's DeviceFilter for API list parameters; invalid ones (an unknown group) are a 400."""
    data = QueryDict(mutable=True)
    for name in params.groups or []:
        data.appendlist("groups", name)
    for api_name, filter_name in FILTER_FIELDS.items():
        value = getattr(params, api_name)
        if api_name != "groups" and value:
            data[filter_name] = value
    if sort:
        data["sort"] = sort
    devices = DeviceFilter(data, membership=membership)
    if not devices.is_valid():
        fields = {
            f"{field_prefix}{API_FIELDS.get(field, field)}": list(messages)
            for field, messages in devices.errors.items()
        }
        description = " ".join(message for messages in fields.values() for message in messages)
        raise ApiError(400, "invalid_request", description, fields)
    return devices


def sort_key(attr: str | None, direction: str | None) -> str:
    key = SORT_KEYS[attr or "lastConnection"]
    descending = (direction or "desc") == "desc"
    if key == "last_handshake":  # its unprefixed order already puts the newest first
        return key if descending else f"-{key}"
    return f"-{key}" if descending else key


def batch_devices(membership, device_ids, filter_params, *, field: str = "devices", filter_field: str = "filter"):
    """The devices a batch call names: listed IDs (all must be visible) or a list filter."""
    if (device_ids is None) == (filter_params is None):
        message = f"Send either {field} (a list of device IDs) or {filter_field} (list parameters), not both."
        if device_ids is None:
            message = f"Send {field} (a list of device IDs) or {filter_field} (list parameters)."
        raise invalid(field, message)
    if filter_params is not None:
        return device_filter(membership, filter_params, field_prefix=f"{filter_field}.").qs
    normalized = {raw: normalize_device_id(raw) for raw in device_ids}
    wanted = [device_id for device_id in normalized.values() if device_id]
    found = set(Device.objects.visible_to(membership).filter(device_id__in=wanted).values_list("device_id", flat=True))
    unknown = [raw for raw, device_id in normalized.items() if device_id not in found]
    if unknown:
        shown = ", ".join(unknown)
        raise ApiError(
            400,
            "invalid_request",
            f"Unknown device IDs (nothing was changed): {shown}.",
            {field: [f"Unknown device ID: {raw}" for raw in unknown]},
        )
    return Device.objects.visible_to(membership).filter(device_id__in=wanted)
