"""The JSON API's URLs (`/v1/...`, `/oauth/token`); the API itself is assembled in console.api.site."""

from django.urls import path, re_path

from console.api.site import api, api_not_found

urlpatterns = [
    path("", api.urls),
    # Anything else under /v1/ (or /oauth/) answers in the API's error shape, not an HTML page.
    re_path(r"^(?:v1|oauth)(?:/[\s\S]*)?$", api_not_found),
]
