"""The sandbox's webhooks (generations/sandbox/webhooks.py): sent when a video ends, signed
so that the portal's own verifier (generations/webhooks.py) takes them, sent again when
not answered "ok"; and the local run's demo account set up to send them.
"""

import io
import json
import time
from datetime import timedelta

import pytest
import requests
import responses
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from generations import webhooks
from generations.models import ApiCredential, Generation
from generations.sandbox import webhooks as sandbox_webhooks
from generations.sandbox.models import SandboxAccount, SandboxVideo

HOOK = "https://portal.test/webhooks/pixverse/"
SECRET = "whsec-sandbox-test-0042"
FILE_URL = "http://testserver/sandbox/files/videos/1.mp4"


@pytest.fixture
def account(db):
    account, key = SandboxAccount.issue("hooks", credits=1000, webhook_url=HOOK, webhook_secret=SECRET)
    account.raw_key = key
    return account


@pytest.fixture
def later(monkeypatch):
    """The timers the sandbox starts, instead of threads: (delay, video pk, file URL, attempt)."""
    calls = []
    monkeypatch.setattr(sandbox_webhooks, "_later", lambda *args: calls.append(args))
    return calls


def ended_video(account, outcome=SandboxVideo.Outcome.SUCCESS) -> SandboxVideo:
    now = timezone.now()
    return SandboxVideo.objects.create(account=account, trace_id="trace-0042", kind="text",
                                       params={"quality": "360p"}, credits=45, outcome=outcome,
                                       created=now - timedelta(seconds=7),
                                       ready_at=now - timedelta(seconds=1))


def generate(account) -> requests.Response:
    return Client().post("/sandbox/openapi/v2/video/text/generate", {
        "prompt": "A wolf", "model": "v5", "duration": 5, "quality": "360p"},
        content_type="application/json", headers={"API-KEY": account.raw_key, "Ai-Trace-Id": "t-1"})


def test_a_new_video_has_its_webhook_sent_when_it_is_ready(account, later, settings):
    settings.SANDBOX_GENERATION_SECONDS = 6
    response = generate(account)
    video = SandboxVideo.objects.get()
    assert response.json()["Resp"]["video_id"] == video.video_id
    [(delay, pk, file_url, attempt)] = later
    assert 5 < delay <= 6
    assert (pk, attempt) == (video.pk, 0)
    assert file_url == f"http://testserver/sandbox/files/videos/{video.video_id}.mp4"


def test_an_account_without_a_webhook_url_sends_none(account, later):
    SandboxAccount.objects.filter(pk=account.pk).update(webhook_url="")
    generate(account)
    assert SandboxVideo.objects.exists()
    assert later == []


def test_a_resent_trace_id_starts_no_second_webhook(account, later):
    generate(account)
    generate(account)
    assert len(later) == 1


@responses.activate
def test_the_webhook_is_signed_so_that_the_portals_verifier_takes_it(account, later):
    responses.post(HOOK, body="ok")
    video = ended_video(account)
    assert sandbox_webhooks.send(video.pk, FILE_URL)
    [call] = responses.calls
    sent = call.request
    body = json.loads(sent.body)
    assert body == {"id": str(video.video_id), "status": 1, "url": FILE_URL,
                    "size": body["size"], "has_audio": False, "credits": 45}
    assert body["size"] > 0
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Ai-Trace-Id"] == "trace-0042"
    assert len(sent.headers["Webhook-Nonce"]) == 32
    headers = webhooks.check_headers(sent.headers["Webhook-Timestamp"], sent.headers["Webhook-Nonce"],
                                     sent.headers["Webhook-Signature"], now=time.time())
    assert webhooks.signature_matches(SECRET, headers, sent.body)
    assert not webhooks.signature_matches("another secret", headers, sent.body)
    assert later == []


@responses.activate
@pytest.mark.parametrize("outcome, status", [(SandboxVideo.Outcome.FAILED, 8),
                                             (SandboxVideo.Outcome.MODERATED, 7)])
def test_a_video_that_failed_says_so_without_a_link(account, later, outcome, status):
    responses.post(HOOK, body="ok")
    video = ended_video(account, outcome)
    assert sandbox_webhooks.send(video.pk, FILE_URL)
    body = json.loads(responses.calls[0].request.body)
    assert (body["status"], body["url"], body["size"]) == (status, "", 0)


@responses.activate
def test_a_video_not_ended_or_deleted_sends_nothing(account, later):
    video = ended_video(account)
    SandboxVideo.objects.filter(pk=video.pk).update(ready_at=timezone.now() + timedelta(minutes=1))
    assert not sandbox_webhooks.send(video.pk, FILE_URL)
    SandboxVideo.objects.filter(pk=video.pk).update(ready_at=timezone.now(), deleted=True)
    assert not sandbox_webhooks.send(video.pk, FILE_URL)
    assert len(responses.calls) == 0


@responses.activate
@pytest.mark.parametrize("answer", [{"status": 500, "body": "ok"}, {"status": 200, "body": "nope"},
                                    {"body": requests.ConnectionError("refused")}])
def test_a_webhook_not_answered_ok_is_sent_again_later(account, later, answer):
    responses.post(HOOK, **answer)
    video = ended_video(account)
    assert not sandbox_webhooks.send(video.pk, FILE_URL)
    assert later == [(2, video.pk, FILE_URL, 1)]
    assert not sandbox_webhooks.send(video.pk, FILE_URL, attempt=1)
    assert later[-1] == (10, video.pk, FILE_URL, 2)


@responses.activate
def test_when_the_webhook_was_answered_ok_is_kept_with_the_video(account, later):
    responses.post(HOOK, status=503)
    responses.post(HOOK, body="ok")
    video = ended_video(account)
    assert not sandbox_webhooks.send(video.pk, FILE_URL)
    video.refresh_from_db()
    assert video.webhook_delivered_at is None
    before = timezone.now()
    assert sandbox_webhooks.send(video.pk, FILE_URL, attempt=1)
    video.refresh_from_db()
    assert before <= video.webhook_delivered_at <= timezone.now()


@responses.activate
def test_the_sandbox_gives_up_after_its_last_retry(account, later):
    responses.post(HOOK, status=503)
    video = ended_video(account)
    assert not sandbox_webhooks.send(video.pk, FILE_URL, attempt=len(sandbox_webhooks.RETRY_DELAYS))
    assert later == []


@responses.activate
def test_the_portal_takes_the_sandboxs_webhook_and_reads_the_status_now(account, later, settings):
    """The whole way in-process: the sandbox's POST is handed to the portal's view."""
    settings.PIXVERSE_WEBHOOK_SECRET = SECRET
    portal = Client()

    def to_portal(request):
        answer = portal.post("/webhooks/pixverse/", request.body, content_type="application/json",
                             headers={name: request.headers[name] for name in (
                                 "Webhook-Timestamp", "Webhook-Nonce", "Webhook-Signature")})
        return answer.status_code, {}, answer.content

    responses.add_callback(responses.POST, HOOK, callback=to_portal)
    video = ended_video(account)
    member = User.objects.create_user("alice")
    credential = ApiCredential(user=member)
    credential.set_key(account.raw_key)
    credential.save()
    job = Generation.objects.create(owner=member, kind="text", prompt="A wolf", model="v5",
                                    quality="360p", duration=5, credits=45)
    later_on = timezone.now() + timedelta(minutes=5)
    Generation.objects.filter(pk=job.pk).update(status=Generation.Status.RUNNING,
                                                video_id=video.video_id, next_attempt_at=later_on)
    assert sandbox_webhooks.send(video.pk, FILE_URL)
    job.refresh_from_db()
    assert job.next_attempt_at <= timezone.now()
    assert job.status == Generation.Status.RUNNING


@pytest.mark.django_db(transaction=True)
@responses.activate
def test_the_timer_sends_the_webhook_from_its_own_thread(account):
    responses.post(HOOK, body="ok")
    video = ended_video(account)
    sandbox_webhooks._later(0.05, video.pk, FILE_URL, 0)
    deadline = time.monotonic() + 10
    while not responses.calls and time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads(responses.calls[0].request.body)["id"] == str(video.video_id)


def test_staff_set_the_webhook_in_the_admin(account):
    staff = User.objects.create_superuser("staff")
    client = Client()
    client.force_login(staff)
    page = client.get(f"/admin/sandbox/sandboxaccount/{account.pk}/change/").content.decode()
    assert 'name="webhook_url"' in page
    assert 'name="webhook_secret"' in page


# --- The local run ----------------------------------------------------------------------------


def test_the_demo_account_sends_webhooks_to_the_local_portal_when_a_secret_is_set(db, settings,
                                                                                  tmp_path):
    settings.DATA_DIR = tmp_path
    settings.PIXVERSE_WEBHOOK_SECRET = SECRET
    call_command("setup_demo", url="http://127.0.0.1:8123/", stdout=io.StringIO())
    demo = SandboxAccount.objects.get(label="demo")
    assert (demo.webhook_url, demo.webhook_secret) == ("http://127.0.0.1:8123/webhooks/pixverse/", SECRET)

    settings.PIXVERSE_WEBHOOK_SECRET = ""
    call_command("setup_demo", url="http://127.0.0.1:8123/", stdout=io.StringIO())
    demo.refresh_from_db()
    assert (demo.webhook_url, demo.webhook_secret) == ("", "")


@pytest.fixture
def portal_server(transactional_db, settings):
    """A server of the whole site started with this test's settings (the session's live_server
    loaded its middleware before the tests turned the HTTPS redirect off)."""
    from pytest_django.live_server_helper import LiveServer

    settings.PIXVERSE_WEBHOOK_SECRET = SECRET
    server = LiveServer("localhost")
    yield server
    server.stop()


def test_a_video_made_on_the_live_sandbox_has_its_webhook_taken_by_the_live_portal(
        portal_server, monkeypatch):
    """One server process, as runserver: the sandbox's timer posts to the portal it runs in."""
    live_server = portal_server
    monkeypatch.setattr("generations.queue.kick_scheduler", lambda **kw: None)
    _account, key = SandboxAccount.issue("live", credits=1000, generation_seconds=1.5,
                                        webhook_url=f"{live_server.url}/webhooks/pixverse/",
                                        webhook_secret=SECRET)
    member = User.objects.create_user("alice")
    credential = ApiCredential(user=member)
    credential.set_key(key)
    credential.save()
    answer = requests.post(f"{live_server.url}/sandbox/openapi/v2/video/text/generate", timeout=10,
                           json={"prompt": "A wolf", "model": "v5", "duration": 5, "quality": "360p"},
                           headers={"API-KEY": key, "Ai-Trace-Id": "live-1"})
    video_id = answer.json()["Resp"]["video_id"]
    job = Generation.objects.create(owner=member, kind="text", prompt="A wolf", model="v5",
                                    quality="360p", duration=5, credits=45)
    far = timezone.now() + timedelta(minutes=5)
    Generation.objects.filter(pk=job.pk).update(status=Generation.Status.RUNNING, video_id=video_id,
                                                next_attempt_at=far)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.next_attempt_at < far:
            break
        time.sleep(0.1)
    assert job.next_attempt_at <= timezone.now()
    assert job.status == Generation.Status.RUNNING
