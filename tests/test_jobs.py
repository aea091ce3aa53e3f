"""The generation state machine and the background jobs, against `responses`.

Steps are called directly (submit, read_status, store_video, work_out_step);
the scheduler loop itself runs in-process with its threads in the tests at
the end, and as real processes in test_worker_restart.py and test_scale_out.py.
"""

import io
import json
import time
import uuid
from datetime import timedelta

import pytest
import requests
import responses
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from generations import jobs
from generations.models import ApiCredential, Generation
from generations.ratelimit import key_fingerprint

BASE = "https://pixverse.test/openapi/v2"
KEY = "sk-member-key-0042"
KEY_HASH = key_fingerprint(KEY)
S = Generation.Status
R = Generation.Reason
TOKEN = uuid.uuid4()
LEASE = timedelta(seconds=60)


def ok(resp):
    return {"ErrCode": 0, "ErrMsg": "success", "Resp": resp}


@pytest.fixture
def alice(db):
    user = User.objects.create_user("alice")
    credential = ApiCredential(user=user)
    credential.set_key(KEY)
    credential.save()
    return user


@pytest.fixture
def queued(alice):
    return Generation.objects.create(owner=alice, kind="text", prompt="A wolf in the snow",
                                     model="v5", quality="360p", duration=5, credits=45)


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def kicked(monkeypatch):
    """Scheduler loops the code asks django-q2 for (the queue seam), instead of a broker."""
    calls = []
    monkeypatch.setattr("generations.queue.kick_scheduler", lambda **kw: calls.append(kw))
    return calls


def client():
    return ApiCredential.objects.filter(key_hash=KEY_HASH).first().client()


def reload(generation):
    generation.refresh_from_db()
    return generation


def due_now(generation):
    Generation.objects.filter(pk=generation.pk).update(next_attempt_at=timezone.now())
    return reload(generation)


def next_step(after=None):
    """Do the next step the scheduler would choose for alice's key; which kind it was."""
    chosen = jobs.work_out_step(KEY_HASH, timezone.now(), after=after)
    if chosen is None:
        return None
    generation, kind = chosen
    (jobs.read_status if kind == "read" else jobs.submit)(generation, client())
    return kind


def text_job(owner, prompt="A wolf", **fields):
    values = {"kind": "text", "model": "v5", "quality": "360p", "duration": 5, "credits": 45} | fields
    return Generation.objects.create(owner=owner, prompt=prompt, **values)


GENERATING = ok({"status": "generating", "video_url": ""})


# --- The state machine -----------------------------------------------------------------------


def test_a_new_job_is_due_at_once_on_its_owners_key(queued):
    assert queued.key_hash == KEY_HASH
    assert queued.next_attempt_at == queued.created


def test_a_step_is_claimed_once(queued):
    assert queued.claim_step(TOKEN, LEASE)
    assert not Generation.objects.get().claim_step(uuid.uuid4(), LEASE)
    assert reload(queued).status == S.SUBMITTING
    assert reload(queued).claimed_by == TOKEN


def test_a_lapsed_claim_can_be_taken_over_and_the_old_holder_changes_nothing(queued):
    queued.claim_step(TOKEN, timedelta(seconds=-1))
    newer = uuid.uuid4()
    assert Generation.objects.get().claim_step(newer, LEASE)
    # The killed worker's submission may have reached PixVerse.
    assert reload(queued).maybe_submitted
    assert not queued.mark_submitted(1, timezone.now(), token=TOKEN)
    assert queued.mark_submitted(1, timezone.now(), token=newer)


def test_claims_in_flight_are_renewed_only_by_their_holder(queued):
    queued.claim_step(TOKEN, timedelta(seconds=1))
    assert Generation.renew_claims([queued.pk], uuid.uuid4(), LEASE) == 0
    assert Generation.renew_claims([queued.pk], TOKEN, LEASE) == 1
    assert reload(queued).claimed_until > timezone.now() + timedelta(seconds=50)


def test_a_queued_job_waits_for_its_time(queued):
    queued.claim_step(TOKEN, LEASE)
    queued.requeue(timezone.now() + timedelta(minutes=1), R.WAITING, token=TOKEN)
    assert reload(queued).status == S.QUEUED
    assert not queued.claim_step(TOKEN, LEASE)


def test_terminal_jobs_do_not_move(queued):
    assert queued.cancel()
    assert not queued.mark_failed(Generation.Reason.GENERATION_FAILED)
    assert not queued.claim_step(TOKEN, LEASE)
    assert not queued.mark_done("https://x/v.mp4")
    assert reload(queued).status == S.CANCELLED
    assert reload(queued).next_attempt_at is None


def test_done_needs_a_running_job_and_makes_the_copy_due(queued):
    assert not queued.mark_done("https://x/v.mp4")
    queued.claim_step(TOKEN, LEASE)
    queued.mark_submitted(42, timezone.now(), token=TOKEN)
    assert queued.mark_done("https://x/v.mp4")
    assert (queued.status, queued.video_id, queued.poll_count) == (S.DONE, 42, 1)
    assert queued.finished_at is not None
    assert queued.copy_pending


def test_statuses_form_two_closed_groups():
    assert set(Generation.ACTIVE) | set(Generation.TERMINAL) == set(S.values)
    assert not set(Generation.ACTIVE) & set(Generation.TERMINAL)


# --- Submitting ----------------------------------------------------------------------------


def test_it_submits_with_the_trace_id_stored_before_the_call(queued, api):
    api.post(f"{BASE}/video/text/generate", json=ok({"video_id": 2**62}))
    assert jobs.submit(queued, client())
    sent = api.calls[0].request
    assert sent.headers["ai-trace-id"] == str(queued.trace_id)
    assert json.loads(sent.body) == {"prompt": "A wolf in the snow", "duration": 5,
                                     "quality": "360p", "model": "v5"}
    queued = reload(queued)
    assert (queued.status, queued.video_id) == (S.RUNNING, 2**62)
    assert queued.next_attempt_at > timezone.now()
    assert queued.claimed_by is None


def test_an_unknown_outcome_is_resent_with_the_same_trace_id(queued, api):
    api.post(f"{BASE}/video/text/generate", body=requests.ReadTimeout("timed out"))
    jobs.submit(queued, client())
    queued = reload(queued)
    assert (queued.status, queued.maybe_submitted) == (S.SUBMITTING, True)
    assert queued.next_attempt_at > timezone.now()
    api.replace("POST", f"{BASE}/video/text/generate", json=ok({"video_id": 7}))
    assert jobs.submit(due_now(queued), client())
    trace_ids = {c.request.headers["ai-trace-id"] for c in api.calls}
    assert trace_ids == {str(queued.trace_id)}
    assert reload(queued).video_id == 7


def test_an_outage_never_fails_a_job_that_pixverse_may_have(queued, api, settings):
    """PixVerse took the call but its answers are lost: resent (same trace id) until the timeout."""
    settings.PORTAL_MAX_SUBMIT_ATTEMPTS = 3
    api.post(f"{BASE}/video/text/generate", body=requests.ConnectionError("Connection aborted."))
    delays = []
    for _ in range(8):
        before = timezone.now()
        jobs.submit(due_now(queued), client())
        queued = reload(queued)
        delays.append(round((queued.next_attempt_at - before).total_seconds()))
    assert queued.status == S.SUBMITTING
    assert queued.error_reason == R.RETRYING
    assert delays == [5, 10, 20, 40, 60, 60, 60, 60]  # capped backoff
    assert {c.request.headers["ai-trace-id"] for c in api.calls} == {str(queued.trace_id)}
    # At the generation timeout it says PixVerse may have made it...
    Generation.objects.filter(pk=queued.pk).update(
        created=timezone.now() - settings.PORTAL_GENERATION_TIMEOUT - timedelta(seconds=1))
    jobs.housekeeping()
    queued = reload(queued)
    assert (queued.status, queued.error_reason) == (S.TIMED_OUT, R.MAYBE_MADE)
    assert "may have made" in queued.reason_text
    # ...and "Try again" asks for that video with the same trace id: never billed twice.
    again = queued.retry()
    assert again.trace_id == queued.trace_id
    api.replace("POST", f"{BASE}/video/text/generate", json=ok({"video_id": 70}))
    assert jobs.submit(again, client())
    assert api.calls[-1].request.headers["ai-trace-id"] == str(queued.trace_id)


def test_try_again_after_a_plain_failure_is_a_new_submission(queued, api):
    api.post(f"{BASE}/video/text/generate", json={"ErrCode": 400017, "ErrMsg": "bad"})
    jobs.submit(queued, client())
    assert reload(queued).retry().trace_id != queued.trace_id


def test_a_call_that_never_left_is_retried_but_pixverse_cannot_have_it(queued, api):
    api.post(f"{BASE}/video/text/generate",
             body=requests.ConnectionError("NewConnectionError: Connection refused"))
    jobs.submit(queued, client())
    queued = reload(queued)
    assert (queued.status, queued.maybe_submitted, queued.misses) == (S.QUEUED, False, 1)


def test_a_worker_that_died_mid_submission_is_replaced_with_the_same_trace_id(queued, api):
    # The first worker claimed it and vanished; its lease lapses.
    queued.claim_step(TOKEN, timedelta(seconds=-1))
    api.post(f"{BASE}/video/text/generate", json=ok({"video_id": 9}))
    assert next_step() == "submit"
    assert api.calls[0].request.headers["ai-trace-id"] == str(queued.trace_id)
    assert reload(queued).status == S.RUNNING


def test_the_concurrency_limit_leaves_the_job_waiting_without_counting_a_try(queued, api, settings):
    settings.PORTAL_MAX_SUBMIT_ATTEMPTS = 2
    api.post(f"{BASE}/video/text/generate",
             json={"ErrCode": 500044, "ErrMsg": "Reached the limit for concurrent generations."})
    for _ in range(6):
        jobs.submit(due_now(queued), client())
    queued = reload(queued)
    assert (queued.status, queued.submit_attempts) == (S.QUEUED, 0)
    assert "limit" in queued.reason_text
    # No blind call every 15 s: the next try waits for a video of the key to finish.
    assert queued.next_attempt_at >= timezone.now() + timedelta(seconds=25)
    # One passing error after all that waiting does not fail it.
    api.replace("POST", f"{BASE}/video/text/generate",
                json={"ErrCode": 500069, "ErrMsg": "The system is under high load"})
    jobs.submit(due_now(queued), client())
    assert reload(queued).status == S.QUEUED


def test_a_finished_video_wakes_the_jobs_waiting_for_the_limit(alice, api):
    waiting = text_job(alice, "waiting")
    waiting.claim_step(TOKEN, LEASE)
    waiting.requeue(timezone.now() + timedelta(minutes=1), R.WAITING, token=TOKEN)
    running = text_job(alice, "running", status=S.RUNNING, video_id=5, submitted_at=timezone.now())
    api.get(f"{BASE}/video/status", json=ok({"status": "done", "video_url": "https://cdn/5.mp4"}))
    jobs.read_status(due_now(running), client())
    assert reload(waiting).next_attempt_at <= timezone.now()


@pytest.mark.parametrize(("answer", "status", "words"), [
    ({"ErrCode": 401, "ErrMsg": "Invalid API Key"}, S.FAILED, "did not accept your API key"),
    ({"ErrCode": 500090, "ErrMsg": "Insufficient balance"}, S.FAILED, "no credits"),
    ({"ErrCode": 403, "ErrMsg": "No credits available"}, S.FAILED, "no credits"),
    ({"ErrCode": 500054, "ErrMsg": "moderation"}, S.MODERATED, "moderation"),
    ({"ErrCode": 400017, "ErrMsg": "bad duration"}, S.FAILED, "bad duration"),
])
def test_final_errors_fail_the_job_in_plain_words(queued, api, answer, status, words):
    api.post(f"{BASE}/video/text/generate", json=answer)
    jobs.submit(queued, client())
    queued = reload(queued)
    assert queued.status == status
    assert words in queued.reason_text
    assert queued.error_code == answer["ErrCode"]


def test_answered_server_errors_back_off_and_give_up_after_the_cap(queued, api, settings):
    settings.PORTAL_MAX_SUBMIT_ATTEMPTS = 3
    api.post(f"{BASE}/video/text/generate",
             json={"ErrCode": 500069, "ErrMsg": "The system is under high load"})
    delays = []
    for _ in range(3):
        before = timezone.now()
        jobs.submit(due_now(queued), client())
        queued = reload(queued)
        if queued.status == S.QUEUED:
            delays.append((queued.next_attempt_at - before).total_seconds())
    assert [round(d) for d in delays] == [5, 10]
    assert queued.status == S.FAILED
    assert "try again later" in queued.reason_text


def test_a_429_from_pixverse_is_a_short_wait_not_a_try(queued, api):
    api.post(f"{BASE}/video/text/generate", status=429, headers={"Retry-After": "3"},
             json={"ErrCode": 429, "ErrMsg": "Too Many Requests"})
    before = timezone.now()
    jobs.submit(queued, client())
    queued = reload(queued)
    assert (queued.status, queued.submit_attempts) == (S.QUEUED, 0)
    assert 2.5 <= (queued.next_attempt_at - before).total_seconds() <= 4


def test_an_image_job_uploads_once_then_generates(alice, api):
    image = io.BytesIO()
    Image.new("RGB", (64, 64), "green").save(image, "PNG")
    generation = Generation(owner=alice, kind="image", prompt="A magical forest", model="v5",
                            quality="540p", duration=5, credits=45)
    generation.source_image.save("forest.png", ContentFile(image.getvalue()), save=False)
    generation.save()
    api.post(f"{BASE}/image/upload", json=ok({"img_id": 555}))
    api.post(f"{BASE}/video/img/generate", status=503)
    jobs.submit(generation, client())
    generation = reload(generation)
    assert (generation.img_id, generation.status) == (555, S.SUBMITTING)
    assert generation.next_attempt_at <= timezone.now()  # the generate call is due at once
    jobs.submit(generation, client())
    api.replace("POST", f"{BASE}/video/img/generate", json=ok({"video_id": 8}))
    jobs.submit(due_now(generation), client())
    uploads = [c for c in api.calls if c.request.url.endswith("/image/upload")]
    assert len(uploads) == 1
    assert json.loads(api.calls[-1].request.body)["img_id"] == 555
    assert reload(generation).status == S.RUNNING


def test_a_failed_upload_bills_nothing_so_nothing_may_exist(alice, api):
    image = io.BytesIO()
    Image.new("RGB", (64, 64), "green").save(image, "PNG")
    generation = Generation(owner=alice, kind="image", prompt="p", model="v5", quality="540p",
                            duration=5, credits=45)
    generation.source_image.save("f.png", ContentFile(image.getvalue()), save=False)
    generation.save()
    api.post(f"{BASE}/image/upload", body=requests.ReadTimeout("timed out"))
    jobs.submit(generation, client())
    assert not reload(generation).maybe_submitted


def test_a_member_without_a_key_gets_told(db):
    bob = User.objects.create_user("bob")
    generation = text_job(bob)
    jobs.housekeeping()
    assert "API key" in reload(generation).reason_text


def test_a_queued_job_whose_key_was_replaced_goes_on_the_new_key(alice, queued):
    credential = ApiCredential.objects.get()
    credential.set_key("sk-a-newer-key-0043")
    credential.save()
    jobs.housekeeping()
    assert reload(queued).key_hash == key_fingerprint("sk-a-newer-key-0043")
    assert reload(queued).status == S.QUEUED


# --- The order of a key's submissions ---------------------------------------------------------


def test_a_job_that_waits_keeps_its_place(alice, api):
    older, younger = text_job(alice, "older"), text_job(alice, "younger")
    api.post(f"{BASE}/video/text/generate",
             json={"ErrCode": 500044, "ErrMsg": "Reached the limit for concurrent generations."})
    assert next_step() == "submit"
    assert reload(older).error_reason == R.WAITING
    # The younger one is due, but does not jump the line.
    assert next_step() is None
    assert [json.loads(c.request.body)["prompt"] for c in api.calls] == ["older"]
    assert reload(younger).status == S.QUEUED


def test_a_job_backing_off_lets_the_next_go_and_goes_first_when_due(alice, api):
    older, _younger, youngest = text_job(alice, "older"), text_job(alice, "younger"), text_job(alice, "3")
    api.post(f"{BASE}/video/text/generate",
             json={"ErrCode": 500069, "ErrMsg": "The system is under high load"})
    assert next_step() == "submit"
    assert reload(older).error_reason == R.RETRYING
    api.replace("POST", f"{BASE}/video/text/generate", json=ok({"video_id": 3}))
    assert next_step(after="read") == "submit"  # the younger one, meanwhile
    due_now(older)
    assert next_step(after="read") == "submit"  # the older one again, before the youngest
    sent = [json.loads(c.request.body)["prompt"] for c in api.calls]
    assert sent == ["older", "younger", "older"]
    assert reload(youngest).status == S.QUEUED


def test_a_job_in_flight_does_not_hold_up_the_next_one(alice, api):
    older, younger = text_job(alice, "older"), text_job(alice, "younger")
    older.claim_step(TOKEN, LEASE)  # its generate call hangs somewhere
    chosen, kind = jobs.work_out_step(KEY_HASH, timezone.now())
    assert (chosen, kind) == (younger, "submit")


def test_members_sharing_a_key_take_turns(alice, api):
    bob = User.objects.create_user("bob")
    shared = ApiCredential(user=bob)
    shared.set_key(KEY)
    shared.save()
    for n in range(3):
        text_job(alice, f"alice {n}")
    text_job(bob, "bob 0")
    api.post(f"{BASE}/video/text/generate", json=ok({"video_id": 1}))
    for _ in range(4):
        next_step(after="read")
    sent = [json.loads(c.request.body)["prompt"] for c in api.calls]
    assert sent == ["alice 0", "bob 0", "alice 1", "alice 2"]


def test_a_keys_known_plan_limit_holds_submissions_until_a_video_ends(alice, api):
    ApiCredential.objects.filter(key_hash=KEY_HASH).update(concurrency=2)
    running = [text_job(alice, f"running {n}", status=S.RUNNING, video_id=n + 1) for n in range(2)]
    queued = text_job(alice, "next")
    assert jobs._next_submission(KEY_HASH, timezone.now()) is None  # two at once already
    Generation.objects.filter(pk=running[0].pk).update(status=S.DONE)
    assert jobs._next_submission(KEY_HASH, timezone.now()) == queued
    ApiCredential.objects.filter(key_hash=KEY_HASH).update(concurrency=None)  # unknown: PixVerse says
    Generation.objects.filter(pk=running[0].pk).update(status=S.RUNNING)
    assert jobs._next_submission(KEY_HASH, timezone.now()) == queued


# --- Reading status ----------------------------------------------------------------------


@pytest.fixture
def running(queued):
    queued.claim_step(TOKEN, LEASE)
    queued.mark_submitted(77, timezone.now(), token=TOKEN)
    return due_now(queued)


def test_a_done_video_is_recorded_and_its_copy_is_due(running, api):
    api.get(f"{BASE}/video/status", json=ok({"status": "done", "video_url": "https://cdn/77.mp4"}))
    jobs.read_status(running, client())
    running = reload(running)
    assert (running.status, running.video_url) == (S.DONE, "https://cdn/77.mp4")
    assert running.copy_pending and running.next_attempt_at <= timezone.now()
    # The balance moved: it is read again when a member looks, not now.
    assert ApiCredential.objects.get().balance_outdated


@pytest.mark.parametrize(("raw", "status"), [(7, S.MODERATED), (8, S.FAILED), (6, S.FAILED)])
def test_final_states_end_the_job(running, api, settings, raw, status):
    settings.PIXVERSE_STATUS_ENDPOINT = "result"
    api.get(f"{BASE}/video/result/77", json=ok({"status": raw, "url": ""}))
    jobs.read_status(running, client())
    assert reload(running).status == status
    assert reload(running).reason_text


def test_a_running_video_is_read_again_in_3_to_5_seconds(running, api):
    api.get(f"{BASE}/video/status", json=GENERATING)
    before = timezone.now()
    jobs.read_status(running, client())
    running = reload(running)
    assert running.status == S.RUNNING
    assert running.poll_count == 1
    assert running.last_read_at >= before
    assert 3 <= (running.next_attempt_at - before).total_seconds() <= 5.5


def test_a_failed_read_is_tried_again_later_not_failed(running, api):
    api.get(f"{BASE}/video/status", status=500, body="oops")
    jobs.read_status(running, client())
    assert reload(running).status == S.RUNNING


def test_status_reads_have_a_short_timeout_of_their_own(running, api, settings):
    settings.PIXVERSE_READ_TIMEOUT, settings.PIXVERSE_STATUS_READ_TIMEOUT = 30.0, 4.0
    seen = []

    def answer(request):
        seen.append(request.req_kwargs["timeout"])
        return 200, {}, json.dumps(GENERATING)

    api.add_callback("GET", f"{BASE}/video/status", callback=answer)
    jobs.read_status(running, client())
    assert seen == [(settings.PIXVERSE_CONNECT_TIMEOUT, 4.0)]


def test_status_completes_on_a_server_whose_spec_route_answers_404_in_the_envelope(running, api):
    api.get(f"{BASE}/video/status", status=404, json={"ErrCode": 404, "ErrMsg": "Not Found"})
    api.get(f"{BASE}/video/result/77", json=ok({"status": 1, "url": "https://cdn/77.mp4"}))
    jobs.read_status(running, client())
    assert reload(running).status == S.DONE


def test_a_video_pixverse_does_not_know_fails_after_a_few_reads(running, api):
    api.get(f"{BASE}/video/status", status=400,
            json={"ErrCode": 500047, "ErrMsg": "The provided media is invalid"})
    for _ in range(jobs.NOT_FOUND_READS - 1):
        jobs.read_status(due_now(running), client())
        assert reload(running).status == S.RUNNING
    jobs.read_status(due_now(running), client())
    assert reload(running).error_reason == R.NOT_FOUND


def test_a_job_that_runs_too_long_times_out(running, settings):
    Generation.objects.filter(pk=running.pk).update(
        created=timezone.now() - settings.PORTAL_GENERATION_TIMEOUT - timedelta(seconds=1))
    jobs.housekeeping()
    assert reload(running).status == S.TIMED_OUT
    assert reload(running).error_reason == R.TIMED_OUT


def test_the_longest_running_job_is_read_first(alice, api):
    now = timezone.now()
    for p, vid, s in (("newer", 2, 10), ("older", 1, 30)):
        text_job(alice, p, status=S.RUNNING, video_id=vid, submitted_at=now - timedelta(seconds=s),
                 next_attempt_at=now)
    api.get(f"{BASE}/video/status", json=GENERATING)
    next_step()
    assert api.calls[0].request.params == {"video_id": "1"}


def test_reads_and_submissions_take_turns_when_both_are_due(alice, api):
    now = timezone.now()
    text_job(alice, "running", status=S.RUNNING, video_id=1, next_attempt_at=now - timedelta(seconds=1))
    text_job(alice, "queued 1")
    text_job(alice, "queued 2")
    api.get(f"{BASE}/video/status", json=GENERATING)
    api.post(f"{BASE}/video/text/generate", json=ok({"video_id": 2}))
    assert next_step() == "read"
    Generation.objects.filter(video_id=1).update(next_attempt_at=now)
    assert next_step(after="read") == "submit"
    assert next_step(after="submit") == "read"


def test_reads_of_videos_likely_ready_go_first_while_several_are_waiting(alice, api):
    now = timezone.now()
    text_job(alice, "done before", status=S.DONE, submitted_at=now - timedelta(seconds=60),
             finished_at=now - timedelta(seconds=50))
    for video_id in (1, 2):
        text_job(alice, "running", status=S.RUNNING, video_id=video_id,
                 submitted_at=now - timedelta(seconds=20), next_attempt_at=now - timedelta(seconds=1))
    text_job(alice, "queued")
    api.get(f"{BASE}/video/status", json=GENERATING)
    assert next_step(after="read") == "read"
    # Without any finished video to learn from, they take turns.
    Generation.objects.filter(prompt="done before").delete()
    Generation.objects.filter(status=S.RUNNING).update(next_attempt_at=now)
    assert next_step(after="read") == "submit"


def _running(owner, video_id, submitted_ago, quality="360p"):
    now = timezone.now()
    return text_job(owner, f"running {video_id}", quality=quality, status=S.RUNNING,
                    video_id=video_id, submitted_at=now - timedelta(seconds=submitted_ago),
                    next_attempt_at=now)


def test_before_anything_is_learned_only_the_oldest_jobs_of_a_kind_are_read(alice, api):
    assert jobs.PROBES == 2
    oldest, second, younger = _running(alice, 1, 12), _running(alice, 2, 11), _running(alice, 4, 10.5)
    other_kind = _running(alice, 3, 10, quality="720p")
    api.get(f"{BASE}/video/status", json=GENERATING)
    assert next_step() == "read"
    assert next_step(after="read") == "read"
    assert next_step(after="read") == "read"
    assert next_step(after="read") is None
    assert [c.request.params["video_id"] for c in api.calls] == ["1", "2", "3"]
    # The younger one is looked at again about one read interval later, not at once.
    wait = (reload(younger).next_attempt_at - timezone.now()).total_seconds()
    assert 3 < wait <= 4
    assert reload(younger).poll_count == 0
    assert reload(oldest).poll_count == reload(second).poll_count == reload(other_kind).poll_count == 1


def test_probes_sent_at_the_same_moment_are_read_apart(alice, api):
    first, second = _running(alice, 1, 5), _running(alice, 2, 5)
    api.get(f"{BASE}/video/status", json=GENERATING)
    jobs.read_status(first, client())
    jobs.read_status(second, client())
    gap = (reload(second).next_attempt_at - reload(first).next_attempt_at).total_seconds()
    assert 1.9 <= gap <= 2.1  # READ_INTERVAL / PROBES


def test_the_probes_reads_are_spread_over_one_read_interval(alice, api):
    api.post(f"{BASE}/video/text/generate", json=ok({"video_id": 9}))
    first, second, third = text_job(alice, "1"), text_job(alice, "2"), text_job(alice, "3")
    for job in (first, second, third):
        before = timezone.now()
        jobs.submit(job, client())
        job.delay = (reload(job).next_attempt_at - before).total_seconds()
    assert round(first.delay) == 5 and round(second.delay) == 7  # staggered by 4 s / 2 probes
    assert round(third.delay) == 5  # not a probe: put off until a probe is done


def test_the_probes_are_the_teams_oldest_jobs_whatever_their_keys(alice, api):
    bob = User.objects.create_user("bob")
    other = ApiCredential(user=bob)
    other.set_key("sk-bobs-own-key-0077")
    other.save()
    _running(bob, 1, 12)
    _running(bob, 5, 11.5)
    _running(alice, 2, 11)
    assert jobs.work_out_step(KEY_HASH, timezone.now()) is None


def test_when_the_probe_is_done_the_others_are_read_when_theirs_should_be_ready(alice, api):
    probe, _other_probe = _running(alice, 1, 40), _running(alice, 4, 39.5)
    younger, youngest = _running(alice, 2, 39), _running(alice, 3, 2)
    Generation.objects.filter(pk=probe.pk).update(last_read_at=timezone.now() - timedelta(seconds=4))
    # The younger ones were put off while the probes ran.
    Generation.objects.filter(pk__in=[younger.pk, youngest.pk]).update(
        next_attempt_at=timezone.now() + timedelta(seconds=4))
    api.get(f"{BASE}/video/status", json=ok({"status": "done", "video_url": "https://cdn/1.mp4"}))
    jobs.read_status(reload(probe), client())
    # Ready about 38 s after it was sent: the younger one is due now, the youngest in ~36 s.
    assert reload(younger).next_attempt_at <= timezone.now()
    wait = (reload(youngest).next_attempt_at - timezone.now()).total_seconds()
    assert 34 < wait < 38


def test_a_young_job_waits_for_the_probe_no_longer_than_its_patience(alice, api):
    _running(alice, 1, 200)
    _running(alice, 2, jobs.PROBE_PATIENCE.total_seconds() + 1)
    api.get(f"{BASE}/video/status", json=GENERATING)
    next_step()
    next_step(after="read")
    assert [c.request.params["video_id"] for c in api.calls] == ["1", "2"]


def test_once_a_video_of_the_kind_has_finished_every_due_job_is_read(alice, api):
    now = timezone.now()
    text_job(alice, "done", status=S.DONE, submitted_at=now - timedelta(seconds=60),
             finished_at=now - timedelta(seconds=30))
    _running(alice, 1, 12)
    _running(alice, 2, 11)
    api.get(f"{BASE}/video/status", json=GENERATING)
    next_step()
    next_step(after="read")
    assert [c.request.params["video_id"] for c in api.calls] == ["1", "2"]


def test_the_first_read_is_timed_by_when_recent_videos_were_really_ready(alice):
    now = timezone.now()
    # Found done at their first read: ready some time before it.
    for seconds in (20, 30, 40):
        text_job(alice, "p", quality="720p", status=S.DONE,
                 submitted_at=now - timedelta(seconds=seconds), finished_at=now)
    assert jobs.learned_duration("720p", 5) == timedelta(seconds=28)
    # A read that found it still running brackets it: the middle counts.
    Generation.objects.filter(quality="720p").update(last_read_at=now - timedelta(seconds=4))
    assert jobs.learned_duration("720p", 5) == timedelta(seconds=28)
    assert jobs.learned_duration("1080p", 5) is None


def test_a_new_loop_hands_out_a_keys_first_step_when_its_request_slot_is_free(queued, settings):
    """Not ahead of it: every later step would then be chosen that long before its request."""
    from generations.models import RateLimitSlot

    settings.PIXVERSE_MIN_INTERVAL = 1.0
    settings.PIXVERSE_RATE_LIMIT_BACKEND = "database"
    # The previous loop's last request took the key's slot until 0.8 s from now.
    RateLimitSlot.objects.create(key_hash=KEY_HASH, next_at=time.time() + 0.8)
    scheduler = jobs.Scheduler()
    handed_out = []
    scheduler.pool.submit = lambda *args: handed_out.append(args)
    try:
        scheduler.tick()
        assert handed_out == [] and reload(queued).claimed_by is None
        assert 0.6 < scheduler.free_at[KEY_HASH] - time.monotonic() <= 0.8
    finally:
        scheduler.pool.shutdown()


# --- The balance, read in the background --------------------------------------------------------


def test_a_wanted_balance_is_read_once_for_every_member_with_the_key(alice, api):
    bob = User.objects.create_user("bob")
    shared = ApiCredential(user=bob)
    shared.set_key(KEY)
    shared.save()
    api.get(f"{BASE}/account/balance", json=ok({"account_id": 1, "credit_monthly": 10,
                                                 "credit_package": 5}))
    ApiCredential.want_balance(KEY_HASH)
    assert ApiCredential.claim_balance_read(KEY_HASH)
    assert not ApiCredential.claim_balance_read(KEY_HASH)
    jobs.read_balance(KEY_HASH)
    assert len(api.calls) == 1
    assert {c.balance.total for c in ApiCredential.objects.all()} == {15}


# --- Storing the video ------------------------------------------------------------------------


@pytest.fixture
def done(running):
    running.claim_step(TOKEN, LEASE)
    Generation.objects.filter(pk=running.pk).update(claimed_by=None, claimed_until=None)
    running.mark_done("https://cdn.test/77.mp4")
    return running


def test_the_video_is_copied_into_our_storage(done, api):
    api.get("https://cdn.test/77.mp4", body=b"\x00\x00\x00\x18ftypmp42" + b"x" * 1000)
    assert jobs.store_video(done.pk)
    done = reload(done)
    assert done.video_file.name.endswith("/77.mp4")
    assert done.video_file.read()[4:8] == b"ftyp"
    assert done.next_attempt_at is None
    assert not jobs.store_video(done.pk)  # safe to run twice


def test_a_video_over_the_size_limit_is_refused_for_good_with_the_reason(done, api, settings):
    settings.PORTAL_VIDEO_MAX_BYTES = 100
    api.get("https://cdn.test/77.mp4", body=b"x" * 1000)
    assert not jobs.store_video(done.pk)
    done = reload(done)
    assert not done.video_file and done.next_attempt_at is None
    assert "larger than the portal may store" in done.reason_text


@pytest.mark.parametrize("failure", [{"status": 503}, {"body": requests.ReadTimeout("slow")}])
def test_a_failed_copy_is_tried_again_with_backoff_until_stored(done, api, failure):
    api.get("https://cdn.test/77.mp4", **failure)
    assert not jobs.store_video(done.pk)
    done = reload(done)
    assert done.video_url == "https://cdn.test/77.mp4"
    assert done.copy_pending and done.next_attempt_at > timezone.now()
    api.replace("GET", "https://cdn.test/77.mp4", body=b"video")
    assert jobs.store_video(due_now(done).pk)
    assert reload(done).video_file


def test_the_repair_pass_finds_finished_jobs_without_a_copy(done):
    # A worker killed between "done" and the copy, in an older version that did not retry.
    Generation.objects.filter(pk=done.pk).update(next_attempt_at=None)
    jobs.housekeeping(repair=True)
    assert reload(done).copy_pending


def test_trace_ids_are_uuids_chosen_at_creation(queued):
    assert isinstance(queued.trace_id, uuid.UUID)
    assert Generation.objects.get().trace_id == queued.trace_id


def test_the_reason_is_put_into_words_in_the_readers_language(queued, api):
    from django.utils import translation

    api.post(f"{BASE}/video/text/generate", json={"ErrCode": 400017, "ErrMsg": "bad duration"})
    jobs.submit(queued, client())
    queued = reload(queued)
    assert queued.error_reason == Generation.Reason.REFUSED
    assert queued.reason_text == "PixVerse refused the request: bad duration"
    with translation.override("ru"):
        assert "bad duration" in queued.reason_text
        assert "PixVerse refused" not in queued.reason_text


@pytest.mark.parametrize("language", ["en", "ru"])
def test_the_cards_labels_are_the_choices_labels_in_the_readers_language(language):
    from django.utils import translation

    with translation.override(language):
        for status in S:
            generation = Generation(kind="image", status=status)
            assert str(generation.status_label) == str(generation.get_status_display())
            assert str(generation.kind_label) == str(generation.get_kind_display())
        if language == "ru":
            assert str(Generation(status=S.RUNNING).status_label) != "Running"
    assert Generation(status="unheard-of").status_label == "unheard-of"
