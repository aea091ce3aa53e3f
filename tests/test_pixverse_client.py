"""PixVerseClient against `responses`: every call, header, error mapping and dialect."""

import io
import json
import uuid

import pytest
import requests
import responses
from django.core.cache import cache
from PIL import Image
from responses import matchers

from generations import pixverse, ratelimit
from generations.pixverse import (
    Balance,
    ConcurrencyLimit,
    GatewayError,
    InvalidImageError,
    InvalidKey,
    InvalidParameters,
    InvalidRequest,
    MalformedResponse,
    ModerationFailed,
    NoCredits,
    PixVerseClient,
    PixVerseError,
    RateLimited,
    RouteNotFound,
    ServerError,
    SlotUnavailable,
    TransportError,
    VideoDeleted,
    VideoNotFound,
    VideoRequest,
    VideoState,
)

BASE = "https://pixverse.test/openapi/v2"
KEY = "sk-test-0123456789abcdef"


def ok(resp):
    return {"ErrCode": 0, "ErrMsg": "success", "Resp": resp}


def png_bytes(width=64, height=48):
    out = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def client():
    return PixVerseClient(KEY)


@pytest.fixture
def api():
    with responses.RequestsMock() as rsps:
        yield rsps


# --- The five calls -------------------------------------------------------------------


def test_it_reads_the_balance(client, api):
    api.get(f"{BASE}/account/balance",
            json=ok({"account_id": 12345678, "credit_monthly": 100, "credit_package": 500}))
    balance = client.balance()
    assert balance == Balance(account_id=12345678, credit_monthly=100, credit_package=500)
    assert balance.total == 600


def test_it_starts_a_text_to_video_generation_with_only_the_parameters_set(client, api):
    api.post(f"{BASE}/video/text/generate", json=ok({"video_id": 123456789}),
             match=[matchers.json_params_matcher(
                 {"prompt": "A wolf in the snow", "duration": 5, "quality": "360p"})])
    submission = client.text_to_video(
        VideoRequest(prompt="A wolf in the snow", duration=5, quality="360p"), trace_id="t-1"
    )
    assert submission.video_id == 123456789
    assert submission.trace_id == "t-1"


def test_it_sends_every_real_optional_parameter_when_set(client, api):
    full = {"prompt": "p", "duration": 5, "quality": "540p", "model": "v5", "aspect_ratio": "9:16",
            "motion_mode": "fast", "negative_prompt": "blur", "seed": 0, "style": "anime",
            "water_mark": False}
    api.post(f"{BASE}/video/text/generate", json=ok({"video_id": 1}),
             match=[matchers.json_params_matcher(full)])
    client.text_to_video(VideoRequest(**full), trace_id="t")


def test_it_uploads_an_image_as_multipart_field_image(client, api):
    api.post(f"{BASE}/image/upload", json=ok({"img_id": 987654321, "img_url": "https://x/i.png"}))
    uploaded = client.upload_image(png_bytes())
    assert uploaded.img_id == 987654321
    assert uploaded.img_url == "https://x/i.png"
    sent = api.calls[0].request
    assert sent.headers["Content-Type"].startswith("multipart/form-data")
    assert b'name="image"; filename="image.png"' in sent.body
    assert b"Content-Type: image/png" in sent.body


def test_it_refuses_a_bad_image_before_sending_anything(client, api):
    with pytest.raises(InvalidImageError) as caught:
        client.upload_image(b"GIF89a not really")
    assert "JPEG, PNG or WebP" in caught.value.err_msg
    assert len(api.calls) == 0


def test_it_starts_an_image_to_video_generation(client, api):
    api.post(f"{BASE}/video/img/generate", json=ok({"video_id": 55}),
             match=[matchers.json_params_matcher(
                 {"img_id": 987654321, "prompt": "A magical forest", "duration": 5,
                  "quality": "540p"})])
    submission = client.image_to_video(
        987654321,
        VideoRequest(prompt="A magical forest", duration=5, quality="540p", aspect_ratio="16:9"),
        trace_id="t-2",
    )
    assert submission.video_id == 55


def test_it_keeps_64_bit_ids_exact(client, api):
    big = 2**63 - 1
    api.post(f"{BASE}/video/text/generate", json=ok({"video_id": big}))
    assert client.text_to_video(VideoRequest("p", 5, "360p"), trace_id="t").video_id == big


# --- Headers ------------------------------------------------------------------------


def test_it_sends_the_key_and_a_fresh_uuid_trace_id_on_every_request(client, api):
    api.get(f"{BASE}/account/balance",
            json=ok({"account_id": 1, "credit_monthly": 0, "credit_package": 0}))
    client.balance()
    client.balance()
    trace_ids = [call.request.headers["ai-trace-id"] for call in api.calls]
    for call in api.calls:
        assert call.request.headers["API-KEY"] == KEY
    assert all(uuid.UUID(t).version == 4 for t in trace_ids)
    assert trace_ids[0] != trace_ids[1]


def test_a_generate_call_sends_the_trace_id_its_caller_chose(client, api):
    api.post(f"{BASE}/video/text/generate", json=ok({"video_id": 1}))
    chosen = str(uuid.uuid4())
    client.text_to_video(VideoRequest("p", 5, "360p"), trace_id=chosen)
    client.text_to_video(VideoRequest("p", 5, "360p"), trace_id=chosen)
    assert [c.request.headers["ai-trace-id"] for c in api.calls] == [chosen, chosen]


def test_a_generate_call_needs_a_trace_id(client):
    with pytest.raises(ValueError):
        client.text_to_video(VideoRequest("p", 5, "360p"), trace_id="")


def test_a_generate_call_is_not_retried_after_a_server_error(client, api):
    api.post(f"{BASE}/video/text/generate", status=503, body="busy")
    with pytest.raises(ServerError) as caught:
        client.text_to_video(VideoRequest("p", 5, "360p"), trace_id="t-once")
    assert caught.value.trace_id == "t-once"
    assert len(api.calls) == 1


def test_the_key_is_not_in_the_repr_or_errors_or_logs(client, api, caplog):
    caplog.set_level("DEBUG")
    api.get(f"{BASE}/account/balance", json={"ErrCode": 401, "ErrMsg": "Invalid API Key"},
            status=401)
    with pytest.raises(InvalidKey) as caught:
        client.balance()
    assert KEY not in repr(client)
    assert KEY[-4:] in repr(client)
    assert KEY not in str(caught.value) and KEY not in json.dumps(caught.value.as_dict())
    assert KEY not in caplog.text


# --- Status, both dialects -----------------------------------------------------------


@pytest.mark.parametrize(("raw", "state"), [
    ("done", VideoState.DONE), ("pending", VideoState.RUNNING),
    ("generating", VideoState.RUNNING), ("failed", VideoState.FAILED),
    ("moderation_failed", VideoState.MODERATION_FAILED), ("deleted", VideoState.DELETED),
    ("something-new", VideoState.RUNNING),
])
def test_it_reads_the_spec_status_call(client, api, raw, state):
    url = "https://cdn.test/v.mp4" if state is VideoState.DONE else ""
    api.get(f"{BASE}/video/status", json=ok({"status": raw, "video_url": url}),
            match=[matchers.query_param_matcher({"video_id": "123456789"})])
    result = client.video_status(123456789)
    assert result.state is state
    assert result.endpoint == "status"
    assert result.raw_status == raw
    if state is VideoState.DONE:
        assert result.url == url


@pytest.mark.parametrize(("raw", "state"), [
    (1, VideoState.DONE), (5, VideoState.RUNNING), (6, VideoState.DELETED),
    (7, VideoState.MODERATION_FAILED), (8, VideoState.FAILED), (9, VideoState.RUNNING),
    (10, VideoState.RUNNING), (42, VideoState.RUNNING),
])
def test_it_reads_the_real_result_call(client, api, settings, raw, state):
    settings.PIXVERSE_STATUS_ENDPOINT = "result"
    api.get(f"{BASE}/video/result/77", json=ok({
        "id": 77, "status": raw, "url": "https://cdn.test/77.mp4" if raw == 1 else "",
        "outputWidth": 640, "outputHeight": 360, "seed": 3}))
    result = client.video_status(77)
    assert result.state is state
    assert result.endpoint == "result"
    assert result.details["outputWidth"] == 640
    if raw == 1:
        assert result.url == "https://cdn.test/77.mp4"


def test_it_falls_back_to_the_real_endpoint_once_and_remembers_it(client, api):
    api.get(f"{BASE}/video/status", status=404, body="404 page not found")
    api.get(f"{BASE}/video/result/5", json=ok({"status": 5, "url": ""}))
    assert client.video_status(5).endpoint == "result"
    assert client.video_status(5).endpoint == "result"
    paths = [c.request.path_url.split("?")[0] for c in api.calls]
    assert paths == ["/openapi/v2/video/status", "/openapi/v2/video/result/5",
                     "/openapi/v2/video/result/5"]
    # Another base URL learns for itself.
    assert pixverse._status_endpoints == {"https://pixverse.test": "result"}


def test_what_one_process_learned_of_the_status_endpoint_the_others_read(client, api):
    api.get(f"{BASE}/video/status", status=404, body="404 page not found")
    api.get(f"{BASE}/video/result/5", json=ok({"status": 5, "url": ""}))
    client.video_status(5)
    # Another worker process: nothing learned in its memory, the same cache (Redis).
    pixverse._status_endpoints.clear()
    assert client.video_status(5).endpoint == "result"
    paths = [c.request.path_url.split("?")[0] for c in api.calls]
    assert paths == ["/openapi/v2/video/status", "/openapi/v2/video/result/5",
                     "/openapi/v2/video/result/5"]
    # It keeps what it read, so later reads do not ask the cache again.
    cache.clear()
    assert client.video_status(5).endpoint == "result"
    assert len(api.calls) == 4
    assert api.calls[-1].request.path_url == "/openapi/v2/video/result/5"


def paths(api):
    return [c.request.path_url.split("?")[0] for c in api.calls]


STATUS, RESULT_5 = "/openapi/v2/video/status", "/openapi/v2/video/result/5"


@pytest.mark.parametrize(("http_status", "body"), [
    (404, {"ErrCode": 500008, "ErrMsg": "Requested data not found"}),
    (404, {"ErrCode": 400017, "ErrMsg": "Invalid parameter"}),
    (404, {"ErrCode": 500, "ErrMsg": "Not Found"}),
    (405, {"ErrCode": 405, "ErrMsg": "Method Not Allowed"}),
])
def test_any_404_or_405_on_the_spec_route_tries_the_real_one(client, api, http_status, body):
    api.get(f"{BASE}/video/status", status=http_status, json=body)
    api.get(f"{BASE}/video/result/5", json=ok({"status": 5, "url": ""}))
    assert client.video_status(5).endpoint == "result"
    assert client.video_status(5).endpoint == "result"
    assert paths(api) == [STATUS, RESULT_5, RESULT_5]
    assert pixverse._status_endpoints == {"https://pixverse.test": "result"}


def test_a_video_neither_route_knows_is_not_found_and_the_enveloped_route_is_learned(client, api):
    api.get(f"{BASE}/video/status", status=404,
            json={"ErrCode": 400017, "ErrMsg": "no such video"})
    api.get(f"{BASE}/video/result/5", status=404, body="404 page not found")
    with pytest.raises(VideoNotFound) as caught:
        client.video_status(5)
    error = caught.value
    assert type(error) is VideoNotFound
    assert (error.err_code, error.err_msg, error.http_status) == (400017, "no such video", 404)
    assert error.trace_id == api.calls[0].request.headers["ai-trace-id"]
    assert pixverse._status_endpoints == {"https://pixverse.test": "status"}
    # The route is known to exist, but a 404 from it still earns the one other try.
    with pytest.raises(VideoNotFound):
        client.video_status(5)
    assert paths(api) == [STATUS, RESULT_5, STATUS, RESULT_5]


def test_an_enveloped_not_found_keeps_its_class_when_the_real_route_is_missing(client, api):
    api.get(f"{BASE}/video/status", status=404,
            json={"ErrCode": 500064, "ErrMsg": "Content deleted"})
    api.get(f"{BASE}/video/result/5", status=405, body="")
    with pytest.raises(VideoDeleted) as caught:
        client.video_status(5)
    assert caught.value.err_code == 500064
    assert len(api.calls) == 2


@pytest.mark.parametrize("status_body", ["404 page not found", ""])
def test_two_bare_404s_are_an_unknown_video_and_teach_nothing(client, api, status_body):
    api.get(f"{BASE}/video/status", status=404, body=status_body)
    api.get(f"{BASE}/video/result/5", status=404, body="404 page not found")
    with pytest.raises(VideoNotFound) as caught:
        client.video_status(5)
    assert type(caught.value) is VideoNotFound
    assert caught.value.err_code is None
    assert len(api.calls) == 2
    assert pixverse._status_endpoints == {}
    assert cache.get(pixverse._endpoint_cache_key("https://pixverse.test")) is None


def test_an_error_from_the_real_route_is_raised_as_it_is_and_teaches_nothing(client, api):
    api.get(f"{BASE}/video/status", status=404, body="404 page not found")
    api.get(f"{BASE}/video/result/5", status=400,
            json={"ErrCode": 500047, "ErrMsg": "The provided media is invalid"})
    with pytest.raises(VideoNotFound) as caught:
        client.video_status(5)
    assert (caught.value.err_code, caught.value.http_status) == (500047, 400)
    assert caught.value.trace_id == api.calls[1].request.headers["ai-trace-id"]
    assert pixverse._status_endpoints == {}
    # Nothing learned: the next read asks the spec's route again.
    with pytest.raises(VideoNotFound):
        client.video_status(5)
    assert paths(api) == [STATUS, RESULT_5, STATUS, RESULT_5]


def test_a_learned_spec_route_that_starts_answering_404_falls_back_once(client, api):
    api.get(f"{BASE}/video/status", json=ok({"status": "pending", "video_url": ""}))
    assert client.video_status(5).endpoint == "status"
    api.replace(responses.GET, f"{BASE}/video/status", status=404,
                json={"ErrCode": 500008, "ErrMsg": "Requested data not found"})
    api.get(f"{BASE}/video/result/5", json=ok({"status": 5, "url": ""}))
    assert client.video_status(5).endpoint == "result"
    assert client.video_status(5).endpoint == "result"
    assert paths(api) == [STATUS, STATUS, RESULT_5, RESULT_5]


def test_a_forced_status_endpoint_does_not_fall_back(client, api, settings):
    settings.PIXVERSE_STATUS_ENDPOINT = "status"
    api.get(f"{BASE}/video/status", status=404, body="not here")
    with pytest.raises(RouteNotFound):
        client.video_status(5)


def test_forced_endpoints_never_fall_back_whatever_the_404(client, api, settings):
    settings.PIXVERSE_STATUS_ENDPOINT = "status"
    api.get(f"{BASE}/video/status", status=404,
            json={"ErrCode": 500008, "ErrMsg": "Requested data not found"})
    with pytest.raises(VideoNotFound):
        client.video_status(5)
    settings.PIXVERSE_STATUS_ENDPOINT = "result"
    api.get(f"{BASE}/video/result/5", status=404, body="not here")
    with pytest.raises(RouteNotFound):
        client.video_status(5)
    assert paths(api) == [STATUS, RESULT_5]
    assert pixverse._status_endpoints == {}


def test_each_request_of_a_fallback_waits_for_its_own_slot(client, api, monkeypatch):
    slots = []
    monkeypatch.setattr(ratelimit, "wait_for_slot",
                        lambda api_key, max_wait=None: slots.append(max_wait) or 0.0)
    api.get(f"{BASE}/video/status", status=404,
            json={"ErrCode": 500008, "ErrMsg": "Requested data not found"})
    api.get(f"{BASE}/video/result/5", json=ok({"status": 5, "url": ""}))
    client.video_status(5)
    assert len(slots) == len(api.calls) == 2


def test_done_without_a_url_is_malformed(client, api):
    api.get(f"{BASE}/video/status", json=ok({"status": "done", "video_url": ""}))
    with pytest.raises(MalformedResponse):
        client.video_status(5)


# --- Errors: HTTP status and ErrCode-in-200 ----------------------------------------------


@pytest.mark.parametrize(("http_status", "body", "error_class"), [
    # HTTP status codes, with and without an envelope
    (401, {"ErrCode": 401, "ErrMsg": "Invalid API Key"}, InvalidKey),
    (401, "Unauthorized", InvalidKey),
    (403, {"ErrCode": 403, "ErrMsg": "No credits available"}, NoCredits),
    (403, "Forbidden", NoCredits),
    (429, "Too Many Requests", RateLimited),
    (500, {"ErrCode": 500, "ErrMsg": "Internal Server Error"}, ServerError),
    (502, "<html>Bad gateway</html>", GatewayError),
    (503, "", GatewayError),
    (504, "Gateway Timeout", GatewayError),
    (503, {"ErrCode": 500069, "ErrMsg": "System under high load"}, ServerError),
    (400, "Bad Request", InvalidRequest),
    (400, {"ErrCode": 500047, "ErrMsg": "The provided media is invalid"}, VideoNotFound),
    (404, {"ErrCode": 500008, "ErrMsg": "Requested data not found"}, VideoNotFound),
    # ErrCode inside an HTTP 200 envelope
    (200, {"ErrCode": 401, "ErrMsg": "Invalid API Key"}, InvalidKey),
    (200, {"ErrCode": 400012, "ErrMsg": "Invalid account"}, InvalidKey),
    (200, {"ErrCode": 403, "ErrMsg": "No credits available"}, NoCredits),
    (200, {"ErrCode": 500090, "ErrMsg": "Insufficient balance"}, NoCredits),
    (200, {"ErrCode": 500044, "ErrMsg": "Reached the limit for concurrent generations."},
     ConcurrencyLimit),
    (200, {"ErrCode": 429, "ErrMsg": "Too Many Requests"}, RateLimited),
    (200, {"ErrCode": 400017, "ErrMsg": "Invalid parameter"}, InvalidRequest),
    (200, {"ErrCode": 400013, "ErrMsg": "Invalid binding request"}, InvalidRequest),
    (200, {"ErrCode": 400018, "ErrMsg": "Prompt too long"}, InvalidRequest),
    (200, {"ErrCode": 500030, "ErrMsg": "Image size cannot exceed 20M"}, InvalidRequest),
    (200, {"ErrCode": 500054, "ErrMsg": "Content moderation failure."}, ModerationFailed),
    (200, {"ErrCode": 500063, "ErrMsg": "The uploaded image is not compliant"}, ModerationFailed),
    (200, {"ErrCode": 500, "ErrMsg": "Internal Server Error"}, ServerError),
    (200, {"ErrCode": 500069, "ErrMsg": "System under high load"}, ServerError),
    (200, {"ErrCode": 500047, "ErrMsg": "The provided media is invalid"}, VideoNotFound),
    (200, {"ErrCode": 500008, "ErrMsg": "Requested data not found"}, VideoNotFound),
    (200, {"ErrCode": 500064, "ErrMsg": "Content deleted"}, VideoDeleted),
    (200, {"ErrCode": 599999, "ErrMsg": "Something new"}, ServerError),
    (200, {"ErrCode": 12, "ErrMsg": "Unheard of"}, PixVerseError),
])
def test_it_maps_errors_to_one_typed_hierarchy(client, api, http_status, body, error_class):
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
    api.get(f"{BASE}/account/balance", status=http_status, **kwargs)
    with pytest.raises(error_class) as caught:
        client.balance()
    error = caught.value
    assert type(error) is error_class
    assert error.http_status == http_status
    uuid.UUID(error.trace_id)
    if isinstance(body, dict):
        assert error.err_code == body["ErrCode"]
        assert error.err_msg == body["ErrMsg"]


def test_the_invalid_request_error_carries_the_servers_message(client, api):
    api.post(f"{BASE}/video/text/generate",
             json={"ErrCode": 400017, "ErrMsg": "duration must be 5 or 8", "Resp": None})
    client.check = False
    with pytest.raises(InvalidRequest, match="duration must be 5 or 8"):
        client.text_to_video(VideoRequest("p", 6, "360p"), trace_id="t")


@pytest.mark.parametrize("request_", [
    VideoRequest("p", 6, "360p"),
    VideoRequest("p", 12, "540p", model="v5.6"),
    VideoRequest("p", 5, "540p", model="c1", aspect_ratio="21:9"),
    VideoRequest("p", 5, "540p", model="v6", style="anime"),
    VideoRequest("p", 5, "540p", model="v5", generate_audio_switch=True),
])
def test_what_the_model_refuses_is_refused_before_sending(client, api, request_):
    with pytest.raises(InvalidParameters) as refused:
        client.text_to_video(request_, trace_id="t")
    assert refused.value.problems and refused.value.err_code is None
    if request_.aspect_ratio is None:  # the image call does not send one: the image sets it
        with pytest.raises(InvalidParameters):
            client.image_to_video(7, request_, trace_id="t")
    assert len(api.calls) == 0


@pytest.mark.parametrize("error_class", [ConcurrencyLimit, RateLimited, ServerError,
                                         MalformedResponse, TransportError])
def test_transient_errors_are_retryable(error_class):
    assert error_class.retryable


@pytest.mark.parametrize("error_class", [InvalidKey, NoCredits, InvalidRequest, ModerationFailed,
                                         VideoNotFound, VideoDeleted])
def test_final_errors_are_not_retryable(error_class):
    assert not error_class.retryable


def test_the_video_errors_have_their_own_kinds():
    assert issubclass(VideoDeleted, VideoNotFound) and issubclass(VideoNotFound, InvalidRequest)
    assert (VideoNotFound.kind, VideoDeleted.kind) == ("video_not_found", "video_deleted")
    assert issubclass(GatewayError, ServerError) and GatewayError.kind == "gateway_error"


# --- Rate limits: ours and the server's ----------------------------------------------------


def test_a_slot_too_far_is_refused_here_and_nothing_is_sent(client, api, monkeypatch):
    def too_far(api_key, max_wait=None):
        raise ratelimit.SlotTooFar(3.25)

    monkeypatch.setattr(ratelimit, "wait_for_slot", too_far)
    with pytest.raises(SlotUnavailable) as caught:
        client.balance()
    error = caught.value
    assert isinstance(error, RateLimited)
    assert (error.kind, error.wait, error.sent, error.retry_after) == (
        "slot_unavailable", 3.25, False, None)
    assert error.as_dict()["error"] == "slot_unavailable"
    assert len(api.calls) == 0


@pytest.mark.parametrize(("headers", "retry_after"), [
    ({"Retry-After": "7"}, 7.0),
    ({"Retry-After": "1.5"}, 1.5),
    ({}, None),
    ({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, None),
    ({"Retry-After": "-3"}, None),
])
def test_a_server_429_is_plain_rate_limited_with_its_retry_after(client, api, headers, retry_after):
    api.get(f"{BASE}/account/balance", status=429, body="Too Many Requests", headers=headers)
    with pytest.raises(RateLimited) as caught:
        client.balance()
    assert type(caught.value) is RateLimited
    assert caught.value.sent is True
    assert caught.value.retry_after == retry_after


# --- Malformed answers and transport ---------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {"body": "<html>oops</html>"},
    {"body": ""},
    {"json": [1, 2, 3]},
    {"json": {"Resp": {"account_id": 1}}},
    {"json": {"ErrCode": "zero", "ErrMsg": "?"}},
    {"json": {"ErrCode": 0, "ErrMsg": "success", "Resp": None}},
    {"json": {"ErrCode": 0, "ErrMsg": "success", "Resp": "text"}},
    {"json": ok({"credit_monthly": 1})},
    {"json": ok({"account_id": "abc", "credit_monthly": 1, "credit_package": 2})},
    {"body": "[" * 30000 + "]" * 30000},  # too deep for the JSON reader
])
def test_a_malformed_answer_is_an_error_not_a_crash(client, api, kwargs):
    api.get(f"{BASE}/account/balance", **kwargs)
    with pytest.raises(MalformedResponse):
        client.balance()


def test_a_generate_answer_without_video_id_is_malformed(client, api):
    api.post(f"{BASE}/video/text/generate", json=ok({}))
    with pytest.raises(MalformedResponse):
        client.text_to_video(VideoRequest("p", 5, "360p"), trace_id="t")


def test_a_status_answer_without_status_is_malformed(client, api):
    api.get(f"{BASE}/video/status", json=ok({"video_url": ""}))
    with pytest.raises(MalformedResponse):
        client.video_status(1)


@pytest.mark.parametrize(("kwargs", "error_class"), [
    ({"body": requests.ReadTimeout("read timed out")}, TransportError),
    ({"body": requests.ConnectionError("Connection aborted.")}, TransportError),
    ({"status": 502, "body": "<html>Bad gateway</html>"}, GatewayError),
    ({"status": 503, "body": ""}, GatewayError),
    ({"status": 504, "body": "upstream timed out"}, GatewayError),
    ({"status": 200, "body": "<html>captive portal</html>"}, MalformedResponse),
    ({"json": ok({})}, MalformedResponse),
])
def test_an_unusable_answer_leaves_the_outcome_unknown(client, api, kwargs, error_class):
    api.post(f"{BASE}/video/text/generate", **kwargs)
    with pytest.raises(error_class) as caught:
        client.text_to_video(VideoRequest("p", 5, "360p"), trace_id="keep-me")
    assert caught.value.outcome_unknown is True
    assert caught.value.trace_id == "keep-me"


@pytest.mark.parametrize("kwargs", [
    {"body": requests.ConnectTimeout("connect timed out")},
    {"body": requests.ConnectionError("Connection refused")},
    {"status": 503, "json": {"ErrCode": 500069, "ErrMsg": "System under high load"}},
    {"status": 500, "json": {"ErrCode": 500, "ErrMsg": "Internal Server Error"}},
    {"json": {"ErrCode": 500044, "ErrMsg": "Reached the limit for concurrent generations."}},
    {"status": 429, "body": "Too Many Requests"},
    {"status": 404, "body": "404 page not found"},
])
def test_an_answer_from_pixverse_or_no_sending_leaves_the_outcome_known(client, api, kwargs):
    api.post(f"{BASE}/video/text/generate", **kwargs)
    with pytest.raises(PixVerseError) as caught:
        client.text_to_video(VideoRequest("p", 5, "360p"), trace_id="t")
    assert caught.value.outcome_unknown is False
    assert type(caught.value) is not GatewayError


def test_a_read_timeout_may_have_reached_the_server(client, api):
    api.post(f"{BASE}/video/text/generate", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(TransportError) as caught:
        client.text_to_video(VideoRequest("p", 5, "360p"), trace_id="keep-me")
    assert caught.value.maybe_sent is True
    assert caught.value.trace_id == "keep-me"


def test_a_connect_timeout_never_left(client, api):
    api.get(f"{BASE}/account/balance", body=requests.ConnectTimeout("connect timed out"))
    with pytest.raises(TransportError) as caught:
        client.balance()
    assert caught.value.maybe_sent is False


def test_every_request_has_a_timeout(client, settings, monkeypatch):
    settings.PIXVERSE_CONNECT_TIMEOUT = 2.5
    settings.PIXVERSE_READ_TIMEOUT = 7.0
    seen = {}

    def fake_send(self, request, **kwargs):
        seen["timeout"] = kwargs["timeout"]
        raise requests.ConnectionError("Connection refused")

    monkeypatch.setattr(requests.Session, "send", fake_send)
    with pytest.raises(TransportError) as caught:
        client.balance()
    assert seen["timeout"] == (2.5, 7.0)
    assert caught.value.maybe_sent is False


def test_status_reads_have_their_own_read_timeout_and_balance_takes_one(client, settings, monkeypatch):
    settings.PIXVERSE_CONNECT_TIMEOUT = 2.5
    settings.PIXVERSE_READ_TIMEOUT = 30.0
    settings.PIXVERSE_STATUS_READ_TIMEOUT = 4.0
    seen = []

    def fake_send(self, request, **kwargs):
        seen.append((request.url.split("/openapi/v2")[1].split("?")[0], kwargs["timeout"]))
        raise requests.ConnectTimeout("connect timed out")

    monkeypatch.setattr(requests.Session, "send", fake_send)
    for mode in ("status", "result"):
        settings.PIXVERSE_STATUS_ENDPOINT = mode
        with pytest.raises(TransportError):
            client.video_status(5)
    with pytest.raises(TransportError):
        client.balance(read_timeout=2.0)
    with pytest.raises(TransportError):
        client.balance()
    with pytest.raises(TransportError):
        client.text_to_video(VideoRequest("p", 5, "360p"), trace_id="t")
    assert seen == [
        ("/video/status", (2.5, 4.0)),
        ("/video/result/5", (2.5, 4.0)),
        ("/account/balance", (2.5, 2.0)),
        ("/account/balance", (2.5, 30.0)),
        ("/video/text/generate", (2.5, 30.0)),
    ]


def test_a_real_timeout_against_a_silent_server(settings):
    """A server that accepts and never answers: the read timeout ends the wait."""
    import socket
    import time

    settings.PIXVERSE_READ_TIMEOUT = 0.5
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        silent = PixVerseClient(KEY, base_url=f"http://127.0.0.1:{port}")
        started = time.monotonic()
        with pytest.raises(TransportError) as caught:
            silent.balance()
        assert time.monotonic() - started < 5
        assert caught.value.maybe_sent is True


def test_a_refused_connection_never_left(settings):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransportError) as caught:
        PixVerseClient(KEY, base_url=f"http://127.0.0.1:{port}").balance()
    assert caught.value.maybe_sent is False


def test_a_client_needs_a_key():
    with pytest.raises(InvalidKey):
        PixVerseClient("")


@pytest.mark.parametrize("key", [
    KEY + "\u200b",            # a zero-width space, pasted with the key
    "sk-t\u0435st-0123456789abcdef",  # a Cyrillic "e"
    "sk-test-\x00123",
    "sk-test\n0123",
    "   ",
])
def test_a_key_that_cannot_go_into_a_header_is_invalid_not_a_crash(key):
    with pytest.raises(InvalidKey) as caught:
        PixVerseClient(key)
    assert key.strip() == "" or key not in str(caught.value)
    assert "0123" not in str(caught.value)


def test_whitespace_around_a_key_is_not_sent(api):
    api.get(f"{BASE}/account/balance",
            json=ok({"account_id": 1, "credit_monthly": 0, "credit_package": 0}))
    PixVerseClient(f"  {KEY}\n").balance()
    assert api.calls[0].request.headers["API-KEY"] == KEY
