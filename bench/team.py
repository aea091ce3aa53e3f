"""Benchmark: a team starting jobs at once, each member on their own key or some on one shared key.

    .venv/bin/python bench/team.py [--members 20 --jobs 2 --generation-seconds 30] [--shared 0]
    .venv/bin/python bench/team.py --members 8 --shared 5 [--warm]
    .venv/bin/python bench/team.py --postgres postgres://postgres@127.0.0.1:5432 \
        --redis redis://127.0.0.1:6379/5 --clusters 3

Starts the portal as `./dev run` does (web, sandbox and one django-q2 cluster
with its default two workers) on a fresh database. Each member gets a sandbox
key, except that the first --shared members all store one and the same key.
Once the scheduler has read the new keys' balances, every member starts
--jobs text-to-video jobs at once (all rows in one quick loop). When all are
finished it prints, from the sandbox's own records:

- per member: the time from their first job's creation to the sandbox
  receiving its generate call (target: within 3 s for everyone). "floor" is
  the earliest 1 request per second allows: on a shared key the members'
  first jobs go one after another;
- ready -> done lag (the portal's finished_at against the sandbox video's
  ready_at): median at most 3 s, 95th percentile at most 5 s;
- API calls per finished job, counted in the sandbox's request log over all
  accounts from the batch's start (target: at most 2.5);
- the total time against the bound: keys work in parallel, and a key with n
  jobs needs at least max(2n - 1, (n - 1) + generation time) seconds (one
  generate call and one status read per job, at 1 request per second; the
  last job is sent at n - 1 and cannot be done before it is ready). Target:
  within 1.25x of the slowest key's bound;
- for information, requests less than 1 s apart on one key, as the sandbox
  saw them arrive (the limiter is shared by every process and cluster).

With --warm the team has made one video of the kind before (as any portal in
use has): one job runs to the end before the batch, so the scheduler has
learned how long such videos take and reads no probes. Its requests come
before the batch's start and are not counted. Without it the batch is a cold
start: until the first video of the kind is done, the oldest jobs are read
every few seconds (the probes) and the others wait for what they tell.

--postgres and --redis run it on PostgreSQL (a throwaway database on that
server) and Redis (that database is emptied first); --clusters N starts N
django-q2 clusters beside the web server, all sharing the work and the limiter.
Exit status 0 only if every target is met.
"""

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import (  # noqa: E402
    add_member,
    close_requests,
    fresh_database,
    percentile,
    portal_env,
    print_columns,
    print_measures,
    set_up_django,
    start_portal,
    stop_portal,
    wait_for_first_balances,
    wait_for_web,
)
from tests.processes import free_port  # noqa: E402

FIRST_SUBMIT_TARGET = 3.0
LAG_MEDIAN_TARGET = 3.0
LAG_P95_TARGET = 5.0
CALLS_TARGET = 2.5
BOUND_TARGET = 1.25


def key_bound(jobs: int, generation_seconds: float) -> float:
    return max(2 * jobs - 1, (jobs - 1) + generation_seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2, help="jobs each member starts")
    parser.add_argument("--generation-seconds", type=float, default=30.0)
    parser.add_argument("--shared", type=int, default=0,
                        help="how many of the members store one same key (0: each their own)")
    parser.add_argument("--warm", action="store_true",
                        help="one video of the kind is made before the batch (not counted)")
    parser.add_argument("--clusters", type=int, default=1,
                        help="django-q2 clusters beside the web server (1: runportal)")
    parser.add_argument("--postgres", metavar="URL",
                        help="a PostgreSQL server (postgres://user@host:port) to use, not SQLite")
    parser.add_argument("--redis", metavar="URL",
                        help="a Redis database (redis://host:port/n, emptied first) for the "
                             "broker, the cache and the rate limiter")
    args = parser.parse_args()
    if not 0 <= args.shared <= args.members:
        parser.error("--shared must be between 0 and --members")

    data = Path(tempfile.mkdtemp(prefix="pixverse-team-"))
    port = free_port()
    with fresh_database("pixverse_team", args.postgres, args.redis) as urls:
        env = portal_env(data, port, args.generation_seconds, **urls)
        set_up_django(env)
        return run(args, env, data, port)


def run(args, env: dict[str, str], data: Path, port: int) -> int:
    from django.conf import settings
    from django.utils import timezone

    from generations.models import Generation, SchedulerRunner
    from generations.sandbox.models import SandboxAccount, SandboxRequest, SandboxVideo

    # The key each member stores: the first --shared share one.
    label_of: dict[str, str] = {}
    jobs_on: dict[str, int] = defaultdict(int)
    names = [f"member{n:02d}" for n in range(1, args.members + 1)]
    for n, name in enumerate(names):
        label = "shared" if n < args.shared and args.shared > 1 else f"key-{name}"
        label_of[name] = label
        jobs_on[label] += args.jobs
    keys: dict[str, str] = {}
    for label, n_jobs in jobs_on.items():
        _, keys[label] = SandboxAccount.issue(label, credits=100 * (n_jobs + 1),
                                              concurrency_limit=n_jobs)
    members = {name: add_member(name, keys[label_of[name]]) for name in names}

    log_path = data / "portal.log"
    print(f"portal log: {log_path}", flush=True)
    log = log_path.open("w")
    processes = start_portal(env, port, log, clusters=args.clusters)
    try:
        wait_for_web(port)
        if not wait_for_first_balances():
            print("the scheduler never read the new keys' balances", file=sys.stderr)
            return 1
        if args.warm:
            new_job(members[names[0]], "an earlier video")
            if not wait_until_finished(120 + args.generation_seconds):
                return 1
            time.sleep(1.1)  # the warm-up's last request is not a neighbour of the batch's first
        started = timezone.now()
        started_epoch = time.time()
        for name in names:
            for n in range(args.jobs):
                new_job(members[name], f"{name}: a team video, take {n}")
        if not wait_until_finished(120 + 2 * max(jobs_on.values()) + args.generation_seconds):
            return 1
        ended_epoch = time.time()
    finally:
        stop_portal(processes)
        log.close()

    jobs = list(Generation.objects.filter(created__gte=started).select_related("owner")
                .order_by("created", "pk"))
    videos = {v.trace_id: v for v in SandboxVideo.objects.all()}
    done = [g for g in jobs if g.status == Generation.Status.DONE]
    interval = settings.PIXVERSE_MIN_INTERVAL

    member_rows = []
    delays = []
    place_on_key: dict[str, int] = defaultdict(int)
    for name in names:
        own = [g for g in jobs if g.owner.username == name]
        first = own[0]
        video = videos.get(str(first.trace_id))
        delay = (video.created - first.created).total_seconds() if video else None
        delays.append(delay)
        floor = place_on_key[label_of[name]] * interval
        place_on_key[label_of[name]] += 1
        member_rows.append((
            name, label_of[name], str(len(own)),
            str(sum(g.status == Generation.Status.DONE for g in own)),
            "never" if delay is None else f"{delay:.2f} s", f"{floor:.2f} s",
        ))

    lags = [(g.finished_at - videos[str(g.trace_id)].ready_at).total_seconds()
            for g in done if str(g.trace_id) in videos]
    requests = SandboxRequest.objects.filter(started_at__gte=started_epoch,
                                             started_at__lte=ended_epoch)
    by_kind = defaultdict(int)
    for path in requests.values_list("path", flat=True):
        by_kind["generate" if path.endswith("/generate") else "status" if "/video/" in path
                else "balance" if path.endswith("/balance") else "other"] += 1
    calls = sum(by_kind.values()) / max(1, len(done))
    gaps = close_requests(1.0)
    total = (max(g.finished_at for g in done) - started).total_seconds() if done else float("inf")
    bound = max(key_bound(n, args.generation_seconds) for n in jobs_on.values())
    worst_delay = max((d for d in delays if d is not None), default=float("inf"))
    lag_median = statistics.median(lags) if lags else float("inf")
    lag_p95 = percentile(lags, 0.95) if lags else float("inf")
    lag_max = max(lags, default=float("inf"))

    shared = f", {args.shared} sharing one key" if args.shared > 1 else ", each on their own key"
    stack = ("PostgreSQL" if args.postgres else "SQLite") + (" + Redis" if args.redis else "")
    start = "warm start (one video of the kind made before)" if args.warm else "cold start"
    print(f"\nPixVerse team benchmark: {args.members} members{shared}, {args.jobs} jobs each, "
          f"sandbox generation time {args.generation_seconds:g} s; {stack}, "
          f"{args.clusters} cluster(s) of {settings.Q_CLUSTER['workers']} workers, "
          f"{SchedulerRunner.objects.count()} scheduler loop(s) seen; {start}\n")
    print_columns(("member", "key", "jobs", "done", "first submit", "floor"), member_rows)
    print()
    rows = [
        ("jobs done / started", f"{len(done)} / {len(jobs)}", ""),
        ("first submit delay, max", f"{worst_delay:.2f} s", f"<= {FIRST_SUBMIT_TARGET:g} s"),
        ("ready -> done, median", f"{lag_median:.2f} s", f"<= {LAG_MEDIAN_TARGET:g} s"),
        ("ready -> done, 95th percentile", f"{lag_p95:.2f} s", f"<= {LAG_P95_TARGET:g} s"),
        ("ready -> done, max", f"{lag_max:.2f} s", ""),
        ("API calls per finished job", f"{calls:.2f}", f"<= {CALLS_TARGET:g}"),
        ("  generate / status / balance",
         f"{by_kind['generate']} / {by_kind['status']} / {by_kind['balance']}", ""),
        ("requests < 1 s apart on a key", str(len(gaps["close"])), ""),
        ("  smallest gap", f"{gaps['smallest']:.4f} s", ""),
        ("total time", f"{total:.1f} s", ""),
        ("bound (slowest key) at 1 req/s", f"{bound:.1f} s", ""),
        ("total / bound", f"{total / bound:.2f}x", f"<= {BOUND_TARGET:g}x"),
    ]
    print_measures(rows)
    ok = (len(done) == len(jobs) and None not in delays and worst_delay <= FIRST_SUBMIT_TARGET
          and lag_median <= LAG_MEDIAN_TARGET and lag_p95 <= LAG_P95_TARGET
          and calls <= CALLS_TARGET and total / bound <= BOUND_TARGET)
    for line in gaps["close"][:20]:
        print(f"close requests: {line}")
    print("\nall targets met" if ok else "\nsome targets missed")
    return 0 if ok else 1


def new_job(owner, prompt: str):
    from generations.models import Generation

    return Generation.objects.create(owner=owner, kind="text", prompt=prompt, model="v5",
                                     quality="360p", duration=5, credits=45)


def wait_until_finished(seconds: float) -> bool:
    from generations import queue
    from generations.models import Generation

    queue.kick_scheduler()
    deadline = time.monotonic() + seconds
    while Generation.objects.filter(status__in=Generation.ACTIVE).exists():
        if time.monotonic() > deadline:
            print("timed out waiting for the jobs", file=sys.stderr)
            return False
        time.sleep(0.5)
    return True


if __name__ == "__main__":
    sys.exit(main())
