"""PixVerseClient: the one module that talks HTTP to PixVerse.

It speaks both the spec the project was created from (../shared/pixverse/
spec.ru.txt) and the real platform API where the two differ (API-NOTES.md,
section 2), and returns typed results or raises one typed error hierarchy.

Rules it keeps, so that callers need not:
- every request carries API-KEY and a fresh ai-trace-id, except a generate
  call, which takes the trace id its caller chose for that submission: PixVerse
  treats the id as an idempotency key, so resending the same submission with
  the same id is never billed twice. A generate call is never retried here;
- every request waits for its slot under the 1 request/s per key limit,
  shared by all processes (generations/ratelimit.py), and has a timeout;
- the key never reaches a log line, an exception message or a repr.

Errors a caller acts on, besides the plain kinds (InvalidKey, NoCredits, ...):
- VideoNotFound: ErrCode 500047 or 500008 on any HTTP status, or an enveloped
  404 from /video/status that /video/result cannot answer either. PixVerse
  knows no such video, or not for this key;
- VideoDeleted, a VideoNotFound: ErrCode 500064, the video was deleted;
- RateLimited: PixVerse refused (HTTP or ErrCode 429); retry_after is its
  Retry-After in seconds, or None;
- SlotUnavailable, a RateLimited: refused here, nothing was sent (sent is
  False), because the key's next slot is wait seconds away, beyond max_wait;
- GatewayError, a ServerError: HTTP 502/503/504 without the envelope, a
  proxy's page rather than PixVerse's answer;
- InvalidParameters, InvalidImageError, InvalidMediaError: refused by our own
  checks (generations/api_kinds.py, images.py, video_facts.probe_media) before
  anything was sent or a rate-limit slot taken;
- TemplateRefused: ErrCode 500070 (effect template not activated) or 500071
  (not at this quality).

error.outcome_unknown is True when the request may have reached PixVerse but
no usable answer came back (TransportError with maybe_sent, MalformedResponse,
GatewayError): a generate call must then be resent with the same trace id.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache
from django.utils import translation
from django.views.decorators.debug import sensitive_variables

from generations import api_kinds, catalog, ratelimit
from generations.catalog import DEFAULT_MODEL, ParameterProblem
from generations.images import InvalidImage, check_image
from generations.video_facts import UnreadableMedia, probe_media

logger = logging.getLogger(__name__)

API_PREFIX = "/openapi/v2"


# --- Errors -----------------------------------------------------------------------


class PixVerseError(Exception):
    """A call to PixVerse that did not succeed.

    err_code and err_msg are the server's ErrCode and ErrMsg where it sent
    them; http_status is the HTTP status; trace_id is the ai-trace-id of the
    request, the handle PixVerse support asks for.
    """

    kind = "api_error"
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        err_code: int | None = None,
        err_msg: str | None = None,
        trace_id: str | None = None,
        http_status: int | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.err_code = err_code
        self.err_msg = err_msg if err_msg is not None else message
        self.trace_id = trace_id
        self.http_status = http_status

    @property
    def outcome_unknown(self) -> bool:
        """Whether the request may have been carried out without our learning of it."""
        return False

    def as_dict(self) -> dict[str, Any]:
        return {
            "error": self.kind,
            "ErrCode": self.err_code,
            "ErrMsg": self.err_msg,
            "trace_id": self.trace_id,
            "http_status": self.http_status,
        }


class InvalidKey(PixVerseError):
    kind = "invalid_key"


class NoCredits(PixVerseError):
    kind = "no_credits"


class ConcurrencyLimit(PixVerseError):
    """The plan's limit of generations running at once: try again later."""

    kind = "concurrency_limit"
    retryable = True


class RateLimited(PixVerseError):
    """PixVerse refused the request for its rate (HTTP 429 or ErrCode 429).

    retry_after is the seconds of the answer's Retry-After header, if it had one.
    """

    kind = "rate_limited"
    retryable = True
    sent = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class SlotUnavailable(RateLimited):
    """Refused here: the key's next request slot is further than max_wait; nothing was sent.

    wait is the seconds until that slot.
    """

    kind = "slot_unavailable"
    sent = False

    def __init__(self, message: str, *, wait: float, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.wait = wait


class InvalidRequest(PixVerseError):
    kind = "invalid_request"


class InvalidImageError(InvalidRequest):
    """Refused by our own check before upload; nothing was sent."""

    kind = "invalid_image"


class InvalidParameters(InvalidRequest):
    """Refused by our own check before sending (api_kinds, catalog); nothing was sent.

    problems are the catalog.ParameterProblem found, field by field.
    """

    kind = "invalid_parameters"

    def __init__(self, problems: list[ParameterProblem], **kwargs: Any):
        message = "; ".join(f"{p.field}: {p.message}" for p in problems)
        super().__init__(message, **kwargs)
        self.problems = problems


class InvalidMediaError(InvalidRequest):
    """A video or audio file refused by our own check before upload; nothing was sent."""

    kind = "invalid_media"


class TemplateRefused(InvalidRequest):
    """The effect template cannot be used: not activated for the account (ErrCode 500070)
    or not at this quality (500071). Activating it is done on the PixVerse platform."""

    kind = "template_refused"


class RouteNotFound(InvalidRequest):
    """The server has no such endpoint (HTTP 404 or 405 without a PixVerse envelope)."""

    kind = "not_found"


class VideoNotFound(InvalidRequest):
    """PixVerse knows no such video, or not for this key: a status read that will not succeed."""

    kind = "video_not_found"


class VideoDeleted(VideoNotFound):
    """The video existed and was deleted (ErrCode 500064); its link is gone too."""

    kind = "video_deleted"


class ModerationFailed(PixVerseError):
    kind = "moderation"


class ServerError(PixVerseError):
    kind = "server_error"
    retryable = True


class MalformedResponse(ServerError):
    """An answer that is not the envelope PixVerse promises."""

    kind = "malformed_response"

    @property
    def outcome_unknown(self) -> bool:
        return True


class GatewayError(ServerError):
    """HTTP 502, 503 or 504 without the envelope: a proxy's page, not PixVerse's answer.

    The request may have reached PixVerse and been carried out behind the proxy.
    """

    kind = "gateway_error"

    @property
    def outcome_unknown(self) -> bool:
        return True


class TransportError(PixVerseError):
    """No answer: connection refused or reset, or a timeout.

    maybe_sent tells whether the request may have reached the server (a read
    timeout, a reset after sending): for a generate call, its outcome is then
    unknown and it must be resent with the same trace id, never a new one.
    """

    kind = "transport_error"
    retryable = True

    def __init__(self, message: str, *, maybe_sent: bool, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.maybe_sent = maybe_sent

    @property
    def outcome_unknown(self) -> bool:
        return self.maybe_sent


# ErrCodes by meaning. The spec's three (401, 403, 500) and the real service's
# six-digit codes (API-NOTES.md; PixVerse's published error table).
AUTH_CODES = {401, 400012}
NO_CREDIT_CODES = {403, 500090}
CONCURRENCY_CODES = {500044}
RATE_LIMIT_CODES = {429}
MODERATION_CODES = {500054, 500063}
# Image refused by PixVerse: too big, unreadable, wrong format or size, bad id.
IMAGE_CODES = {500030, 500031, 500032, 500033, 500042, 400032}
SERVER_CODES = {500, 500041, 500069}
# 500047: the media (video) id is invalid, what the real service answers for an
# unknown or foreign video; 500008: "requested data not found", the sandbox's.
VIDEO_NOT_FOUND_CODES = {500047, 500008}
VIDEO_DELETED_CODES = {500064}
TEMPLATE_CODES = {500070, 500071}
GATEWAY_STATUSES = {502, 503, 504}


def error_for(
    http_status: int, err_code: int | None, err_msg: str | None, trace_id: str
) -> PixVerseError:
    """The typed error for an unsuccessful answer, by ErrCode first, then HTTP status."""
    kwargs = {"err_code": err_code, "err_msg": err_msg, "trace_id": trace_id,
              "http_status": http_status}
    text = err_msg or f"HTTP {http_status}"
    by_code = (
        (AUTH_CODES, InvalidKey),
        (NO_CREDIT_CODES, NoCredits),
        (CONCURRENCY_CODES, ConcurrencyLimit),
        (RATE_LIMIT_CODES, RateLimited),
        (MODERATION_CODES, ModerationFailed),
        (IMAGE_CODES, InvalidRequest),
        (VIDEO_NOT_FOUND_CODES, VideoNotFound),
        (VIDEO_DELETED_CODES, VideoDeleted),
        (TEMPLATE_CODES, TemplateRefused),
        (SERVER_CODES, ServerError),
    )
    for codes, error_class in by_code:
        if err_code in codes:
            return error_class(text, **kwargs)
    if http_status == 401:
        return InvalidKey(text, **kwargs)
    if http_status == 403:
        return NoCredits(text, **kwargs)
    if http_status == 429:
        return RateLimited(text, **kwargs)
    if http_status >= 500:
        return ServerError(text, **kwargs)
    if err_code is not None and 400000 <= err_code < 500000:
        return InvalidRequest(text, **kwargs)
    if err_code is not None and 500000 <= err_code < 600000:
        return ServerError(text, **kwargs)
    if 400 <= http_status < 500:
        return InvalidRequest(text, **kwargs)
    return PixVerseError(text, **kwargs)


# --- Results ----------------------------------------------------------------------


@dataclass(frozen=True)
class Balance:
    account_id: int
    credit_monthly: int
    credit_package: int

    @property
    def total(self) -> int:
        return self.credit_monthly + self.credit_package


@dataclass(frozen=True)
class Submission:
    video_id: int
    trace_id: str
    # What PixVerse says it charged, when its answer says (Resp.credit): it wins
    # over the price list.
    credits: int | None = None


@dataclass(frozen=True)
class UploadedImage:
    img_id: int
    img_url: str | None
    trace_id: str


@dataclass(frozen=True)
class UploadedMedia:
    """An uploaded video or audio, for extend, sound effect and lip sync."""

    media_id: int
    media_type: str | None  # "video" or "audio", as PixVerse says
    url: str | None
    trace_id: str


@dataclass(frozen=True)
class TtsSpeaker:
    """A voice for lip sync's text to speech; its id goes in lip_sync_tts_speaker_id."""

    speaker_id: str
    name: str


@dataclass(frozen=True)
class EffectTemplate:
    """An effect template for text/image generate's template_id.

    qualities and activated are None where the answer does not say.
    """

    template_id: int
    name: str
    qualities: tuple[str, ...] | None = None
    activated: bool | None = None


class VideoState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    MODERATION_FAILED = "moderation_failed"
    DELETED = "deleted"

    @property
    def is_final(self) -> bool:
        return self is not VideoState.RUNNING


@dataclass(frozen=True)
class VideoResult:
    """One status read, normalised across the spec's and the real dialect."""

    video_id: int
    state: VideoState
    url: str | None
    raw_status: int | str | None
    endpoint: str  # "status" (the spec's) or "result" (the real service's)
    trace_id: str
    details: dict[str, Any] = field(default_factory=dict)


# The real service's numeric statuses. Anything else is still running.
_NUMERIC_STATES = {
    1: VideoState.DONE,
    5: VideoState.RUNNING,
    6: VideoState.DELETED,
    7: VideoState.MODERATION_FAILED,
    8: VideoState.FAILED,
    9: VideoState.RUNNING,
    10: VideoState.RUNNING,
}
# The spec shows only "done"; these are the words such APIs use for the rest.
_WORD_STATES = {
    "done": VideoState.DONE,
    "success": VideoState.DONE,
    "succeeded": VideoState.DONE,
    "completed": VideoState.DONE,
    "failed": VideoState.FAILED,
    "failure": VideoState.FAILED,
    "error": VideoState.FAILED,
    "moderation_failed": VideoState.MODERATION_FAILED,
    "moderation": VideoState.MODERATION_FAILED,
    "blocked": VideoState.MODERATION_FAILED,
    "deleted": VideoState.DELETED,
}


def normalise_state(raw: Any) -> VideoState:
    if isinstance(raw, bool):
        return VideoState.RUNNING
    if isinstance(raw, int):
        return _NUMERIC_STATES.get(raw, VideoState.RUNNING)
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word.isdigit():
            return _NUMERIC_STATES.get(int(word), VideoState.RUNNING)
        return _WORD_STATES.get(word, VideoState.RUNNING)
    return VideoState.RUNNING


# --- Requests ---------------------------------------------------------------------


class _Body:
    """A request whose as_json sends only the fields that are set."""

    def as_json(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if value not in (None, "")}


@dataclass(frozen=True)
class VideoRequest(_Body):
    """The parameters of one text or image generation; optional ones are sent only when set.

    template_id is an effect template (see effect_templates); camera_movement
    (older models) does not go with a template; sound_effect_switch with
    sound_effect_content adds a generated sound (+10 credits per 5 s).
    """

    prompt: str
    duration: int
    quality: str
    model: str | None = None
    aspect_ratio: str | None = None
    motion_mode: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    style: str | None = None
    water_mark: bool | None = None
    template_id: int | None = None
    camera_movement: str | None = None
    sound_effect_switch: bool | None = None
    sound_effect_content: str | None = None
    generate_audio_switch: bool | None = None
    generate_multi_clip_switch: bool | None = None
    thinking_type: str | None = None


@dataclass(frozen=True)
class TransitionRequest(_Body):
    """A video from one uploaded image (first frame) to another (last frame)."""

    prompt: str
    first_frame_img: int
    last_frame_img: int
    duration: int
    quality: str
    model: str = DEFAULT_MODEL
    negative_prompt: str | None = None
    seed: int | None = None
    motion_mode: str | None = None


@dataclass(frozen=True)
class ExtendRequest(_Body):
    """More of a video: exactly one of source_video_id (PixVerse's) or video_media_id (uploaded)."""

    prompt: str
    duration: int
    quality: str
    source_video_id: int | None = None
    video_media_id: int | None = None
    model: str = DEFAULT_MODEL
    negative_prompt: str | None = None
    seed: int | None = None
    motion_mode: str | None = None
    style: str | None = None


@dataclass(frozen=True)
class SoundEffectRequest(_Body):
    """A generated sound for a video; original_sound_switch keeps the video's own audio."""

    sound_effect_content: str
    source_video_id: int | None = None
    video_media_id: int | None = None
    original_sound_switch: bool | None = None
    seed: int | None = None


@dataclass(frozen=True)
class LipSyncRequest(_Body):
    """A video's lips moved to speech: audio_media_id, or a TTS speaker and text."""

    source_video_id: int | None = None
    video_media_id: int | None = None
    audio_media_id: int | None = None
    lip_sync_tts_speaker_id: str | None = None
    lip_sync_tts_content: str | None = None


@dataclass(frozen=True)
class ImageReference:
    """One image of a fusion: a "subject" or the "background", named in the prompt as @ref_name."""

    type: str
    img_id: int
    ref_name: str


@dataclass(frozen=True)
class FusionRequest(_Body):
    """A video made of 1 to 3 uploaded images, each named in the prompt as @ref_name."""

    image_references: tuple[ImageReference, ...]
    prompt: str
    duration: int
    quality: str
    aspect_ratio: str
    model: str = api_kinds.FUSION_MODELS[0]
    negative_prompt: str | None = None
    seed: int | None = None

    def as_json(self) -> dict[str, Any]:
        body = super().as_json()
        body["image_references"] = [asdict(reference) for reference in self.image_references]
        return body


# Which status endpoint each base URL answers ("status" or "result"), and which
# TTS speaker list ("tts_list" or "tts_speaker"): learned once per deployment where
# the cache is shared (Redis), else once per process. Each process keeps what it
# learned or read, so the cache is asked once per base URL, not on every read.
_status_endpoints: dict[str, str] = {}
_speaker_endpoints: dict[str, str] = {}
_learned_endpoints = {"status": _status_endpoints, "speakers": _speaker_endpoints}
# A day: a service that gains /video/status is asked again, at one call's cost.
STATUS_ENDPOINT_TTL = 24 * 3600


def _endpoint_cache_key(base_url: str, call: str = "status") -> str:
    return f"pixverse:{call}-endpoint:" + hashlib.sha256(base_url.encode()).hexdigest()[:32]


def _known_endpoint(base_url: str, call: str = "status") -> str | None:
    learned = _learned_endpoints[call]
    known = learned.get(base_url)
    if known is None:
        known = cache.get(_endpoint_cache_key(base_url, call))
        if known is not None:
            learned[base_url] = known
    return known


def _learn_endpoint(base_url: str, endpoint: str, call: str = "status") -> None:
    _learned_endpoints[call][base_url] = endpoint
    cache.set(_endpoint_cache_key(base_url, call), endpoint, STATUS_ENDPOINT_TTL)


def _as_id(value: Any) -> int:
    """A 64-bit PixVerse id, which may come as a number or a numeric string."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ValueError(value)


def _charged(value: Any) -> int | None:
    """A submit answer's price (a number or a numeric string), None when absent or odd."""
    if isinstance(value, bool):
        return None
    try:
        credits = int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None
    return credits if credits >= 0 else None


def _may_have_been_sent(error: requests.RequestException) -> bool:
    if isinstance(error, requests.ConnectTimeout):
        return False
    if isinstance(error, requests.ConnectionError):
        # Refused or unresolvable: the request never left. A reset or an
        # abort after connecting may have delivered it.
        reason = str(error)
        return not any(
            marker in reason
            for marker in ("NewConnectionError", "NameResolutionError", "Connection refused")
        )
    return True


def _retry_after(response: requests.Response) -> float | None:
    """Retry-After in seconds; None without one, or for the HTTP-date form."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if 0 <= seconds < float("inf") else None


def _refuse(problems: list[ParameterProblem], trace_id: str) -> None:
    if problems:
        raise InvalidParameters(problems, trace_id=trace_id)


def _video_problems(body: dict[str, Any]) -> list[ParameterProblem]:
    """What the chosen model refuses in a text or image generate call (catalog), and its extras."""
    with translation.override("en"):
        return catalog.check_parameters(body) + api_kinds.check_video_extras(body)


# The TTS speaker list's two routes (API-NOTES.md, 3.1): older first.
SPEAKER_PATHS = {"tts_list": "/video/lip_sync/tts_list", "tts_speaker": "/video/tts_speaker"}


def _items(resp: Any, trace_id: str) -> list[Any]:
    """A list call's items: the Resp itself, or its list, data or items."""
    if isinstance(resp, list):
        return resp
    for name in ("list", "data", "items"):
        if isinstance(resp.get(name), list):
            return resp[name]
    raise MalformedResponse("The list answer has no list.", trace_id=trace_id)


class PixVerseClient:
    """A PixVerse API client for one key.

    max_wait bounds how long a call may wait for its rate-limit slot: a web
    request passes a few seconds and gets SlotUnavailable rather than hanging.
    """

    @sensitive_variables("api_key")
    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        max_wait: float | None = None,
        session: requests.Session | None = None,
        check: bool = True,
    ):
        api_key = (api_key or "").strip()
        if not api_key:
            raise InvalidKey("No PixVerse API key was given.")
        # A header takes printable ASCII only; a zero-width space or a look-alike
        # letter pasted with the key would otherwise crash deep inside http.client.
        if not (api_key.isascii() and api_key.isprintable()):
            raise InvalidKey(
                "The API key contains characters that cannot be sent in an HTTP header; "
                "copy it again from the PixVerse platform."
            )
        self._api_key = api_key
        self.base_url = (base_url or settings.PIXVERSE_BASE_URL).rstrip("/")
        self.max_wait = max_wait
        self._session = session or requests.Session()
        # Refuse what PixVerse would refuse before sending (it costs no rate-limit slot);
        # off only to see a server's own refusals (the sandbox's contract tests).
        self.check = check

    def __repr__(self) -> str:
        return f"<PixVerseClient {self.base_url} key …{self._api_key[-4:]}>"

    # The five calls of the spec ----------------------------------------------

    def balance(self, *, read_timeout: float | None = None) -> Balance:
        """The account's credits; read_timeout (seconds) overrides PIXVERSE_READ_TIMEOUT."""
        resp, _ = self._call("GET", "/account/balance", read_timeout=read_timeout)
        try:
            return Balance(
                account_id=_as_id(resp["account_id"]),
                credit_monthly=int(resp.get("credit_monthly") or 0),
                credit_package=int(resp.get("credit_package") or 0),
            )
        except (KeyError, TypeError, ValueError):
            raise MalformedResponse("The balance answer lacks its fields.") from None

    def text_to_video(self, request: VideoRequest, *, trace_id: str) -> Submission:
        body = request.as_json()
        if self.check:
            _refuse(_video_problems(body), trace_id)
        return self._generate("/video/text/generate", body, trace_id)

    def upload_image(self, data: bytes) -> UploadedImage:
        try:
            info = check_image(data)
        except InvalidImage as e:
            raise InvalidImageError(e.message, err_msg=e.message) from None
        files = {"image": (f"image.{info.extension}", data, info.content_type)}
        resp, trace_id = self._call("POST", "/image/upload", files=files)
        try:
            return UploadedImage(
                img_id=_as_id(resp["img_id"]), img_url=resp.get("img_url"), trace_id=trace_id
            )
        except (KeyError, ValueError):
            raise MalformedResponse("The upload answer has no img_id.", trace_id=trace_id) from None

    def image_to_video(
        self, img_id: int, request: VideoRequest, *, trace_id: str
    ) -> Submission:
        body = {"img_id": img_id, **request.as_json()}
        # Aspect ratio follows the image; the image call does not take it.
        body.pop("aspect_ratio", None)
        if self.check:
            _refuse(_video_problems(body), trace_id)
        return self._generate("/video/img/generate", body, trace_id)

    def video_status(self, video_id: int) -> VideoResult:
        """Read one video's state, from whichever status endpoint the server has.

        PIXVERSE_STATUS_ENDPOINT "auto" asks the spec's /video/status unless
        /video/result/{id} is known to answer for this base URL. When
        /video/status answers 404 (with or without the envelope: how a server
        says "no such route" is not documented) or 405, the same call tries
        /video/result/{id} once. The endpoint that answers is remembered (see
        _status_endpoints). When neither knows the video, VideoNotFound.
        The forced modes "status" and "result" ask only that endpoint.
        """
        mode = settings.PIXVERSE_STATUS_ENDPOINT
        known = _known_endpoint(self.base_url) if mode == "auto" else None
        if (known or mode) == "result":
            return self._read_video_result(video_id)
        try:
            resp, trace_id = self._call(
                "GET", "/video/status", params={"video_id": str(video_id)},
                read_timeout=settings.PIXVERSE_STATUS_READ_TIMEOUT,
            )
        except PixVerseError as e:
            if mode != "auto" or e.http_status not in (404, 405):
                raise
            status_error = e
        else:
            if mode == "auto" and known is None:
                _learn_endpoint(self.base_url, "status")
            return self._video_result(video_id, resp, "status", trace_id)

        # An error envelope from /video/result (500047 for an unknown id) is
        # raised as it is, and teaches nothing about the routes.
        try:
            result = self._read_video_result(video_id)
        except RouteNotFound:
            # Neither route knows the video. An enveloped 404 came from a
            # /video/status that exists; a bare one may be anybody's.
            enveloped = not isinstance(status_error, RouteNotFound)
            if enveloped and status_error.http_status == 404 and known != "status":
                _learn_endpoint(self.base_url, "status")
            if isinstance(status_error, VideoNotFound):
                raise status_error from None
            raise VideoNotFound(
                f"PixVerse has no video {video_id}.",
                err_code=status_error.err_code,
                err_msg=status_error.err_msg if enveloped else None,
                trace_id=status_error.trace_id, http_status=status_error.http_status,
            ) from None
        logger.info("%s answers /video/result, not /video/status", self.base_url)
        _learn_endpoint(self.base_url, "result")
        return result

    # The real platform's other calls (API-NOTES.md, section 3) ------------------
    #
    # Each generate call is checked here first (api_kinds): a refused one raises
    # InvalidParameters and costs no request and no rate-limit slot.

    def transition(self, request: TransitionRequest, *, trace_id: str) -> Submission:
        return self._generate_kind("transition", request.as_json(), trace_id)

    def extend(self, request: ExtendRequest, *, trace_id: str) -> Submission:
        return self._generate_kind("extend", request.as_json(), trace_id)

    def sound_effect(self, request: SoundEffectRequest, *, trace_id: str) -> Submission:
        return self._generate_kind("sound_effect", request.as_json(), trace_id)

    def lip_sync(self, request: LipSyncRequest, *, trace_id: str) -> Submission:
        return self._generate_kind("lip_sync", request.as_json(), trace_id)

    def fusion(self, request: FusionRequest, *, trace_id: str) -> Submission:
        return self._generate_kind("fusion", request.as_json(), trace_id)

    def upload_media(self, data: bytes, filename: str) -> UploadedMedia:
        """Upload a video (MP4, MOV, WebM) or audio (MP3, WAV, M4A, AAC) for the media calls.

        The type is told from the content; filename is only the name sent with it.
        """
        try:
            facts = probe_media(data)
        except UnreadableMedia as e:
            message = f"PixVerse takes MP4, MOV or WebM video and MP3, WAV, M4A or AAC audio ({e})."
            raise InvalidMediaError(message, err_msg=message) from None
        longest = max(facts.width or 0, facts.height or 0)
        if longest > api_kinds.MEDIA_MAX_SIDE:
            message = (f"The video is {facts.width}x{facts.height} px; PixVerse takes at most "
                       f"{api_kinds.MEDIA_MAX_SIDE} px a side.")
            raise InvalidMediaError(message, err_msg=message)
        name = filename.replace("\\", "/").rsplit("/", 1)[-1] or f"media.{facts.format}"
        files = {"file": (name, data, facts.content_type)}
        resp, trace_id = self._call("POST", "/media/upload", files=files)
        try:
            return UploadedMedia(media_id=_as_id(resp["media_id"]),
                                 media_type=resp.get("media_type") or None,
                                 url=resp.get("url") or None, trace_id=trace_id)
        except (KeyError, ValueError):
            raise MalformedResponse("The upload answer has no media_id.", trace_id=trace_id) from None

    def tts_speakers(self) -> list[TtsSpeaker]:
        """The voices for lip sync's text to speech.

        The older route is /video/lip_sync/tts_list, newer docs name
        /video/tts_speaker: a 404 (with or without the envelope) or 405 on one
        tries the other once in the same call, and the one that answers is
        learned for the base URL, as video_status learns its route.
        """
        first = _known_endpoint(self.base_url, "speakers") or "tts_list"
        try:
            resp, trace_id = self._call("GET", SPEAKER_PATHS[first], list_answer=True)
            answered = first
        except PixVerseError as e:
            if e.http_status not in (404, 405):
                raise
            answered = "tts_speaker" if first == "tts_list" else "tts_list"
            resp, trace_id = self._call("GET", SPEAKER_PATHS[answered], list_answer=True)
        if answered != first or _known_endpoint(self.base_url, "speakers") is None:
            _learn_endpoint(self.base_url, answered, "speakers")
        speakers = []
        for item in _items(resp, trace_id):
            raw_id = item.get("speaker_id", item.get("id")) if isinstance(item, dict) else None
            if raw_id in (None, "") or isinstance(raw_id, bool):
                raise MalformedResponse("A speaker has no speaker_id.", trace_id=trace_id)
            speakers.append(TtsSpeaker(speaker_id=str(raw_id),
                                       name=str(item.get("name") or raw_id)))
        return speakers

    def effect_templates(self) -> list[EffectTemplate]:
        """The effect templates the account can name in template_id."""
        resp, trace_id = self._call("GET", "/video/effects/templates/list", list_answer=True)
        templates = []
        for item in _items(resp, trace_id):
            try:
                template_id = _as_id(item.get("template_id", item.get("id")))
            except (AttributeError, ValueError):
                raise MalformedResponse("A template has no template_id.", trace_id=trace_id) from None
            qualities = item.get("qualities")
            activated = item.get("activated")
            templates.append(EffectTemplate(
                template_id=template_id,
                name=str(item.get("name") or item.get("template_name") or template_id),
                qualities=tuple(str(q) for q in qualities) if isinstance(qualities, list) else None,
                activated=activated if isinstance(activated, bool) else None,
            ))
        return templates

    # Plumbing ------------------------------------------------------------------

    def _generate_kind(self, kind: str, body: dict[str, Any], trace_id: str) -> Submission:
        if not trace_id:
            raise ValueError("A generate call needs the trace id chosen for its submission.")
        if self.check:
            with translation.override("en"):
                _refuse(api_kinds.problems(kind, body), trace_id)
        return self._generate(api_kinds.KINDS[kind].path, body, trace_id)

    def _generate(self, path: str, body: dict[str, Any], trace_id: str) -> Submission:
        if not trace_id:
            raise ValueError("A generate call needs the trace id chosen for its submission.")
        resp, _ = self._call("POST", path, json=body, trace_id=trace_id)
        try:
            return Submission(video_id=_as_id(resp["video_id"]), trace_id=trace_id,
                              credits=_charged(resp.get("credit")))
        except (KeyError, ValueError):
            raise MalformedResponse(
                "The generate answer has no video_id.", trace_id=trace_id
            ) from None

    def _read_video_result(self, video_id: int) -> VideoResult:
        resp, trace_id = self._call(
            "GET", f"/video/result/{video_id}",
            read_timeout=settings.PIXVERSE_STATUS_READ_TIMEOUT,
        )
        return self._video_result(video_id, resp, "result", trace_id)

    def _video_result(
        self, video_id: int, resp: dict[str, Any], endpoint: str, trace_id: str
    ) -> VideoResult:
        if "status" not in resp:
            raise MalformedResponse("The status answer has no status.", trace_id=trace_id)
        raw = resp["status"]
        state = normalise_state(raw)
        url = resp.get("video_url") or resp.get("url") or None
        if state is VideoState.DONE and not (isinstance(url, str) and url.startswith("http")):
            raise MalformedResponse("The video is done but has no URL.", trace_id=trace_id)
        details = {
            name: resp[name]
            for name in ("outputWidth", "outputHeight", "seed", "size", "create_time",
                         "modify_time", "prompt", "has_audio")
            if name in resp
        }
        return VideoResult(
            video_id=video_id, state=state, url=url if isinstance(url, str) else None,
            raw_status=raw, endpoint=endpoint, trace_id=trace_id, details=details,
        )

    # Error pages list a frame's locals; the headers hold the key.
    @sensitive_variables("headers")
    def _call(
        self,
        method: str,
        path: str,
        *,
        trace_id: str | None = None,
        json: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        read_timeout: float | None = None,
        list_answer: bool = False,
    ) -> tuple[Any, str]:
        """Send one request and return its Resp and trace id, or raise PixVerseError.

        read_timeout is the seconds to wait for the answer, PIXVERSE_READ_TIMEOUT by default.
        list_answer: the Resp may be a list (a list call), not only an object.
        """
        trace_id = trace_id or str(uuid.uuid4())
        headers = {"API-KEY": self._api_key, "ai-trace-id": trace_id, "Accept": "application/json"}
        url = f"{self.base_url}{API_PREFIX}{path}"
        # Encoded before the slot (an image's multipart body can take a while), so that
        # the request leaves as close to its slot as it can: the 1 s is counted at arrival.
        prepared = self._session.prepare_request(requests.Request(
            method, url, headers=headers, json=json, files=files, params=params))
        send_settings = self._session.merge_environment_settings(prepared.url, {}, None, None, None)
        try:
            ratelimit.wait_for_slot(self._api_key, max_wait=self.max_wait)
        except ratelimit.SlotTooFar as e:
            raise SlotUnavailable(
                f"Too many requests with this key right now; try again in {e.wait:.0f} s.",
                wait=e.wait, trace_id=trace_id,
            ) from None
        if read_timeout is None:
            read_timeout = settings.PIXVERSE_READ_TIMEOUT
        started = time.monotonic()
        try:
            response = self._session.send(
                prepared, timeout=(settings.PIXVERSE_CONNECT_TIMEOUT, read_timeout), **send_settings)
        except requests.RequestException as e:
            logger.warning(
                "pixverse %s %s failed: %s trace_id=%s", method, path, type(e).__name__, trace_id
            )
            raise TransportError(
                f"No answer from PixVerse ({type(e).__name__}).",
                maybe_sent=_may_have_been_sent(e), trace_id=trace_id,
            ) from None
        logger.info(
            "pixverse %s %s -> %s in %.0f ms trace_id=%s", method, path,
            response.status_code, (time.monotonic() - started) * 1000, trace_id,
        )
        try:
            return self._unwrap(response, trace_id, list_answer), trace_id
        except RateLimited as e:
            e.retry_after = _retry_after(response)
            raise

    @staticmethod
    def _unwrap(response: requests.Response, trace_id: str, list_answer: bool = False) -> Any:
        status = response.status_code
        try:
            body = response.json()
        except (ValueError, RecursionError):  # not JSON, or nested too deep to read
            body = None
        if not isinstance(body, dict) or "ErrCode" not in body:
            if status in (404, 405):
                raise RouteNotFound(
                    f"PixVerse has no {response.request.path_url.split('?')[0]}.",
                    trace_id=trace_id, http_status=status,
                )
            if status in GATEWAY_STATUSES:
                raise GatewayError(
                    f"HTTP {status} {response.reason or ''}".strip(),
                    trace_id=trace_id, http_status=status,
                )
            if status >= 400:
                raise error_for(status, None, f"HTTP {status} {response.reason or ''}".strip(),
                                trace_id)
            raise MalformedResponse(
                "PixVerse answered with something that is not its JSON envelope.",
                trace_id=trace_id, http_status=status,
            )
        try:
            err_code = int(body["ErrCode"])
        except (TypeError, ValueError):
            raise MalformedResponse(
                "PixVerse answered with an ErrCode that is not a number.",
                trace_id=trace_id, http_status=status,
            ) from None
        err_msg = body.get("ErrMsg")
        err_msg = str(err_msg) if err_msg is not None else None
        if err_code != 0 or status >= 400:
            raise error_for(status, err_code or None, err_msg, trace_id)
        resp = body.get("Resp")
        if not isinstance(resp, dict) and not (list_answer and isinstance(resp, list)):
            raise MalformedResponse(
                "PixVerse answered success without a Resp object.",
                trace_id=trace_id, http_status=status,
            )
        return resp
