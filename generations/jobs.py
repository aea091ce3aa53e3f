"""Background work: submitting generations, reading their status, storing the videos.

Run by django-q2 workers (generations/queue.py hands them out); every function
takes ids, re-reads the database and is safe to run twice.

Why one worker per member: the spec allows 1 request per second per key, and
PixVerse asks for 3 to 5 seconds between reads of one job. A worker that holds
the member's lease (ApiCredential.worker_until) works through that member's
jobs in one loop, always taking the most overdue first, sleeping only until
the next one is due: a finished video is noticed within seconds instead of at
django-q2's ~30 s schedule ticks, no job is read by two workers at once, and
the request slots go to the jobs most likely to be finished. The loop ends
when nothing is active, or hands over to a fresh task before django-q2's
timeout. A schedule (dispatch_workers, every minute) restarts loops that a
crash or restart ended, and a submission whose worker died is resent with the
same trace id, so nothing is lost and nothing is billed twice.
"""

import logging
import statistics
import tempfile
import time
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import File
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from generations import queue
from generations.models import ApiCredential, Generation, WorkerHeartbeat
from generations.pixverse import (
    ConcurrencyLimit,
    InvalidKey,
    InvalidRequest,
    ModerationFailed,
    NoCredits,
    PixVerseClient,
    PixVerseError,
    TransportError,
    VideoState,
)
from pixverse_site.logcontext import log_context

logger = logging.getLogger(__name__)


def _lease() -> timedelta:
    """How long a worker's claim (on a member's jobs, or on one submission) holds.

    Longer than one step can take (a call's wait for its rate-limit slot plus
    its read timeout); past it, the worker is taken for dead and another
    takes over: the submission is resent with its own trace id.
    """
    return timedelta(seconds=settings.PORTAL_WORKER_LEASE_SECONDS)

READ_INTERVAL = timedelta(seconds=4)  # PixVerse's advice: 3 to 5 s between reads of one job
FIRST_READ_FALLBACK = timedelta(seconds=5)
# Before any video of a kind has finished, a member's younger jobs of that
# kind wait for the oldest one (the probe) -- but not longer than this.
PROBE_PATIENCE = timedelta(seconds=90)
CONCURRENCY_RETRY = timedelta(seconds=15)


def balance_cache_key(user_id: int) -> str:
    return f"pixverse-balance:{user_id}"


# --- The member's worker loop ---------------------------------------------------------


def work_for_member(user_id: int) -> None:
    """Work through one member's active jobs until none is left (a django-q2 task)."""
    credential = ApiCredential.objects.filter(user_id=user_id).first()
    if credential is None:
        _fail_all_without_key(user_id)
        return
    if not credential.claim_worker(_lease()):
        return  # another worker has this member's jobs
    budget_ends = time.monotonic() + settings.Q_CLUSTER["timeout"] * 0.75
    client = credential.client()
    last = None
    try:
        while time.monotonic() < budget_ends:
            credential.renew_worker(_lease())
            did = work_step(user_id, client, after=last)
            if did is None:
                break
            if not did:
                _sleep_until_next_due(user_id)
            last = did or last
    finally:
        credential.release_worker()
    # A job created while we were finishing would otherwise wait for the schedule.
    if _active(user_id).exists():
        queue.start_member_worker(user_id)


def dispatch_workers() -> int:
    """Start a worker for every member with active jobs (the schedule's task); how many."""
    WorkerHeartbeat.beat()
    user_ids = set(
        Generation.objects.filter(status__in=Generation.ACTIVE).values_list("owner_id", flat=True)
    )
    busy = set(
        ApiCredential.objects.filter(user_id__in=user_ids, worker_until__gt=timezone.now())
        .values_list("user_id", flat=True)
    )
    for user_id in sorted(user_ids - busy):
        queue.start_member_worker(user_id)
    return len(user_ids - busy)


def _active(user_id: int):
    return Generation.objects.filter(owner_id=user_id, status__in=Generation.ACTIVE)


def _due_reads(user_id: int, now: datetime):
    # The longest-running first: the one most likely to be finished by now.
    return _active(user_id).filter(
        status=Generation.Status.RUNNING, next_attempt_at__lte=now
    ).order_by("submitted_at", "created")


def _due_submissions(user_id: int, now: datetime):
    due_time = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    return _active(user_id).filter(
        (Q(status=Generation.Status.QUEUED) & due_time)
        | Q(status=Generation.Status.SUBMITTING, claimed_until__lt=now)
    ).order_by(Coalesce("next_attempt_at", "created"), "created")


def work_step(user_id: int, client: PixVerseClient, after: str | None = None) -> str | bool | None:
    """Do the next due thing for this member, and say what: "read" or "submit";
    False when nothing is due yet; None when the member has no active job.

    When both a status read and a submission are due, they take turns (after
    is what the previous step did), except that reads go first while several
    are waiting and the oldest has run longer than such videos usually take:
    then videos are most likely ready and unnoticed, and submissions go on at
    the pace the reads keep up with. Before the portal has seen any video of
    that kind finish, reads are guesses and never hold submissions back.
    """
    now = timezone.now()
    active = _active(user_id)
    for expired in active.filter(created__lt=now - settings.PORTAL_GENERATION_TIMEOUT):
        expired.mark_failed(Generation.Reason.TIMED_OUT, status=Generation.Status.TIMED_OUT)
        cache.delete(balance_cache_key(user_id))
    if not active.exists():
        return None
    reads = _reads_worth_making(user_id, now, limit=2)
    read = reads[0] if reads else None
    submission = _due_submissions(user_id, now).first()
    if read and submission:
        usual = learned_duration(read.quality, read.duration)
        backlog = len(reads) > 1 and usual is not None and now - read.submitted_at >= usual
        take_turn = after == "read" and not backlog
        generation, kind = (submission, "submit") if take_turn else (read, "read")
    elif read or submission:
        generation, kind = (read, "read") if read else (submission, "submit")
    else:
        return False
    try:
        with log_context(generation_id=generation.pk, trace_id=str(generation.trace_id)):
            if kind == "read":
                read_status(generation, client)
            else:
                submit(generation, client)
    except Exception:
        # One bad job must not stop the member's others; it is tried again when due.
        logger.exception("generation %s: unexpected error", generation.pk)
        Generation.objects.filter(pk=generation.pk).update(
            next_attempt_at=timezone.now() + READ_INTERVAL
        )
    return kind


def _reads_worth_making(user_id: int, now: datetime, limit: int) -> list[Generation]:
    """The due status reads likely to tell something new, longest-running first.

    Before the portal has seen a video of a kind finish, only the member's
    oldest running job of that kind is read (the probe): younger ones are
    unlikely to be ready before it, and each read takes one of the key's
    requests (one per second) from submissions and from the probe. They are
    read once it is done and the duration learned, or after PROBE_PATIENCE.
    A job put off gets a later next read, so the worker sleeps rather than
    looking again at once.

    (Pushing jobs submitted before anything was learned to the learned time
    too was tried: the learned time includes how late the done read came, so
    the estimate stopped shrinking, and detection got slower -- median 2.4 s
    to 4.5 s in bench/jobs.py's default run.)
    """
    learned: dict[tuple[str, int], timedelta | None] = {}
    probes: dict[tuple[str, int], int | None] = {}

    def not_before(generation: Generation) -> datetime | None:
        kind = (generation.quality, generation.duration)
        if generation.submitted_at is None:
            return None  # nothing to time it by
        if kind not in learned:
            learned[kind] = learned_duration(*kind)
        if learned[kind] is not None:
            return None  # its first read was timed by what was learned, or is overdue
        if kind not in probes:
            probes[kind] = _active(user_id).filter(
                status=Generation.Status.RUNNING, quality=kind[0], duration=kind[1],
            ).order_by("submitted_at", "created").values_list("pk", flat=True).first()
        if generation.pk == probes[kind]:
            return None
        # Looked at again after the probe's next read, when it may be done.
        return min(now + READ_INTERVAL, generation.submitted_at + PROBE_PATIENCE)

    worth = []
    # A list, not a cursor: postponing writes to the rows being looked through.
    for generation in list(_due_reads(user_id, now)[:50]):
        ready_at = not_before(generation)
        if ready_at is not None and ready_at > now:
            generation.postpone_read(ready_at)
            continue
        worth.append(generation)
        if len(worth) == limit:
            break
    return worth


def _sleep_until_next_due(user_id: int) -> None:
    upcoming = (
        _active(user_id).exclude(next_attempt_at__isnull=True)
        .order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()
    )
    wait = 1.0 if upcoming is None else (upcoming - timezone.now()).total_seconds()
    # Wake at least every second: a new job may arrive from the web meanwhile.
    time.sleep(min(max(wait, 0.05), 1.0))


def _fail_all_without_key(user_id: int) -> None:
    for generation in _active(user_id):
        generation.mark_failed(Generation.Reason.NO_KEY)


# --- Submitting ----------------------------------------------------------------------------


def learned_duration(quality: str, duration: int) -> timedelta | None:
    """How long PixVerse takes for such a video, learned from recent ones; None before any.

    A little under the median, so that the first read usually finds the video
    just done and rarely a second read is needed.
    """
    recent = (
        Generation.objects.filter(status=Generation.Status.DONE, quality=quality, duration=duration,
                                  submitted_at__isnull=False)
        .order_by("-finished_at").values_list("submitted_at", "finished_at")[:20]
    )
    seconds = [(finished - submitted).total_seconds() for submitted, finished in recent]
    if not seconds:
        return None
    return timedelta(seconds=max(statistics.median(seconds) * 0.9, 1.0))


def expected_duration(quality: str, duration: int) -> timedelta:
    return learned_duration(quality, duration) or FIRST_READ_FALLBACK


def submit(generation: Generation, client: PixVerseClient) -> bool:
    """Upload the image if needed and start the generation; True if PixVerse took it."""
    if not generation.claim_submission(_lease()):
        return False
    try:
        if generation.kind == Generation.Kind.IMAGE and generation.img_id is None:
            with generation.source_image.open("rb") as f:
                uploaded = client.upload_image(f.read())
            generation.record_image(uploaded.img_id)
        if generation.kind == Generation.Kind.IMAGE:
            submission = client.image_to_video(
                generation.img_id, generation.video_request(), trace_id=str(generation.trace_id)
            )
        else:
            submission = client.text_to_video(
                generation.video_request(), trace_id=str(generation.trace_id)
            )
    except PixVerseError as error:
        _submission_failed(generation, error)
        return False
    first_read = timezone.now() + expected_duration(generation.quality, generation.duration)
    generation.mark_submitted(submission.video_id, first_read)
    cache.delete(balance_cache_key(generation.owner_id))
    logger.info("generation %s submitted: video_id=%s trace_id=%s", generation.pk,
                submission.video_id, generation.trace_id)
    return True


def _submission_failed(generation: Generation, error: PixVerseError) -> None:
    logger.warning("generation %s: submission failed: %s ErrCode=%s trace_id=%s", generation.pk,
                   error.kind, error.err_code, error.trace_id)
    if isinstance(error, ConcurrencyLimit):
        # The plan's limit of videos at once: wait for one of them to finish.
        generation.requeue(timezone.now() + CONCURRENCY_RETRY, Generation.Reason.WAITING)
    elif isinstance(error, InvalidKey):
        generation.mark_failed(Generation.Reason.INVALID_KEY, code=error.err_code)
    elif isinstance(error, NoCredits):
        generation.mark_failed(Generation.Reason.NO_CREDITS, code=error.err_code)
    elif isinstance(error, ModerationFailed):
        generation.mark_failed(Generation.Reason.MODERATED, code=error.err_code,
                               status=Generation.Status.MODERATED)
    elif isinstance(error, InvalidRequest):
        generation.mark_failed(Generation.Reason.REFUSED, detail=error.err_msg, code=error.err_code)
    elif error.retryable and generation.submit_attempts < settings.PORTAL_MAX_SUBMIT_ATTEMPTS:
        # Backoff 5, 10, 20, 40 s… A timeout after sending keeps the trace id,
        # so the resend returns the video PixVerse may already have started.
        delay = timedelta(seconds=5 * 2 ** (generation.submit_attempts - 1))
        generation.requeue(timezone.now() + delay, Generation.Reason.RETRYING)
    elif isinstance(error, TransportError):
        generation.mark_failed(Generation.Reason.UNREACHABLE)
    else:
        generation.mark_failed(Generation.Reason.SERVER_ERROR, detail=error.err_msg,
                               code=error.err_code or error.http_status)
    if not generation.is_active:
        cache.delete(balance_cache_key(generation.owner_id))


# --- Reading status ----------------------------------------------------------------------


def read_status(generation: Generation, client: PixVerseClient) -> None:
    try:
        result = client.video_status(generation.video_id)
    except InvalidKey as error:
        generation.mark_failed(Generation.Reason.INVALID_KEY, code=error.err_code)
        return
    except PixVerseError as error:
        logger.warning("generation %s: status read failed: %s trace_id=%s", generation.pk,
                       error.kind, error.trace_id)
        # Passing trouble: read again later; the overall timeout ends hopeless cases.
        generation.record_status_read(timezone.now() + READ_INTERVAL * 2)
        return
    if result.state is VideoState.DONE:
        if generation.mark_done(result.url):
            cache.delete(balance_cache_key(generation.owner_id))
            queue.store_video(generation.pk)
        return
    failures = {
        VideoState.FAILED: (Generation.Reason.GENERATION_FAILED, Generation.Status.FAILED),
        VideoState.MODERATION_FAILED: (Generation.Reason.MODERATION_BLOCKED,
                                       Generation.Status.MODERATED),
        VideoState.DELETED: (Generation.Reason.DELETED, Generation.Status.FAILED),
    }
    if result.state in failures:
        reason, status = failures[result.state]
        generation.mark_failed(reason, status=status)
        cache.delete(balance_cache_key(generation.owner_id))
        return
    generation.record_status_read(timezone.now() + READ_INTERVAL)


# --- Keeping our own copy -------------------------------------------------------------------


def store_video(generation_id: int) -> bool:
    """Copy a finished video into the portal's storage (PixVerse's links expire)."""
    with log_context(generation_id=generation_id):
        return _store_video(generation_id)


def _store_video(generation_id: int) -> bool:
    generation = Generation.objects.filter(pk=generation_id, status=Generation.Status.DONE).first()
    if generation is None or generation.video_file or not generation.video_url:
        return False
    limit = settings.PORTAL_VIDEO_MAX_BYTES
    # requests' timeout bounds each read, not the whole download: a server
    # that drips bytes is cut off by this deadline.
    deadline = time.monotonic() + settings.PORTAL_VIDEO_DOWNLOAD_TIMEOUT
    # A video can be hundreds of MB: past a few MB it goes to a temporary file, not memory.
    with tempfile.SpooledTemporaryFile(max_size=8 * 2**20) as buffer:
        try:
            with requests.get(generation.video_url, stream=True, timeout=(5, 30)) as response:
                response.raise_for_status()
                size = 0
                for chunk in response.iter_content(chunk_size=256 * 1024):
                    size += len(chunk)
                    if size > limit or time.monotonic() > deadline:
                        logger.warning("generation %s: video over %s bytes or %s s, not stored",
                                       generation_id, limit, settings.PORTAL_VIDEO_DOWNLOAD_TIMEOUT)
                        return False
                    buffer.write(chunk)
        except requests.RequestException as e:
            logger.warning("generation %s: video not stored: %s", generation_id, type(e).__name__)
            return False
        buffer.seek(0)
        name = generation.video_file.storage.save(
            f"videos/{generation.code}/{generation.video_id}.mp4", File(buffer)
        )
    generation.attach_video_file(name)
    return True
