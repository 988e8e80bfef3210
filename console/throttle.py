"""Throttling of password guesses, for the console's sign-in form and the API's password grant.

Failures are counted in the cache per username and per client address over a sliding window.
The default cache is per process; production with several web nodes sets CACHE_URL to Redis so
every node sees the same counts.
"""

from django.conf import settings
from django.core.cache import cache

WINDOW_SECONDS = 15 * 60


def _keys(username: str, address: str) -> list[tuple[str, int]]:
    return [
        (f"login-fail:user:{(username or '').strip().lower()[:150]}", settings.LOGIN_FAILURES_PER_USERNAME),
        (f"login-fail:addr:{address or 'unknown'}", settings.LOGIN_FAILURES_PER_ADDRESS),
    ]


def client_address(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


def is_throttled(username: str, address: str) -> bool:
    return any((cache.get(key) or 0) >= limit for key, limit in _keys(username, address))


def record_failure(username: str, address: str) -> None:
    for key, _limit in _keys(username, address):
        if cache.add(key, 1, WINDOW_SECONDS):
            continue
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, WINDOW_SECONDS)


def reset(username: str) -> None:
    cache.delete(_keys(username, "")[0][0])
