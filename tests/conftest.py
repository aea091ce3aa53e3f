"""Shared fixtures: fast limits by default, a live sandbox, and sandbox accounts."""

import pytest
from django.core.cache import cache
from django.utils import translation

from generations import pixverse


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    # Unit tests do not wait a second between requests; the limiter's own
    # tests turn the interval back on.
    settings.PIXVERSE_MIN_INTERVAL = 0
    settings.SANDBOX_MIN_INTERVAL = 0
    settings.SANDBOX_GENERATION_SECONDS = 1.0
    settings.PIXVERSE_SANDBOX_ENABLED = True
    settings.PIXVERSE_BASE_URL = "https://pixverse.test"
    settings.PIXVERSE_STATUS_ENDPOINT = "auto"
    settings.MEDIA_ROOT = tmp_path / "media"
    # The test client speaks plain HTTP; production's HTTPS settings have their own tests.
    settings.SECURE_SSL_REDIRECT = False
    # Hashed static names need collectstatic, which in-process tests do not run.
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    # Real hashing costs a tenth of a second a user; tests make many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    pixverse._status_endpoints.clear()
    pixverse._speaker_endpoints.clear()
    # The cache outlives a test: a process's memory, or on the PostgreSQL + Redis
    # stack the Redis database it shares with the rate limiter and the broker,
    # which clear() empties (FLUSHDB) for them too.
    cache.clear()
    yield
    pixverse._status_endpoints.clear()
    pixverse._speaker_endpoints.clear()
    # A request in another language leaves it active in this thread (LocaleMiddleware
    # activates, nothing deactivates): the next test would start in it.
    translation.deactivate()


@pytest.fixture
def sandbox_account(db):
    """A sandbox account and its key: (account, raw_key)."""
    from generations.sandbox.models import SandboxAccount

    return SandboxAccount.issue("test", credits=1000)


@pytest.fixture
def sandbox_url(live_server):
    return f"{live_server.url}/sandbox"
