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
from django.utils.csp import CSP
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
SECRET_KEY = env_str("SECRET_KEY", "")
SECRET_KEY_GENERATED = not SECRET_KEY  # a deploy check refuses this in production
SECRET_KEY = SECRET_KEY or local_secret_file(DATA_DIR / "secret_key", lambda: secrets.token_urlsafe(50))
# Fernet keys for members' stored PixVerse keys, newest first (see generations/crypto.py).
PORTAL_ENCRYPTION_KEYS = env_list("PORTAL_ENCRYPTION_KEYS", [])
PORTAL_ENCRYPTION_KEYS_GENERATED = not PORTAL_ENCRYPTION_KEYS
PORTAL_ENCRYPTION_KEYS = PORTAL_ENCRYPTION_KEYS or [
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
    "axes",
    "generations.apps.AuditLogConfig",
    "generations",
    "generations.sandbox",
]

MIDDLEWARE = [
    "pixverse_site.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "pixverse_site.middleware.TimeZoneMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Swaps a locked-out sign-in's answer for the lockout page (after sessions and auth; it reads no body).
    "axes.middleware.AxesMiddleware",
    # The signed-in member is the actor of the audit log's entries (generations/audit.py).
    "generations.audit.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "pixverse_site.middleware.HtmxSignInRedirectMiddleware",
    "pixverse_site.middleware.PrivatePagesMiddleware",
    # Last: the body is still unread here, and the member is known (see its docstring).
    "pixverse_site.middleware.RequestSizeLimitMiddleware",
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
    # Kept connections are checked before each request reuses them, so a database
    # restart costs one reconnect, not an error page.
    _database = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("CONN_MAX_AGE", 0, minimum=0),
                                      conn_health_checks=True)
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
elif _database["ENGINE"] == "django.db.backends.postgresql":
    # Server-side parameters let psycopg prepare the statements a connection runs
    # again and again (session, user, the job card: every poll), so PostgreSQL
    # plans them once per connection; it pays with CONN_MAX_AGE > 0.
    _database.setdefault("OPTIONS", {})["server_side_binding"] = env_bool(
        "DATABASE_SERVER_SIDE_BINDING", True)
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, broker --------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL: expected a redis:// URL, got {REDIS_URL!r}")

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": REDIS_URL}}
    # Every request reads its session: from Redis, the database only on a miss.
    # Not without Redis: a per-process cache would keep a signed-out session
    # alive in the other processes.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
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
    # A member's worker loop can hold a worker for a minute or more; a cluster
    # whose workers are all busy should not hold many tasks back from idle
    # clusters (django-q2 prefetches workers² by default).
    "queue_limit": env_int("Q_QUEUE_LIMIT", 1, minimum=1),
    "catch_up": False,
    "save_limit": 1000,
    "label": _("Background tasks"),
}
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
# django-axes refuses a locked-out sign-in before any password is checked, on
# the portal's and the admin's sign-in alike.
AUTHENTICATION_BACKENDS = [
    "generations.accounts.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Sign-in failures (see README, "Deploying"): PORTAL_LOGIN_ATTEMPTS of them for one
# user name from one client address lock that pair out for PORTAL_LOGIN_WINDOW_SECONDS
# (each further try starts the wait again). Per pair, so a stranger cannot lock a member
# out from everywhere; in the database, so every process and host counts together.
PORTAL_LOGIN_ATTEMPTS = env_int("PORTAL_LOGIN_ATTEMPTS", 5, minimum=1)
PORTAL_LOGIN_WINDOW_SECONDS = env_int("PORTAL_LOGIN_WINDOW_SECONDS", 900, minimum=1)
# Proxies in front of the portal that append to X-Forwarded-For (1 behind the image's
# nginx or Traefik). 0: the client is the connection's address, and the header is ignored.
PORTAL_TRUSTED_PROXY_COUNT = env_int("PORTAL_TRUSTED_PROXY_COUNT", 0, minimum=0)
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_VERBOSE = False  # no banner in every management command's output
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = PORTAL_LOGIN_ATTEMPTS
AXES_COOLOFF_TIME = timedelta(seconds=PORTAL_LOGIN_WINDOW_SECONDS)
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "generations.accounts.signin_username"
# ipware's proxy count means the proxies listed inside the header, and a header it
# does not expect gives no address at all (one shared counter): ours counts from the right.
AXES_CLIENT_IP_CALLABLE = "generations.accounts.client_address"
AXES_LOCKOUT_CALLABLE = "generations.views.signin_locked_out"
# Only failures are needed to lock out; successful sign-ins are not recorded.
AXES_DISABLE_ACCESS_LOG = True
# A stored failure keeps the form's fields: not the CSRF token (it reveals the cookie's secret).
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "csrfmiddlewaretoken"]
# The audit log (generations/audit.py): a foreign key's change says whom it names, not a
# number; an entry carries the request id of the log lines of its request.
AUDITLOG_USE_FK_STRING_REPRESENTATION = True
AUDITLOG_CID_GETTER = "pixverse_site.logcontext.current_request_id"
# Password-reset mail per hour: to one address, and asked for by one client address.
PORTAL_PASSWORD_RESETS_PER_ADDRESS = env_int("PORTAL_PASSWORD_RESETS_PER_ADDRESS", 3, minimum=1)
PORTAL_PASSWORD_RESETS_PER_CLIENT = env_int("PORTAL_PASSWORD_RESETS_PER_CLIENT", 10, minimum=1)
# Anyone who reaches the site may make an account: on for the local run,
# off by default (staff add members in the admin).
PORTAL_SIGNUP_ENABLED = env_bool("PORTAL_SIGNUP_ENABLED", False)
# Password-reset mail: printed on the console in a local run, sent by SMTP in production.
MAIL_BACKEND = env_str("MAIL_BACKEND", "django.core.mail.backends.console.EmailBackend" if DEBUG
                       else "django.core.mail.backends.smtp.EmailBackend")
MAILERS = {"default": {"BACKEND": MAIL_BACKEND}}
if MAIL_BACKEND.endswith("smtp.EmailBackend"):
    MAILERS["default"]["OPTIONS"] = {
        "host": env_str("MAIL_HOST", "localhost"),
        "port": env_int("MAIL_PORT", 587, minimum=1),
        "username": env_str("MAIL_USER", ""),
        "password": env_str("MAIL_PASSWORD", ""),
        "use_tls": env_bool("MAIL_USE_TLS", True),
        "timeout": 10,
    }
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
# Compressed, content-hashed names that whitenoise serves with far-future cache
# headers. They need `collectstatic` (the image runs it at build time): without
# its manifest (tests, benchmarks in place, a production run that skipped it)
# they are off by default, and whitenoise serves static/ itself under the plain
# names -- every page naming a static file would otherwise be a 500.
STATIC_MANIFEST = STATIC_ROOT / "staticfiles.json"
STATIC_HASHED = env_bool("STATIC_HASHED", not DEBUG and STATIC_MANIFEST.exists())
WHITENOISE_USE_FINDERS = DEBUG or not STATIC_HASHED
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
                    if STATIC_HASHED else "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media")))
# Uploads and stored videos on S3-compatible storage (AWS, MinIO, R2...) instead of
# MEDIA_ROOT. The bucket stays private: after the portal's own check, a member is
# sent to a link signed for MEDIA_S3_LINK_SECONDS.
MEDIA_S3_BUCKET = env_str("MEDIA_S3_BUCKET", "")
MEDIA_S3_ENDPOINT_URL = env_str("MEDIA_S3_ENDPOINT_URL", "")
if MEDIA_S3_ENDPOINT_URL and not MEDIA_S3_ENDPOINT_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured(
        f"MEDIA_S3_ENDPOINT_URL: expected an http(s):// URL, got {MEDIA_S3_ENDPOINT_URL!r}")
if MEDIA_S3_BUCKET:
    STORAGES["default"] = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": MEDIA_S3_BUCKET,
        "endpoint_url": MEDIA_S3_ENDPOINT_URL or None,
        "region_name": env_str("MEDIA_S3_REGION", "") or None,
        "access_key": env_str("MEDIA_S3_ACCESS_KEY_ID", "") or None,
        "secret_key": env_str("MEDIA_S3_SECRET_ACCESS_KEY", "") or None,
        "location": env_str("MEDIA_S3_PREFIX", ""),
        "querystring_auth": True,
        "querystring_expire": env_int("MEDIA_S3_LINK_SECONDS", 300, minimum=10),
        "default_acl": None,
        "file_overwrite": False,
        "signature_version": "s3v4",  # what every region and MinIO accept
    }}

LOG_FORMAT = env_choice("LOG_FORMAT", "text", ("text", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "pixverse_site.logcontext.ContextFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s "
                           "request_id=%(request_id)s generation_id=%(generation_id)s"},
        "json": {"()": "pixverse_site.logcontext.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT,
                             "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": env_choice(
        "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))},
    "loggers": {"urllib3": {"level": "WARNING"}},
}

# --- Security -----------------------------------------------------------------------------------

# Production (DEBUG off) is HTTPS-only by default; each part can be turned off
# for a deployment that terminates TLS elsewhere and says so.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Load balancers probe health over plain HTTP; the sandbox is reached by the
# portal's own processes, which may not speak TLS to themselves.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^sandbox/"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
# Behind a proxy that terminates TLS: "HTTP_X_FORWARDED_PROTO,https" (header, value).
_proxy_header = env_list("SECURE_PROXY_SSL_HEADER", [])
if _proxy_header and (len(_proxy_header) != 2 or not _proxy_header[0].startswith("HTTP_")):
    raise ImproperlyConfigured(
        "SECURE_PROXY_SSL_HEADER: expected 'HTTP_HEADER_NAME,value', e.g. 'HTTP_X_FORWARDED_PROTO,https'"
    )
SECURE_PROXY_SSL_HEADER = tuple(_proxy_header) or None
# The CSRF token reaches htmx through the page (hx-headers), never through a script reading the cookie.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 14 * 24 * 3600, minimum=60)

# No inline scripts or styles anywhere (htmx is configured to need neither,
# nor eval). Enforced in production; report-only with DEBUG on, because
# Django's debug pages are made of inline scripts and styles.
_csp = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    # Source images come from the bucket's signed links when media are on S3.
    "img-src": [CSP.SELF, "data:", "blob:",
                *([MEDIA_S3_ENDPOINT_URL or "https://*.amazonaws.com"] if MEDIA_S3_BUCKET else [])],
    # A finished video plays from PixVerse's link until our own copy is stored.
    "media-src": [CSP.SELF, "https:", *([MEDIA_S3_ENDPOINT_URL] if MEDIA_S3_ENDPOINT_URL else [])],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
SECURE_CSP = {} if DEBUG else _csp
SECURE_CSP_REPORT_ONLY = _csp if DEBUG else {}

# Requests: the largest legitimate one is an image upload (20 MB) and a form.
PORTAL_MAX_REQUEST_BYTES = env_int("PORTAL_MAX_REQUEST_BYTES", 21 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440  # form fields other than files (Django's default)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440  # larger uploads go to a temporary file
# Behind nginx: the internal location that serves MEDIA_ROOT (e.g. "/protected-media/");
# the portal checks who may see a file and nginx sends it. Empty: the portal sends it.
PORTAL_MEDIA_ACCEL_REDIRECT = env_str("PORTAL_MEDIA_ACCEL_REDIRECT", "")
if PORTAL_MEDIA_ACCEL_REDIRECT and not (PORTAL_MEDIA_ACCEL_REDIRECT.startswith("/")
                                        and PORTAL_MEDIA_ACCEL_REDIRECT.endswith("/")):
    raise ImproperlyConfigured(
        f"PORTAL_MEDIA_ACCEL_REDIRECT: expected a path starting and ending with '/', "
        f"got {PORTAL_MEDIA_ACCEL_REDIRECT!r}")

# --- PixVerse ---------------------------------------------------------------------

PIXVERSE_BASE_URL = env_url("PIXVERSE_BASE_URL", "https://app-api.pixverse.ai")
# How long an invitation's link works.
PORTAL_INVITATION_DAYS = env_int("PORTAL_INVITATION_DAYS", 7, minimum=1)
# Where a member gets a key of their own: the key page links here.
PIXVERSE_KEYS_URL = env_url("PIXVERSE_KEYS_URL", "https://platform.pixverse.ai/")
# Seconds to connect and to wait for an answer; every request has both.
PIXVERSE_CONNECT_TIMEOUT = env_float("PIXVERSE_CONNECT_TIMEOUT", 5.0, minimum=0.1)
PIXVERSE_READ_TIMEOUT = env_float("PIXVERSE_READ_TIMEOUT", 30.0, minimum=0.1)
# A status read is small: a stuck one should not hold a worker for the full read timeout.
PIXVERSE_STATUS_READ_TIMEOUT = env_float("PIXVERSE_STATUS_READ_TIMEOUT", 10.0, minimum=0.1)
# The spec allows 1 request per second per key. Slots are spaced a little
# wider to absorb the jitter between reserving a slot and the request's
# arrival at the server (a few ms on loopback under load; more over a WAN).
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
# The secret of the PixVerse account's webhooks: set, /webhooks/pixverse/ takes
# PixVerse's callbacks and has a finished job's status read at once (polling goes
# on as the safety net); empty, that URL answers 404.
PIXVERSE_WEBHOOK_SECRET = env_str("PIXVERSE_WEBHOOK_SECRET", "")
# With the secret set, polling is the safety net for a webhook that never comes:
# seconds between the status reads of a job still running after its first read.
PIXVERSE_WEBHOOK_POLL_INTERVAL = env_float("PIXVERSE_WEBHOOK_POLL_INTERVAL", 20.0, minimum=1.0)
PIXVERSE_MAX_IMAGE_SIDE = env_int("PIXVERSE_MAX_IMAGE_SIDE", 4000, minimum=1)
PIXVERSE_MAX_IMAGE_BYTES = env_int("PIXVERSE_MAX_IMAGE_BYTES", 20 * 1024 * 1024, minimum=1)

# --- Jobs ---------------------------------------------------------------------------------

# A job not finished this long after it was created ends as timed out.
PORTAL_GENERATION_TIMEOUT = timedelta(minutes=env_int("PORTAL_GENERATION_TIMEOUT_MINUTES", 20, minimum=1))
# A scheduler's claim on a step in flight (and on its cluster's loop), renewed
# every third of it while the step runs; past it the holder is taken for dead
# and another takes over: how fast work resumes after a worker is killed.
PORTAL_WORKER_LEASE_SECONDS = env_int("PORTAL_WORKER_LEASE_SECONDS", 10, minimum=3)
# Threads of a scheduler loop: steps in flight at once (a hung request holds only its own).
PORTAL_SCHEDULER_THREADS = env_int("PORTAL_SCHEDULER_THREADS", 16, minimum=2)
# Generate calls that PixVerse answers with a passing error (a 5xx in its envelope)
# are tried this many times, with backoff. Waiting for the plan's limit and
# unanswered calls are not tries: those wait until the generation timeout.
PORTAL_MAX_SUBMIT_ATTEMPTS = env_int("PORTAL_MAX_SUBMIT_ATTEMPTS", 5, minimum=1)
# Our copy of each finished video: at most this big, fetched within this time.
PORTAL_VIDEO_MAX_BYTES = env_int("PORTAL_VIDEO_MAX_BYTES", 200 * 1024 * 1024, minimum=1)
PORTAL_VIDEO_DOWNLOAD_TIMEOUT = env_int("PORTAL_VIDEO_DOWNLOAD_TIMEOUT", 120, minimum=1)

# --- The built-in sandbox ------------------------------------------------------------

# Off unless enabled: it hands out keys and credits to anyone who can reach it.
PIXVERSE_SANDBOX_ENABLED = env_bool("PIXVERSE_SANDBOX_ENABLED", False)
# A deploy check refuses the sandbox in production unless this says it is meant (a demo site).
PIXVERSE_SANDBOX_IN_PRODUCTION = env_bool("PIXVERSE_SANDBOX_IN_PRODUCTION", False)
SANDBOX_GENERATION_SECONDS = env_float("SANDBOX_GENERATION_SECONDS", 6.0, minimum=0.0)
# Below this gap between two requests of one key the sandbox answers 429.
# A little under one second, as a real server's clock and ours are not one.
SANDBOX_MIN_INTERVAL = env_float("SANDBOX_MIN_INTERVAL", 0.9, minimum=0.0)
SANDBOX_CONCURRENCY = env_int("SANDBOX_CONCURRENCY", 5, minimum=1)
SANDBOX_STARTING_CREDITS = env_int("SANDBOX_STARTING_CREDITS", 2000, minimum=0)
# Prompts containing one of these words fail content moderation.
SANDBOX_MODERATED_WORDS = env_list("SANDBOX_MODERATED_WORDS", ["forbidden", "nsfw"])
