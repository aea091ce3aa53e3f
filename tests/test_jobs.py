"""The generation state machine and the background jobs, against `responses`."""

import io
import json
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

BASE = "https://pixverse.test/openapi/v2"
KEY = "sk-member-key-0042"
S = Generation.Status


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
def handed_out(monkeypatch):
    """What the jobs hand to django-q2 (the queue seam), instead of a broker."""
    calls = []
    monkeypatch.setattr("generations.queue.start_member_worker",
                        lambda user_id: calls.append(("worker", user_id)))
    monkeypatch.setattr("generations.queue.store_video",
                        lambda generation_id: calls.append(("store", generation_id)))
    return calls


def client():
    return ApiCredential.objects.get().client()


def reload(generation):
    generation.refresh_from_db()
    return generation


# --- The state machine -----------------------------------------------------------------------


def test_a_submission_is_claimed_once(queued):
    assert queued.claim_submission(timedelta(seconds=60))
    assert not Generation.objects.get().claim_submission(timedelta(seconds=60))
    assert reload(queued).status == S.SUBMITTING
    assert queued.submit_attempts == 1


def test_a_lapsed_submission_lease_can_be_claimed_again(queued):
    queued.claim_submission(timedelta(seconds=-1))
    assert queued.claim_submission(timedelta(seconds=60))
    assert reload(queued).submit_attempts == 2


def test_a_queued_job_waits_for_its_time(queued):
    queued.claim_submission(timedelta(seconds=60))
    queued.requeue(timezone.now() + timedelta(minutes=1), "later")
    assert not queued.claim_submission(timedelta(seconds=60))


def test_terminal_jobs_do_not_move(queued):
    assert queued.cancel()
    assert not queued.mark_failed(Generation.Reason.GENERATION_FAILED)
    assert not queued.claim_submission(timedelta(seconds=60))
    assert not queued.mark_done("https://x/v.mp4")
    assert reload(queued).status == S.CANCELLED


def test_done_needs_a_running_job(queued):
    assert not queued.mark_done("https://x/v.mp4")
    queued.claim_submission(timedelta(seconds=60))
    queued.mark_submitted(42, timezone.now())
    assert queued.mark_done("https://x/v.mp4")
    assert (queued.status, queued.video_id, queued.poll_count) == (S.DONE, 42, 1)
    assert queued.finished_at is not None


def test_statuses_form_two_closed_groups():
    assert set(Generation.ACTIVE) | set(Generation.TERMINAL) == set(S.values)
    assert not set(Generation.ACTIVE) & set(Generation.TERMINAL)


# --- Submitting ----------------------------------------------------------------------------


def test_it_submits_with_the_trace_id_stored_before_the_call(queued, api, handed_out):
    api.post(f"{BASE}/video/text/generate", json=ok({"video_id": 2**62}))
    assert jobs.submit(queued, client())
    sent = api.calls[0].request
    assert sent.headers["ai-trace-id"] == str(queued.trace_id)
    assert json.loads(sent.body) == {"prompt": "A wolf in the snow", "duration": 5,
                                     "quality": "360p", "model": "v5"}
    queued = reload(queued)
    assert (queued.status, queued.video_id) == (S.RUNNING, 2**62)
    assert queued.next_attempt_at > timezone.now()


def test_an_unknown_outcome_is_resent_with_the_same_trace_id(queued, api, settings):
    api.post(f"{BASE}/video/text/generate", body=requests.ReadTimeout("timed out"))
    jobs.submit(queued, client())
    queued = reload(queued)
    assert queued.status == S.QUEUED
    assert queued.next_attempt_at > timezone.now()
    api.replace("POST", f"{BASE}/video/text/generate", json=ok({"video_id": 7}))
    Generation.objects.filter(pk=queued.pk).update(next_attempt_at=timezone.now())
    assert jobs.submit(reload(queued), client())
    trace_ids = {c.request.headers["ai-trace-id"] for c in api.calls}
    assert trace_ids == {str(queued.trace_id)}
    assert reload(queued).video_id == 7


def test_a_worker_that_died_mid_submission_is_replaced_with_the_same_trace_id(queued, api):
    # The first worker claimed it and vanished; its lease lapses.
    queued.claim_submission(timedelta(seconds=-1))
    api.post(f"{BASE}/video/text/generate", json=ok({"video_id": 9}))
    assert jobs.work_step(queued.owner_id, client()) == "submit"
    assert api.calls[0].request.headers["ai-trace-id"] == str(queued.trace_id)
    assert reload(queued).status == S.RUNNING


def test_the_concurrency_limit_leaves_the_job_queued(queued, api):
    api.post(f"{BASE}/video/text/generate",
             json={"ErrCode": 500044, "ErrMsg": "Reached the limit for concurrent generations."})
    jobs.submit(queued, client())
    queued = reload(queued)
    assert queued.status == S.QUEUED
    assert "limit" in queued.reason_text
    assert queued.next_attempt_at >= timezone.now() + timedelta(seconds=10)


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


def test_transient_errors_back_off_and_give_up_after_the_cap(queued, api, settings):
    settings.PORTAL_MAX_SUBMIT_ATTEMPTS = 3
    api.post(f"{BASE}/video/text/generate", status=502, body="bad gateway")
    delays = []
    for _ in range(3):
        Generation.objects.filter(pk=queued.pk).update(next_attempt_at=None)
        before = timezone.now()
        jobs.submit(reload(queued), client())
        queued = reload(queued)
        if queued.status == S.QUEUED:
            delays.append((queued.next_attempt_at - before).total_seconds())
    assert [round(d) for d in delays] == [5, 10]
    assert queued.status == S.FAILED
    assert "try again later" in queued.reason_text


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
    assert reload(generation).img_id == 555
    api.replace("POST", f"{BASE}/video/img/generate", json=ok({"video_id": 8}))
    Generation.objects.filter(pk=generation.pk).update(next_attempt_at=None)
    jobs.submit(reload(generation), client())
    uploads = [c for c in api.calls if c.request.url.endswith("/image/upload")]
    assert len(uploads) == 1
    assert json.loads(api.calls[-1].request.body)["img_id"] == 555
    assert reload(generation).status == S.RUNNING


def test_a_member_without_a_key_gets_told(db):
    bob = User.objects.create_user("bob")
    generation = Generation.objects.create(owner=bob, kind="text", prompt="p", model="v5",
                                           quality="360p", duration=5, credits=45)
    jobs.work_for_member(bob.pk)
    assert "API key" in reload(generation).reason_text


# --- Reading status ----------------------------------------------------------------------


@pytest.fixture
def running(queued):
    queued.claim_submission(timedelta(seconds=60))
    queued.mark_submitted(77, timezone.now())
    return queued


def test_a_done_video_is_recorded_and_handed_on_for_storing(running, api, handed_out):
    api.get(f"{BASE}/video/status", json=ok({"status": "done", "video_url": "https://cdn/77.mp4"}))
    jobs.read_status(running, client())
    running = reload(running)
    assert (running.status, running.video_url) == (S.DONE, "https://cdn/77.mp4")
    assert handed_out == [("store", running.pk)]


@pytest.mark.parametrize(("raw", "status"), [(7, S.MODERATED), (8, S.FAILED), (6, S.FAILED)])
def test_final_states_end_the_job(running, api, settings, raw, status):
    settings.PIXVERSE_STATUS_ENDPOINT = "result"
    api.get(f"{BASE}/video/result/77", json=ok({"status": raw, "url": ""}))
    jobs.read_status(running, client())
    assert reload(running).status == status
    assert reload(running).reason_text


def test_a_running_video_is_read_again_in_3_to_5_seconds(running, api):
    api.get(f"{BASE}/video/status", json=ok({"status": "generating", "video_url": ""}))
    before = timezone.now()
    jobs.read_status(running, client())
    running = reload(running)
    assert running.status == S.RUNNING
    assert running.poll_count == 1
    assert 3 <= (running.next_attempt_at - before).total_seconds() <= 5.5


def test_a_failed_read_is_tried_again_later_not_failed(running, api):
    api.get(f"{BASE}/video/status", status=500, body="oops")
    jobs.read_status(running, client())
    assert reload(running).status == S.RUNNING


def test_a_job_that_runs_too_long_times_out(running, settings):
    Generation.objects.filter(pk=running.pk).update(
        created=timezone.now() - settings.PORTAL_GENERATION_TIMEOUT - timedelta(seconds=1))
    assert jobs.work_step(running.owner_id, client()) is None
    assert reload(running).status == S.TIMED_OUT


def test_the_longest_running_job_is_read_first(alice, api):
    now = timezone.now()
    for p, vid, s in (("newer", 2, 10), ("older", 1, 30)):
        Generation.objects.create(owner=alice, kind="text", prompt=p, model="v5", quality="360p",
                                  duration=5, credits=45, status=S.RUNNING, video_id=vid,
                                  submitted_at=now - timedelta(seconds=s), next_attempt_at=now)
    api.get(f"{BASE}/video/status", json=ok({"status": "generating", "video_url": ""}))
    jobs.work_step(alice.pk, client())
    assert api.calls[0].request.params == {"video_id": "1"}


def test_reads_and_submissions_take_turns_when_both_are_due(alice, api):
    now = timezone.now()
    Generation.objects.create(owner=alice, kind="text", prompt="running", model="v5", quality="360p",
                              duration=5, credits=45, status=S.RUNNING, video_id=1,
                              next_attempt_at=now - timedelta(seconds=1))
    for prompt in ("queued 1", "queued 2"):
        Generation.objects.create(owner=alice, kind="text", prompt=prompt, model="v5", quality="360p",
                                  duration=5, credits=45)
    api.get(f"{BASE}/video/status", json=ok({"status": "generating", "video_url": ""}))
    api.post(f"{BASE}/video/text/generate", json=ok({"video_id": 2}))
    assert jobs.work_step(alice.pk, client()) == "read"
    Generation.objects.filter(video_id=1).update(next_attempt_at=now)
    assert jobs.work_step(alice.pk, client(), after="read") == "submit"
    assert jobs.work_step(alice.pk, client(), after="submit") == "read"


def test_reads_of_videos_likely_ready_go_first_while_several_are_waiting(alice, api):
    now = timezone.now()
    Generation.objects.create(owner=alice, kind="text", prompt="done before", model="v5",
                              quality="360p", duration=5, credits=45, status=S.DONE,
                              submitted_at=now - timedelta(seconds=60),
                              finished_at=now - timedelta(seconds=50))
    for video_id in (1, 2):
        Generation.objects.create(owner=alice, kind="text", prompt="running", model="v5",
                                  quality="360p", duration=5, credits=45, status=S.RUNNING,
                                  video_id=video_id, submitted_at=now - timedelta(seconds=20),
                                  next_attempt_at=now - timedelta(seconds=1))
    Generation.objects.create(owner=alice, kind="text", prompt="queued", model="v5", quality="360p",
                              duration=5, credits=45)
    api.get(f"{BASE}/video/status", json=ok({"status": "generating", "video_url": ""}))
    assert jobs.work_step(alice.pk, client(), after="read") == "read"
    # Without any finished video to learn from, they take turns.
    Generation.objects.filter(prompt="done before").delete()
    Generation.objects.filter(status=S.RUNNING).update(next_attempt_at=now)
    assert jobs.work_step(alice.pk, client(), after="read") == "submit"


def _running(owner, video_id, submitted_ago, quality="360p"):
    now = timezone.now()
    return Generation.objects.create(
        owner=owner, kind="text", prompt=f"running {video_id}", model="v5", quality=quality,
        duration=5, credits=45, status=S.RUNNING, video_id=video_id,
        submitted_at=now - timedelta(seconds=submitted_ago), next_attempt_at=now)


def test_before_anything_is_learned_only_the_oldest_job_of_a_kind_is_read(alice, api):
    oldest, younger = _running(alice, 1, 12), _running(alice, 2, 11)
    other_kind = _running(alice, 3, 10, quality="720p")
    api.get(f"{BASE}/video/status", json=ok({"status": "generating", "video_url": ""}))
    assert jobs.work_step(alice.pk, client()) == "read"
    assert jobs.work_step(alice.pk, client(), after="read") == "read"
    assert jobs.work_step(alice.pk, client(), after="read") is False
    assert [c.request.params["video_id"] for c in api.calls] == ["1", "3"]
    # The younger one is looked at again about one read interval later, not at once.
    wait = (reload(younger).next_attempt_at - timezone.now()).total_seconds()
    assert 3 < wait <= 4
    assert reload(younger).poll_count == 0
    assert reload(oldest).poll_count == reload(other_kind).poll_count == 1


def test_a_young_job_waits_for_the_probe_no_longer_than_its_patience(alice, api):
    _running(alice, 1, 200)
    _running(alice, 2, jobs.PROBE_PATIENCE.total_seconds() + 1)
    api.get(f"{BASE}/video/status", json=ok({"status": "generating", "video_url": ""}))
    jobs.work_step(alice.pk, client())
    jobs.work_step(alice.pk, client(), after="read")
    assert [c.request.params["video_id"] for c in api.calls] == ["1", "2"]


def test_once_a_video_of_the_kind_has_finished_every_due_job_is_read(alice, api):
    now = timezone.now()
    Generation.objects.create(owner=alice, kind="text", prompt="done", model="v5", quality="360p",
                              duration=5, credits=45, status=S.DONE,
                              submitted_at=now - timedelta(seconds=60),
                              finished_at=now - timedelta(seconds=30))
    _running(alice, 1, 12)
    _running(alice, 2, 11)
    api.get(f"{BASE}/video/status", json=ok({"status": "generating", "video_url": ""}))
    jobs.work_step(alice.pk, client())
    jobs.work_step(alice.pk, client(), after="read")
    assert [c.request.params["video_id"] for c in api.calls] == ["1", "2"]


def test_the_first_read_is_timed_by_recent_videos(alice):
    now = timezone.now()
    for seconds in (20, 30, 40):
        Generation.objects.create(owner=alice, kind="text", prompt="p", model="v5", quality="720p",
                                  duration=5, credits=60, status=S.DONE,
                                  submitted_at=now - timedelta(seconds=seconds), finished_at=now)
    assert jobs.expected_duration("720p", 5) == timedelta(seconds=27)
    assert jobs.expected_duration("1080p", 5) == jobs.FIRST_READ_FALLBACK


# --- The member's worker ---------------------------------------------------------------------


def test_one_worker_per_member(alice):
    credential = ApiCredential.objects.get()
    assert credential.claim_worker(timedelta(seconds=60))
    assert not credential.claim_worker(timedelta(seconds=60))
    credential.release_worker()
    assert credential.claim_worker(timedelta(seconds=60))


def test_a_second_worker_for_a_busy_member_does_nothing(queued, api):
    ApiCredential.objects.get().claim_worker(timedelta(seconds=60))
    jobs.work_for_member(queued.owner_id)
    assert len(api.calls) == 0


def test_the_worker_takes_a_job_from_queue_to_done(queued, api, handed_out, settings):
    api.post(f"{BASE}/video/text/generate", json=ok({"video_id": 5}))
    api.get(f"{BASE}/video/status", json=ok({"status": "done", "video_url": "https://cdn/5.mp4"}))
    jobs.FIRST_READ_FALLBACK, saved = timedelta(0), jobs.FIRST_READ_FALLBACK
    try:
        jobs.work_for_member(queued.owner_id)
    finally:
        jobs.FIRST_READ_FALLBACK = saved
    assert reload(queued).status == S.DONE
    assert [c.request.method for c in api.calls] == ["POST", "GET"]
    assert ApiCredential.objects.get().worker_until is None


def test_the_dispatcher_restarts_workers_for_members_with_active_jobs(queued, handed_out):
    # After a restart: an active job, no worker holding the member's lease.
    assert jobs.dispatch_workers() == 1
    assert handed_out == [("worker", queued.owner_id)]
    ApiCredential.objects.get().claim_worker(timedelta(seconds=60))
    handed_out.clear()
    assert jobs.dispatch_workers() == 0


def test_task_arguments_are_ids_only(queued, monkeypatch):
    sent = []
    monkeypatch.setattr("generations.queue.async_task", lambda *a, **k: sent.append((a, k)))
    jobs.dispatch_workers()
    (args, kwargs), = sent
    assert args == ("generations.jobs.work_for_member", queued.owner_id)
    assert KEY not in repr((args, kwargs))


# --- Storing the video ------------------------------------------------------------------------


@pytest.fixture
def done(running):
    running.mark_done("https://cdn.test/77.mp4")
    return running


def test_the_video_is_copied_into_our_storage(done, api):
    api.get("https://cdn.test/77.mp4", body=b"\x00\x00\x00\x18ftypmp42" + b"x" * 1000)
    assert jobs.store_video(done.pk)
    done = reload(done)
    assert done.video_file.name.endswith("/77.mp4")
    assert done.video_file.read()[4:8] == b"ftyp"
    assert not jobs.store_video(done.pk)  # safe to run twice


def test_a_video_over_the_size_limit_is_not_stored(done, api, settings):
    settings.PORTAL_VIDEO_MAX_BYTES = 100
    api.get("https://cdn.test/77.mp4", body=b"x" * 1000)
    assert not jobs.store_video(done.pk)
    assert not reload(done).video_file


def test_a_failed_download_leaves_the_pixverse_link(done, api):
    api.get("https://cdn.test/77.mp4", status=404)
    assert not jobs.store_video(done.pk)
    assert reload(done).video_url == "https://cdn.test/77.mp4"


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
