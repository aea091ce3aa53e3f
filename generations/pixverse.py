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
  proxy's page rather than PixVerse's answer.

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
from django.views.decorators.debug import sensitive_variables

from generations import ratelimit
from generations.images import InvalidImage, check_image

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


@dataclass(frozen=True)
class VideoRequest:
    """The parameters of one generation; optional ones are sent only when set."""

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
    camera_movement: str | None = None
    generate_audio_switch: bool | None = None
    generate_multi_clip_switch: bool | None = None
    thinking_type: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if value not in (None, "")}


# Which status endpoint each base URL answers: learned once per deployment where
# the cache is shared (Redis), else once per process. Each process keeps what it
# learned or read, so the cache is asked once per base URL, not on every read.
_status_endpoints: dict[str, str] = {}
# A day: a service that gains /video/status is asked again, at one call's cost.
STATUS_ENDPOINT_TTL = 24 * 3600


def _endpoint_cache_key(base_url: str) -> str:
    return "pixverse:status-endpoint:" + hashlib.sha256(base_url.encode()).hexdigest()[:32]


def _known_status_endpoint(base_url: str) -> str | None:
    known = _status_endpoints.get(base_url)
    if known is None:
        known = cache.get(_endpoint_cache_key(base_url))
        if known is not None:
            _status_endpoints[base_url] = known
    return known


def _learn_status_endpoint(base_url: str, endpoint: str) -> None:
    _status_endpoints[base_url] = endpoint
    cache.set(_endpoint_cache_key(base_url), endpoint, STATUS_ENDPOINT_TTL)


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
        return self._generate("/video/text/generate", request.as_json(), trace_id)

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
        known = _known_status_endpoint(self.base_url) if mode == "auto" else None
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
                _learn_status_endpoint(self.base_url, "status")
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
                _learn_status_endpoint(self.base_url, "status")
            if isinstance(status_error, VideoNotFound):
                raise status_error from None
            raise VideoNotFound(
                f"PixVerse has no video {video_id}.",
                err_code=status_error.err_code,
                err_msg=status_error.err_msg if enveloped else None,
                trace_id=status_error.trace_id, http_status=status_error.http_status,
            ) from None
        logger.info("%s answers /video/result, not /video/status", self.base_url)
        _learn_status_endpoint(self.base_url, "result")
        return result

    # Plumbing ------------------------------------------------------------------

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
                         "modify_time", "prompt")
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
    ) -> tuple[dict[str, Any], str]:
        """Send one request and return its Resp and trace id, or raise PixVerseError.

        read_timeout is the seconds to wait for the answer, PIXVERSE_READ_TIMEOUT by default.
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
            return self._unwrap(response, trace_id), trace_id
        except RateLimited as e:
            e.retry_after = _retry_after(response)
            raise

    @staticmethod
    def _unwrap(response: requests.Response, trace_id: str) -> dict[str, Any]:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
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
        if not isinstance(resp, dict):
            raise MalformedResponse(
                "PixVerse answered success without a Resp object.",
                trace_id=trace_id, http_status=status,
            )
        return resp
