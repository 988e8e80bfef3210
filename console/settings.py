"""Fleet Console settings, driven by environment variables.

Local defaults are safe and need nothing: SQLite in the project folder, DEBUG off unless asked.
Production sets DATABASE_URL, SECRET_KEY, ALLOWED_HOSTS and FLEET_SECURE=1.
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def database_from_url(url: str) -> dict:
    """Turn postgres://user:pass@host:port/name?opt=v (or sqlite:///path) into a DATABASES entry."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": parsed.path or ":memory:"}
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"DATABASE_URL scheme {parsed.scheme!r} is not supported (use postgres:// or sqlite://)")
    options = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")),
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        "OPTIONS": options,
        # Persistent connections, checked before reuse so a restarted server is survived.
        "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"NAME": env_str("TEST_DATABASE_NAME") or None},
    }


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY") or "insecure-local-only-key-set-SECRET_KEY-in-production"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "django_htmx",
    "django_filters",
    "template_partials",
    "ninja",
    "django_tasks",
    "django_tasks_db",
    "console",
    "devices",
    "groups",
    "firmware",
]

MIDDLEWARE = [
    # First: a chunked body gets its Content-Length before anything reads or limits it.
    "console.chunked.ChunkedBodyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "console.middleware.CacheControlMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before CSRF: an oversize body is refused before anything reads it.
    "console.middleware.RequestBodyLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "console.middleware.SecurityHeadersMiddleware",
    # Turns a locked-out sign-in (console, admin, API token grant) into a 429 (console.signin).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context_processors.products",
            ],
        },
    },
]

DATABASES = {
    "default": database_from_url(os.environ["DATABASE_URL"])
    if os.environ.get("DATABASE_URL")
    else {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Work done when nobody is looking (rollout soak timers and timeouts, scheduled starts, webhook
# deliveries) is queued in the database, in the same transaction as the change that asks for it,
# and run by `manage.py db_worker` (django-tasks' database backend; README, "Background work").
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}

# Webhooks go to https:// URLs only; http:// to this machine (127.0.0.1, ::1, localhost) is allowed
# while developing (DEBUG) and in tests, never in production (FLEET_SECURE=1 turns it off).
WEBHOOKS_ALLOW_LOOPBACK = env_bool("WEBHOOKS_ALLOW_LOOPBACK", DEBUG) and not env_bool("FLEET_SECURE", False)

# Per-process by default (nothing shared between workers lives in it: sign-in failures are
# counted in the database); CACHE_URL=redis://host:6379/0 points it at Redis.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["CACHE_URL"]}
    if os.environ.get("CACHE_URL")
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Sign-in with the username or the email, any case (console.signin); axes first, so a locked-out
# login is refused before its password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "console.signin.LoginBackend"]

# Wrong passwords allowed per account (however its login is spelled) and per client address in
# 15 minutes, on the console's and the admin's sign-in forms and the API's password grant
# together; the attempt that reaches the limit is already refused. Counted by django-axes in
# the database, so every worker and web node shares the counts.
LOGIN_FAILURES_PER_USERNAME = env_int("LOGIN_FAILURES_PER_USERNAME", 5)
LOGIN_FAILURES_PER_ADDRESS = env_int("LOGIN_FAILURES_PER_ADDRESS", 20)
# Proxies in front of the web nodes that append to X-Forwarded-For (1 behind one load balancer);
# 0 trusts REMOTE_ADDR. Wrong here, every client would share the balancer's address count.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
AXES_HANDLER = "console.signin.ThrottleHandler"
AXES_FAILURE_LIMIT = LOGIN_FAILURES_PER_USERNAME
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_USERNAME_CALLABLE = "console.signin.throttle_key"
AXES_CLIENT_IP_CALLABLE = "console.signin.client_address"
AXES_LOCKOUT_CALLABLE = "console.signin.lockout_response"
AXES_COOLOFF_TIME = timedelta(minutes=15)
# A success must not wipe the counts: axes would also delete its address's rows, so an attacker
# signing in to their own account between guesses would reset their victims' counts.
AXES_RESET_ON_SUCCESS = False
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False

# The device gateway (firmware/gateway.py). Device keys are stored as HMAC-SHA256 under
# DEVICE_KEY_SECRET (derived from SECRET_KEY when empty; changing it invalidates every key).
DEVICE_KEY_SECRET = env_str("DEVICE_KEY_SECRET")
# A device ID with this many failed authentications within the window gets 429 until it ends.
DEVICE_AUTH_FAILURES = env_int("DEVICE_AUTH_FAILURES", 20)
DEVICE_AUTH_WINDOW_SECONDS = env_int("DEVICE_AUTH_WINDOW_SECONDS", 300)
# How long the download URL of an offered firmware works.
FIRMWARE_URL_SECONDS = env_int("FIRMWARE_URL_SECONDS", 900)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT") or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("FLEET_SECURE")
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Firmware binaries live here (a shared volume or a mounted bucket when scaled out).
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or BASE_DIR / "media")
MEDIA_URL = "media/"
FIRMWARE_MAX_BYTES = env_int("FIRMWARE_MAX_BYTES", 8 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Request bodies are refused by their Content-Length before anything reads them
# (console.middleware.RequestBodyLimitMiddleware): sign-in forms (no session) are small, a
# firmware upload is the binary plus its form, anything else the larger of the two limits.
SIGN_IN_BODY_MAX_BYTES = env_int("SIGN_IN_BODY_MAX_BYTES", 64 * 1024)
MULTIPART_OVERHEAD_BYTES = 256 * 1024
REQUEST_BODY_MAX_BYTES = max(DATA_UPLOAD_MAX_MEMORY_SIZE, FIRMWARE_MAX_BYTES) + MULTIPART_OVERHEAD_BYTES
# "Edit groups" posts up to 1,000 ticked device ids plus the groups and the CSRF token.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2_000

# Production hardening, switched on together with FLEET_SECURE=1.
SECURE = env_bool("FLEET_SECURE", False)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "console.errors.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if SECURE:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
}

# Locally (no collectstatic) WhiteNoise serves straight from the static folders, even with DEBUG off.
WHITENOISE_USE_FINDERS = not SECURE
WHITENOISE_AUTOREFRESH = not SECURE
