"""The sandbox: a simulator of the PixVerse HTTP API, served by the portal itself.

It answers the spec's five calls and the real /video/result/{id} in the
PixVerse envelope, with the real behaviour the portal must cope with: key
checks, credits charged by the real price list (refunded on moderation
failure), the plan's concurrency limit (500044), image checks (5000xx),
1 request per second per key (429), ai-trace-id as an idempotency key, a
generation that takes a while and ends in a real, playable video, and
faults that tests switch on per account: error answers, hangs, a billed
generate call whose answer is late or never comes, failing or slow video
files. Served under /sandbox/ only when PIXVERSE_SANDBOX_ENABLED is set;
otherwise every route answers 404.
"""

import contextlib
import json
import logging
import math
import random
import socket
import socketserver
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_exempt

from generations.catalog import PROMPT_MAX_LENGTH, check_parameters, credit_cost, model_named
from generations.images import InvalidImage, check_image
from generations.sandbox import webhooks
from generations.sandbox.models import (
    SandboxAccount,
    SandboxCharge,
    SandboxImage,
    SandboxRequest,
    SandboxVideo,
    hash_key,
)

logger = logging.getLogger(__name__)

SAMPLES = sorted((Path(__file__).parent / "samples").glob("*.mp4"))
FILE_CHUNK = 64 * 1024

# The real service's numeric statuses, and the words of the spec's status call.
NUMERIC_STATUS = {"queued": 9, "generating": 5, "success": 1, "failed": 8, "moderated": 7,
                  "deleted": 6}
WORD_STATUS = {"queued": "pending", "generating": "generating", "success": "done",
               "failed": "failed", "moderated": "moderation_failed", "deleted": "deleted"}


def envelope(resp: dict | None = None, *, code: int = 0, msg: str = "success",
             http_status: int = 200) -> JsonResponse:
    return JsonResponse({"ErrCode": code, "ErrMsg": msg, "Resp": resp}, status=http_status)


def not_found_route() -> HttpResponse:
    # What a real API gateway answers for a route it does not have.
    return HttpResponse("404 page not found", status=404, content_type="text/plain")


def unknown_video() -> JsonResponse:
    # As third-party clients report the real service answers an unknown or foreign id.
    return envelope(code=500047, msg="The provided media is invalid", http_status=400)


def _no_credits(account: SandboxAccount) -> JsonResponse:
    if account.dialect == SandboxAccount.Dialect.SPEC:
        return envelope(code=403, msg="No credits available", http_status=403)
    return envelope(code=500090, msg="Insufficient balance")


def sandbox_enabled(view: Callable) -> Callable:
    """Answer 404, as for a route that does not exist, unless the sandbox is enabled."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not settings.PIXVERSE_SANDBOX_ENABLED:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def api(method: str, call_kind: str) -> Callable:
    """Wrap a sandbox endpoint: method, key, rate limit, delay and hang, faults, in that order.

    call_kind is the name fault_hang_calls knows the endpoint by.
    """

    def decorator(view: Callable) -> Callable:
        @csrf_exempt
        @sandbox_enabled
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method != method:
                return HttpResponse("405 method not allowed", status=405,
                                    content_type="text/plain")
            # The request's arrival, taken before any work of ours: the rate limit
            # judges the gaps between arrivals, not how long our own queries took.
            arrived = time.time()
            raw_key = request.headers.get("API-KEY", "")
            account = SandboxAccount.objects.filter(key_hash=hash_key(raw_key)).first()
            if not raw_key or account is None:
                return envelope(code=401, msg="Invalid API Key", http_status=401)
            response = answer(request, account, arrived, *args, **kwargs)
            _log_request(request, account, arrived, response)
            return response

        def answer(request: HttpRequest, account: SandboxAccount, arrived: float,
                   *args, **kwargs) -> HttpResponse:
            if not account.claim_request_slot(settings.SANDBOX_MIN_INTERVAL, arrived):
                return envelope(code=429, msg="Too Many Requests", http_status=429)
            if account.fault_slow_seconds > 0:
                time.sleep(account.fault_slow_seconds)
            if account.hangs(call_kind):
                time.sleep(account.fault_hang_seconds)
            if random.random() < account.fault_http_500_rate:
                return envelope(code=500, msg="Internal Server Error", http_status=500)
            if random.random() < account.fault_http_429_rate:
                return envelope(code=429, msg="Too Many Requests", http_status=429)
            if random.random() < account.fault_error_rate:
                return envelope(code=500069, msg="The system is under high load, try again later")
            if random.random() < account.fault_malformed_rate:
                return HttpResponse("<html><body>502 Bad Gateway</body></html>",
                                    content_type="text/html")
            _refund_moderated(account)
            return view(request, account, *args, **kwargs)

        return wrapper

    return decorator


def _log_request(request: HttpRequest, account: SandboxAccount, started: float,
                 response: HttpResponse) -> None:
    """Add the request to the account's log (pruning old rows about once in a hundred)."""
    err_code = None
    if response.get("Content-Type", "").startswith("application/json"):
        with contextlib.suppress(ValueError, AttributeError):
            err_code = json.loads(response.content).get("ErrCode")
    video_id = request.GET.get("video_id") or request.resolver_match.kwargs.get("video_id", "")
    SandboxRequest.objects.create(
        account=account, started_at=started, duration_ms=round((time.time() - started) * 1000),
        method=request.method, path=request.path[:200],
        video_id=int(video_id) if str(video_id).isdigit() and int(video_id) < 2**63 else None,
        http_status=response.status_code, err_code=err_code if isinstance(err_code, int) else None,
    )
    if random.random() < 0.01:
        SandboxRequest.prune()


def _refund_moderated(account: SandboxAccount) -> None:
    """Give back the credits of videos whose moderation failed, once each."""
    due = account.videos.filter(outcome=SandboxVideo.Outcome.MODERATED, refunded=False,
                                ready_at__lte=timezone.now())
    for video in due:
        with transaction.atomic():
            if SandboxVideo.objects.filter(pk=video.pk, refunded=False).update(refunded=True):
                SandboxAccount.objects.filter(pk=account.pk).update(
                    credit_package=F("credit_package") + video.credits
                )
                SandboxCharge.objects.create(account=account, trace_id=video.trace_id,
                                             video=video, credits=-video.credits)


def drop_connection(request: HttpRequest) -> bool:
    """Shut the client's TCP connection under this request, so it gets no HTTP answer at all.

    WSGI has no way to say "answer nothing", so this takes the socket from the
    server: gunicorn puts it in the environ; wsgiref (runserver, the tests'
    live_server) does not, but its request handler, further up this thread's
    stack, holds it. Whatever the server writes afterwards fails with EPIPE,
    which both servers take for a client that went away and ignore. False when
    no socket was found (some other server).
    """
    sock = request.environ.get("gunicorn.socket") or _wsgiref_socket()
    if sock is None:
        return False
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    return True


def _wsgiref_socket() -> socket.socket | None:
    # wsgiref serves each request from a socketserver handler's handle() in
    # this same thread, so that frame is below ours; its `request` is the
    # client's socket (StreamRequestHandler also calls it `connection`).
    frame = sys._getframe(1)
    while frame is not None:
        handler = frame.f_locals.get("self")
        if isinstance(handler, socketserver.BaseRequestHandler):
            return handler.request
        frame = frame.f_back
    return None


@api("GET", "balance")
def balance(request: HttpRequest, account: SandboxAccount) -> HttpResponse:
    account.refresh_from_db(fields=["credit_monthly", "credit_package"])
    return envelope({"account_id": account.account_id, "credit_monthly": account.credit_monthly,
                     "credit_package": account.credit_package})


@api("POST", "upload")
def upload_image(request: HttpRequest, account: SandboxAccount) -> HttpResponse:
    upload = request.FILES.get("image")
    if upload is None:
        return envelope(code=400011, msg="Empty parameter: image")
    data = upload.read()
    try:
        info = check_image(data, max_side=settings.PIXVERSE_MAX_IMAGE_SIDE,
                           max_bytes=settings.PIXVERSE_MAX_IMAGE_BYTES)
    except InvalidImage as e:
        code = {"too_large": 500030, "bomb": 500030, "dimensions": 500033,
                "format": 500032}.get(e.code, 500031)
        return envelope(code=code, msg=e.message)
    image = SandboxImage(account=account, format=info.format, width=info.width,
                         height=info.height)
    image.file.save(f"{image.img_id}.{info.extension}", ContentFile(data), save=False)
    image.save()
    url = request.build_absolute_uri(reverse("sandbox:image-file", args=[image.img_id]))
    return envelope({"img_id": image.img_id, "img_url": url})


def _parse_generation(request: HttpRequest) -> tuple[dict | None, JsonResponse | None]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return None, envelope(code=400013, msg="Invalid binding request: body is not JSON")
    if not isinstance(body, dict):
        return None, envelope(code=400013, msg="Invalid binding request: body is not an object")
    model = model_named(body.get("model") if isinstance(body.get("model"), str) else None)
    for name, limit in (("prompt", model.prompt_max), ("negative_prompt", PROMPT_MAX_LENGTH)):
        if isinstance(body.get(name), str) and len(body[name]) > limit:
            return None, envelope(code=400018, msg=(
                f"Prompt/negative prompt length exceeds {limit} characters limit."))
    with translation.override("en"):
        problems = check_parameters(body)
    if problems:
        detail = "; ".join(f"{p.field}: {p.message}" for p in problems)
        return None, envelope(code=400017, msg=f"Invalid parameter. {detail}")
    return body, None


def _generate(request: HttpRequest, account: SandboxAccount, kind: str) -> HttpResponse:
    trace_id = request.headers.get("ai-trace-id", "")
    if not trace_id:
        return envelope(code=400011, msg="Empty parameter: ai-trace-id")
    earlier = account.videos.filter(trace_id=trace_id).first()
    if earlier is not None:
        # A reused trace id answers the earlier submission and bills nothing.
        return envelope({"video_id": earlier.video_id})
    body, problem = _parse_generation(request)
    if problem:
        return problem
    image = None
    if kind == "image":
        image = account.images.filter(img_id=body.get("img_id") if isinstance(
            body.get("img_id"), int) else None).first()
        if image is None:
            return envelope(code=400032, msg="Invalid image ID")
    cost = credit_cost(body["quality"], body["duration"], body.get("motion_mode"), model=body.get("model"),
                       audio=bool(body.get("generate_audio_switch")),
                       sound_effect=bool(body.get("sound_effect_switch")))
    prompt = f"{body['prompt']} {body.get('negative_prompt') or ''}".lower()
    if any(word.lower() in prompt for word in settings.SANDBOX_MODERATED_WORDS):
        outcome = SandboxVideo.Outcome.MODERATED
    elif random.random() < account.fault_generation_failure_rate:
        outcome = SandboxVideo.Outcome.FAILED
    else:
        outcome = SandboxVideo.Outcome.SUCCESS
    try:
        with transaction.atomic():
            locked = SandboxAccount.objects.select_for_update().get(pk=account.pk)
            if locked.running_videos() >= locked.concurrency_limit:
                return envelope(code=500044, msg="Reached the limit for concurrent generations.")
            if locked.credits < cost:
                return _no_credits(locked)
            from_monthly = min(cost, locked.credit_monthly)
            locked.credit_monthly -= from_monthly
            locked.credit_package -= cost - from_monthly
            locked.save(update_fields=["credit_monthly", "credit_package"])
            now = timezone.now()
            video = SandboxVideo.objects.create(
                account=locked, trace_id=trace_id, kind=kind, image=image, params=body,
                credits=cost, outcome=outcome, created=now,
                ready_at=now + locked.generation_time(),
            )
            SandboxCharge.objects.create(account=locked, trace_id=trace_id, video=video,
                                         credits=cost)
    except IntegrityError:
        # The same trace id arrived twice at once: both get the one video.
        return envelope({"video_id": account.videos.get(trace_id=trace_id).video_id})
    webhooks.video_created(request, video)
    return _billed_answer(request, account, video)


def _billed_answer(request: HttpRequest, account: SandboxAccount,
                   video: SandboxVideo) -> HttpResponse:
    """The answer for a video just created and billed, unless a billing fault loses it."""
    if random.random() < account.fault_drop_after_billing_rate:
        if not drop_connection(request):
            logger.warning("sandbox: no socket to drop under this server; answering 444")
        # nginx's code for "closed without answering": what the request log
        # shows; the client, whose connection is gone, gets nothing.
        return HttpResponse(status=444, reason="No Response")
    if random.random() < account.fault_timeout_after_billing_rate:
        time.sleep(account.fault_hang_seconds)
    if account.dialect == SandboxAccount.Dialect.SPEC:
        return envelope({"video_id": video.video_id})
    # The real service may say what it charged; the portal takes its figure over the list.
    return envelope({"video_id": video.video_id, "credit": video.credits})


@api("POST", "generate")
def text_generate(request: HttpRequest, account: SandboxAccount) -> HttpResponse:
    return _generate(request, account, "text")


@api("POST", "generate")
def img_generate(request: HttpRequest, account: SandboxAccount) -> HttpResponse:
    return _generate(request, account, "image")


def _find_video(account: SandboxAccount, raw_id: str) -> SandboxVideo | None:
    if not raw_id.isdigit():
        return None
    return account.videos.filter(video_id=int(raw_id)).first()


def _video_url(request: HttpRequest, video: SandboxVideo, stage: str) -> str:
    if stage != "success":
        return ""
    return request.build_absolute_uri(reverse("sandbox:video-file", args=[video.video_id]))


@api("GET", "status")
def video_status(request: HttpRequest, account: SandboxAccount) -> HttpResponse:
    """The spec's status call: word statuses and video_url."""
    if not account.spec_status_route:
        return not_found_route()
    if account.spec_status_404_envelope:
        return envelope(code=404, msg="Not Found", http_status=404)
    raw_id = request.GET.get("video_id", "")
    if not raw_id:
        return envelope(code=400011, msg="Empty parameter: video_id")
    video = _find_video(account, raw_id)
    if video is None:
        return unknown_video()
    stage = video.stage()
    return envelope({"id": video.video_id, "status": WORD_STATUS[stage],
                     "video_url": _video_url(request, video, stage)})


@api("GET", "status")
def video_result(request: HttpRequest, account: SandboxAccount, video_id: str) -> HttpResponse:
    """The real service's status call: numeric statuses, url and the video's details."""
    video = _find_video(account, video_id)
    if video is None:
        return unknown_video()
    stage = video.stage()
    width, height = {"360p": (640, 360), "540p": (960, 540), "720p": (1280, 720),
                     "1080p": (1920, 1080)}[video.params["quality"]]
    return envelope({
        "id": video.video_id,
        "status": NUMERIC_STATUS[stage],
        "url": _video_url(request, video, stage),
        "prompt": video.params.get("prompt", ""),
        "negative_prompt": video.params.get("negative_prompt", ""),
        "seed": video.params.get("seed", video.video_id % 2_147_483_647),
        "size": 0,
        "outputWidth": width,
        "outputHeight": height,
        "create_time": video.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "modify_time": min(timezone.now(), video.ready_at).strftime("%Y-%m-%dT%H:%M:%SZ"),
    })


@sandbox_enabled
def video_file(request: HttpRequest, video_id: int) -> HttpResponse:
    """The finished video, at an unauthenticated URL as a CDN link would be.

    Its faults are those of the account that owns the video.
    """
    video = SandboxVideo.objects.select_related("account").filter(video_id=video_id).first()
    if video is None or video.stage() != "success" or not SAMPLES:
        raise Http404
    account = video.account
    if random.random() < account.fault_file_error_rate:
        return HttpResponse("503 Service Unavailable", status=503, content_type="text/plain")
    sample = SAMPLES[video.video_id % len(SAMPLES)]
    filename = f"{video.video_id}.mp4"
    if account.fault_file_slow_seconds > 0:
        return _slow_file(sample, filename, account.fault_file_slow_seconds)
    return FileResponse(sample.open("rb"), content_type="video/mp4", filename=filename)


def _slow_file(path: Path, filename: str, seconds: float) -> StreamingHttpResponse:
    """The file in 64 KiB chunks, each after a pause, so the whole takes about `seconds`."""
    size = path.stat().st_size
    pause = seconds / max(1, math.ceil(size / FILE_CHUNK))

    def chunks():
        with path.open("rb") as file:
            while chunk := file.read(FILE_CHUNK):
                time.sleep(pause)
                yield chunk

    response = StreamingHttpResponse(chunks(), content_type="video/mp4")
    response["Content-Length"] = str(size)
    response["Content-Disposition"] = content_disposition_header(False, filename)
    return response


@sandbox_enabled
def image_file(request: HttpRequest, img_id: int) -> FileResponse:
    """An uploaded source image, only to the key that uploaded it (anyone else: not found).

    Members' images are private to their account; an img_url is not a public link.
    """
    image = SandboxImage.objects.filter(
        img_id=img_id, account__key_hash=hash_key(request.headers.get("API-KEY", ""))).first()
    if image is None:
        raise Http404
    response = FileResponse(image.file.open("rb"))
    response["Cache-Control"] = "private, no-store"
    return response
