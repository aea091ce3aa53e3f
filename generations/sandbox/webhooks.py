"""The sandbox's webhooks: a signed POST when a video ends, as PixVerse's platform sends.

The sandbox decides a video's stage lazily, from the clock (SandboxVideo.stage),
so nothing happens by itself at ready_at: a timer started when the video is
created (views._generate calls video_created) sends the webhook then. Timers
are daemon threads of the process that answered the generate call; they
work the same under runserver and gunicorn, and a process that stops takes
its pending webhooks with it -- which is what the portal's polling is there
for. The signature is made here, independently of the portal's verifier
(generations/webhooks.py), over the raw body quoted with nothing safe: the
one public verifier's reading of PixVerse's docs.
"""

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from urllib.parse import quote

import requests
from django.db import connections
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from generations.sandbox.models import SandboxVideo

logger = logging.getLogger(__name__)

# PixVerse retries at 2 s, 10 s, 30 s, 1 min, 5 min, 15 min, 1 h and 4 h; the
# sandbox gives up after the first few: its timers live only as long as its process.
RETRY_DELAYS = (2, 10, 30, 60)
TIMEOUT = (3, 10)
NUMERIC_STATUS = {"success": 1, "moderated": 7, "failed": 8}


def video_created(request: HttpRequest, video: SandboxVideo) -> None:
    """Send the account's webhook for this new video when it ends, if the account has a URL."""
    if not video.account.webhook_url:
        return
    file_url = request.build_absolute_uri(reverse("sandbox:video-file", args=[video.video_id]))
    delay = max(0.0, (video.ready_at - timezone.now()).total_seconds())
    _later(delay, video.pk, file_url, 0)


def _later(delay: float, video_pk: int, file_url: str, attempt: int) -> None:
    timer = threading.Timer(delay, _in_thread, args=(video_pk, file_url, attempt))
    timer.daemon = True
    timer.start()


def _in_thread(video_pk: int, file_url: str, attempt: int) -> None:
    try:
        send(video_pk, file_url, attempt)
    except Exception:
        logger.exception("sandbox: webhook for video %s not sent", video_pk)
    finally:
        connections.close_all()  # this thread's own connections


def send(video_pk: int, file_url: str, attempt: int = 0) -> bool:
    """POST the video's webhook now; True if the receiver answered 200 "ok".

    Otherwise it is sent again after the next of RETRY_DELAYS, with a new
    timestamp, nonce and signature, as long as the account still has a URL.
    """
    video = SandboxVideo.objects.select_related("account").filter(pk=video_pk).first()
    if video is None or not video.account.webhook_url:
        return False
    stage = video.stage()
    if stage not in NUMERIC_STATUS:
        # Not ended (its ready_at moved) or deleted: nothing to say.
        return False
    account = video.account
    body = json.dumps(payload(video, stage, file_url)).encode()
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
    headers = {
        "Content-Type": "application/json",
        "Webhook-Timestamp": timestamp,
        "Webhook-Nonce": nonce,
        "Webhook-Signature": sign(account.webhook_secret, timestamp, nonce, body),
        "Ai-Trace-Id": video.trace_id,
    }
    try:
        response = requests.post(account.webhook_url, data=body, headers=headers, timeout=TIMEOUT,
                                 allow_redirects=False)
        delivered = response.status_code == 200 and response.text.strip() == "ok"
        answer = str(response.status_code)
    except requests.RequestException as e:
        delivered, answer = False, type(e).__name__
    if delivered:
        SandboxVideo.objects.filter(pk=video_pk).update(webhook_delivered_at=timezone.now())
        return True
    if attempt < len(RETRY_DELAYS):
        logger.info("sandbox: webhook for video %s not taken (%s); again in %s s", video.video_id,
                    answer, RETRY_DELAYS[attempt])
        _later(RETRY_DELAYS[attempt], video_pk, file_url, attempt + 1)
    else:
        logger.warning("sandbox: webhook for video %s not taken (%s); given up", video.video_id, answer)
    return False


def payload(video: SandboxVideo, stage: str, file_url: str) -> dict:
    """The body PixVerse's docs show: the id as a string, the numeric status, the link."""
    success = stage == "success"
    return {
        "id": str(video.video_id),
        "status": NUMERIC_STATUS[stage],
        "url": file_url if success else "",
        "size": _sample_megabytes(video) if success else 0,
        "has_audio": False,  # the sandbox's sample videos have no sound
        "credits": video.credits,
    }


def _sample_megabytes(video: SandboxVideo) -> float:
    from generations.sandbox.views import SAMPLES  # the file the video's link serves

    if not SAMPLES:
        return 0
    return round(SAMPLES[video.video_id % len(SAMPLES)].stat().st_size / 2**20, 2)


def sign(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    """Base64(HMAC-SHA256(secret, "{timestamp}\\n{nonce}\\n{payload}")), payload the quoted body."""
    payload_ = quote(body.decode(), safe="")
    message = f"{timestamp}\n{nonce}\n{payload_}".encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()
