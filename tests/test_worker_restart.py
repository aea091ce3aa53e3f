"""Real processes: a team is served in parallel, and a crash loses nothing and bills nothing twice.

A web server (with the sandbox) and a qcluster on one SQLite file, as in
`./dev run`. Several members, each with their own key, start jobs at once;
the cluster is killed with SIGKILL mid-work and started again.
"""

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import django_shell, free_port, wait_until_serving

ROOT = Path(__file__).resolve().parent.parent
MEMBERS = 6
JOBS = MEMBERS * 2

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


def requests_after(database: Path, moment: float) -> list[float]:
    with contextlib.closing(sqlite3.connect(database, timeout=20)) as db:
        return [row[0] for row in db.execute(
            "SELECT started_at FROM sandbox_sandboxrequest WHERE started_at > ? ORDER BY started_at",
            (moment,))]


def first_submissions(database: Path) -> dict[str, float]:
    """Each member's first generate call as the sandbox saw it, from the job's creation."""
    with contextlib.closing(sqlite3.connect(database, timeout=20)) as db:
        rows = db.execute("""
            SELECT u.username, MIN(julianday(v.created) - julianday(g.created)) * 86400
            FROM generations_generation g JOIN auth_user u ON u.id = g.owner_id
            JOIN sandbox_sandboxvideo v ON replace(v.trace_id, '-', '') = g.trace_id
            GROUP BY u.username""").fetchall()
    return dict(rows)


def test_a_team_is_served_at_once_and_a_killed_cluster_is_back_at_work_in_seconds(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIXVERSE_", "DATABASE_", "REDIS_", "SANDBOX_", "PORTAL_"))}
    env.update(DATA_DIR=str(tmp_path), PIXVERSE_SANDBOX_ENABLED="true", LOG_LEVEL="WARNING",
               PIXVERSE_BASE_URL=f"http://127.0.0.1:{port}/sandbox", SANDBOX_GENERATION_SECONDS="8")
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], env=env,
                   cwd=ROOT, check=True, timeout=120)
    django_shell(env, f"""
from django.contrib.auth.models import User
from generations.models import ApiCredential
from generations.sandbox.models import SandboxAccount
for m in range({MEMBERS}):
    _, key = SandboxAccount.issue(f"member{{m}}", credits=1000, concurrency_limit=5)
    user = User.objects.create_user(f"member{{m}}")
    credential = ApiCredential(user=user)
    credential.set_key(key)
    credential.save()
""")
    start_jobs = """
from django.contrib.auth.models import User
from generations.models import Generation
for n in range(2):
    for user in User.objects.all():
        Generation.objects.create(owner=user, kind="text", prompt=f"crash test {user} {n}",
                                  model="v5", quality="360p", duration=5, credits=45)
"""
    database = tmp_path / "portal.sqlite3"
    log = (tmp_path / "processes.log").open("w")
    web = start(["runserver", "--noreload", f"127.0.0.1:{port}"], env, log)
    try:
        wait_until_serving(port)
        cluster = start(["qcluster"], env, log)
        time.sleep(3)  # the cluster's workers are up
        django_shell(env, start_jobs)
        # Every member's first job is sent at once: keys work in parallel (1 request/s each),
        # nobody waits for a team mate's jobs.
        deadline = time.monotonic() + 60
        while count(database, "video_id IS NOT NULL") < MEMBERS:
            assert time.monotonic() < deadline, "the jobs were never sent"
            time.sleep(0.2)
        delays = first_submissions(database)
        assert len(delays) == MEMBERS
        assert max(delays.values()) < 3.0, delays

        os.killpg(cluster.pid, signal.SIGKILL)
        killed_at = time.time()
        cluster.wait()
        assert count(database, ACTIVE) > 0, "every job finished before the crash; nothing was tested"

        # No task is queued for the work: the new cluster's workers start its loop.
        cluster = start(["qcluster"], env, log)
        deadline = time.monotonic() + 120
        while count(database, ACTIVE) > 0:
            assert time.monotonic() < deadline, "jobs were lost after the crash"
            time.sleep(0.5)
        after = requests_after(database, killed_at)
        assert after and after[0] - killed_at <= 15, "PixVerse heard nothing for more than 15 s"
        os.killpg(cluster.pid, signal.SIGINT)
        cluster.wait(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(web.pid, signal.SIGKILL)
        log.close()

    summary = django_shell(env, """
from generations.models import Generation
from generations.sandbox.models import SandboxAccount, SandboxCharge, SandboxVideo
print(Generation.objects.filter(status="done").count(), SandboxVideo.objects.count(),
      len(set(SandboxVideo.objects.values_list("trace_id", flat=True))),
      sum(a.credits for a in SandboxAccount.objects.all()), len(SandboxCharge.billed_more_than_once()))
""")
    done, videos, trace_ids, credits_left, billed_twice = map(int, summary.split())
    assert done == JOBS
    assert videos == trace_ids == JOBS  # one video per job: nothing submitted twice
    assert billed_twice == 0
    assert credits_left == MEMBERS * 1000 - JOBS * 45
