"""Device keys: each device's own secret for the gateway (DESIGN.md, "Device key").

A key is 192 random bits, shown once when it is issued and stored only as its HMAC-SHA256 under a
server-side secret. A keyed hash is right for random secrets: nobody can guess one, so a slow
password hasher would only make every handshake slow, and without the server's secret a stolen
table of hashes cannot be checked against guesses either.

The secret is `settings.DEVICE_KEY_SECRET`, or one derived from SECRET_KEY when it is not set.
Changing it invalidates every device key, so production sets its own and keeps it.
"""

import hashlib
import hmac
import secrets
from functools import lru_cache

from django.conf import settings

KEY_BYTES = 24  # 192 bits; token_urlsafe writes them as 32 characters
KEY_MAX_LENGTH = 128  # longer "keys" are refused before any hashing


def new_key() -> str:
    return secrets.token_urlsafe(KEY_BYTES)


@lru_cache(maxsize=4)
def _hash_secret(configured: str, secret_key: str) -> bytes:
    if configured:
        return configured.encode()
    return hashlib.sha256(b"fleet-console.device-key:" + secret_key.encode()).digest()


def hash_secret() -> bytes:
    return _hash_secret(settings.DEVICE_KEY_SECRET, settings.SECRET_KEY)


def key_hash(raw: str) -> str:
    """The stored form of a key: 64 hex digits."""
    return hmac.new(hash_secret(), raw.encode(), hashlib.sha256).hexdigest()
