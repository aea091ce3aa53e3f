"""Settings from the environment: every bad value stops the process with the variable's name."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from pixverse_site.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_str,
    env_url,
)

ROOT = Path(__file__).resolve().parent.parent
NAME = "PORTAL_TEST_SETTING"


@pytest.fixture(autouse=True)
def _unset(monkeypatch):
    monkeypatch.delenv(NAME, raising=False)
    monkeypatch.delenv(f"{NAME}_FILE", raising=False)


def names_the_variable(name: str = NAME) -> re.Pattern:
    return re.compile(rf"^{re.escape(name)}: ")


# --- env_bool -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["true", "TRUE", "True", "1", "yes", "Yes", "on", "ON"])
def test_env_bool_reads_true_in_any_case(monkeypatch, value):
    monkeypatch.setenv(NAME, value)
    assert env_bool(NAME, False) is True


@pytest.mark.parametrize("value", ["false", "FALSE", "False", "0", "no", "NO", "off", "Off"])
def test_env_bool_reads_false_in_any_case(monkeypatch, value):
    monkeypatch.setenv(NAME, value)
    assert env_bool(NAME, True) is False


@pytest.mark.parametrize("value", ["maybe", "2", "y", "n", "enabled", "-1", "truee"])
def test_env_bool_rejects_anything_else_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv(NAME, value)
    with pytest.raises(ImproperlyConfigured, match=names_the_variable()) as raised:
        env_bool(NAME, False)
    assert repr(value) in str(raised.value)


def test_env_bool_falls_back_to_the_default_when_unset_or_empty(monkeypatch):
    assert env_bool(NAME, True) is True
    monkeypatch.setenv(NAME, "")
    assert env_bool(NAME, False) is False


# --- env_int, env_float ---------------------------------------------------------------------------

def test_env_int_reads_a_whole_number(monkeypatch):
    monkeypatch.setenv(NAME, "42")
    assert env_int(NAME, 1) == 42


@pytest.mark.parametrize("value", ["fast", "1.5", "4O", "1e3"])
def test_env_int_rejects_what_is_not_a_whole_number(monkeypatch, value):
    monkeypatch.setenv(NAME, value)
    with pytest.raises(ImproperlyConfigured, match=names_the_variable()):
        env_int(NAME, 1)


def test_env_int_rejects_a_value_below_its_minimum(monkeypatch):
    monkeypatch.setenv(NAME, "0")
    with pytest.raises(ImproperlyConfigured, match=names_the_variable()) as raised:
        env_int(NAME, 5, minimum=1)
    assert "at least 1" in str(raised.value)


def test_env_int_accepts_its_minimum(monkeypatch):
    monkeypatch.setenv(NAME, "1")
    assert env_int(NAME, 5, minimum=1) == 1


def test_env_int_falls_back_to_the_default_when_unset_or_empty(monkeypatch):
    assert env_int(NAME, 7) == 7
    monkeypatch.setenv(NAME, "")
    assert env_int(NAME, 7) == 7


@pytest.mark.parametrize(("value", "expected"), [("0.25", 0.25), ("2", 2.0), ("1e-1", 0.1)])
def test_env_float_reads_a_number(monkeypatch, value, expected):
    monkeypatch.setenv(NAME, value)
    assert env_float(NAME, 1.0) == expected


@pytest.mark.parametrize("value", ["fast", "1,5", "one"])
def test_env_float_rejects_what_is_not_a_number(monkeypatch, value):
    monkeypatch.setenv(NAME, value)
    with pytest.raises(ImproperlyConfigured, match=names_the_variable()):
        env_float(NAME, 1.0)


def test_env_float_rejects_a_value_below_its_minimum(monkeypatch):
    monkeypatch.setenv(NAME, "0.05")
    with pytest.raises(ImproperlyConfigured, match=names_the_variable()) as raised:
        env_float(NAME, 1.0, minimum=0.1)
    assert "at least 0.1" in str(raised.value)


@pytest.mark.parametrize("value", ["nan", "inf", "Infinity"])
def test_env_float_rejects_values_that_are_not_finite(monkeypatch, value):
    # Every comparison with nan is false, so nan slips past any minimum; a timeout of inf never ends.
    monkeypatch.setenv(NAME, value)
    with pytest.raises(ImproperlyConfigured, match=names_the_variable()):
        env_float(NAME, 1.0, minimum=0.0)


# --- env_str, env_list, env_choice, env_url -------------------------------------------------------

def test_env_str_falls_back_to_the_default_when_unset_or_empty(monkeypatch):
    assert env_str(NAME, "fallback") == "fallback"
    monkeypatch.setenv(NAME, "")
    assert env_str(NAME, "fallback") == "fallback"
    monkeypatch.setenv(NAME, "given")
    assert env_str(NAME, "fallback") == "given"


def test_env_list_splits_on_commas_and_drops_blanks(monkeypatch):
    monkeypatch.setenv(NAME, " a.example, b.example ,,")
    assert env_list(NAME, ["default"]) == ["a.example", "b.example"]


def test_env_choice_accepts_one_of_its_choices(monkeypatch):
    assert env_choice(NAME, "auto", ("auto", "status", "result")) == "auto"
    monkeypatch.setenv(NAME, "result")
    assert env_choice(NAME, "auto", ("auto", "status", "result")) == "result"


@pytest.mark.parametrize("value", ["other", "Result", "result "])
def test_env_choice_rejects_anything_else_listing_the_choices(monkeypatch, value):
    monkeypatch.setenv(NAME, value)
    with pytest.raises(ImproperlyConfigured, match=names_the_variable()) as raised:
        env_choice(NAME, "auto", ("auto", "status", "result"))
    assert "auto, status, result" in str(raised.value)


@pytest.mark.parametrize(("value", "expected"), [
    ("https://app-api.pixverse.ai", "https://app-api.pixverse.ai"),
    ("http://127.0.0.1:8000/sandbox/", "http://127.0.0.1:8000/sandbox"),
])
def test_env_url_accepts_http_and_https_without_a_trailing_slash(monkeypatch, value, expected):
    monkeypatch.setenv(NAME, value)
    assert env_url(NAME, "https://default.example") == expected


@pytest.mark.parametrize("value", ["ftp://x", "app-api.pixverse.ai", "file:///etc/passwd", "http:/x"])
def test_env_url_rejects_what_is_not_an_http_url(monkeypatch, value):
    monkeypatch.setenv(NAME, value)
    with pytest.raises(ImproperlyConfigured, match=names_the_variable()):
        env_url(NAME, "https://default.example")


def test_env_url_checks_its_default_too():
    with pytest.raises(ImproperlyConfigured, match=names_the_variable()):
        env_url(NAME, "app-api.pixverse.ai")


# --- NAME_FILE ------------------------------------------------------------------------------------

def test_a_file_variant_gives_the_files_contents_without_the_final_newline(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret-value\n", encoding="utf-8")
    monkeypatch.setenv(f"{NAME}_FILE", str(secret))
    assert env_str(NAME, "") == "s3cret-value"


def test_a_file_variant_is_checked_like_the_variable(monkeypatch, tmp_path):
    number = tmp_path / "number"
    number.write_text("12\n", encoding="utf-8")
    monkeypatch.setenv(f"{NAME}_FILE", str(number))
    assert env_int(NAME, 1) == 12
    flag = tmp_path / "flag"
    flag.write_text("sometimes\n", encoding="utf-8")
    monkeypatch.setenv(f"{NAME}_FILE", str(flag))
    with pytest.raises(ImproperlyConfigured, match=names_the_variable()):
        env_bool(NAME, False)


def test_an_unreadable_file_variant_names_the_file_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(f"{NAME}_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match=names_the_variable(f"{NAME}_FILE")):
        env_str(NAME, "")


def test_the_variable_wins_over_its_file_variant(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-file", encoding="utf-8")
    monkeypatch.setenv(f"{NAME}_FILE", str(secret))
    monkeypatch.setenv(NAME, "from-env")
    assert env_str(NAME, "") == "from-env"


def test_an_empty_variable_does_not_hide_its_file_variant(monkeypatch, tmp_path):
    # Compose passes `SECRET_KEY: ${SECRET_KEY}` as an empty value when the host has none set.
    secret = tmp_path / "secret"
    secret.write_text("from-file", encoding="utf-8")
    monkeypatch.setenv(f"{NAME}_FILE", str(secret))
    monkeypatch.setenv(NAME, "")
    assert env_str(NAME, "default") == "from-file"


# --- The settings module --------------------------------------------------------------------------

def test_the_default_sqlite_database_is_set_up_for_several_writers():
    database = django_settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("DATABASE_URL names another database")
    options = database["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert options["timeout"] >= 1
    assert re.search(r"journal_mode\s*=\s*WAL", options["init_command"], re.IGNORECASE)


def settings_variables() -> set[str]:
    source = (ROOT / "pixverse_site" / "settings.py").read_text(encoding="utf-8")
    return set(re.findall(r"env_\w+\(\s*\"([A-Z][A-Z0-9_]*)\"", source))


def start_django(tmp_path: Path, code: str = "", **variables: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    # The developer's own settings must not decide these tests' outcome.
    for name in settings_variables():
        env.pop(name, None)
        env.pop(f"{name}_FILE", None)
    env.update(DJANGO_SETTINGS_MODULE="pixverse_site.settings", DATA_DIR=str(tmp_path / "data"),
               **variables)
    return subprocess.run([sys.executable, "-c", f"import django; django.setup(){code}"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def test_the_settings_read_every_variable_through_a_checking_helper():
    # Guards the list start_django clears: if settings stop using the helpers, it would be empty.
    assert {"DEBUG", "DATABASE_URL", "REDIS_URL", "PIXVERSE_BASE_URL", "PIXVERSE_MIN_INTERVAL"} <= (
        settings_variables())


@pytest.mark.slow
def test_django_starts_with_no_variable_set(tmp_path):
    started = start_django(tmp_path)
    assert started.returncode == 0, started.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("name", "value"), [
    ("DEBUG", "maybe"),
    ("DATABASE_URL", "nonsense://x"),
    ("PIXVERSE_BASE_URL", "ftp://x"),
    ("PIXVERSE_MIN_INTERVAL", "fast"),
    ("REDIS_URL", "http://x"),
    ("Q_WORKERS", "0"),
    ("PIXVERSE_STATUS_ENDPOINT", "sometimes"),
    ("PIXVERSE_RATE_LIMIT_BACKEND", "redis"),
    ("LOG_LEVEL", "verbose"),
    ("CONN_MAX_AGE", "-5"),
    ("PORTAL_MEDIA_ACCEL_REDIRECT", "protected-media"),
    ("MEDIA_S3_ENDPOINT_URL", "minio:9000"),
])
def test_django_refuses_to_start_with_a_bad_value(tmp_path, name, value):
    started = start_django(tmp_path, **{name: value})
    assert started.returncode != 0
    assert f"ImproperlyConfigured: {name}" in started.stderr


@pytest.mark.slow
def test_a_bucket_moves_media_to_s3_and_its_links_into_the_content_policy(tmp_path):
    started = start_django(tmp_path, (
        "; from django.conf import settings; o = settings.STORAGES['default']"
        "; print(o['BACKEND'], o['OPTIONS']['bucket_name'], o['OPTIONS']['querystring_expire'])"
        "; print(' '.join(settings.SECURE_CSP['img-src']))"
    ), MEDIA_S3_BUCKET="team-media", MEDIA_S3_ENDPOINT_URL="https://minio.example.com",
        MEDIA_S3_LINK_SECONDS="120", SECRET_KEY="x" * 50, PORTAL_ENCRYPTION_KEYS="k")
    assert started.returncode == 0, started.stderr
    backend, img_src = started.stdout.splitlines()
    assert backend == "storages.backends.s3.S3Storage team-media 120"
    assert "https://minio.example.com" in img_src.split()


@pytest.mark.slow
@pytest.mark.parametrize(("redis_url", "engine"), [
    ("", "django.contrib.sessions.backends.db"),
    ("redis://127.0.0.1:6379/9", "django.contrib.sessions.backends.cached_db"),
])
def test_sessions_are_read_through_redis_only_when_there_is_redis(tmp_path, redis_url, engine):
    started = start_django(tmp_path, "; from django.conf import settings; print(settings.SESSION_ENGINE)",
                           REDIS_URL=redis_url)
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == engine


@pytest.mark.slow
def test_sqlite_connections_really_use_wal_and_wait_for_the_lock(tmp_path):
    started = start_django(tmp_path, (
        "; from django.db import connection; cursor = connection.cursor()"
        "; print(cursor.execute('PRAGMA journal_mode').fetchone()[0])"
        "; print(cursor.execute('PRAGMA busy_timeout').fetchone()[0])"
    ), SQLITE_BUSY_TIMEOUT="7")
    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == ["wal", "7000"]


@pytest.mark.slow
def test_processes_starting_together_on_a_fresh_folder_share_one_encryption_key(tmp_path):
    code = "from django.conf import settings; print(settings.PORTAL_ENCRYPTION_KEYS[0], settings.SECRET_KEY)"
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k not in settings_variables()}
    env.update(DJANGO_SETTINGS_MODULE="pixverse_site.settings", DATA_DIR=str(tmp_path))
    runs = [subprocess.Popen([sys.executable, "-c", "import django; django.setup(); " + code],
                             cwd=root, env=env, stdout=subprocess.PIPE, text=True) for _ in range(6)]
    outputs = {run.communicate(timeout=60)[0] for run in runs}
    assert len(outputs) == 1
    assert (tmp_path / "encryption_key").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["encryption_key", "secret_key"]
