"""Benchmark: the job-card partial every open dashboard polls, served by gunicorn under wrk.

    .venv/bin/python bench/cards.py [--stack postgres|sqlite|both] [--connections 200]
                                    [--duration 10] [--rounds 3] [--cards 50]

Starts the image's web role (deploy/entrypoint.sh web: gunicorn, production
settings, hashed static files, the full middleware) on a fresh database, with
one signed-in member who has a few dozen running jobs. Then wrk, from loopback, holds
N connections open (N concurrent pollers, each polling as fast as answers come;
a browser polls each running card every 3 s, so this is far more load than N browsers) against:

- card: GET /generations/<code>/card/ with HX-Request, a running job's card
  rendered in full (what a poll gets when the job changed), cycling over the jobs;
- card 304: the same polls as a dashboard sends them, each with its card's
  ETag in If-None-Match: an unchanged job is answered 304 without a body
  (what nearly every poll gets);
- bare: GET /bench/bare/, a view that only returns "ok", behind the same
  middleware and login check (bench/urls.py adds it to the portal's URLs).

The three loads take turns, --rounds times, --duration seconds each: this
machine is a VM whose host now and then slows it for seconds at a time, and a
slow spell then lands on one round of each view rather than on one view. It
prints, for each view, the median round's requests per second, 50th and 90th
percentile latency, the worst round's 99th percentile, errors, and the ratio
card/bare: the median of the rounds' ratios (each a card load over the bare
load next to it in time), with the lowest and highest. Target: ratio at least
0.6; the 99th percentile is reported.
The stack is PostgreSQL + Redis (the scale-out deployment) or SQLite.
"""

import argparse
import contextlib
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.processes import free_port, postgres_database, reachable, stop  # noqa: E402

HOST = "portal.bench"

SETUP = """
import json
import os
from datetime import timedelta
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from generations.models import Generation

user = get_user_model().objects.create_user("poller", password=None)
codes = []
for n in range(int(os.environ['CARDS'])):
    g = Generation.objects.create(owner=user, kind="text", prompt=f"A lighthouse in a storm {n}",
                                  model="v5", quality="540p", duration=5, aspect_ratio="16:9",
                                  motion_mode="normal", credits=45)
    Generation.objects.filter(pk=g.pk).update(
        status=Generation.Status.RUNNING, video_id=10**15 + n,
        submitted_at=timezone.now() - timedelta(seconds=20),
        next_attempt_at=timezone.now() + timedelta(days=1))
    codes.append(str(g.code))
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(json.dumps({"cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}", "codes": codes}))
"""

# wrk cycles over the running cards, as many browsers polling many jobs would.
# wrk cycles over the paths, as many browsers polling many jobs would; with etags, each
# request asks "changed since?" as a browser revalidating its copy does. It counts the
# answers by status, to show that they were what a poller gets.
CYCLE_SCRIPT = """
local paths = {%s}
local etags = {%s}
local i = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
end

function request()
  i = i %% #paths + 1
  -- wrk.format takes the given headers instead of the -H ones: pass them all.
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  if etags[i] then headers["If-None-Match"] = etags[i] end
  return wrk.format("GET", paths[i], headers)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + n
    end
  end
  for status, n in pairs(total) do
    io.write(string.format("status %%d %%d\\n", status, n))
  end
end
"""


def to_ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url: str, headers: dict[str, str], connections: int, duration: int, script: Path) -> dict:
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--latency",
               "--timeout", "10s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command += ["-s", str(script)]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for share in ("50", "90", "99"):
        result[f"p{share}"] = to_ms(re.search(rf"^\s+{share}(?:\.000)?%\s+(\S+)", out, re.M).group(1))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    result["statuses"] = {int(code): int(n) for code, n in re.findall(r"^status (\d+) (\d+)$", out, re.M)}
    result["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    return result


def bench_stack(stack: str, connections: int, duration: int, rounds: int,
                cards: int) -> list[dict[str, dict]]:
    data = Path(tempfile.mkdtemp(prefix=f"pixverse-cards-{stack}-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIXVERSE_", "DATABASE_", "REDIS_", "SANDBOX_", "PORTAL_", "STATIC_"))}
    env.update(
        PYTHON=sys.executable, DATA_DIR=str(data), PORT=str(port), DEBUG="false",
        DJANGO_SETTINGS_MODULE="bench.settings", ALLOWED_HOSTS=HOST,
        SECRET_KEY=secrets.token_urlsafe(50), PORTAL_ENCRYPTION_KEYS=_fernet_key(),
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
        STATIC_ROOT=str(data / "static"), STATIC_HASHED="true", LOG_LEVEL="WARNING", CARDS=str(cards),
    )
    database = postgres_database("pixverse_bench") if stack == "postgres" else contextlib.nullcontext()
    with database as database_url:
        if database_url:
            env.update(DATABASE_URL=database_url, REDIS_URL="redis://127.0.0.1:6379/12", CONN_MAX_AGE="60")
        return _load(env, data, port, connections, duration, rounds)


def _load(env: dict[str, str], data: Path, port: int, connections: int, duration: int,
          rounds: int) -> list[dict[str, dict]]:
    """Set up the portal in env, serve it with gunicorn and load it with wrk; each round's results."""
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "collectstatic", "--no-input", "-v", "0"], env=env, cwd=ROOT, check=True)
    subprocess.run([*manage, "migrate", "-v", "0"], env=env, cwd=ROOT, check=True)
    setup = subprocess.run([sys.executable, "-c", f"import django; django.setup()\n{SETUP}"], env=env,
                           cwd=ROOT, capture_output=True, text=True, check=True)
    fixture = json.loads(setup.stdout)
    log = (data / "gunicorn.log").open("w")
    web = subprocess.Popen([str(ROOT / "deploy" / "entrypoint.sh"), "web", "--access-logfile", "/dev/null"],
                           env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    headers = {"Host": HOST, "X-Forwarded-Proto": "https", "Cookie": fixture["cookie"],
               "HX-Request": "true"}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                check = requests.get(f"{base}/generations/{fixture['codes'][0]}/card/", headers=headers,
                                     timeout=5)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        # Both answers must be what a poller gets, not a redirect to the login page.
        assert check.status_code == 200 and "hx-trigger" in check.text, check.text[:500]
        # A browser polls with the cookies its dashboard set (the CSRF one among them).
        dashboard = requests.get(f"{base}/", headers={k: v for k, v in headers.items() if k != "HX-Request"},
                                 timeout=5)
        assert dashboard.status_code == 200, dashboard.status_code
        headers["Cookie"] += f"; csrftoken={dashboard.cookies['csrftoken']}"
        bare = requests.get(f"{base}/bench/bare/", headers=headers, timeout=5)
        assert bare.status_code == 200 and bare.text == "ok", bare.text[:500]
        paths = [f"/generations/{c}/card/" for c in fixture["codes"]]
        etags = [requests.get(base + p, headers=headers, timeout=5).headers["ETag"] for p in paths]
        unchanged = requests.get(base + paths[0], headers={**headers, "If-None-Match": etags[0]}, timeout=5)
        assert unchanged.status_code == 304, unchanged.status_code
        quoted = ", ".join(f'"{p}"' for p in paths)
        bare, full, revalidated = data / "bare.lua", data / "full.lua", data / "revalidated.lua"
        bare.write_text(CYCLE_SCRIPT % ('"/bench/bare/"', ""))
        full.write_text(CYCLE_SCRIPT % (quoted, ""))
        revalidated.write_text(CYCLE_SCRIPT % (quoted, ", ".join(json.dumps(e) for e in etags)))
        loads = {"bare": bare, "card": full, "card 304": revalidated}
        for lua in loads.values():
            run_wrk(base, headers, connections, 3, lua)  # warm up: connections, caches
        results = [{name: run_wrk(base, headers, connections, duration, lua) for name, lua in loads.items()}
                   for _ in range(rounds)]
        # Every answer was the expected one: 200s, and for the revalidated polls 304s.
        expected = {"bare": 200, "card": 200, "card 304": 304}
        for one_round in results:
            for name, status in expected.items():
                assert set(one_round[name]["statuses"]) == {status}, (name, one_round[name]["statuses"])
        return results
    finally:
        stop([web])
        log.close()


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", choices=("postgres", "sqlite", "both"), default="both")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--duration", type=int, default=10, help="seconds of each load in each round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cards", type=int, default=50)
    args = parser.parse_args()
    stacks = ["postgres", "sqlite"] if args.stack == "both" else [args.stack]
    if "postgres" in stacks and not (reachable(5432) and reachable(6379)):
        sys.exit("PostgreSQL (5432) and Redis (6379) must run on 127.0.0.1 for --stack postgres")
    workers, threads = os.environ.get("WEB_CONCURRENCY", "3"), os.environ.get("WEB_THREADS", "4")
    print(f"gunicorn {workers} workers x {threads} threads, wrk 2 threads, {args.connections} connections, "
          f"{args.rounds} rounds of {args.duration} s per view, {os.cpu_count()} CPUs shared by both")
    print()
    print("| stack | view | req/s | p50 ms | p90 ms | p99 ms (worst) | socket errors | of bare (low-high) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    verdicts = []
    for stack in stacks:
        rounds = bench_stack(stack, args.connections, args.duration, args.rounds, args.cards)
        for name in ("bare", "card", "card 304"):
            runs = [one_round[name] for one_round in rounds]
            ratios = [one_round[name]["rps"] / one_round["bare"]["rps"] for one_round in rounds]
            ratio = statistics.median(ratios)
            if name != "bare":
                verdicts.append((stack, name, ratio))
            shown = f"{ratio:.2f} ({min(ratios):.2f}-{max(ratios):.2f})" if name != "bare" else ""
            rps, p50, p90 = (statistics.median(run[key] for run in runs) for key in ("rps", "p50", "p90"))
            p99, errors = max(run["p99"] for run in runs), sum(run["socket_errors"] for run in runs)
            print(f"| {stack} | {name} | {rps:.0f} | {p50:.1f} | {p90:.1f} | {p99:.1f} | {errors} "
                  f"| {shown} |")
    print()
    print("card: the card rendered in full (a poll of a job that changed); card 304: a poll of an")
    print("unchanged job, which every card sends with its ETag (If-None-Match).")
    for stack, name, ratio in verdicts:
        print(f"{stack}, {name}: throughput {ratio:.2f} of bare (target >= 0.6): "
              f"{'met' if ratio >= 0.6 else 'MISSED'}")


if __name__ == "__main__":
    main()
