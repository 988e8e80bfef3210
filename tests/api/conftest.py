import json

import pytest
from django.core.cache import cache
from django.test import Client

from console.models import AccessToken


class ApiClient:
    """Django's test client with a persona's bearer token; bodies are JSON unless said otherwise."""

    def __init__(self, raw_token: str | None):
        self.client = Client()
        self.raw = raw_token

    def _headers(self, headers):
        base = {"HTTP_AUTHORIZATION": f"Bearer {self.raw}"} if self.raw else {}
        return {**base, **(headers or {})}

    def get(self, url, params=None, headers=None):
        return self.client.get(url, params or {}, **self._headers(headers))

    def post(self, url, data=None, headers=None):
        return self.client.post(url, json.dumps(data), content_type="application/json", **self._headers(headers))

    def put(self, url, data=None, headers=None):
        return self.client.put(url, json.dumps(data), content_type="application/json", **self._headers(headers))

    def delete(self, url, headers=None):
        return self.client.delete(url, **self._headers(headers))

    def raw_body(self, method, url, body, content_type, headers=None):
        return self.client.generic(method, url, body, content_type=content_type, **self._headers(headers))

    def form(self, method, url, body: str, headers=None):
        return self.raw_body(method, url, body, "application/x-www-form-urlencoded", headers)

    def multipart(self, url, data, headers=None):
        return self.client.post(url, data, **self._headers(headers))


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api(personas):
    """`api("admin")` is an ApiClient with a fresh token of that persona; `api(None)` has none."""

    def make(persona: str | None):
        if persona is None:
            return ApiClient(None)
        _token, raw, _refresh = AccessToken.issue(user=getattr(personas, persona))
        return ApiClient(raw)

    return make


def error_of(response) -> dict:
    """The API.md error body, checked for its shape."""
    body = response.json()
    assert body["ok"] is False
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["error_description"], str) and body["error_description"]
    return body
