"""Settings for the PixVerse team portal: one file, driven by the environment.

Defaults give a working local install on SQLite with no variable set; every
value read from the environment is checked, and a bad one stops the process
with a message naming the variable (see pixverse_site/env.py). The README's
configuration table lists every variable read here.
"""

import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from pixverse_site.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_str,
    env_url,
    local_secret_file,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "data")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)


# A local run must need no configuration, so it keeps its own keys in the
# git-ignored data folder; deployments set SECRET_KEY and PORTAL_ENCRYPTION_KEYS
# (or their *_FILE variants). Losing the encryption key makes stored API keys
# unreadable.
SECRET_KEY = env_str("SECRET_KEY", "") or local_secret_file(
    DATA_DIR / "secret_key", lambda: secrets.token_urlsafe(50)
)
# Fernet keys for members' stored PixVerse keys, newest first (see generations/crypto.py).
PORTAL_ENCRYPTION_KEYS = env_list("PORTAL_ENCRYPTION_KEYS", []) or [
    local_secret_file(DATA_DIR / "encryption_key", lambda: Fernet.generate_key().decode())
]
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.forms",
    "django_htmx",
    "django_q",
    "generations",
    "generations.sandbox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "pixverse_site.urls"
DEFAULT_EXCEPTION_REPORTER_FILTER = "pixverse_site.error_reports.AlwaysSafeExceptionReporterFilter"
FORM_RENDERER = "generations.forms.PortalFormRenderer"
WSGI_APPLICATION = "pixverse_site.wsgi.application"
ASGI_APPLICATION = "pixverse_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "generations.context_processors.portal",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'portal.sqlite3'}")
try:
    _database = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("CONN_MAX_AGE", 0, minimum=0))
except ValueError as e:
    raise ImproperlyConfigured(f"DATABASE_URL: {e}") from e

if _database["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and every worker write to one file. IMMEDIATE takes the
    # write lock when a transaction starts, so a transaction never has to
    # upgrade a read lock (the upgrade is what fails with "database is locked"
    # regardless of the timeout); WAL lets readers go on while one writes; the
    # busy timeout makes a writer wait its turn instead of failing.
    _database["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env_int("SQLITE_BUSY_TIMEOUT", 20, minimum=1),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, broker --------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL: expected a redis:// URL, got {REDIS_URL!r}")

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

Q_CLUSTER = {
    "name": "pixverse",
    "workers": env_int("Q_WORKERS", 2, minimum=1),
    # A task may wait for rate-limit slots and for PixVerse; retry must stay
    # above timeout so a slow task is not handed to a second worker.
    "timeout": env_int("Q_TIMEOUT", 120, minimum=10),
    "retry": env_int("Q_RETRY", 180, minimum=11),
    "max_attempts": 1,
    "catch_up": False,
    "save_limit": 1000,
    "label": _("Background tasks"),
}
if Q_CLUSTER["retry"] <= Q_CLUSTER["timeout"]:
    raise ImproperlyConfigured(
        f"Q_RETRY ({Q_CLUSTER['retry']}) must be greater than Q_TIMEOUT ({Q_CLUSTER['timeout']}), "
        "or a slow task is handed to a second worker while the first still runs it"
    )
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Auth, i18n, static ----------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
# Anyone who reaches the site may make an account: on for the local run,
# off by default (staff add members in the admin).
PORTAL_SIGNUP_ENABLED = env_bool("PORTAL_SIGNUP_ENABLED", False)
# Password-reset mail; the console by default, so a local run prints the link.
MAILERS = {"default": {"BACKEND": env_str("MAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")}}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "portal@localhost")
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ru", _("Russian"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media")))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_choice(
        "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))},
    "loggers": {"urllib3": {"level": "WARNING"}},
}

# --- PixVerse ---------------------------------------------------------------------

PIXVERSE_BASE_URL = env_url("PIXVERSE_BASE_URL", "https://app-api.pixverse.ai")
# Seconds to connect and to wait for an answer; every request has both.
PIXVERSE_CONNECT_TIMEOUT = env_float("PIXVERSE_CONNECT_TIMEOUT", 5.0, minimum=0.1)
PIXVERSE_READ_TIMEOUT = env_float("PIXVERSE_READ_TIMEOUT", 30.0, minimum=0.1)
# The spec allows 1 request per second per key. Slots are spaced a little
# wider so that scheduling jitter between processes never brings two
# requests closer than one second at the server.
PIXVERSE_MIN_INTERVAL = env_float("PIXVERSE_MIN_INTERVAL", 1.05, minimum=0.0)
# Where the limiter keeps its slots: "database" (SQLite or PostgreSQL, the
# default without Redis) or "redis" (the default when REDIS_URL is set).
PIXVERSE_RATE_LIMIT_BACKEND = env_choice(
    "PIXVERSE_RATE_LIMIT_BACKEND", "redis" if REDIS_URL else "database", ("database", "redis")
)
if PIXVERSE_RATE_LIMIT_BACKEND == "redis" and not REDIS_URL:
    raise ImproperlyConfigured("PIXVERSE_RATE_LIMIT_BACKEND: 'redis' needs REDIS_URL to be set")
# "auto": the spec's /video/status, falling back to the real /video/result/{id}
# when the server has no such route; or force one of the two.
PIXVERSE_STATUS_ENDPOINT = env_choice(
    "PIXVERSE_STATUS_ENDPOINT", "auto", ("auto", "status", "result")
)
PIXVERSE_MAX_IMAGE_SIDE = env_int("PIXVERSE_MAX_IMAGE_SIDE", 4000, minimum=1)
PIXVERSE_MAX_IMAGE_BYTES = env_int("PIXVERSE_MAX_IMAGE_BYTES", 20 * 1024 * 1024, minimum=1)

# --- Jobs ---------------------------------------------------------------------------------

# A job not finished this long after it was created ends as timed out.
PORTAL_GENERATION_TIMEOUT = timedelta(minutes=env_int("PORTAL_GENERATION_TIMEOUT_MINUTES", 20, minimum=1))
# A worker's claim on a member's jobs; past it the worker is taken for dead.
PORTAL_WORKER_LEASE_SECONDS = env_int("PORTAL_WORKER_LEASE_SECONDS", 90, minimum=5)
# Submissions that meet passing errors are tried this many times, with backoff.
PORTAL_MAX_SUBMIT_ATTEMPTS = env_int("PORTAL_MAX_SUBMIT_ATTEMPTS", 5, minimum=1)
# Our copy of each finished video: at most this big, fetched within this time.
PORTAL_VIDEO_MAX_BYTES = env_int("PORTAL_VIDEO_MAX_BYTES", 200 * 1024 * 1024, minimum=1)
PORTAL_VIDEO_DOWNLOAD_TIMEOUT = env_int("PORTAL_VIDEO_DOWNLOAD_TIMEOUT", 120, minimum=1)

# --- The built-in sandbox ------------------------------------------------------------

# Off unless enabled: it hands out keys and credits to anyone who can reach it.
PIXVERSE_SANDBOX_ENABLED = env_bool("PIXVERSE_SANDBOX_ENABLED", False)
SANDBOX_GENERATION_SECONDS = env_float("SANDBOX_GENERATION_SECONDS", 6.0, minimum=0.0)
# Below this gap between two requests of one key the sandbox answers 429.
# A little under one second, as a real server's clock and ours are not one.
SANDBOX_MIN_INTERVAL = env_float("SANDBOX_MIN_INTERVAL", 0.9, minimum=0.0)
SANDBOX_CONCURRENCY = env_int("SANDBOX_CONCURRENCY", 5, minimum=1)
SANDBOX_STARTING_CREDITS = env_int("SANDBOX_STARTING_CREDITS", 2000, minimum=0)
# Prompts containing one of these words fail content moderation.
SANDBOX_MODERATED_WORDS = env_list("SANDBOX_MODERATED_WORDS", ["forbidden", "nsfw"])
