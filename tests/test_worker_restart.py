"""A worker crash loses nothing and bills nothing twice: real processes, SIGKILL mid-work."""

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.processes import django_shell, free_port

ROOT = Path(__file__).resolve().parent.parent
JOBS = 6

pytestmark = pytest.mark.slow


def start(args, env, log):
    return subprocess.Popen([sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def count(database: Path, where: str) -> int:
    with contextlib.closing(sqlite3.connect(database, timeout=20)) as db:
        # where is one of this file's own constants, never outside input.
        query = f"SELECT count(*) FROM generations_generation WHERE {where}"  # noqa: S608
        return db.execute(query).fetchone()[0]


ACTIVE = "status IN ('queued', 'submitting', 'running')"


def test_killing_the_cluster_mid_work_loses_no_job_and_bills_none_twice(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIXVERSE_", "DATABASE_", "REDIS_", "SANDBOX_", "PORTAL_"))}
    env.update(DATA_DIR=str(tmp_path), PIXVERSE_SANDBOX_ENABLED="true", LOG_LEVEL="WARNING",
               PIXVERSE_BASE_URL=f"http://127.0.0.1:{port}/sandbox", SANDBOX_GENERATION_SECONDS="4",
               PORTAL_WORKER_LEASE_SECONDS="5")
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], env=env,
                   cwd=ROOT, check=True, timeout=120)
    django_shell(env, f"""
from django.contrib.auth.models import User
from generations.models import ApiCredential, Generation
from generations.sandbox.models import SandboxAccount
_, key = SandboxAccount.issue("crash", credits=1000, concurrency_limit={JOBS})
user = User.objects.create_user("crash")
credential = ApiCredential(user=user)
credential.set_key(key)
credential.save()
for n in range({JOBS}):
    Generation.objects.create(owner=user, kind="text", prompt=f"crash test {{n}}", model="v5",
                              quality="360p", duration=5, credits=45)
from generations import queue
queue.start_member_worker(user.pk)
""")
    database = tmp_path / "portal.sqlite3"
    log = (tmp_path / "processes.log").open("w")
    web = start(["runserver", "--noreload", f"127.0.0.1:{port}"], env, log)
    try:
        for _ in range(60):
            try:
                requests.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.5)
        cluster = start(["qcluster"], env, log)
        # Let the member's worker submit a few jobs, then kill the whole cluster.
        deadline = time.monotonic() + 90
        while count(database, "video_id IS NOT NULL") < 2:
            assert time.monotonic() < deadline, "the worker never started"
            time.sleep(0.2)
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait()
        assert count(database, ACTIVE) > 0, "every job finished before the crash; nothing was tested"

        # Only the schedule can bring the work back: no task is queued for it.
        cluster = start(["qcluster"], env, log)
        deadline = time.monotonic() + 150
        while count(database, ACTIVE) > 0:
            assert time.monotonic() < deadline, "jobs were lost after the crash"
            time.sleep(0.5)
        os.killpg(cluster.pid, signal.SIGINT)
        cluster.wait(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(web.pid, signal.SIGKILL)
        log.close()

    summary = django_shell(env, """
from generations.models import Generation
from generations.sandbox.models import SandboxAccount, SandboxVideo
account = SandboxAccount.objects.get()
print(Generation.objects.filter(status="done").count(), SandboxVideo.objects.count(),
      len(set(SandboxVideo.objects.values_list("trace_id", flat=True))), account.credits)
""")
    done, videos, trace_ids, credits_left = map(int, summary.split())
    assert done == JOBS
    assert videos == trace_ids == JOBS  # one video per job: nothing submitted twice
    assert credits_left == 1000 - JOBS * 45
