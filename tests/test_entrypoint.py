"""The image's entry script, run outside Docker: migrate, web (gunicorn) and worker roles,
production settings, hashed static files, and the health check turning healthy."""

import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from tests.processes import free_port, stop

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
HOST = "portal.example.com"

pytestmark = pytest.mark.slow


def test_the_roles_serve_a_healthy_portal(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIXVERSE_", "DATABASE_", "REDIS_", "SANDBOX_", "PORTAL_", "SECURE_",
                                "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "STATIC_"))}
    env.update(
        PYTHON=sys.executable, PORT=str(port), DATA_DIR=str(tmp_path),
        STATIC_ROOT=str(tmp_path / "static"), STATIC_HASHED="true",
        SECRET_KEY=secrets.token_urlsafe(50), PORTAL_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS=HOST, SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
        WEB_CONCURRENCY="2", Q_WORKERS="1", LOG_LEVEL="WARNING",
    )
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "collectstatic", "--no-input", "-v", "0"],
                   env=env, cwd=ROOT, check=True, timeout=120)
    assert subprocess.run([str(ENTRYPOINT), "migrate", "-v", "0"], env=env, timeout=120).returncode == 0
    assert subprocess.run([str(ENTRYPOINT), "check"], env=env, timeout=120).returncode == 0

    log = (tmp_path / "roles.log").open("w")
    web = subprocess.Popen([str(ENTRYPOINT), "web"], env=env, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)
    worker = subprocess.Popen([str(ENTRYPOINT), "worker"], env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    secure = {"Host": HOST, "X-Forwarded-Proto": "https"}
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                health = requests.get(f"{base}/healthz", headers={"Host": HOST}, timeout=3)
                if health.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the portal never became healthy"
            time.sleep(1)
        assert health.json() == {"status": "ok", "database": "ok", "broker": "ok", "worker": "ok"}

        healthcheck = subprocess.run([sys.executable, "-m", "pixverse_site.healthcheck"], env=env,
                                     cwd=ROOT, timeout=30)
        assert healthcheck.returncode == 0

        # Plain HTTP is sent to HTTPS; behind the proxy, the page is served with its protections.
        plain = requests.get(f"{base}/accounts/login/", headers={"Host": HOST}, allow_redirects=False,
                             timeout=5)
        assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")
        page = requests.get(f"{base}/accounts/login/", headers=secure, timeout=5)
        assert page.status_code == 200
        assert "max-age=31536000" in page.headers["Strict-Transport-Security"]
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        stylesheet = re.search(r'href="(/static/css/portal\.[0-9a-f]{12}\.css)"', page.text)
        assert stylesheet, "static files are not served under hashed names"
        css = requests.get(base + stylesheet.group(1), headers={**secure, "Accept-Encoding": "gzip"},
                           timeout=5)
        assert css.status_code == 200
        assert "immutable" in css.headers["Cache-Control"]
        assert css.headers.get("Content-Encoding") in ("gzip", "br")
    finally:
        stop([web, worker])
        log.close()
    assert web.returncode == 0, (tmp_path / "roles.log").read_text()[-2000:]
    assert worker.returncode == 0, (tmp_path / "roles.log").read_text()[-2000:]
