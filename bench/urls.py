"""The project's URLs plus `/bench/ping`, the trivial JSON view handshakes are compared with."""

from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def ping(request):
    return JsonResponse({"ok": True})


urlpatterns = [
    path("bench/ping", ping),
    path("", include("console.urls")),
]
