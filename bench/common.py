"""What the job benchmarks share: a real portal on a fresh database, members with sandbox keys.

Each benchmark migrates a new database (SQLite in a temporary DATA_DIR, or a
throwaway PostgreSQL database), sets Django up in its own process against the
same database, so that it can create jobs and read the sandbox's own records
directly, and starts the portal's processes as `./dev run` does. The figures
come from the sandbox's side: its request log, its videos and its charges.
"""

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.processes import postgres_database, stop, wait_until_serving  # noqa: E402

MANAGE = [sys.executable, str(ROOT / "manage.py")]
# Settings of the caller's shell that would point the portal elsewhere; the
# rest (PORTAL_*, Q_*) pass through, so a run can try another setting.
NOT_INHERITED = ("PIXVERSE_", "DATABASE_", "REDIS_", "SANDBOX_")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def portal_env(data: Path, port: int, generation_seconds: float, **settings) -> dict[str, str]:
    """The environment of the portal's processes (and of Django in the benchmark itself)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(NOT_INHERITED)}
    env.update(DATA_DIR=str(data), PIXVERSE_SANDBOX_ENABLED="true", LOG_LEVEL="WARNING",
               PIXVERSE_BASE_URL=f"http://127.0.0.1:{port}/sandbox",
               SANDBOX_GENERATION_SECONDS=str(generation_seconds), ALLOWED_HOSTS="127.0.0.1",
               DEBUG="true")  # as ./dev run: plain HTTP
    env.update({name: str(value) for name, value in settings.items() if value is not None})
    return env


@contextlib.contextmanager
def fresh_database(prefix: str, postgres: str | None, redis: str | None) -> Iterator[dict[str, str]]:
    """DATABASE_URL and REDIS_URL settings for a new, empty database (none: SQLite in DATA_DIR).

    The PostgreSQL database is dropped afterwards; the Redis database is emptied first.
    """
    urls = {}
    if redis:
        import redis as redis_client

        with redis_client.Redis.from_url(redis) as r:
            r.flushdb()
        urls["REDIS_URL"] = redis
    if postgres is None:
        yield urls
        return
    with postgres_database(prefix, server=postgres) as url:
        try:
            yield {**urls, "DATABASE_URL": url}
        finally:
            from django.db import connections

            connections.close_all()


def set_up_django(env: dict[str, str]) -> None:
    """Migrate the fresh database and set Django up in this process against it."""
    subprocess.run([*MANAGE, "migrate", "-v", "0"], env=env, check=True, cwd=ROOT)
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "pixverse_site.settings"
    import django

    django.setup()


def start(args: list[str], env: dict[str, str], log) -> subprocess.Popen:
    """A manage.py command in its own process group, so that it can be stopped or killed alone."""
    return subprocess.Popen([*MANAGE, *args], env=env, cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def start_portal(env: dict[str, str], port: int, log, clusters: int = 1) -> list[subprocess.Popen]:
    """`runportal` (web and one cluster, as ./dev run); with several clusters, each on its own."""
    if clusters == 1:
        return [start(["runportal", f"127.0.0.1:{port}"], env, log)]
    return [start(["runserver", "--noreload", f"127.0.0.1:{port}"], env, log),
            *(start(["qcluster"], env, log) for _ in range(clusters))]


def stop_portal(processes: list[subprocess.Popen]) -> None:
    if len(processes) == 1:  # runportal stops its children on Ctrl-C
        with contextlib.suppress(ProcessLookupError):
            os.killpg(processes[0].pid, signal.SIGINT)
        processes[0].wait(timeout=30)
    else:  # the clusters first: their last steps may still reach the web's sandbox
        stop(processes[1:])
        stop(processes[:1])


def wait_for_web(port: int) -> None:
    wait_until_serving(port, seconds=60)


def add_member(username: str, key: str):
    """A member who stores this PixVerse key."""
    from django.contrib.auth.models import User

    from generations.models import ApiCredential

    member = User.objects.create_user(username)
    credential = ApiCredential(user=member)
    credential.set_key(key)
    credential.save()
    return member


def wait_for_first_balances(seconds: float = 30) -> bool:
    """Wait until the scheduler has read each new key's balance (a saved key asks for one).

    So a batch starts as it would for members who saved their keys a while
    ago: no balance read due, and a request slot free on every key. It also
    shows the scheduler loop is running. False if it took too long.
    """
    from django.conf import settings
    from django.db.models import Q

    from generations.models import ApiCredential

    unread = Q(balance_due_at__isnull=False) | Q(balance_read_at__isnull=True, balance_error="")
    deadline = time.monotonic() + seconds
    while ApiCredential.objects.filter(unread).exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    time.sleep(settings.PIXVERSE_MIN_INTERVAL)
    return True


def close_requests(min_gap: float = 1.0, since: float = 0.0) -> dict:
    """Consecutive requests of one key less than min_gap apart, as the sandbox saw them arrive."""
    from generations.sandbox.models import SandboxRequest

    arrivals = defaultdict(list)
    for account, at, path in SandboxRequest.objects.filter(started_at__gte=since).values_list(
            "account__label", "started_at", "path"):
        arrivals[account].append((at, path.rsplit("/v2/", 1)[-1]))
    close, smallest = [], None
    for account, calls in arrivals.items():
        calls.sort()
        for (earlier, earlier_path), (later, later_path) in itertools.pairwise(calls):
            gap = later - earlier
            smallest = gap if smallest is None else min(smallest, gap)
            if gap < min_gap:
                close.append(f"{account}: {earlier_path} at {earlier:.4f}, then {later_path} "
                             f"{gap:.4f} s later")
    return {"close": close, "smallest": smallest}


def print_measures(rows: list[tuple[str, str, str]]) -> None:
    """measure / result / target, as bench/jobs.py has always printed them."""
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'result':>12}  target")
    print(f"{'-' * width}  {'-' * 12}  ------")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>12}  {target}")


def print_columns(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A table whose first column is left-aligned and the others right-aligned, but a last 'target'."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    last_left = header[-1] == "target"

    def line(cells) -> str:
        out = []
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True)):
            left = i == 0 or (last_left and i == len(cells) - 1)
            out.append(f"{cell!s:<{width}}" if left else f"{cell!s:>{width}}")
        return "  ".join(out).rstrip()

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))

