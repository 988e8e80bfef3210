"""The JSON API's URLs (`/v1/...`, `/oauth/token`); the API itself is assembled in console.api."""

urlpatterns = []
