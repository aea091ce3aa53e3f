"""Benchmark: a batch of jobs through the sandbox's faults while the worker cluster is killed three times.

    .venv/bin/python bench/faults.py [--keys 4 --jobs 15 --generation-seconds 8]

Two runs, each on a fresh SQLite database, with `runserver` (web and sandbox)
and `qcluster` (the default two workers) started as separate processes, so
that the cluster alone can be killed:

1. with faults: every sandbox account answers about a fifth of the API
   requests wrongly (ErrCode 500069, HTTP 500, a non-JSON page, HTTP 429, a
   generate call billed and then answered only after the client's read
   timeout or never), 2 % of the videos end failed and 5 % of the video file
   downloads answer 503. The whole cluster is killed with SIGKILL when about
   25 %, 50 % and 75 % of the jobs have finished, and started again 1 s later.
   When the batch is finished, every job that ended "maybe made" (timed out
   without an answer) or failed with its outcome unknown is tried again
   (Generation.retry, "Try again"), and those are waited for too;
2. the same batch without faults and without kills, for the time it takes.

Prints, from the sandbox's records: jobs in the right terminal state (done
when the sandbox's video succeeded, failed when it failed; target 100 %), the
done jobs whose copy is stored, videos billed more than once, per trace id
and per prompt (a job is one prompt), before and after "Try again" (target 0),
requests less than 1 s apart on a key (target 0), lost jobs (not finished at
the end; target 0), the pause after each kill until the sandbox saw the next
request (target at most 15 s each) and the batch time with faults against
without. Exit status 0 only if every target is met.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import (  # noqa: E402
    add_member,
    close_requests,
    portal_env,
    print_columns,
    set_up_django,
    start,
    wait_for_first_balances,
    wait_for_web,
)
from tests.processes import free_port, stop  # noqa: E402

# Each request-level fault is drawn in turn (500, 429, 500069, non-JSON): about
# 18 % of all API requests; the two billing faults strike 6 % of new videos,
# which are about 40 % of the requests: about 20 % in all.
FAULTS = {
    "fault_error_rate": 0.06,
    "fault_http_500_rate": 0.04,
    "fault_malformed_rate": 0.05,
    "fault_http_429_rate": 0.04,
    "fault_timeout_after_billing_rate": 0.03,
    "fault_drop_after_billing_rate": 0.03,
    "fault_file_error_rate": 0.05,
    "fault_generation_failure_rate": 0.02,
    "fault_hang_seconds": 5.0,  # above PIXVERSE_READ_TIMEOUT below
}
READ_TIMEOUT = 3.0
KILLS_AT = (0.25, 0.50, 0.75)
RESTART_AFTER = 1.0
PAUSE_TARGET = 15.0
MIN_GAP = 1.0
COPY_PATIENCE = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=4, help="members, each with a key of their own")
    parser.add_argument("--jobs", type=int, default=15, help="jobs each member starts")
    parser.add_argument("--generation-seconds", type=float, default=8.0)
    parser.add_argument("--timeout-minutes", type=int, default=5,
                        help="PORTAL_GENERATION_TIMEOUT_MINUTES: how long a stuck job may take "
                             "before it ends timed out (and the run with it)")
    parser.add_argument("--child", choices=["faults", "clean"], help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = run_batch(args, faults=args.child == "faults")
        Path(args.result).write_text(json.dumps(result))
        return 0

    results = {}
    for mode in ("faults", "clean"):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            print(f"run {mode}…", flush=True)
            subprocess.run([sys.executable, __file__, "--child", mode, "--result", out.name,
                            "--keys", str(args.keys), "--jobs", str(args.jobs),
                            "--generation-seconds", str(args.generation_seconds),
                            "--timeout-minutes", str(args.timeout_minutes)],
                           check=True, cwd=ROOT)
            results[mode] = json.loads(Path(out.name).read_text())
    return report(args, results["faults"], results["clean"])


# --- One run, in a child process with its own database -----------------------------------


def run_batch(args, *, faults: bool) -> dict:
    data = Path(tempfile.mkdtemp(prefix=f"pixverse-faults-{'on' if faults else 'off'}-"))
    port = free_port()
    env = portal_env(data, port, args.generation_seconds, PIXVERSE_READ_TIMEOUT=READ_TIMEOUT,
                     PORTAL_GENERATION_TIMEOUT_MINUTES=args.timeout_minutes)
    set_up_django(env)
    from django.utils import timezone

    from generations import queue
    from generations.models import Generation
    from generations.sandbox.models import SandboxAccount

    members = []
    for n in range(1, args.keys + 1):
        _, key = SandboxAccount.issue(f"key{n}", credits=100 * args.jobs,
                                      concurrency_limit=args.jobs, **(FAULTS if faults else {}))
        members.append(add_member(f"member{n}", key))
    total = args.keys * args.jobs
    kills_at = [round(share * total) for share in KILLS_AT] if faults else []

    log_path = data / "processes.log"
    print(f"  portal log: {log_path}", flush=True)
    log = log_path.open("w")
    web = start(["runserver", "--noreload", f"127.0.0.1:{port}"], env, log)
    cluster = None
    kills: list[float] = []
    retried: list[int] = []
    try:
        wait_for_web(port)
        cluster = start(["qcluster"], env, log)
        if not wait_for_first_balances(60):
            raise RuntimeError("the scheduler never read the new keys' balances")
        started = timezone.now()
        started_epoch = time.time()
        for member in members:
            for n in range(args.jobs):
                Generation.objects.create(owner=member, kind="text",
                                          prompt=f"{member.username}: a faulty video, take {n}",
                                          model="v5", quality="360p", duration=5, credits=45)
        queue.kick_scheduler()
        deadline = time.monotonic() + args.timeout_minutes * 60 + 120
        batch = Generation.objects.all()
        while batch.filter(status__in=Generation.ACTIVE).exists() and time.monotonic() < deadline:
            finished = batch.filter(status__in=Generation.TERMINAL).count()
            if len(kills) < len(kills_at) and finished >= kills_at[len(kills)]:
                kills.append(time.time())
                os.killpg(cluster.pid, signal.SIGKILL)
                cluster.wait()
                print(f"  killed the cluster with {finished} of {total} jobs finished", flush=True)
                time.sleep(RESTART_AFTER)
                cluster = start(["qcluster"], env, log)
            time.sleep(0.2)
        batch_pks = list(batch.values_list("pk", flat=True))
        # The copies of the last videos, and those waiting after a failed download.
        copies_by = time.monotonic() + COPY_PATIENCE
        while (Generation.objects.filter(status=Generation.Status.DONE, video_file="",
                                         next_attempt_at__isnull=False).exists()
               and time.monotonic() < copies_by):
            time.sleep(0.5)
        before = billing()
        for generation in Generation.objects.filter(pk__in=batch_pks):
            maybe_made = (generation.status == Generation.Status.TIMED_OUT
                          and generation.error_reason == Generation.Reason.MAYBE_MADE)
            unknown = (generation.status == Generation.Status.FAILED and generation.maybe_submitted
                       and generation.video_id is None)
            if maybe_made or unknown:
                retried.append(generation.retry().pk)
        if retried:
            print(f"  Try again: {len(retried)} jobs", flush=True)
            queue.kick_scheduler()
            while (Generation.objects.filter(pk__in=retried, status__in=Generation.ACTIVE).exists()
                   and time.monotonic() < deadline + args.timeout_minutes * 60):
                time.sleep(0.5)
        after = billing()
    finally:
        stop([cluster] if cluster is not None else [])
        stop([web])
        log.close()

    jobs = list(Generation.objects.filter(pk__in=batch_pks))
    return {
        "log": str(log_path),
        "jobs": total,
        "batch_seconds": (max((g.finished_at for g in jobs if g.finished_at), default=started)
                          - started).total_seconds(),
        "states": states(),
        "lost": Generation.objects.filter(status__in=Generation.ACTIVE).count(),
        "try_again": len(retried),
        "billing_before": before,
        "billing_after": after,
        "gaps": close_requests(MIN_GAP),
        "pauses": [pause_after(kill) for kill in kills],
        "requests": request_faults(started_epoch),
        "copy_failures": sum(g.copy_attempts for g in Generation.objects.all()),
    }


def states() -> dict:
    """Each job (one prompt; its latest try) against what the sandbox says its video became."""
    from generations.models import Generation
    from generations.sandbox.models import SandboxVideo

    outcomes = dict(SandboxVideo.objects.values_list("trace_id", "outcome"))
    latest = {}
    for generation in Generation.objects.order_by("created", "pk"):
        latest[generation.prompt] = generation
    expected = {"success": Generation.Status.DONE, "failed": Generation.Status.FAILED,
                "moderated": Generation.Status.MODERATED}
    right, wrong, kinds = 0, [], Counter()
    for prompt, generation in latest.items():
        outcome = outcomes.get(str(generation.trace_id))
        kinds[f"{generation.status} ({outcome or 'no video'})"] += 1
        if outcome is not None and expected[outcome] == generation.status:
            right += 1
        else:
            wrong.append(f"{prompt!r}: {generation.status} {generation.error_reason or ''}, "
                         f"sandbox: {outcome or 'no video'}")
    done = [g for g in latest.values() if g.status == Generation.Status.DONE]
    return {"right": right, "wrong": wrong, "kinds": dict(kinds), "done": len(done),
            "copied": sum(bool(g.video_file) for g in done)}


def billing() -> dict:
    """Trace ids and prompts charged more than once (refunds aside), by the sandbox's charges."""
    from generations.sandbox.models import SandboxCharge

    per_prompt = Counter(
        (charge.account_id, charge.video.params.get("prompt"))
        for charge in SandboxCharge.objects.filter(credits__gt=0).select_related("video")
    )
    return {"trace_ids": SandboxCharge.billed_more_than_once(),
            "prompts": sorted(prompt for (_account, prompt), n in per_prompt.items() if n > 1),
            "charges": sum(per_prompt.values())}


def pause_after(kill: float) -> float | None:
    from generations.sandbox.models import SandboxRequest

    first = (SandboxRequest.objects.filter(started_at__gt=kill).order_by("started_at")
             .values_list("started_at", flat=True).first())
    return None if first is None else first - kill


def request_faults(since: float) -> dict:
    """What the sandbox answered from the batch's start: the faults it served, by kind."""
    from generations.sandbox.models import SandboxRequest

    kinds = Counter()
    hang_ms = FAULTS["fault_hang_seconds"] * 1000
    for status, err_code, ms, path in SandboxRequest.objects.filter(started_at__gte=since).values_list(
            "http_status", "err_code", "duration_ms", "path"):
        kinds["all"] += 1
        kinds["generate" if path.endswith("/generate") else "other"] += 1
        if status == 500:
            kinds["HTTP 500"] += 1
        elif status == 429:
            kinds["HTTP 429"] += 1
        elif status == 444:
            kinds["dropped after billing"] += 1
        elif err_code == 500069:
            kinds["ErrCode 500069"] += 1
        elif status == 200 and err_code is None:
            kinds["not JSON"] += 1
        elif ms >= hang_ms:
            kinds["answered after the hang"] += 1
        elif err_code:
            kinds[f"ErrCode {err_code}"] += 1
    return dict(kinds)


# --- The report ------------------------------------------------------------------------------


def report(args, faulty: dict, clean: dict) -> int:
    print(f"\nPixVerse faults benchmark: {faulty['jobs']} jobs on {args.keys} keys "
          f"({args.jobs} each), sandbox generation time {args.generation_seconds:g} s, "
          f"default install (runserver + one qcluster)")
    print(f"with faults: {', '.join(f'{k[6:]} {v:g}' for k, v in FAULTS.items())}; "
          f"PIXVERSE_READ_TIMEOUT={READ_TIMEOUT:g}; cluster killed (SIGKILL) at "
          f"{', '.join(f'{s:.0%}' for s in KILLS_AT)} of the jobs finished, restarted "
          f"{RESTART_AFTER:g} s later\n")

    def share(result: dict) -> str:
        s = result["states"]
        return f"{s['right']} / {result['jobs']} ({s['right'] / result['jobs']:.0%})"

    def twice(result: dict, when: str) -> str:
        b = result[f"billing_{when}"]
        return f"{len(b['trace_ids'])} / {len(b['prompts'])}"

    def pause(seconds: float | None) -> str:
        return "no request" if seconds is None else f"{seconds:.1f} s"

    rows = [
        ("jobs in the right terminal state", share(faulty), share(clean), "100 %"),
        ("done jobs with their copy stored",
         *(f"{r['states']['copied']} / {r['states']['done']}" for r in (faulty, clean)), ""),
        ("jobs tried again (maybe made, unknown)", str(faulty["try_again"]),
         str(clean["try_again"]), ""),
        ("billed twice, trace id / prompt", twice(faulty, "before"), twice(clean, "before"),
         "0 / 0"),
        ("  the same after Try again", twice(faulty, "after"), twice(clean, "after"), "0 / 0"),
        ("charges / jobs", *(f"{r['billing_after']['charges']} / {r['jobs']}"
                              for r in (faulty, clean)), ""),
        ("requests < 1 s apart on a key", *(str(len(r["gaps"]["close"])) for r in (faulty, clean)),
         "0"),
        ("  smallest gap", *(f"{r['gaps']['smallest']:.4f} s" for r in (faulty, clean)), ""),
        ("lost jobs (not finished)", str(faulty["lost"]), str(clean["lost"]), "0"),
        *((f"pause after kill {n}", pause(p), "", f"<= {PAUSE_TARGET:g} s")
          for n, p in enumerate(faulty["pauses"], 1)),
        ("batch time", *(f"{r['batch_seconds']:.1f} s" for r in (faulty, clean)), ""),
        ("batch time, with / without faults", f"{faulty['batch_seconds'] / clean['batch_seconds']:.2f}x",
         "", ""),
    ]
    print_columns(("measure", "with faults + kills", "without", "target"), rows)

    served = faulty["requests"]
    faults = {k: v for k, v in served.items() if k not in ("all", "generate", "other")}
    print(f"\nfaults served: {sum(faults.values())} of {served.get('all', 0)} API requests "
          f"({sum(faults.values()) / max(1, served.get('all', 0)):.0%}; "
          f"{served.get('generate', 0)} generate calls): "
          + ", ".join(f"{k} {v}" for k, v in sorted(faults.items()))
          + f"; failed video downloads {faulty['copy_failures']}")
    for name, result in (("with faults", faulty), ("without", clean)):
        print(f"{name}: final states (sandbox outcome): "
              + ", ".join(f"{k} {v}" for k, v in sorted(result["states"]["kinds"].items())))
        for line in result["states"]["wrong"]:
            print(f"{name}: wrong state: {line}")
        for when in ("before", "after"):
            b = result[f"billing_{when}"]
            for item in b["trace_ids"] + b["prompts"]:
                print(f"{name}: billed twice ({when} Try again): {item}")
        for line in result["gaps"]["close"][:20]:
            print(f"{name}: close requests: {line}")
        print(f"{name}: portal log {result['log']}")

    ok = len(faulty["pauses"]) == len(KILLS_AT) and all(
        p is not None and p <= PAUSE_TARGET for p in faulty["pauses"])
    for result in (faulty, clean):
        ok &= (result["states"]["right"] == result["jobs"] and not result["gaps"]["close"]
               and result["lost"] == 0)
        for when in ("before", "after"):
            ok &= not result[f"billing_{when}"]["trace_ids"] and not result[f"billing_{when}"]["prompts"]
    print("\nall targets met" if ok else "\nsome targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
