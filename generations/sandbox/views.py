"""The sandbox: a simulator of the PixVerse HTTP API, served by the portal itself.

It answers the spec's five calls and the real /video/result/{id} in the
PixVerse envelope, with the real behaviour the portal must cope with: key
checks, credits charged by the real price list (refunded on moderation
failure), the plan's concurrency limit (500044), image checks (5000xx),
1 request per second per key (429), ai-trace-id as an idempotency key, a
generation that takes a while and ends in a real, playable video, and
faults that tests switch on per account. Served under /sandbox/ only when
PIXVERSE_SANDBOX_ENABLED is set; otherwise every route answers 404.
"""

import contextlib
import json
import random
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from generations.catalog import PROMPT_MAX_LENGTH, check_parameters, credit_cost
from generations.images import InvalidImage, check_image
from generations.sandbox.models import (
    SandboxAccount,
    SandboxImage,
    SandboxRequest,
    SandboxVideo,
    hash_key,
)

SAMPLES = sorted((Path(__file__).parent / "samples").glob("*.mp4"))

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


def api(method: str) -> Callable:
    """Wrap a sandbox endpoint: method, key, rate limit, delay and faults, in that order."""

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
            if random.random() < account.fault_http_500_rate:
                return envelope(code=500, msg="Internal Server Error", http_status=500)
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
        if SandboxVideo.objects.filter(pk=video.pk, refunded=False).update(refunded=True):
            SandboxAccount.objects.filter(pk=account.pk).update(
                credit_package=F("credit_package") + video.credits
            )


@api("GET")
def balance(request: HttpRequest, account: SandboxAccount) -> HttpResponse:
    account.refresh_from_db(fields=["credit_monthly", "credit_package"])
    return envelope({"account_id": account.account_id, "credit_monthly": account.credit_monthly,
                     "credit_package": account.credit_package})


@api("POST")
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
    for name in ("prompt", "negative_prompt"):
        if isinstance(body.get(name), str) and len(body[name]) > PROMPT_MAX_LENGTH:
            return None, envelope(code=400018, msg=(
                f"Prompt/negative prompt length exceeds {PROMPT_MAX_LENGTH} characters limit."))
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
    cost = credit_cost(body["quality"], body["duration"], body.get("motion_mode"))
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
    except IntegrityError:
        # The same trace id arrived twice at once: both get the one video.
        video = account.videos.get(trace_id=trace_id)
    return envelope({"video_id": video.video_id})


@api("POST")
def text_generate(request: HttpRequest, account: SandboxAccount) -> HttpResponse:
    return _generate(request, account, "text")


@api("POST")
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


@api("GET")
def video_status(request: HttpRequest, account: SandboxAccount) -> HttpResponse:
    """The spec's status call: word statuses and video_url."""
    if not account.spec_status_route:
        return not_found_route()
    raw_id = request.GET.get("video_id", "")
    if not raw_id:
        return envelope(code=400011, msg="Empty parameter: video_id")
    video = _find_video(account, raw_id)
    if video is None:
        return envelope(code=500008, msg="Requested data not found")
    stage = video.stage()
    return envelope({"id": video.video_id, "status": WORD_STATUS[stage],
                     "video_url": _video_url(request, video, stage)})


@api("GET")
def video_result(request: HttpRequest, account: SandboxAccount, video_id: str) -> HttpResponse:
    """The real service's status call: numeric statuses, url and the video's details."""
    video = _find_video(account, video_id)
    if video is None:
        return envelope(code=500008, msg="Requested data not found")
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
def video_file(request: HttpRequest, video_id: int) -> FileResponse:
    """The finished video, at an unauthenticated URL as a CDN link would be."""
    video = SandboxVideo.objects.filter(video_id=video_id).first()
    if video is None or video.stage() != "success" or not SAMPLES:
        raise Http404
    sample = SAMPLES[video.video_id % len(SAMPLES)]
    return FileResponse(sample.open("rb"), content_type="video/mp4",
                        filename=f"{video.video_id}.mp4")


@sandbox_enabled
def image_file(request: HttpRequest, img_id: int) -> FileResponse:
    image = SandboxImage.objects.filter(img_id=img_id).first()
    if image is None:
        raise Http404
    return FileResponse(image.file.open("rb"))
