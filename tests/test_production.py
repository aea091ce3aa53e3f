"""Production settings and operations: deploy checks, CSP, limits, logs, sign-in throttling, health."""

import json
import logging
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from generations.models import Generation, WorkerHeartbeat
from pixverse_site.logcontext import ContextFilter, JsonFormatter, log_context

ROOT = Path(__file__).resolve().parent.parent


def production_env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIXVERSE_", "DATABASE_", "REDIS_", "SANDBOX_", "PORTAL_", "SECURE_",
                                "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"))}
    env.update(DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="pixverse_site.settings",
               SECRET_KEY="x" * 20 + Fernet.generate_key().decode(), ALLOWED_HOSTS="portal.example.com",
               PORTAL_ENCRYPTION_KEYS=Fernet.generate_key().decode(), **extra)
    return env


def manage(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


# --- Checks --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.slow
def test_a_production_run_without_collectstatic_serves_its_pages_and_static_files(tmp_path):
    """Hashed names need collectstatic's manifest: without it, plain names, not a 500 on every page."""
    env = production_env(tmp_path, STATIC_ROOT=str(tmp_path / "never-collected"))
    assert manage(env, "migrate", "-v", "0").returncode == 0
    code = ("from django.test import Client; c = Client(HTTP_HOST='portal.example.com'); "
            "page = c.get('/accounts/login/', secure=True); "
            "css = c.get('/static/css/portal.css', secure=True); "
            "print(page.status_code, css.status_code, '/static/css/portal.css' in page.content.decode())")
    result = manage(env, "shell", "-c", code)
    assert result.stdout.split()[-3:] == ["200", "200", "True"], result.stdout + result.stderr
    hashed = manage({**env, "STATIC_HASHED": "true"}, "check", "--deploy")
    assert hashed.returncode != 0 and "pixverse.E005" in hashed.stderr


@pytest.mark.slow
def test_check_deploy_refuses_generated_keys_and_the_sandbox(tmp_path):
    env = production_env(tmp_path, PIXVERSE_SANDBOX_ENABLED="true")
    del env["SECRET_KEY"], env["PORTAL_ENCRYPTION_KEYS"]
    result = manage(env, "check", "--deploy")
    assert result.returncode != 0
    for check_id in ("pixverse.E002", "pixverse.E003", "pixverse.E004"):
        assert check_id in result.stderr
    demo = manage(production_env(tmp_path, PIXVERSE_SANDBOX_ENABLED="true",
                                 PIXVERSE_SANDBOX_IN_PRODUCTION="true"), "check", "--deploy")
    assert demo.returncode == 0, demo.stderr


@pytest.mark.slow
def test_a_retry_not_above_the_timeout_fails_the_checks(tmp_path):
    result = manage(production_env(tmp_path, Q_TIMEOUT="300", Q_RETRY="200"), "check")
    assert result.returncode != 0
    assert "pixverse.E001" in result.stderr and "Q_RETRY" in result.stderr


@pytest.mark.slow
def test_production_is_https_only(tmp_path):
    code = ("from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, "
            "s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, bool(s.SECURE_CSP), s.SECURE_PROXY_SSL_HEADER)")
    env = production_env(tmp_path, SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https")
    result = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["True", "True", "True", "31536000", "True",
                                     "('HTTP_X_FORWARDED_PROTO',", "'https')"]


# --- CSP: no inline scripts or styles ----------------------------------------------------------------


@pytest.fixture
def staff_client(client, db):
    user = User.objects.create_superuser("staff", password="pw")
    client.force_login(user)
    return client


def test_pages_carry_the_csp_and_have_no_inline_scripts_or_styles(staff_client, settings):
    job = Generation.objects.create(owner=User.objects.get(), kind="text", prompt="p", model="v5",
                                    quality="360p", duration=5, credits=45, status="failed")
    pages = ["/", "/?mode=image", reverse("history"), reverse("detail", args=[job.code]),
             reverse("api-key"), reverse("usage"), reverse("delete", args=[job.code]),
             "/admin/", "/admin/generations/generation/"]
    for url in pages:
        response = staff_client.get(url)
        assert response.status_code == 200, url
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        html = response.content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert not re.search(r"<style[\s>]", html), url
        assert not re.search(r"\sstyle=", html), url
        assert not re.search(r"\son[a-z]+=", html), url  # no inline event handlers
    staff_client.logout()
    assert "Content-Security-Policy" in staff_client.get(reverse("login")).headers


def test_htmx_is_told_not_to_eval_or_inject_styles(client, db):
    html = client.get(reverse("login")).content.decode()
    config = json.loads(re.search(r'<meta name="htmx-config" content=\'([^\']+)\'', html).group(1))
    assert config["allowEval"] is False
    assert config["includeIndicatorStyles"] is False


# --- Requests ---------------------------------------------------------------------------------------


def test_a_request_over_the_size_limit_is_refused_before_it_is_read(client, db, settings):
    settings.PORTAL_MAX_REQUEST_BYTES = 1024
    response = client.generic("POST", reverse("login"), b"x" * 2048,
                              content_type="application/octet-stream")
    assert response.status_code == 413
    assert "too large" in response.content.decode()


def test_every_response_has_a_request_id(client, db):
    first, second = client.get(reverse("login")), client.get(reverse("login"))
    assert re.fullmatch(r"[0-9a-f]{32}", first["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]
    given = client.get(reverse("login"), headers={"X-Request-ID": "proxy-id-12345"})
    assert given["X-Request-ID"] == "proxy-id-12345"
    odd = client.get(reverse("login"), headers={"X-Request-ID": "<script>"})
    assert odd["X-Request-ID"] != "<script>"


def test_json_log_lines_carry_the_ids_and_nothing_else(caplog):
    record = logging.LogRecord("generations.jobs", logging.INFO, __file__, 1,
                               "generation %s submitted", (7,), None)
    with log_context(request_id="r-1", generation_id=7, trace_id="t-1"):
        ContextFilter().filter(record)
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["message"] == "generation 7 submitted"
    assert (entry["request_id"], entry["generation_id"], entry["trace_id"]) == ("r-1", 7, "t-1")
    assert "\n" not in line


@pytest.mark.slow
def test_the_json_log_setting_writes_one_object_per_line(tmp_path):
    env = production_env(tmp_path, LOG_FORMAT="json")
    code = ("import logging; from pixverse_site.logcontext import log_context\n"
            "with log_context(generation_id=5, trace_id='abc'):\n"
            "    logging.getLogger('generations.jobs').warning('stored')")
    result = subprocess.run([sys.executable, "-c", f"import django; django.setup()\n{code}"],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    entry = json.loads(result.stderr.strip().splitlines()[-1])
    assert entry["message"] == "stored" and entry["generation_id"] == 5 and entry["trace_id"] == "abc"


# --- Sign-in throttling -------------------------------------------------------------------------------


def test_sign_in_is_throttled_after_repeated_failures(client, db, settings):
    settings.AXES_FAILURE_LIMIT = 3
    User.objects.create_user("alice", password="right-password")
    for _ in range(2):
        failed = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
        assert failed.status_code == 400
    # The failure that reaches the limit already says so.
    assert client.post(reverse("login"), {"username": "alice", "password": "wrong"}).status_code == 429
    throttled = client.post(reverse("login"), {"username": "alice", "password": "right-password"})
    assert throttled.status_code == 429
    assert "Too many failed sign-ins" in throttled.content.decode()
    # Another address is not locked out.
    other = client.post(reverse("login"), {"username": "alice", "password": "right-password"},
                        REMOTE_ADDR="10.0.0.9")
    assert other.status_code == 302


# --- Health ----------------------------------------------------------------------------------------------


def test_healthz_reports_each_part(client, db):
    down = client.get("/healthz")
    assert down.status_code == 503
    assert down.json()["database"] == "ok" and down.json()["broker"] == "ok"
    assert down.json()["worker"].startswith("down")
    WorkerHeartbeat.beat()
    up = client.get("/healthz")
    assert up.status_code == 200 and up.json()["status"] == "ok"
    WorkerHeartbeat.objects.update(beat_at=timezone.now() - timedelta(minutes=10))
    assert client.get("/healthz").status_code == 503


def test_the_scheduler_loop_is_the_heartbeat(db, monkeypatch):
    from generations import jobs

    jobs.run_scheduler(seconds=0.1)
    assert WorkerHeartbeat.last() is not None


def test_healthz_names_the_part_that_is_down_and_logs_the_details(client, db, monkeypatch, caplog):
    from django.db import OperationalError

    detail = ('connection to server at "db.internal" (10.1.2.3), port 5433 failed: FATAL: '
              'password authentication failed for user "portal_role"')

    def database_down():
        raise OperationalError(detail)

    monkeypatch.setattr("pixverse_site.health._database", database_down)
    with caplog.at_level(logging.WARNING, logger="pixverse_site.health"):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "down" and response.json()["status"] == "down"
    body = response.content.decode()
    for secret in ("db.internal", "10.1.2.3", "5433", "portal_role", "OperationalError", "FATAL"):
        assert secret not in body
    assert detail in caplog.text and "database" in caplog.text


@pytest.mark.parametrize(("path", "status", "words"), [
    ("/no-such-page/", 404, "Page not found"),
    ("/usage/", 403, "Not allowed"),
])
def test_error_pages_have_the_portals_layout_a_way_back_and_russian(client, settings, path, status,
                                                                    words, django_user_model):
    settings.DEBUG = False
    client.force_login(django_user_model.objects.create_user("plain"))
    page = client.get(path)
    assert page.status_code == status
    body = page.content.decode()
    assert words in body and 'href="/"' in body and "topbar" in body
    russian = client.get(path, headers={"Accept-Language": "ru"}).content.decode()
    assert words not in russian and "<html lang=\"ru\"" in russian


def test_the_500_page_renders_without_a_request():
    # Django renders it with no context at all: no user, no request, no context processors.
    from django.template import loader

    html = loader.get_template("500.html").render()
    assert "Something went wrong" in html and 'href="/"' in html

