"""The URLconf of the device gateway's lean path (firmware.gateway.GatewayHandler): the gateway's
routes of the one API, so they answer exactly as through the console's URLconf."""

from django.urls import re_path

from console.api.site import api, api_not_found
from firmware.gateway import PREFIX

_routes, _app_name, _namespace = api.urls
urlpatterns = [route for route in _routes if str(route.pattern).startswith(PREFIX.lstrip("/"))]
urlpatterns.append(re_path(r"^v1/device(?:/[\s\S]*)?$", api_not_found))
