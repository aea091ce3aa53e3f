"""Background work: submitting generations, reading their status, storing the videos.

One scheduler loop per worker cluster (a django-q2 task, run_scheduler) does
every member's work, key by key. PixVerse allows 1 request per second per
API key, so the key, not the member, is what work is scheduled by: members
who use one key share its schedule, and keys work in parallel.

- Each step is one request (an upload, a generate call, a status read, a
  balance read) or the copy of a finished video. The loop picks a key's next
  due step, claims it on the job's row with a short lease (Generation.claim_step),
  and hands it to a thread of its pool; the thread does the request and
  records what came of it, which releases the claim. No thread waits for
  another job: a hung request holds up only its own job.
- The loop renews the leases of its steps in flight every few seconds. A loop
  whose process was killed stops renewing, and its steps are taken over by
  any loop within PORTAL_WORKER_LEASE_SECONDS. A new cluster starts its loop
  as soon as a worker process starts (apps.py connects django-q2's post_spawn);
  the minute schedule and the web's new jobs start one where none is alive.
- Per key, submissions go in the order the jobs were created; a job that
  waits (the plan's limit, a backoff) keeps its place and the younger ones
  wait behind it. Reads and submissions take turns; reads of videos likely
  ready go first (work_out_step).
- A generate call whose answer never came is resent with the same trace id,
  which PixVerse answers with the video it made, if any, without billing it
  again: such a job never fails as "unreachable"; at the generation timeout
  it says PixVerse may have made the video, and "Try again" asks for it with
  the same trace id (Generation.retry).

Every function takes ids or rows it re-reads, and is safe to run twice.
"""

import functools
import logging
import math
import os
import socket
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.core.files.base import ContentFile, File
from django.db import connections
from django.db.models import Count, DateTimeField, F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from generations import kinds, queue, ratelimit, video_facts
from generations.fetch import UnsafeURL, check_video_url
from generations.models import ApiCredential, Generation, SchedulerRunner, WorkerHeartbeat
from generations.pixverse import (
    ConcurrencyLimit,
    InvalidKey,
    InvalidRequest,
    ModerationFailed,
    NoCredits,
    PixVerseClient,
    PixVerseError,
    RateLimited,
    SlotUnavailable,
    TransportError,
    VideoNotFound,
    VideoState,
)
from pixverse_site.logcontext import log_context

logger = logging.getLogger(__name__)

READ_INTERVAL = timedelta(seconds=4)  # PixVerse's advice: 3 to 5 s between reads of one job
FIRST_READ_FALLBACK = timedelta(seconds=5)
# Before any video of a kind has finished, the team's younger jobs of that
# kind wait for the oldest ones (the probes) -- but not longer than this.
PROBE_PATIENCE = timedelta(seconds=90)
PROBES = 2
# With webhooks on (PIXVERSE_WEBHOOK_SECRET set), a finished video's webhook has
# its status read at once, and polling is only the safety net for a webhook that
# never comes: a job is first read well after such videos are usually ready
# (this factor and margin), or one PIXVERSE_WEBHOOK_POLL_INTERVAL after its
# submission before any has finished; then every PIXVERSE_WEBHOOK_POLL_INTERVAL.
WEBHOOK_FIRST_READ_FACTOR = 1.5
WEBHOOK_FIRST_READ_MARGIN = timedelta(seconds=5)
# The plan's limit of videos at once: a waiting job is tried again when one of
# its key's videos finishes, or after this (the key may be busy elsewhere).
CONCURRENCY_FALLBACK = timedelta(seconds=30)
RATE_LIMITED_RETRY = timedelta(seconds=2)
# Unanswered steps are tried again after 5, 10, 20, 40 s, then every minute.
MISS_BACKOFF_CAP = timedelta(seconds=60)
COPY_BACKOFF_CAP = timedelta(minutes=10)
READ_BACKOFF_CAP = timedelta(seconds=30)
# "Not found" right after a submission can be PixVerse catching up; this many in a row is final.
NOT_FOUND_READS = 3
# How long a step's request may wait for its key's slot before it is given back.
STEP_SLOT_WAIT = 2.0
# A wanted balance waits for a free request slot of its key, at most this long.
BALANCE_PATIENCE = timedelta(seconds=3)
STEPS_IN_FLIGHT_PER_KEY = 4
COPIES_IN_FLIGHT = 4
# A loop hands over to a fresh task this often: django-q2 stops a cluster only
# once its workers' tasks end (they never see the signal), so a stop or
# restart waits at most about this long.
SLICE_SECONDS = 10.0
HOUSEKEEPING_EVERY = 5.0  # seconds
# The repair pass reads the whole history for finished jobs without a copy: once
# a minute per worker process, not at the start of every 10 s slice.
REPAIR_EVERY = 60.0
_repaired_at: float | None = None  # a worker process runs many slices; it keeps this


def _lease() -> timedelta:
    """How long a claim on a step (or on a cluster's loop) holds without being renewed."""
    return timedelta(seconds=settings.PORTAL_WORKER_LEASE_SECONDS)


def _backoff(misses: int, cap: timedelta) -> timedelta:
    return min(timedelta(seconds=5 * 2 ** min(misses, 10)), cap)


def _read_backoff(misses: int) -> timedelta:
    """After a failed status read: the usual interval for the first few, then 8, 16, 30 s."""
    if misses < 2:
        return READ_INTERVAL
    return min(READ_INTERVAL * 2 ** (misses - 1), READ_BACKOFF_CAP)


# --- The loop -----------------------------------------------------------------------------


def _runner_name() -> str:
    # A django-q2 worker's parent is its cluster's sentinel: one loop per cluster.
    return f"{socket.gethostname()}:{os.getppid()}"


def run_scheduler(seconds: float | None = None) -> bool:
    """This cluster's scheduler loop (a django-q2 task); False if another one runs here.

    A loop that was killed leaves its lease behind: a new one waits for it to
    lapse (a few seconds) rather than leaving the cluster without a loop.
    """
    WorkerHeartbeat.beat()
    name, token = _runner_name(), uuid.uuid4()
    lease = _lease()
    give_up = time.monotonic() + lease.total_seconds() + 2
    while not SchedulerRunner.claim(name, token, lease):
        if time.monotonic() > give_up:
            return False
        time.sleep(1.0)
    budget = seconds if seconds is not None else min(SLICE_SECONDS, settings.Q_CLUSTER["timeout"] * 0.5)
    Scheduler(name, token).run(budget, hand_over=seconds is None)
    return True


class Scheduler:
    """One loop that hands out every key's due steps to a pool of threads."""

    def __init__(self, name: str = "", token: uuid.UUID | None = None):
        self.name = name
        self.token = token or uuid.uuid4()
        self.pool = ThreadPoolExecutor(max_workers=settings.PORTAL_SCHEDULER_THREADS,
                                       thread_name_prefix="pixverse-step")
        self.lock = threading.Lock()
        self.in_flight: dict[int, tuple[str, str]] = {}  # job pk -> (key hash, step)
        self.balances_in_flight: set[str] = set()
        # Per key (this loop's view): when its next request may start, and what
        # its last step was, so reads and submissions take turns.
        self.free_at: dict[str, float] = {}
        self.last_step: dict[str, str] = {}

    # The loop itself

    def run(self, seconds: float, *, hand_over: bool = False, until_idle: bool = False) -> None:
        global _repaired_at
        ends = time.monotonic() + seconds
        renew_at = housekeeping_at = 0.0
        try:
            while time.monotonic() < ends:
                now = time.monotonic()
                if now >= renew_at:
                    self._renew()
                    renew_at = now + _lease().total_seconds() / 3
                if now >= housekeeping_at:
                    repair = _repaired_at is None or now - _repaired_at >= REPAIR_EVERY
                    housekeeping(repair=repair)
                    _repaired_at = now if repair else _repaired_at
                    housekeeping_at = now + HOUSEKEEPING_EVERY
                pause = self.tick()
                if until_idle and not self.in_flight and not _pending().exists():
                    break
                time.sleep(pause)
        finally:
            if self.name:
                SchedulerRunner.release(self.name, self.token)
            if hand_over:
                # The next loop may start in another worker while this one finishes.
                queue.kick_scheduler(force=True)
            self._finish(deadline=time.monotonic() + settings.Q_CLUSTER["timeout"] * 0.4)

    def _renew(self) -> None:
        WorkerHeartbeat.beat()
        if self.name:
            SchedulerRunner.renew(self.name, self.token, _lease())
        with self.lock:
            pks = list(self.in_flight)
        if pks:
            Generation.renew_claims(pks, self.token, _lease())

    def _finish(self, deadline: float) -> None:
        """Wait for the steps in flight, renewing their claims, until the deadline."""
        while self.in_flight and time.monotonic() < deadline:
            self._renew()
            time.sleep(min(1.0, _lease().total_seconds() / 3))
        self.pool.shutdown(wait=False, cancel_futures=True)

    def tick(self) -> float:
        """Start every step that is due and allowed now; the seconds until it is worth looking again."""
        now = timezone.now()
        mono = time.monotonic()
        due = _pending().filter(Generation._unclaimed(now), next_attempt_at__lte=now)
        # Which keys have a read due and which a submission: a key's step is chosen only
        # among those (each look costs queries, and a tick goes over every busy key).
        reading, sending = set(), set()
        for key, status in (due.exclude(status=Generation.Status.DONE)
                            .values_list("key_hash", "status").distinct()):
            (reading if status == Generation.Status.RUNNING else sending).add(key)
        keys = reading | sending
        # A balance read goes before the key's jobs only once it has waited a while:
        # reading it after every submission would take every other request slot.
        balance_due = dict(ApiCredential.objects.filter(balance_due_at__lte=now)
                           .values_list("key_hash", "balance_due_at"))
        balance_keys = set(balance_due)
        pause = 0.5
        for key in sorted(keys | balance_keys):
            if not key:
                continue  # housekeeping gives such jobs a key or fails them
            if key not in self.free_at:
                # A loop new to the key (one takes over every slice) hands out its first
                # step when the key's request slot is free: a step handed out earlier
                # waits for its slot, and every later step would be chosen that far
                # ahead of its request (a webhook's read one request later).
                self.free_at[key] = mono + ratelimit.seconds_until_free(key)
            wait = self.free_at.get(key, 0.0) - mono
            if wait > 0:
                pause = min(pause, wait)
                continue
            if self._busy(key):
                continue
            started = False
            balance_first = key in balance_due and now - balance_due[key] > BALANCE_PATIENCE
            if balance_first:
                started = self._start_balance_read(key)
            if not started and key in keys:
                started = self._start_job_step(key, now, reads=key in reading, submissions=key in sending)
            if not started and key in balance_due and not balance_first:
                started = self._start_balance_read(key)
            interval = settings.PIXVERSE_MIN_INTERVAL if started else 0.5
            self.free_at[key] = mono + interval
            pause = min(pause, max(interval, 0.02))
        self._start_copies(due.filter(status=Generation.Status.DONE))
        upcoming = (_pending().filter(Generation._unclaimed(now), next_attempt_at__gt=now)
                    .order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first())
        if upcoming is not None:
            pause = min(pause, (upcoming - now).total_seconds())
        return min(max(pause, 0.02), 0.5)

    def _busy(self, key: str) -> bool:
        with self.lock:
            total = len(self.in_flight) + len(self.balances_in_flight)
            of_key = sum(1 for k, _step in self.in_flight.values() if k == key)
        return total >= settings.PORTAL_SCHEDULER_THREADS or of_key >= STEPS_IN_FLIGHT_PER_KEY

    def _start_job_step(self, key: str, now: datetime, *, reads: bool, submissions: bool) -> bool:
        chosen = work_out_step(key, now, after=self.last_step.get(key), reads=reads,
                               submissions=submissions)
        if chosen is None:
            return False
        generation, step = chosen
        if not generation.claim_step(self.token, _lease()):
            return False  # another loop took it
        self.last_step[key] = step
        with self.lock:
            self.in_flight[generation.pk] = (key, step)
        self.pool.submit(self._run_step, generation, step, key)
        return True

    def _start_balance_read(self, key: str) -> bool:
        if key in self.balances_in_flight or not ApiCredential.claim_balance_read(key):
            return False
        with self.lock:
            self.balances_in_flight.add(key)
        self.pool.submit(self._run_balance_read, key)
        return True

    def _start_copies(self, due) -> None:
        with self.lock:
            copying = sum(1 for _k, step in self.in_flight.values() if step == "copy")
            room = min(COPIES_IN_FLIGHT - copying,
                       settings.PORTAL_SCHEDULER_THREADS - len(self.in_flight))
        if room <= 0:
            return
        for generation in due.order_by("next_attempt_at")[:room]:
            if generation.claim_step(self.token, _lease()):
                with self.lock:
                    self.in_flight[generation.pk] = (generation.key_hash, "copy")
                self.pool.submit(self._run_step, generation, "copy", generation.key_hash)

    # In the pool's threads

    def _run_step(self, generation: Generation, step: str, key: str) -> None:
        try:
            with log_context(generation_id=generation.pk, trace_id=str(generation.trace_id)):
                if step == "copy":
                    store_video(generation.pk, token=self.token)
                    return
                client = _client_for(key)
                if client is None:
                    generation.release(self.token)  # housekeeping deals with a removed key
                    return
                if step == "read":
                    read_status(generation, client, token=self.token)
                else:
                    submit(generation, client, token=self.token)
        except SlotUnavailable as error:
            # Another process has the key's next slot: nothing was sent.
            generation.release(self.token)
            self.free_at[key] = time.monotonic() + max(error.wait, 0.05)
        except Exception:
            # One bad job must not stop the others; its step is tried again later.
            logger.exception("generation %s: unexpected error in step %s", generation.pk, step)
            generation.release(self.token, next_at=timezone.now() + READ_INTERVAL)
        finally:
            with self.lock:
                self.in_flight.pop(generation.pk, None)
            connections.close_all()  # this thread's own connections

    def _run_balance_read(self, key: str) -> None:
        try:
            read_balance(key)
        except Exception:
            logger.exception("balance read failed")
        finally:
            with self.lock:
                self.balances_in_flight.discard(key)
            connections.close_all()


def _pending():
    """Jobs with a step left to do (served by a partial index)."""
    return Generation.objects.filter(next_attempt_at__isnull=False)


def _client_for(key_hash: str) -> PixVerseClient | None:
    credential = ApiCredential.objects.filter(key_hash=key_hash).order_by("pk").first()
    return credential.client(max_wait=STEP_SLOT_WAIT) if credential else None


# --- Housekeeping: timeouts, jobs without a key, copies never made ----------------------------


def housekeeping(*, repair: bool = False) -> None:
    now = timezone.now()
    unclaimed = Generation.objects.filter(Generation._unclaimed(now), status__in=Generation.ACTIVE)
    for expired in unclaimed.filter(created__lt=now - settings.PORTAL_GENERATION_TIMEOUT):
        unanswered = expired.maybe_submitted and expired.video_id is None
        expired.mark_failed(Generation.Reason.MAYBE_MADE if unanswered else Generation.Reason.TIMED_OUT,
                            status=Generation.Status.TIMED_OUT)
        Generation.wake_waiting(expired.key_hash)
    known_keys = ApiCredential.objects.values("key_hash")
    for orphan in unclaimed.filter(next_attempt_at__isnull=False).exclude(key_hash__in=known_keys):
        _find_a_key(orphan)
    if repair:
        # A worker killed between "done" and the copy, or a row from before copies were retried.
        Generation.objects.filter(status=Generation.Status.DONE, video_file="",
                                  next_attempt_at__isnull=True).exclude(video_url="").exclude(
            error_reason=Generation.Reason.COPY_TOO_LARGE).update(next_attempt_at=now)
        # A copy stored before its facts were read: store_video reads them, as a copy step.
        Generation.objects.filter(status=Generation.Status.DONE, facts_read_at__isnull=True,
                                  next_attempt_at__isnull=True).exclude(video_file="").update(
            next_attempt_at=now)
        SchedulerRunner.prune()


def _find_a_key(generation: Generation) -> None:
    """A job whose key is gone: one never sent goes on the owner's current key; else it fails."""
    current = ApiCredential.objects.filter(user_id=generation.owner_id).values_list(
        "key_hash", flat=True).first()
    never_sent = generation.status == Generation.Status.QUEUED and not generation.maybe_submitted
    if current and never_sent:
        Generation.objects.filter(pk=generation.pk, status=Generation.Status.QUEUED).update(
            key_hash=current)
    else:
        generation.mark_failed(Generation.Reason.NO_KEY)


# --- Choosing a key's next step -------------------------------------------------------------


def work_out_step(key_hash: str, now: datetime, after: str | None = None, *,
                  reads: bool = True, submissions: bool = True):
    """The key's next step, (job, "read" or "submit"), or None when nothing is due.

    reads / submissions False: the caller knows none of that kind is due (the
    tick's one look at every key), so it is not looked for.

    When both a status read and a submission are due, they take turns (after
    is what the previous step was), except that reads go first while several
    are waiting and the oldest has run longer than such videos usually take:
    then videos are most likely ready and unnoticed, and submissions go on at
    the pace the reads keep up with. Before the portal has seen any video of
    that kind finish, reads are guesses and never hold submissions back.
    A read asked for by a webhook (the video ended) goes first too.
    """
    due_reads = _reads_worth_making(key_hash, now, limit=2) if reads else []
    read = due_reads[0] if due_reads else None
    submission = _next_submission(key_hash, now) if submissions else None
    if read and submission:
        usual = learned_duration(read.quality, read.duration)
        backlog = len(due_reads) > 1 and usual is not None and now - read.submitted_at >= usual
        take_turn = after == "read" and not backlog and not _read_asked(read)
        return (submission, "submit") if take_turn else (read, "read")
    if read:
        return read, "read"
    if submission:
        return submission, "submit"
    return None


def _read_asked(generation: Generation) -> bool:
    """A read was asked for (a webhook, staff) since the last one that found the video running."""
    asked = generation.read_asked_at
    return asked is not None and (generation.last_read_at is None or asked > generation.last_read_at)


def _next_submission(key_hash: str, now: datetime) -> Generation | None:
    """The key's next job to send, if it is due: the jobs behind it wait.

    The line is the order the jobs were created in, taking turns between the
    members who share the key (a member with fewer videos running on it goes
    first), so one member's batch does not hold up a team mate's single
    video. A job that waits keeps its place: once it is due again, it goes
    before every job behind it. While it waits for the plan's limit of videos
    at once, the jobs behind it wait too (they would be refused); while it
    backs off after a passing error, they may go. A job in flight (claimed)
    does not hold the others back. (Holding everything behind a backoff cost
    the faults benchmark 20 s of an idle key for one 500069.)
    """
    unsent = list(Generation.objects.filter(
        key_hash=key_hash, status__in=[Generation.Status.QUEUED, Generation.Status.SUBMITTING],
        next_attempt_at__isnull=False,
    ).order_by("created", "pk")[:100])
    if not unsent:
        return None
    # A team key's plan limit of videos at once, when staff know it: a job sent over it
    # would only be refused (500044), so the line waits until one of the key's videos ends.
    limit = (ApiCredential.objects.filter(key_hash=key_hash, concurrency__isnull=False)
             .values_list("concurrency", flat=True).first())
    running = Generation.objects.filter(key_hash=key_hash, status=Generation.Status.RUNNING)
    if limit and running.count() >= limit:
        return None
    turns: dict[int, int] = {}
    if len({generation.owner_id for generation in unsent}) > 1:
        turns = dict(Generation.objects.filter(key_hash=key_hash, status=Generation.Status.RUNNING)
                     .values("owner_id").annotate(n=Count("pk")).values_list("owner_id", "n"))
    line = []
    for generation in unsent:
        turns[generation.owner_id] = turns.get(generation.owner_id, 0) + 1
        line.append((turns[generation.owner_id], generation.created, generation.pk, generation))
    for *_order, generation in sorted(line, key=lambda entry: entry[:3]):
        if generation.claimed_until is not None and generation.claimed_until >= now:
            continue
        if generation.next_attempt_at <= now:
            return generation
        if generation.error_reason == Generation.Reason.WAITING:
            return None  # the plan's limit: the jobs behind it would only be refused too
        # In backoff: the ones behind it may go meanwhile; when due, it goes first.
    return None


def _due_reads(key_hash: str, now: datetime):
    # The longest-running first: the one most likely to be finished by now.
    return Generation.objects.filter(
        Generation._unclaimed(now), key_hash=key_hash, status=Generation.Status.RUNNING,
        next_attempt_at__lte=now,
    ).order_by("submitted_at", "created")


def _reads_worth_making(key_hash: str, now: datetime, limit: int) -> list[Generation]:
    """The due status reads likely to tell something new, longest-running first.

    Before the portal has seen a video of a kind finish, only the team's
    PROBES oldest running jobs of that kind are read (the probes), whatever
    their keys: younger ones are unlikely to be ready before them, and each
    read costs a request (a key's one per second, taken from its
    submissions). Their reads are staggered (see submit), so the first
    finished video is noticed within READ_INTERVAL / PROBES. The others are
    read once one is done and the duration learned (_time_first_reads), or
    after PROBE_PATIENCE. A job put off gets a later next read, so the loop
    does not look at it again at once.
    """
    learned: dict[tuple[str, int], timedelta | None] = {}
    probes: dict[tuple[str, int], list[int]] = {}

    def not_before(generation: Generation) -> datetime | None:
        kind = (generation.quality, generation.duration)
        if generation.submitted_at is None:
            return None  # nothing to time it by
        if _webhooks_on():
            return None  # no probes: a webhook tells when the first such video is ready
        if kind not in learned:
            learned[kind] = learned_duration(*kind)
        if learned[kind] is not None:
            return None  # its first read was timed by what was learned, or is overdue
        if kind not in probes:
            probes[kind] = _probes(*kind)
        if generation.pk in probes[kind]:
            return None
        # Looked at again after the probe's next read, when it may be done.
        return min(now + READ_INTERVAL, generation.submitted_at + PROBE_PATIENCE)

    worth = []
    # A list, not a cursor: postponing writes to the rows being looked through.
    for generation in list(_due_reads(key_hash, now)[:50]):
        ready_at = not_before(generation)
        if ready_at is not None and ready_at > now:
            generation.postpone_read(ready_at)
            continue
        worth.append(generation)
        if len(worth) == limit:
            break
    return worth


def _probes(quality: str, duration: int) -> list[int]:
    return list(Generation.objects.filter(
        status=Generation.Status.RUNNING, quality=quality, duration=duration,
    ).order_by("submitted_at", "created").values_list("pk", flat=True)[:PROBES])


def _first_read(generation: Generation) -> datetime:
    """When to read a job just submitted: when such videos are usually ready.

    Before any has finished, the probes' reads are spread over one read
    interval (the first at 5 s, the second 2 s later...), so that between
    them a finished video is noticed within READ_INTERVAL / PROBES. With
    webhooks on, later: the webhook is expected to come first.
    """
    now = timezone.now()
    learned = learned_duration(generation.quality, generation.duration)
    if _webhooks_on():
        return now + _safety_net_first_read(learned)
    if learned is not None:
        return now + learned
    # The probes so far (this job is not running yet): it is the next one, if there is room.
    phase = len(_probes(generation.quality, generation.duration)) % PROBES
    return now + FIRST_READ_FALLBACK + phase * READ_INTERVAL / PROBES


def _webhooks_on() -> bool:
    return bool(settings.PIXVERSE_WEBHOOK_SECRET)


def _safety_net_interval() -> timedelta:
    return timedelta(seconds=settings.PIXVERSE_WEBHOOK_POLL_INTERVAL)


def _safety_net_first_read(learned: timedelta | None) -> timedelta:
    """With webhooks on: how long after its submission a job is first read."""
    if learned is None:
        return _safety_net_interval()
    return learned * WEBHOOK_FIRST_READ_FACTOR + WEBHOOK_FIRST_READ_MARGIN


def learned_duration(quality: str, duration: int, kind: str | None = None) -> timedelta | None:
    """How long PixVerse takes for such a video, learned from recent ones; None before any.

    Each finished job brackets the moment its video was ready: after its last
    read that found it running, and by the read that found it done; the
    middle of that bracket is not biased by how late the done read came.
    When the first read found it done, only the end is known: half a read
    interval before it is taken, so that an estimate that came too late moves
    earlier until a first read finds a video still running. (Taking the end
    itself made the estimate creep up with the portal's own lag: ready -> done
    median 5.6 s in bench/jobs.py, against 2-3 s.)
    """
    done = Generation.objects.filter(status=Generation.Status.DONE, quality=quality, duration=duration,
                                     submitted_at__isnull=False)
    if kind is not None:
        done = done.filter(kind=kind)
    recent = (
        done.order_by("-finished_at").values_list("submitted_at", "last_read_at", "finished_at")[:20]
    )
    seconds = []
    for submitted, last_running, finished in recent:
        if last_running is None:
            ready_by = finished - READ_INTERVAL / 2
        else:
            ready_by = last_running + (finished - last_running) / 2
        seconds.append((ready_by - submitted).total_seconds())
    if not seconds:
        return None
    return timedelta(seconds=max(statistics.median(seconds), 1.0))


# What a progress bar expects before the portal has seen any video of a kind finish:
# PixVerse's 5-second videos up to 720p usually come within a minute; longer and
# 1080p ones take longer.
EXPECTED_FALLBACK = timedelta(seconds=60)
EXPECTED_FALLBACK_FACTOR = {"1080p": 1.5}


def expected_seconds(quality: str, duration: int, kind: str) -> int:
    """How long a job of this kind is expected to take, from its submission until its card shows
    the video (whole seconds), for the running card's progress bar.

    Learned from recent videos of the same quality, length and kind; then of
    either kind; else EXPECTED_FALLBACK scaled by length and quality. Half a
    read interval is added: on average, that long passes between the video
    being ready and a status read noticing it.
    """
    learned = learned_duration(quality, duration, kind) or learned_duration(quality, duration)
    if learned is None:
        learned = EXPECTED_FALLBACK * (duration / 5) * EXPECTED_FALLBACK_FACTOR.get(quality, 1.0)
    return math.ceil((learned + READ_INTERVAL / 2).total_seconds())


# --- Submitting ----------------------------------------------------------------------------


def _claimed(generation: Generation, token) -> uuid.UUID | None:
    """The token the step runs under: the scheduler's, or a claim of our own (tests, admin)."""
    if token is not None:
        return token
    token = uuid.uuid4()
    return token if generation.claim_step(token, _lease(), due_only=False) else None


def _next_upload(generation: Generation):
    """What the job still sends before its generate call, one file a step:
    (the file, whether it is an image, how to record its id), or None."""
    if generation.kind == Generation.Kind.IMAGE and generation.img_id is None:
        return generation.source_image, True, generation.record_image
    if generation.uploads_pending and (source := generation.inputs.filter(pixverse_id=None).first()):
        return source.file, source.is_image, functools.partial(generation.record_upload, source)
    return None


def _upload(client: PixVerseClient, name: str, is_image: bool, data: bytes) -> int:
    """An image goes to /image/upload, a video or sound to /media/upload; the id PixVerse gives it."""
    if is_image:
        return client.upload_image(data).img_id
    return client.upload_media(data, name.rsplit("/", 1)[-1]).media_id


def submit(generation: Generation, client: PixVerseClient, token=None) -> bool:
    """The job's next submission step: upload one of its files, or the generate call.

    True when PixVerse took the job. An upload makes the generate call due at once.
    """
    if (token := _claimed(generation, token)) is None:
        return False
    try:
        if (upload := _next_upload(generation)) is not None:
            file, is_image, record = upload
            with file.open("rb") as f:
                try:
                    uploaded_id = _upload(client, file.name, is_image, f.read())
                except SlotUnavailable:
                    raise
                except PixVerseError as error:
                    _submission_failed(generation, error, token, billable=False)
                    return False
            record(uploaded_id, token=token)
            return False
        submission = kinds.generate(client, generation)
    except SlotUnavailable:
        raise
    except PixVerseError as error:
        _submission_failed(generation, error, token)
        return False
    expected = timedelta(seconds=expected_seconds(generation.quality, generation.duration,
                                                  generation.kind))
    generation.mark_submitted(submission.video_id, _first_read(generation), token=token, expected=expected,
                              credits=submission.credits)
    ApiCredential.balance_changed(generation.key_hash)
    logger.info("generation %s submitted: video_id=%s trace_id=%s", generation.pk,
                submission.video_id, generation.trace_id)
    return True


def _submission_failed(generation: Generation, error: PixVerseError, token, *,
                       billable: bool = True) -> None:
    """Put the job back in line, or end it, by what the error means (billable: a generate call)."""
    logger.warning("generation %s: submission failed: %s ErrCode=%s trace_id=%s", generation.pk,
                   error.kind, error.err_code, error.trace_id)
    now = timezone.now()
    if isinstance(error, ConcurrencyLimit):
        # Waiting is not failing: the job keeps its place until a video of its key finishes.
        generation.requeue(now + CONCURRENCY_FALLBACK, Generation.Reason.WAITING, token=token)
    elif isinstance(error, RateLimited):
        retry_after = timedelta(seconds=getattr(error, "retry_after", None) or 0)
        generation.requeue(now + max(retry_after, RATE_LIMITED_RETRY), Generation.Reason.RETRYING,
                           token=token)
    elif isinstance(error, InvalidKey):
        generation.mark_failed(Generation.Reason.INVALID_KEY, code=error.err_code, token=token)
        key_refused(generation.key_hash, error)
    elif isinstance(error, NoCredits):
        generation.mark_failed(Generation.Reason.NO_CREDITS, code=error.err_code, token=token)
    elif isinstance(error, ModerationFailed):
        generation.mark_failed(Generation.Reason.MODERATED, code=error.err_code,
                               status=Generation.Status.MODERATED, token=token)
    elif isinstance(error, InvalidRequest):
        generation.mark_failed(Generation.Reason.REFUSED, detail=error.err_msg, code=error.err_code,
                               token=token)
    elif error.outcome_unknown or (generation.maybe_submitted and error.retryable):
        # PixVerse may have the job: only the same trace id may ask again, until it
        # answers or the generation timeout ends the job (housekeeping).
        generation.requeue(now + _backoff(generation.misses, MISS_BACKOFF_CAP),
                           Generation.Reason.RETRYING, token=token, missed=True, sent=billable)
    elif isinstance(error, TransportError):
        # Never sent (refused, unresolvable): nothing exists at PixVerse; not a try of the call.
        generation.requeue(now + _backoff(generation.misses, MISS_BACKOFF_CAP),
                           Generation.Reason.RETRYING, token=token, missed=True, sent=False)
    elif error.retryable and generation.submit_attempts + 1 < settings.PORTAL_MAX_SUBMIT_ATTEMPTS:
        # PixVerse answered with a passing error: back off 5, 10, 20, 40 s.
        generation.requeue(now + timedelta(seconds=5 * 2 ** generation.submit_attempts),
                           Generation.Reason.RETRYING, token=token, counted=True)
    else:
        generation.mark_failed(Generation.Reason.SERVER_ERROR, detail=error.err_msg,
                               code=error.err_code or error.http_status, token=token)


# --- Reading status ----------------------------------------------------------------------


def read_status(generation: Generation, client: PixVerseClient, token=None) -> None:
    if (token := _claimed(generation, token)) is None:
        return
    now = timezone.now()
    try:
        result = client.video_status(generation.video_id)
    except SlotUnavailable:
        raise
    except InvalidKey as error:
        generation.mark_failed(Generation.Reason.INVALID_KEY, code=error.err_code, token=token)
        key_refused(generation.key_hash, error)
        return
    except VideoNotFound as error:
        if generation.misses + 1 >= NOT_FOUND_READS:
            generation.mark_failed(Generation.Reason.NOT_FOUND, code=error.err_code, token=token,
                                   read=True)
            Generation.wake_waiting(generation.key_hash)
        else:
            generation.record_status_read(now + READ_INTERVAL, token=token, missed=True)
        return
    except PixVerseError as error:
        logger.warning("generation %s: status read failed: %s trace_id=%s", generation.pk,
                       error.kind, error.trace_id)
        # Passing trouble: read again at PixVerse's pace, backing off only when it
        # lasts (a read bills nothing); the generation timeout ends hopeless cases.
        retry_after = timedelta(seconds=getattr(error, "retry_after", None) or 0)
        generation.record_status_read(now + max(_read_backoff(generation.misses), retry_after),
                                      token=token, missed=True)
        return
    if result.state is VideoState.DONE:
        try:
            check_video_url(result.url)
        except UnsafeURL as e:
            # Not a link we fetch or show: as good as no answer; read again later.
            logger.warning("generation %s: the video link was refused: %s", generation.pk, e)
            generation.record_status_read(now + READ_INTERVAL, token=token, missed=True)
            return
        if generation.mark_done(result.url, token=token):
            _finished(generation)
            _time_first_reads(generation.quality, generation.duration)
        return
    failures = {
        VideoState.FAILED: (Generation.Reason.GENERATION_FAILED, Generation.Status.FAILED),
        VideoState.MODERATION_FAILED: (Generation.Reason.MODERATION_BLOCKED,
                                       Generation.Status.MODERATED),
        VideoState.DELETED: (Generation.Reason.DELETED, Generation.Status.FAILED),
    }
    if result.state in failures:
        reason, status = failures[result.state]
        if generation.mark_failed(reason, status=status, token=token, read=True):
            _finished(generation)
        return
    generation.record_status_read(_next_read(generation, now), token=token)


def _next_read(generation: Generation, now: datetime) -> datetime:
    """The next read of a running video: READ_INTERVAL on, kept apart from the other probes'
    (with webhooks on, the safety net's interval on, until a webhook came for it).

    Probes submitted at the same moment (on different keys) would be read at
    the same moments, noticing a finished video no sooner than one would:
    a probe read close to another one is moved by READ_INTERVAL / PROBES.
    """
    if _webhooks_on() and generation.read_asked_at is None:
        # No webhook yet. Once one came and PixVerse still says running: READ_INTERVAL.
        return now + _safety_net_interval()
    next_read = now + READ_INTERVAL
    if learned_duration(generation.quality, generation.duration) is not None:
        return next_read
    probes = _probes(generation.quality, generation.duration)
    if generation.pk not in probes:
        return next_read
    too_close = READ_INTERVAL / (2 * PROBES)
    others = Generation.objects.filter(pk__in=probes).exclude(pk=generation.pk).values_list(
        "next_attempt_at", flat=True)
    if any(other is not None and abs(other - next_read) < too_close for other in others):
        next_read += READ_INTERVAL / PROBES
    return next_read


def _time_first_reads(quality: str, duration: int) -> None:
    """A video of this kind finished: time the first read of every such job not read yet by it.

    Jobs put off while the probe ran, and jobs timed by an older estimate, are
    read when such videos are now expected to be ready, not at their old time.
    (This was once tried and dropped, when the estimate included how late the
    done read came; learned_duration no longer does.)
    """
    learned = learned_duration(quality, duration)
    if learned is None:
        return
    expected = F("submitted_at") + (_safety_net_first_read(learned) if _webhooks_on() else learned)
    # A job whose read was asked for (its webhook came) is due now: not put off.
    Generation.objects.filter(
        status=Generation.Status.RUNNING, quality=quality, duration=duration, poll_count=0,
        submitted_at__isnull=False, claimed_by__isnull=True, read_asked_at__isnull=True,
    ).update(next_attempt_at=Greatest(expected, Value(timezone.now(), output_field=DateTimeField())))


def _finished(generation: Generation) -> None:
    """A video of this key ended: one of its waiting jobs may go, and the balance moved."""
    Generation.wake_waiting(generation.key_hash)
    ApiCredential.balance_changed(generation.key_hash)


# --- The balance ---------------------------------------------------------------------------


def read_balance(key_hash: str) -> None:
    """Read a key's balance for every member who stores it (asked for by ApiCredential.want_balance)."""
    client = _client_for(key_hash)
    if client is None:
        return
    try:
        balance = client.balance()
    except SlotUnavailable:
        ApiCredential.objects.filter(key_hash=key_hash, balance_due_at__isnull=True).update(
            balance_due_at=timezone.now() + RATE_LIMITED_RETRY)
        return
    except PixVerseError as error:
        ApiCredential.record_balance(key_hash, None, error=error.kind)
        if isinstance(error, InvalidKey):
            key_refused(key_hash, error)
        return
    ApiCredential.record_balance(key_hash, balance)
    ApiCredential.mark_working(key_hash)


def key_refused(key_hash: str, error: PixVerseError) -> None:
    """PixVerse says the key is invalid: mark it broken, and fail its jobs not yet sent
    with that reason rather than send each one to hear the same."""
    ApiCredential.mark_broken(key_hash, f"{error.err_code} {error.err_msg}".strip())
    waiting = Generation.objects.filter(key_hash=key_hash, status=Generation.Status.QUEUED,
                                        video_id__isnull=True, maybe_submitted=False, claimed_by__isnull=True)
    for generation in waiting:
        generation.mark_failed(Generation.Reason.INVALID_KEY, code=error.err_code)


# --- Keeping our own copy -------------------------------------------------------------------


def store_video(generation_id: int, token=None) -> bool:
    """Copy a finished video into the portal's storage (PixVerse's links expire), with its facts.

    A failed copy is tried again with backoff (up to every 10 minutes) until it
    is stored; only a video over PORTAL_VIDEO_MAX_BYTES is refused for good.
    A copy stored without facts (before they were read) gets them here too:
    the repair pass makes that step due (housekeeping).
    """
    with log_context(generation_id=generation_id):
        generation = Generation.objects.filter(pk=generation_id, status=Generation.Status.DONE).first()
        if generation is None or not (generation.video_file or generation.video_url):
            return False
        if generation.video_file and generation.facts_read_at is not None:
            return False
        if (token := _claimed(generation, token)) is None:
            return False
        if generation.video_file:
            return _store_facts(generation, token)
        try:
            name = _download(generation)
        except VideoTooLarge:
            generation.copy_refused(Generation.Reason.COPY_TOO_LARGE, token=token)
            return False
        except (requests.RequestException, OSError, UnsafeURL) as e:
            logger.warning("generation %s: video not stored (try %s): %s %s", generation_id,
                           generation.copy_attempts + 1, type(e).__name__,
                           e if isinstance(e, UnsafeURL) else "")
            generation.copy_failed(timezone.now() + _backoff(generation.copy_attempts, COPY_BACKOFF_CAP),
                                   token=token)
            return False
        facts, poster = _read_facts(generation, name)
        if not generation.attach_video_file(name, token=token, facts=facts, poster=poster):
            # The job changed meanwhile (deleted, taken over).
            for stored in (name, poster):
                if stored:
                    generation.video_file.storage.delete(stored)
            return False
        return True


def _store_facts(generation: Generation, token) -> bool:
    """The facts and poster of a copy stored without them; safe to run twice."""
    facts, poster = _read_facts(generation, generation.video_file.name)
    if not generation.record_video_facts(facts, poster, token=token):
        if poster:
            generation.poster.storage.delete(poster)
        return False
    return True


def _read_facts(generation: Generation, name: str) -> tuple[video_facts.VideoFacts | None, str]:
    """What PyAV reads from the stored copy, and the name of its stored poster.

    Never fails: a file that cannot be read (or a storage that fails to give it
    back) is logged, and the copy stands without facts, as it did before
    facts were read. It is not read again.
    """
    try:
        facts = video_facts.read_stored(generation.video_file.storage, name)
        generation.poster.save(f"{generation.video_id or generation.code}.jpg",
                               ContentFile(facts.poster_jpeg), save=False)
    except Exception as e:
        # The error's type and words only: FFmpeg's or the storage's, never a link or key.
        logger.warning("generation %s: video facts not read: %s %s", generation.pk, type(e).__name__,
                       str(e)[:200])
        return None, ""
    return facts, generation.poster.name


class VideoTooLarge(Exception):
    pass


def _download(generation: Generation) -> str:
    """Fetch the video into storage; its stored name."""
    limit = settings.PORTAL_VIDEO_MAX_BYTES
    # requests' timeout bounds each read, not the whole download: a server
    # that drips bytes is cut off by this deadline.
    deadline = time.monotonic() + settings.PORTAL_VIDEO_DOWNLOAD_TIMEOUT
    # A video can be hundreds of MB: past a few MB it goes to a temporary file, not memory.
    with tempfile.SpooledTemporaryFile(max_size=8 * 2**20) as buffer:
        with _get_following_safe_redirects(generation.video_url) as response:
            response.raise_for_status()
            size = 0
            for chunk in response.iter_content(chunk_size=256 * 1024):
                size += len(chunk)
                if size > limit:
                    logger.warning("generation %s: video over %s bytes, not stored",
                                   generation.pk, limit)
                    raise VideoTooLarge
                if time.monotonic() > deadline:
                    raise requests.Timeout("the download took too long")
                buffer.write(chunk)
        buffer.seek(0)
        return generation.video_file.storage.save(
            f"videos/{generation.code}/{generation.video_id}.mp4", File(buffer)
        )


MAX_REDIRECTS = 5


def _get_following_safe_redirects(url: str) -> requests.Response:
    """GET a video link, each hop of its redirects checked by generations/fetch.py first."""
    for _hop in range(MAX_REDIRECTS + 1):
        check_video_url(url)
        response = requests.get(url, stream=True, timeout=(5, 30), allow_redirects=False)
        if not response.is_redirect:
            return response
        response.close()
        url = requests.compat.urljoin(url, response.headers["Location"])
    raise requests.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")

