"""The README's run command, as a newcomer uses it: start, sign in, call the sandbox, Ctrl-C."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.processes import free_port, web_session

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def read_until(process, pattern, timeout):
    """Lines of the process's output until one matches; the match."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        found = re.search(pattern, line)
        if found:
            return found
    raise AssertionError(f"no {pattern!r} in output:\n{''.join(seen)}")


def wait_for_http(url, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return requests.get(url, timeout=2)
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


def stop_on_ctrl_c(process) -> None:
    # Ctrl-C reaches the whole foreground process group.
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise


def test_dev_run_serves_the_portal_and_the_sandbox_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIXVERSE_", "DATABASE_", "REDIS_", "DEBUG"))}
    env.update(PORT=str(port), DATA_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [str(ROOT / "dev"), "run"], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    rest: list[str] = []  # the output after the demo login
    try:
        login = read_until(process, r"Demo login:\s+(\S+) / (\S+)", timeout=240)
        username, password = login.group(1), login.group(2)
        # The rest of the output is read as it comes: a full pipe would block the
        # portal's next log line, and the request that writes it.
        threading.Thread(target=lambda: rest.extend(iter(process.stdout.readline, "")), daemon=True).start()
        base = f"http://127.0.0.1:{port}"
        page = wait_for_http(f"{base}/accounts/login/", timeout=60)
        assert page.status_code == 200

        session = web_session()
        session.get(f"{base}/accounts/login/", timeout=5)
        signed_in = session.post(
            f"{base}/accounts/login/", timeout=5,
            data={"username": username, "password": password,
                  "csrfmiddlewaretoken": session.cookies["csrftoken"]},
            headers={"Referer": f"{base}/accounts/login/"},
        )
        assert signed_in.url == f"{base}/"
        assert "New video" in signed_in.text
        assert "credits" in signed_in.text

        cli_env = {**env, "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
                   "PIXVERSE_BASE_URL": f"{base}/sandbox", "LOG_LEVEL": "WARNING"}
        balance = subprocess.run(
            [sys.executable, "manage.py", "pixverse", "--user", username, "balance"],
            cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=60,
        )
        assert balance.returncode == 0, balance.stderr
        assert json.loads(balance.stdout)["total"] > 0
    except BaseException:
        # What the portal said after the demo login (a traceback of the web server, say)
        # is shown with the failure.
        stop_on_ctrl_c(process)
        print("".join(rest))
        raise
    stop_on_ctrl_c(process)
    leftovers = subprocess.run(["pgrep", "-g", str(process.pid)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "processes left running after Ctrl-C"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/accounts/login/", timeout=2)
