"""The 1 request/s per key limit: in one process, and across several OS processes."""

import contextlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from generations import ratelimit
from generations.models import RateLimitSlot
from tests.processes import postgres_database, reachable

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def spaced(settings):
    settings.PIXVERSE_MIN_INTERVAL = 0.3
    settings.PIXVERSE_RATE_LIMIT_BACKEND = "database"


def test_it_spaces_the_requests_of_one_key(db, spaced):
    started = time.monotonic()
    waits = [ratelimit.wait_for_slot("key-a") for _ in range(3)]
    assert waits[0] == 0
    assert time.monotonic() - started >= 0.6 - 0.01
    assert all(w > 0.2 for w in waits[1:])


def test_a_request_that_would_start_late_takes_the_next_slot_instead(db, spaced, monkeypatch):
    """A thread that oversleeps its slot must not send right before the next slot's request."""
    real_sleep = time.sleep
    late = [0.05]  # the first sleep overruns by 50 ms, as on a busy machine

    def oversleeping(seconds):
        real_sleep(seconds + (late.pop() if late else 0))

    ratelimit.wait_for_slot("key-a")
    monkeypatch.setattr(ratelimit.time, "sleep", oversleeping)
    started = time.monotonic()
    ratelimit.wait_for_slot("key-a")
    # Its first slot (0.3 s on) was missed by 50 ms: it went at the one after (0.6 s).
    assert time.monotonic() - started >= 0.6 - 0.01


def test_keys_do_not_wait_for_each_other(db, spaced):
    ratelimit.wait_for_slot("key-a")
    started = time.monotonic()
    ratelimit.wait_for_slot("key-b")
    assert time.monotonic() - started < 0.1


def test_it_stores_a_hash_never_the_key(db, spaced):
    ratelimit.wait_for_slot("sk-secret-key-1234")
    (slot,) = RateLimitSlot.objects.all()
    assert slot.key_hash == ratelimit.key_fingerprint("sk-secret-key-1234")
    assert "sk-secret" not in slot.key_hash and "1234" not in str(slot)


def test_a_slot_too_far_away_is_refused_and_not_reserved(db, settings):
    settings.PIXVERSE_MIN_INTERVAL = 5
    settings.PIXVERSE_RATE_LIMIT_BACKEND = "database"
    ratelimit.wait_for_slot("key-a")
    before = RateLimitSlot.objects.get().next_at
    with pytest.raises(ratelimit.SlotTooFar) as caught:
        ratelimit.wait_for_slot("key-a", max_wait=1)
    assert 4 < caught.value.wait <= 5
    assert RateLimitSlot.objects.get().next_at == before


def test_the_client_turns_a_far_slot_into_rate_limited(db, settings):
    from generations.pixverse import PixVerseClient, RateLimited

    settings.PIXVERSE_MIN_INTERVAL = 5
    ratelimit.wait_for_slot("key-a")
    with pytest.raises(RateLimited, match="try again"):
        PixVerseClient("key-a", max_wait=0.5).balance()


@pytest.mark.parametrize("backend", ["database", "redis"])
def test_the_next_free_slot_can_be_looked_at_without_taking_it(db, spaced, settings, backend):
    if backend == "redis":
        if not reachable(6379):
            pytest.skip("no Redis on 127.0.0.1:6379")
        settings.REDIS_URL = "redis://127.0.0.1:6379/15"
        settings.PIXVERSE_RATE_LIMIT_BACKEND = "redis"
    # Slots 1 s apart, so a busy machine's pause between taking the slot and looking at the
    # next one cannot make the next slot look free already.
    settings.PIXVERSE_MIN_INTERVAL = 1.0
    key = f"key-peek-{uuid.uuid4()}"  # a Redis shared with other tests
    assert ratelimit.seconds_until_free(ratelimit.key_fingerprint(key)) == 0
    ratelimit.wait_for_slot(key)
    first = ratelimit.seconds_until_free(ratelimit.key_fingerprint(key))
    assert 0.5 < first <= 1.0
    assert ratelimit.seconds_until_free(ratelimit.key_fingerprint(key)) <= first  # nothing taken
    time.sleep(first + 0.05)
    assert ratelimit.seconds_until_free(ratelimit.key_fingerprint(key)) == 0


def test_the_interval_zero_switches_the_limiter_off(db):
    assert ratelimit.wait_for_slot("key-a") == 0
    assert not RateLimitSlot.objects.exists()


# --- Across OS processes ------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    arrivals: list[tuple[float, str]]

    def do_GET(self):
        self.server.arrivals.append((time.time(), self.headers.get("API-KEY", "")))
        body = json.dumps({"ErrCode": 0, "ErrMsg": "success",
                           "Resp": {"account_id": 1, "credit_monthly": 10, "credit_package": 0}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def recording_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.arrivals = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.slow
@pytest.mark.parametrize("stack", ["sqlite", "postgresql", "redis"])
def test_commands_started_at_once_keep_one_second_apart(stack, recording_server, tmp_path):
    """Several `manage.py pixverse balance` processes, one key: >= 1 s between requests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIXVERSE_", "DATABASE_", "REDIS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="pixverse_site.settings",
        DATA_DIR=str(tmp_path),
        PIXVERSE_BASE_URL=f"http://127.0.0.1:{recording_server.server_port}",
        PIXVERSE_API_KEY="sk-shared-key",
        LOG_LEVEL="WARNING",
    )
    database = contextlib.nullcontext(f"sqlite:///{tmp_path / 'limiter.sqlite3'}")
    if stack == "postgresql":
        if not reachable(5432):
            pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
        database = postgres_database("pixverse_limiter")
    elif stack == "redis":
        if not reachable(6379):
            pytest.skip("Redis is not running on 127.0.0.1:6379")
        env["REDIS_URL"] = "redis://127.0.0.1:6379/15"
        # A fresh key per run: Redis keeps slots between runs for up to a minute.
        env["PIXVERSE_API_KEY"] = f"sk-shared-{uuid.uuid4().hex}"
    manage = [sys.executable, str(ROOT / "manage.py")]
    with database as env["DATABASE_URL"]:
        subprocess.run([*manage, "migrate", "generations", "-v", "0"], env=env, check=True,
                       cwd=ROOT, timeout=120)
        processes = [
            subprocess.Popen([*manage, "pixverse", "balance"], env=env, cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(5)
        ]
        outputs = [p.communicate(timeout=120) for p in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()
        assert json.loads(out)["total"] == 10
        assert b"sk-shared" not in out + err
    times = sorted(t for t, _ in recording_server.arrivals)
    assert len(times) == 5
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1.0, f"requests {gaps} s apart"
