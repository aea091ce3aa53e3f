"""The sandbox: a simulator of the PixVerse HTTP API, served by the portal itself.

It answers the spec's five calls, the real /video/result/{id} and the real
platform's other calls (transition, extend, sound effect, lip sync, fusion,
media upload, TTS speakers, effect templates: API-NOTES.md, section 3) in the
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
from dataclasses import dataclass
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

from generations import api_kinds
from generations.catalog import PROMPT_MAX_LENGTH, credit_cost, model_named
from generations.images import InvalidImage, check_image
from generations.sandbox import webhooks
from generations.sandbox.models import (
    EFFECT_TEMPLATES,
    TTS_SPEAKERS,
    SandboxAccount,
    SandboxCharge,
    SandboxImage,
    SandboxMedia,
    SandboxRequest,
    SandboxVideo,
    hash_key,
)
from generations.video_facts import UnreadableMedia, probe_media

logger = logging.getLogger(__name__)

SAMPLES = sorted((Path(__file__).parent / "samples").glob("*.mp4"))
# The silent samples above serve most kinds; a video that must have sound gets this
# (made by bench/make_sound_sample.py).
SOUND_SAMPLE = Path(__file__).parent / "samples" / "sound" / "sample-sound.mp4"
TEMPLATES_BY_ID = {template["template_id"]: template for template in EFFECT_TEMPLATES}
SPEAKER_IDS = {speaker_id for speaker_id, _name in TTS_SPEAKERS}
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


def invalid_media(detail: str) -> JsonResponse:
    # A generate call's source (video or uploaded media) that is not usable: the
    # same code, in an HTTP 200 as the other business refusals of a generate call.
    return envelope(code=500047, msg=f"The provided media is invalid: {detail}")


def invalid_parameter(detail: str) -> JsonResponse:
    return envelope(code=400017, msg=f"Invalid parameter. {detail}")


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


def _parse_generation(request: HttpRequest, kind: str) -> tuple[dict | None, JsonResponse | None]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return None, envelope(code=400013, msg="Invalid binding request: body is not JSON")
    if not isinstance(body, dict):
        return None, envelope(code=400013, msg="Invalid binding request: body is not an object")
    empty = api_kinds.missing(kind, body)
    if empty:
        return None, envelope(code=400011, msg=f"Empty parameter: {empty[0].field}")
    model = model_named(body.get("model") if isinstance(body.get("model"), str) else None)
    for name, limit in (("prompt", model.prompt_max), ("negative_prompt", PROMPT_MAX_LENGTH)):
        if isinstance(body.get(name), str) and len(body[name]) > limit:
            return None, envelope(code=400018, msg=(
                f"Prompt/negative prompt length exceeds {limit} characters limit."))
    with translation.override("en"):
        problems = api_kinds.KINDS[kind].check(body)
    if problems:
        return None, invalid_parameter("; ".join(f"{p.field}: {p.message}" for p in problems))
    return body, None


@dataclass(frozen=True)
class Sources:
    """What a generate call refers to, checked against the account, and its price."""

    credits: int
    image: SandboxImage | None = None
    source_video: SandboxVideo | None = None
    source_media: SandboxMedia | None = None
    audio_media: SandboxMedia | None = None


# Each kind finds its sources in the account and prices itself, or refuses.
Resolver = Callable[[SandboxAccount, dict], Sources | JsonResponse]

# The fields whose words can fail moderation.
MODERATED_FIELDS = ("prompt", "negative_prompt", "sound_effect_content", "lip_sync_tts_content")


def _generate(request: HttpRequest, account: SandboxAccount, kind: str,
              resolve: Resolver) -> HttpResponse:
    """Any generate call: trace-id idempotency, the kind's checks, billing, a new video."""
    trace_id = request.headers.get("ai-trace-id", "")
    if not trace_id:
        return envelope(code=400011, msg="Empty parameter: ai-trace-id")
    earlier = account.videos.filter(trace_id=trace_id).first()
    if earlier is not None:
        # A reused trace id answers the earlier submission and bills nothing.
        return envelope({"video_id": earlier.video_id})
    body, problem = _parse_generation(request, kind)
    if problem:
        return problem
    sources = resolve(account, body)
    if isinstance(sources, HttpResponse):
        return sources
    cost = sources.credits
    text = " ".join(str(body.get(name) or "") for name in MODERATED_FIELDS).lower()
    if any(word.lower() in text for word in settings.SANDBOX_MODERATED_WORDS):
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
                account=locked, trace_id=trace_id, kind=kind, image=sources.image,
                source_video=sources.source_video, source_media=sources.source_media,
                audio_media=sources.audio_media, params=body, credits=cost, outcome=outcome,
                created=now, ready_at=now + locked.generation_time(),
            )
            SandboxCharge.objects.create(account=locked, trace_id=trace_id, video=video,
                                         credits=cost)
    except IntegrityError:
        # The same trace id arrived twice at once: both get the one video.
        return envelope({"video_id": account.videos.get(trace_id=trace_id).video_id})
    webhooks.video_created(request, video)
    return _billed_answer(request, account, video)


# --- Each kind's sources and price -------------------------------------------------------


def _own_image(account: SandboxAccount, img_id) -> SandboxImage | None:
    if not isinstance(img_id, int) or isinstance(img_id, bool) or not 0 < img_id < 2**63:
        return None
    return account.images.filter(img_id=img_id).first()


def _template_refusal(account: SandboxAccount, body: dict) -> JsonResponse | None:
    template_id = body.get("template_id")
    if template_id is None:
        return None
    template = TEMPLATES_BY_ID.get(template_id)
    if template is None:
        return invalid_parameter(f"template_id: no template {template_id}.")
    if not account.template_activated(template_id):
        return envelope(code=500070, msg="The template is not activated for this account.")
    if body["quality"] not in template["qualities"]:
        return envelope(code=500071, msg="The template does not support this resolution.")
    return None


def _video_price(body: dict) -> int:
    """The model's price list: per video or per second, with sound, fast motion, a sound effect."""
    return credit_cost(body["quality"], body["duration"], body.get("motion_mode"), model=body.get("model"),
                       audio=body.get("generate_audio_switch") is True,
                       sound_effect=body.get("sound_effect_switch") is True)


def _text_sources(account: SandboxAccount, body: dict) -> Sources | JsonResponse:
    return _template_refusal(account, body) or Sources(_video_price(body))


def _image_sources(account: SandboxAccount, body: dict) -> Sources | JsonResponse:
    image = _own_image(account, body["img_id"])
    if image is None:
        return envelope(code=400032, msg="Invalid image ID")
    return _template_refusal(account, body) or Sources(_video_price(body), image=image)


def _transition_sources(account: SandboxAccount, body: dict) -> Sources | JsonResponse:
    first = _own_image(account, body["first_frame_img"])
    last = _own_image(account, body["last_frame_img"])
    if first is None or last is None:
        return envelope(code=400032, msg="Invalid image ID")
    return Sources(_video_price(body), image=first)


def _fusion_sources(account: SandboxAccount, body: dict) -> Sources | JsonResponse:
    images = [_own_image(account, reference["img_id"]) for reference in body["image_references"]]
    if None in images:
        return envelope(code=400032, msg="Invalid image ID")
    return Sources(_video_price(body), image=images[0])


def _video_source(account: SandboxAccount, body: dict
                  ) -> tuple[SandboxVideo | None, SandboxMedia | None, JsonResponse | None]:
    """The video a call starts from: a finished video of the account, or its uploaded video."""
    if body.get("source_video_id") is not None:
        video = account.videos.filter(video_id=body["source_video_id"]).first()
        if video is None or video.stage() != "success":
            return None, None, invalid_media("source_video_id is no finished video of this account.")
        return video, None, None
    media = account.media.filter(media_id=body["video_media_id"],
                                 media_type=SandboxMedia.MediaType.VIDEO).first()
    if media is None:
        return None, None, invalid_media("video_media_id is no uploaded video of this account.")
    return None, media, None


def _extend_sources(account: SandboxAccount, body: dict) -> Sources | JsonResponse:
    video, media, refusal = _video_source(account, body)
    if refusal:
        return refusal
    seconds = video.seconds() if video else media.duration
    if seconds >= api_kinds.EXTEND_MAX_SECONDS:
        # The media is fine, but not for this call: PixVerse's code for a media it
        # will not use, as it would for any other unusable source.
        return invalid_media(f"a video to extend must be shorter than "
                             f"{api_kinds.EXTEND_MAX_SECONDS} s.")
    return Sources(_video_price(body), source_video=video, source_media=media)


def _sound_effect_sources(account: SandboxAccount, body: dict) -> Sources | JsonResponse:
    video, media, refusal = _video_source(account, body)
    if refusal:
        return refusal
    seconds = video.seconds() if video else media.duration
    return Sources(api_kinds.sound_effect_cost(seconds), source_video=video, source_media=media)


def _lip_sync_sources(account: SandboxAccount, body: dict) -> Sources | JsonResponse:
    video, media, refusal = _video_source(account, body)
    if refusal:
        return refusal
    if body.get("audio_media_id") is None:
        if str(body["lip_sync_tts_speaker_id"]) not in SPEAKER_IDS:
            return invalid_parameter("lip_sync_tts_speaker_id: no such speaker.")
        cost = api_kinds.lip_sync_cost(tts_content=body["lip_sync_tts_content"])
        return Sources(cost, source_video=video, source_media=media)
    audio = account.media.filter(media_id=body["audio_media_id"],
                                 media_type=SandboxMedia.MediaType.AUDIO).first()
    if audio is None:
        return invalid_media("audio_media_id is no uploaded audio of this account.")
    return Sources(api_kinds.lip_sync_cost(audio_seconds=audio.duration), source_video=video,
                   source_media=media, audio_media=audio)


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
    return _generate(request, account, "text", _text_sources)


@api("POST", "generate")
def img_generate(request: HttpRequest, account: SandboxAccount) -> HttpResponse:
    return _generate(request, account, "image", _image_sources)


@api("POST", "generate")
def transition_generate(request: HttpRequest, account: SandboxAccount) -> HttpResponse:
    return _generate(request, account, "transition", _transition_sources)


@api("POST", "generate")
def extend_generate(request: HttpRequest, account: SandboxAccount) -> HttpResponse:
    return _generate(request, account, "extend", _extend_sources)


@api("POST", "generate")
def sound_effect_generate(request: HttpRequest, account: SandboxAccount) -> HttpResponse:
    return _generate(request, account, "sound_effect", _sound_effect_sources)


@api("POST", "generate")
def lip_sync_generate(request: HttpRequest, account: SandboxAccount) -> HttpResponse:
    return _generate(request, account, "lip_sync", _lip_sync_sources)


@api("POST", "generate")
def fusion_generate(request: HttpRequest, account: SandboxAccount) -> HttpResponse:
    return _generate(request, account, "fusion", _fusion_sources)


@api("POST", "upload")
def upload_media(request: HttpRequest, account: SandboxAccount) -> HttpResponse:
    """A video or audio for extend, sound effect and lip sync, told by its content.

    PixVerse documents no codes of its own for media uploads; these are its
    image upload's, which say the same things: 500032 for a file that is not
    one of the formats it takes (the "wrong format" code, closer than 400017's
    generic "invalid parameter", which is about the request rather than the
    file), and 500033 for a video over the size limit (the "wrong size" code,
    as for an image over its pixel limit).
    """
    upload = request.FILES.get("file")
    if upload is None:
        return envelope(code=400011, msg="Empty parameter: file")
    data = upload.read()
    try:
        facts = probe_media(data)
    except UnreadableMedia:
        return envelope(code=500032, msg=(
            "Unsupported media format: upload an MP4, MOV or WebM video or an MP3, WAV, M4A "
            "or AAC audio."))
    if max(facts.width or 0, facts.height or 0) > api_kinds.MEDIA_MAX_SIDE:
        return envelope(code=500033, msg=(
            f"The video is {facts.width}x{facts.height}; at most {api_kinds.MEDIA_MAX_SIDE} px "
            "a side."))
    media = SandboxMedia(account=account, media_type=facts.media_type, format=facts.format,
                         duration=facts.duration or 0.0)
    media.file.save(f"{media.media_id}.{facts.format}", ContentFile(data), save=False)
    media.save()
    url = request.build_absolute_uri(reverse("sandbox:media-file", args=[media.media_id]))
    return envelope({"media_id": media.media_id, "media_type": media.media_type, "url": url})


def _speakers() -> list[dict]:
    return [{"speaker_id": speaker_id, "name": name} for speaker_id, name in TTS_SPEAKERS]


@api("GET", "lists")
def tts_list(request: HttpRequest, account: SandboxAccount) -> HttpResponse:
    """The older route of the TTS voices; an account can have it answer 404 instead."""
    if not account.tts_list_route:
        return not_found_route()
    # How the real lists are wrapped is not documented: each route answers one
    # of the forms the client accepts.
    return envelope({"list": _speakers(), "total": len(TTS_SPEAKERS)})


@api("GET", "lists")
def tts_speaker(request: HttpRequest, account: SandboxAccount) -> HttpResponse:
    """The newer route of the TTS voices."""
    return envelope({"data": _speakers(), "total": len(TTS_SPEAKERS)})


@api("GET", "lists")
def effect_templates(request: HttpRequest, account: SandboxAccount) -> HttpResponse:
    """Every template, each with `activated`: a client can then say that a template
    exists but must be activated on the platform first, rather than not list it."""
    templates = [{**template, "activated": account.template_activated(template["template_id"])}
                 for template in EFFECT_TEMPLATES]
    return envelope({"list": templates, "total": len(templates)})


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
    answer = {"id": video.video_id, "status": WORD_STATUS[stage],
              "video_url": _video_url(request, video, stage)}
    # The spec's own calls keep the spec's answer; the real platform's kinds, and a
    # video with a generated sound, say whether the file has sound, as /video/result does.
    if video.kind not in ("text", "image") or video.has_audio:
        answer["has_audio"] = video.has_audio
    return envelope(answer)


@api("GET", "status")
def video_result(request: HttpRequest, account: SandboxAccount, video_id: str) -> HttpResponse:
    """The real service's status call: numeric statuses, url and the video's details."""
    video = _find_video(account, video_id)
    if video is None:
        return unknown_video()
    stage = video.stage()
    width, height = {"360p": (640, 360), "540p": (960, 540), "720p": (1280, 720),
                     "1080p": (1920, 1080)}[video.quality()]
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
        # As the webhook payload has it: whether the finished file has sound.
        "has_audio": video.has_audio,
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
    sample = SOUND_SAMPLE if video.has_audio else SAMPLES[video.video_id % len(SAMPLES)]
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
def media_file(request: HttpRequest, media_id: int) -> FileResponse:
    """An uploaded video or audio, only to the key that uploaded it, as image_file."""
    media = SandboxMedia.objects.filter(
        media_id=media_id, account__key_hash=hash_key(request.headers.get("API-KEY", ""))).first()
    if media is None:
        raise Http404
    response = FileResponse(media.file.open("rb"))
    response["Cache-Control"] = "private, no-store"
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
