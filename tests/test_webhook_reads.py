"""Status reads with webhooks on: a job is read when its webhook comes, and polling
is the safety net for one that never does (generations/jobs.py, Generation.read_soon).

Steps are called directly, PixVerse answered by `responses`; the webhook goes
through the real view.
"""

import json
import secrets
import time
from datetime import timedelta
from urllib.parse import quote

import pytest
import responses
from django.contrib.auth.models import User
from django.utils import timezone

from generations import jobs, webhooks
from generations.models import ApiCredential, Generation
from generations.ratelimit import key_fingerprint

BASE = "https://pixverse.test/openapi/v2"
KEY = "sk-member-key-0042"
KEY_HASH = key_fingerprint(KEY)
SECRET = "whsec-portal-test-0042"
S = Generation.Status


def ok(resp):
    return {"ErrCode": 0, "ErrMsg": "success", "Resp": resp}


GENERATING = ok({"status": "generating", "video_url": ""})
DONE = ok({"status": "done", "video_url": "https://cdn/77.mp4"})


@pytest.fixture
def alice(db):
    user = User.objects.create_user("alice")
    credential = ApiCredential(user=user)
    credential.set_key(KEY)
    credential.save()
    return user


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def webhooks_on(settings):
    settings.PIXVERSE_WEBHOOK_SECRET = SECRET
    settings.PIXVERSE_WEBHOOK_POLL_INTERVAL = 20.0


@pytest.fixture(autouse=True)
def kicked(monkeypatch):
    calls = []
    monkeypatch.setattr("generations.queue.kick_scheduler", lambda **kw: calls.append(kw))
    return calls


def key_client():
    return ApiCredential.objects.get(key_hash=KEY_HASH).client()


def reload(generation):
    generation.refresh_from_db()
    return generation


def due_now(generation):
    """As if its next read's time had come."""
    Generation.objects.filter(pk=generation.pk).update(next_attempt_at=timezone.now())
    return reload(generation)


def seconds_until(moment) -> float:
    return (moment - timezone.now()).total_seconds()


def submitted(owner, api, video_id=77, **fields) -> Generation:
    """A text job sent to PixVerse through jobs.submit, as the scheduler sends it."""
    api.post(f"{BASE}/video/text/generate", json=ok({"video_id": video_id}))
    values = {"kind": "text", "model": "v5", "quality": "360p", "duration": 5, "credits": 45} | fields
    job = Generation.objects.create(owner=owner, prompt=f"A wolf {video_id}", **values)
    jobs.submit(job, key_client())
    job = reload(job)
    assert job.status == S.RUNNING and job.video_id == video_id
    return job


def next_step(after=None):
    chosen = jobs.work_out_step(KEY_HASH, timezone.now(), after=after)
    if chosen is None:
        return None
    generation, step = chosen
    (jobs.read_status if step == "read" else jobs.submit)(generation, key_client())
    return step


def deliver_webhook(client, video_id: int):
    """PixVerse's webhook for the video, signed as the sandbox signs it."""
    body = json.dumps({"id": str(video_id), "status": 1, "url": "https://cdn/77.mp4", "credits": 45})
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
    return client.post("/webhooks/pixverse/", body, content_type="application/json", headers={
        "Webhook-Timestamp": timestamp, "Webhook-Nonce": nonce,
        "Webhook-Signature": webhooks.signature(SECRET, timestamp, nonce, quote(body, safe=""))})


@pytest.mark.parametrize(("learned", "without", "with_webhooks"), [
    (False, 5, 20),  # the first probe's read / one safety-net interval
    (True, 30, 50),  # when such videos are ready / that x 1.5 + 5 s
])
def test_with_webhooks_on_a_new_jobs_first_read_comes_later(alice, api, settings, learned,
                                                             without, with_webhooks):
    if learned:
        # A video of this kind was ready 30 s after it was sent.
        now = timezone.now()
        Generation.objects.create(owner=alice, kind="text", prompt="earlier", model="v5",
                                  quality="360p", duration=5, credits=45, status=S.DONE,
                                  submitted_at=now - timedelta(seconds=60),
                                  last_read_at=now - timedelta(seconds=30),
                                  finished_at=now - timedelta(seconds=30))
    polled = submitted(alice, api, 1)
    settings.PIXVERSE_WEBHOOK_SECRET = SECRET
    settings.PIXVERSE_WEBHOOK_POLL_INTERVAL = 20.0
    hooked = submitted(alice, api, 2)
    assert without - 1 < seconds_until(polled.next_attempt_at) <= without
    assert with_webhooks - 1 < seconds_until(hooked.next_attempt_at) <= with_webhooks


def test_a_webhook_makes_the_read_due_now_and_that_read_finishes_the_job(alice, api, webhooks_on,
                                                                          client):
    job = submitted(alice, api)
    assert seconds_until(job.next_attempt_at) > 15  # only the safety net's read is planned
    assert jobs.work_out_step(KEY_HASH, timezone.now()) is None
    assert deliver_webhook(client, 77).content == b"ok"
    api.get(f"{BASE}/video/status", json=DONE)
    assert next_step() == "read"
    job = reload(job)
    assert job.status == S.DONE
    assert job.poll_count == 1  # the webhook's read, and no other
    assert job.read_asked_at is not None


@pytest.mark.parametrize("interval", [20.0, 30.0])
def test_without_a_webhook_the_safety_net_reads_the_job_and_finishes_it(alice, api, webhooks_on,
                                                                         settings, interval):
    settings.PIXVERSE_WEBHOOK_POLL_INTERVAL = interval
    job = submitted(alice, api)
    assert interval - 1 < seconds_until(job.next_attempt_at) <= interval
    api.get(f"{BASE}/video/status", json=GENERATING)
    api.get(f"{BASE}/video/status", json=DONE)
    jobs.read_status(due_now(job), key_client())
    job = reload(job)
    assert job.status == S.RUNNING
    # Read again one interval later (not READ_INTERVAL, as without webhooks)...
    assert interval - 1 < seconds_until(job.next_attempt_at) <= interval
    # ...and that read finishes it.
    jobs.read_status(due_now(job), key_client())
    job = reload(job)
    assert job.status == S.DONE and job.poll_count == 2


def test_a_job_whose_webhook_came_but_still_runs_is_read_again_soon(alice, api, webhooks_on):
    job = submitted(alice, api)
    assert job.read_soon()
    api.get(f"{BASE}/video/status", json=GENERATING)
    jobs.read_status(reload(job), key_client())
    job = reload(job)
    # PixVerse said it ended: its status is read at PixVerse's pace, not the safety net's.
    assert 3 < seconds_until(job.next_attempt_at) <= jobs.READ_INTERVAL.total_seconds()


@pytest.mark.parametrize("hooks", [True, False], ids=["webhooks on", "webhooks off"])
def test_a_webhook_that_comes_while_the_read_is_in_flight_leaves_the_job_due_now(alice, api, settings,
                                                                                   hooks):
    if hooks:
        settings.PIXVERSE_WEBHOOK_SECRET = SECRET
    job = due_now(submitted(alice, api))

    def webhook_then_answer(request):
        # The webhook view's change, made while this read waits for PixVerse's answer.
        assert Generation.objects.get(pk=job.pk).read_soon()
        return 200, {}, json.dumps(GENERATING)

    api.add_callback("GET", f"{BASE}/video/status", callback=webhook_then_answer)
    jobs.read_status(job, key_client())
    job = reload(job)
    assert (job.status, job.poll_count, job.claimed_by) == (S.RUNNING, 1, None)
    assert job.next_attempt_at <= timezone.now()
    assert jobs.work_out_step(KEY_HASH, timezone.now()) == (job, "read")


def test_a_webhooks_read_is_not_put_off_when_another_video_of_the_kind_finishes(alice, api,
                                                                                 webhooks_on):
    first, second = submitted(alice, api, 1), submitted(alice, api, 2)
    assert second.read_soon()
    api.get(f"{BASE}/video/status", json=DONE)
    # The first is done: the kind's duration is learned, and its unread jobs are timed by it.
    jobs.read_status(due_now(first), key_client())
    assert reload(first).status == S.DONE
    assert reload(second).next_attempt_at <= timezone.now()


def test_with_webhooks_on_due_reads_are_not_held_back_for_probes(alice, api, webhooks_on):
    now = timezone.now()
    for video_id in (1, 2, 3):
        Generation.objects.create(owner=alice, kind="text", prompt=f"running {video_id}", model="v5",
                                  quality="360p", duration=5, credits=45, status=S.RUNNING,
                                  video_id=video_id, submitted_at=now - timedelta(seconds=30),
                                  next_attempt_at=now)
    api.get(f"{BASE}/video/status", json=GENERATING)
    assert [next_step(), next_step(after="read"), next_step(after="read")] == ["read"] * 3
    assert next_step(after="read") is None


def test_a_read_a_webhook_asked_for_goes_before_a_submission_even_after_a_read(alice, api, webhooks_on):
    job = submitted(alice, api)
    Generation.objects.create(owner=alice, kind="text", prompt="next in line", model="v5",
                              quality="360p", duration=5, credits=45)
    # Without a webhook, a due read and a due submission take turns...
    due_now(job)
    assert jobs.work_out_step(KEY_HASH, timezone.now(), after="read")[1] == "submit"
    # ...a read a webhook asked for does not wait for its turn: the video is ready.
    assert job.read_soon()
    assert jobs.work_out_step(KEY_HASH, timezone.now(), after="read") == (reload(job), "read")
