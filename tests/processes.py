"""Helpers of the tests that start real processes (servers, clusters, commands)."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reachable(port: int) -> bool:
    """Something listens on this loopback port (PostgreSQL, Redis)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_until_serving(port: int, seconds: float = 60, path: str = "/accounts/login/") -> None:
    """Wait until the web server on this loopback port answers; its first answer may be slow."""
    import time

    import requests

    deadline = time.monotonic() + seconds
    while True:
        try:
            # Any answer counts, a redirect to HTTPS included (production settings).
            requests.get(f"http://127.0.0.1:{port}{path}", timeout=10, allow_redirects=False)
            return
        except (requests.ConnectionError, requests.Timeout):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the web server on port {port} never answered") from None
            time.sleep(0.3)


def web_session():
    """A requests session for a server under test that opens a new connection per request.

    A server closes a kept-alive connection when it likes: gunicorn after 2 idle
    seconds, runserver right after answering a request that said "Connection:
    close" (without saying so in its answer). When that close crosses the test's
    next request on the wire, the request dies unanswered ("connection reset by
    peer", "remote end closed connection without response"); a browser sends it
    again, requests does not. So no connection is ever used twice: the pool is
    emptied before each request, a redirect's included.
    """
    import requests
    from requests.adapters import HTTPAdapter

    class OneConnectionPerRequest(HTTPAdapter):
        def send(self, request, **kwargs):
            self.poolmanager.clear()  # closes the connection the last answer came on
            return super().send(request, **kwargs)

    session = requests.Session()
    session.headers["Connection"] = "close"
    session.mount("http://", OneConnectionPerRequest())
    return session


def django_shell(env: dict, code: str) -> str:
    """Run Python with Django set up, in the environment of the processes under test; its output."""
    done = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{code}"],
        env={**env, "DJANGO_SETTINGS_MODULE": "pixverse_site.settings"},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def stop(processes) -> None:
    """Stop these process groups' leaders and wait; kill a group that does not stop in 30 s.

    SIGTERM goes to the main process only, as Docker sends it: a django-q2 cluster
    whose children all get the signal at once never finishes stopping.
    """
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def postgres_database(prefix: str, server: str = "postgres://postgres@127.0.0.1:5432") -> Iterator[str]:
    """A fresh PostgreSQL database on this server for the processes under test; its URL. Dropped after."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
