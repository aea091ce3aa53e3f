"""PixVerse's webhooks at /webhooks/pixverse/: the checks (generations/webhooks.py) and the view.

A webhook that passes only makes its job's status read due now; the read decides.
"""

import base64
import hashlib
import hmac
import io
import json
import time
from datetime import timedelta
from urllib.parse import quote, urlencode

import pytest
import responses
from django.contrib.auth.models import User
from django.test import RequestFactory
from django.utils import timezone

from generations import jobs, webhooks
from generations.models import ApiCredential, Generation
from generations.ratelimit import key_fingerprint
from generations.views import pixverse_webhook

SECRET = "whsec-portal-test-0042"
KEY = "sk-member-key-0042"
VIDEO_ID = 2354019100783543969
URL = "/webhooks/pixverse/"
NONCE = "n" * 32
S = Generation.Status


def sign(body: str, *, timestamp: str, nonce: str = NONCE, secret: str = SECRET,
         payload: str | None = None) -> str:
    message = f"{timestamp}\n{nonce}\n{quote(body, safe='') if payload is None else payload}"
    return base64.b64encode(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()).decode()


def pixverse_body(**fields) -> str:
    return json.dumps({"id": str(VIDEO_ID), "status": 1, "url": "https://media.pixverse.test/v.mp4",
                       "size": 10.5, "has_audio": True, "credits": 45} | fields)


@pytest.fixture
def secret_set(settings):
    settings.PIXVERSE_WEBHOOK_SECRET = SECRET


@pytest.fixture
def kicked(monkeypatch):
    calls = []
    monkeypatch.setattr("generations.queue.kick_scheduler", lambda **kw: calls.append(kw))
    return calls


@pytest.fixture
def running(db):
    """A job PixVerse is generating, its next status read far off."""
    user = User.objects.create_user("alice")
    credential = ApiCredential(user=user)
    credential.set_key(KEY)
    credential.save()
    job = Generation.objects.create(owner=user, kind="text", prompt="A wolf", model="v5",
                                    quality="360p", duration=5, credits=45)
    Generation.objects.filter(pk=job.pk).update(
        status=S.RUNNING, video_id=VIDEO_ID, submitted_at=timezone.now(),
        next_attempt_at=timezone.now() + timedelta(minutes=5))
    job.refresh_from_db()
    return job


def post(client, body: str, *, timestamp: str | None = None, nonce: str = NONCE,
         signature: str | None = None, drop: str = ""):
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    headers = {"Webhook-Timestamp": timestamp, "Webhook-Nonce": nonce,
               "Webhook-Signature": sign(body, timestamp=timestamp, nonce=nonce)
               if signature is None else signature,
               "Ai-Trace-Id": "2d4e6f80-0000-4000-8000-000000000001"}
    headers.pop(drop, None)
    return client.post(URL, body, content_type="application/json", headers=headers)


# --- The checks -------------------------------------------------------------------------------


def test_the_signature_is_base64_of_hmac_sha256_over_timestamp_nonce_and_payload():
    expected = base64.b64encode(hmac.new(b"s", b"1700000000\nabc\npayload", hashlib.sha256).digest())
    assert webhooks.signature("s", "1700000000", "abc", "payload") == expected.decode()


BODY = pixverse_body()
READINGS = {
    "raw body quoted, safe /": quote(BODY),
    "raw body quoted, nothing safe": quote(BODY, safe=""),
    "raw body": BODY,
    "pairs in body order, JSON values": urlencode([
        ("id", str(VIDEO_ID)), ("status", "1"), ("url", "https://media.pixverse.test/v.mp4"),
        ("size", "10.5"), ("has_audio", "true"), ("credits", "45")]),
    "pairs in body order, Python values": urlencode(list(json.loads(BODY).items())),
}


@pytest.mark.parametrize("payload", READINGS.values(), ids=READINGS.keys())
def test_each_reading_of_the_url_encoded_payload_is_accepted(payload):
    headers = webhooks.Headers("1700000000", NONCE, sign(BODY, timestamp="1700000000", payload=payload))
    assert webhooks.signature_matches(SECRET, headers, BODY.encode())


def test_a_body_that_is_not_utf8_is_refused_not_an_error():
    headers = webhooks.Headers("1700000000", NONCE, sign(BODY, timestamp="1700000000"))
    assert not webhooks.signature_matches(SECRET, headers, b'{"id": "\xff\xfe"}')


def test_a_signature_of_another_body_or_secret_is_refused():
    good = sign(BODY, timestamp="1700000000")
    assert webhooks.signature_matches(SECRET, webhooks.Headers("1700000000", NONCE, good), BODY.encode())
    other_body = pixverse_body(status=8).encode()
    assert not webhooks.signature_matches(SECRET, webhooks.Headers("1700000000", NONCE, good), other_body)
    assert not webhooks.signature_matches("another secret", webhooks.Headers("1700000000", NONCE, good),
                                          BODY.encode())
    assert not webhooks.signature_matches(SECRET, webhooks.Headers("1700000001", NONCE, good), BODY.encode())


@pytest.mark.parametrize("timestamp, nonce, signature, reason", [
    ("", NONCE, "sig", "missing"),
    ("1700000000", "", "sig", "missing"),
    ("1700000000", NONCE, "", "missing"),
    ("1700000000.5", NONCE, "sig", "unix seconds"),
    ("-1700000000", NONCE, "sig", "unix seconds"),
    ("1699999699", NONCE, "sig", "window"),
    ("1700000301", NONCE, "sig", "window"),
    ("1700000000", "n" * 65, "sig", "too long"),
    ("9" * 5000, NONCE, "sig", "unix seconds"),  # int() of it would raise
])
def test_bad_headers_are_refused_with_400(timestamp, nonce, signature, reason):
    with pytest.raises(webhooks.Refused, match=reason) as refused:
        webhooks.check_headers(timestamp, nonce, signature, now=1_700_000_000)
    assert refused.value.status == 400


def test_headers_within_the_window_pass():
    for timestamp in ("1699999700", "1700000300"):
        assert webhooks.check_headers(timestamp, "x", "sig", now=1_700_000_000).timestamp == timestamp


@pytest.mark.parametrize("body, video_id", [
    ('{"id": "2354019100783543969"}', VIDEO_ID),
    ('{"id": 2354019100783543969}', VIDEO_ID),
])
def test_the_video_id_may_be_a_string_or_a_number(body, video_id):
    assert webhooks.video_id_of(body.encode()) == video_id


@pytest.mark.parametrize("body", ['{"id": true}', '{"id": "12a"}', '{"id": null}', "[1]", "not json",
                                  '{"id": "99999999999999999999"}', '{"id": "%s"}' % ("9" * 5000),
                                  "[" * 30000 + "]" * 30000])
def test_a_body_without_a_video_id_is_refused(body):
    with pytest.raises(webhooks.Refused):
        webhooks.video_id_of(body.encode())


# --- The view ---------------------------------------------------------------------------------


def test_a_signed_webhook_has_the_jobs_status_read_now_and_does_not_finish_it(
        client, secret_set, running, kicked, django_capture_on_commit_callbacks):
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, pixverse_body(status=1))
    assert response.status_code == 200
    assert response.content == b"ok"
    assert response["Content-Type"].startswith("text/plain")
    running.refresh_from_db()
    assert before <= running.next_attempt_at <= timezone.now()
    assert kicked == [{}]
    # "Success" in the body finishes nothing: the job is still running, with no link...
    assert running.status == S.RUNNING
    assert running.video_url == ""
    # ...and its status read is the key's next step.
    assert jobs.work_out_step(key_fingerprint(KEY), timezone.now()) == (running, "read")


@pytest.mark.parametrize("payload", ["quoted", "quoted-all", "pairs", "raw"])
def test_the_view_accepts_each_reading(client, secret_set, running, kicked, payload):
    body, timestamp = pixverse_body(), str(int(time.time()))
    payload_text = {"quoted": quote(body), "quoted-all": quote(body, safe=""), "raw": body,
                    "pairs": urlencode([(k, v if isinstance(v, str) else json.dumps(v))
                                        for k, v in json.loads(body).items()])}[payload]
    response = post(client, body, timestamp=timestamp,
                    signature=sign(body, timestamp=timestamp, payload=payload_text))
    assert response.status_code == 200
    running.refresh_from_db()
    assert running.next_attempt_at <= timezone.now()


def test_a_numeric_id_is_taken_too(client, secret_set, running, kicked):
    assert post(client, pixverse_body(id=VIDEO_ID)).status_code == 200
    running.refresh_from_db()
    assert running.next_attempt_at <= timezone.now()


def test_a_bad_signature_is_refused_with_403_and_changes_nothing(client, secret_set, running, kicked,
                                                                  caplog):
    due = running.next_attempt_at
    response = post(client, pixverse_body(), signature=base64.b64encode(b"x" * 32).decode())
    assert response.status_code == 403
    running.refresh_from_db()
    assert running.next_attempt_at == due
    assert kicked == []
    assert SECRET not in caplog.text


def test_a_body_changed_after_signing_is_refused(client, secret_set, running):
    timestamp = str(int(time.time()))
    signature = sign(pixverse_body(), timestamp=timestamp)
    assert post(client, pixverse_body(status=8), timestamp=timestamp,
                signature=signature).status_code == 403


@pytest.mark.parametrize("skew", [-301, 301, -86400])
def test_an_old_or_future_timestamp_is_refused(client, secret_set, running, skew, monkeypatch):
    # The clock stands still: with a moving one, int() of "now" plus 301 s can land
    # 300.x s ahead of the view's own reading a moment later, inside the window.
    now = 1_800_000_000.25
    monkeypatch.setattr(time, "time", lambda: now)
    response = post(client, pixverse_body(), timestamp=str(int(now) + skew))
    assert response.status_code == 400
    running.refresh_from_db()
    assert running.next_attempt_at > timezone.now()


def test_a_replayed_nonce_is_refused(client, secret_set, running, kicked):
    body, timestamp = pixverse_body(), str(int(time.time()))
    assert post(client, body, timestamp=timestamp).status_code == 200
    assert post(client, body, timestamp=timestamp).status_code == 409
    assert post(client, body, timestamp=timestamp, nonce="m" * 32).status_code == 200


def test_a_nonce_is_remembered_for_the_whole_window():
    assert webhooks.NONCE_KEEP_SECONDS >= 2 * webhooks.TOLERANCE_SECONDS


@pytest.mark.parametrize("header", ["Webhook-Timestamp", "Webhook-Nonce", "Webhook-Signature"])
def test_a_missing_header_is_refused(client, secret_set, running, header):
    assert post(client, pixverse_body(), drop=header).status_code == 400


@pytest.mark.parametrize("body", ["[" * 30000 + "]" * 30000, '{"id": "%s"}' % ("9" * 5000)])
def test_a_body_that_cannot_be_read_is_refused_not_an_error(client, secret_set, running, body):
    assert post(client, body).status_code in (400, 403)
    assert post(client, pixverse_body(), timestamp="9" * 5000).status_code == 400


def test_a_body_over_64_kib_is_refused_with_413(client, secret_set, running):
    body = pixverse_body(padding="x" * (64 * 1024))
    assert post(client, body).status_code == 413


def test_a_large_body_is_refused_before_it_is_read(secret_set, db):
    class Unreadable(io.RawIOBase):
        def read(self, *args):
            raise AssertionError("the body was read")

    request = RequestFactory().post(URL, b"", content_type="application/json")
    request.META.update({"CONTENT_LENGTH": str(10 * 2**20), "wsgi.input": Unreadable()})
    assert pixverse_webhook(request).status_code == 413


def test_an_unknown_video_is_answered_ok_and_nothing_changes(client, secret_set, running, kicked,
                                                             caplog):
    due = running.next_attempt_at
    caplog.set_level("INFO", logger="generations.views")
    response = post(client, pixverse_body(id="1234567890123"))
    assert response.status_code == 200
    assert response.content == b"ok"
    running.refresh_from_db()
    assert running.next_attempt_at == due
    assert kicked == []
    assert "video 1234567890123: no running job" in caplog.text
    assert SECRET not in caplog.text and KEY not in caplog.text


def test_a_finished_job_is_left_as_it_is(client, secret_set, running, kicked):
    Generation.objects.filter(pk=running.pk).update(status=S.FAILED, next_attempt_at=None)
    assert post(client, pixverse_body()).status_code == 200
    running.refresh_from_db()
    assert running.status == S.FAILED and running.next_attempt_at is None
    assert kicked == []


def test_without_a_secret_the_url_is_not_found(client, settings, running):
    settings.PIXVERSE_WEBHOOK_SECRET = ""
    assert post(client, pixverse_body()).status_code == 404


def test_only_post_is_allowed(client, secret_set):
    assert client.get(URL).status_code == 405


def test_csrf_is_not_asked_for(secret_set, running, kicked):
    from django.test import Client

    assert post(Client(enforce_csrf_checks=True), pixverse_body()).status_code == 200


@responses.activate
def test_the_status_read_after_a_webhook_decides(client, secret_set, running, kicked):
    """PixVerse's webhook said success, its status call says still generating: running it is."""
    responses.get(f"https://pixverse.test/openapi/v2/video/status?video_id={VIDEO_ID}",
                  json={"ErrCode": 0, "ErrMsg": "success",
                        "Resp": {"status": "generating", "video_url": ""}})
    assert post(client, pixverse_body(status=1)).status_code == 200
    job, step = jobs.work_out_step(key_fingerprint(KEY), timezone.now())
    assert step == "read"
    credential = ApiCredential.objects.get()
    jobs.read_status(job, credential.client(), token=None)
    running.refresh_from_db()
    assert running.status == S.RUNNING
    assert running.poll_count == 1
