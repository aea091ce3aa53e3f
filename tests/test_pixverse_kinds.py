"""PixVerseClient's calls beyond the spec's five (API-NOTES.md, section 3), against `responses`.

Transition, extend, sound effect, lip sync, fusion, media upload, TTS speakers,
effect templates and the template fields of text/image generate: what each
sends, every faithful form of its answer, its refusals, and the checks that
refuse a request before anything is sent.
"""

import pytest
import responses
from responses import matchers

from generations import pixverse, ratelimit
from generations.pixverse import (
    EffectTemplate,
    ExtendRequest,
    FusionRequest,
    ImageReference,
    InvalidMediaError,
    InvalidParameters,
    InvalidRequest,
    LipSyncRequest,
    MalformedResponse,
    PixVerseClient,
    RouteNotFound,
    ServerError,
    SoundEffectRequest,
    TemplateRefused,
    TransitionRequest,
    TtsSpeaker,
    UploadedMedia,
    VideoNotFound,
    VideoRequest,
)
from tests.media_samples import mp4_bytes, wav_bytes

BASE = "https://pixverse.test/openapi/v2"
KEY = "sk-test-0123456789abcdef"


def ok(resp):
    return {"ErrCode": 0, "ErrMsg": "success", "Resp": resp}


@pytest.fixture
def client():
    return PixVerseClient(KEY)


@pytest.fixture
def api():
    with responses.RequestsMock() as rsps:
        yield rsps


@pytest.fixture
def no_slot(monkeypatch):
    """Fail the test if a request slot is taken: a refused request must cost none."""
    taken = []
    monkeypatch.setattr(ratelimit, "wait_for_slot",
                        lambda api_key, max_wait=None: taken.append(api_key))
    return taken


TRANSITION = TransitionRequest("Day to night", first_frame_img=11, last_frame_img=12,
                               duration=5, quality="540p")
FUSION = FusionRequest(
    (ImageReference("subject", 21, "hero"), ImageReference("background", 22, "old town")),
    prompt="@hero walks through @old town", duration=5, quality="540p", aspect_ratio="16:9")

# (method, path, request, the JSON it must send)
GENERATE_CALLS = [
    ("transition", "/video/transition/generate", TRANSITION,
     {"prompt": "Day to night", "first_frame_img": 11, "last_frame_img": 12, "duration": 5,
      "quality": "540p", "model": "v5"}),
    ("extend", "/video/extend/generate",
     ExtendRequest("On it runs", 5, "540p", source_video_id=2**62),
     {"prompt": "On it runs", "duration": 5, "quality": "540p", "source_video_id": 2**62,
      "model": "v5"}),
    ("extend", "/video/extend/generate",
     ExtendRequest("On it runs", 8, "720p", video_media_id=31, model="v4.5", seed=0,
                   negative_prompt="blur", motion_mode="normal", style="anime"),
     {"prompt": "On it runs", "duration": 8, "quality": "720p", "video_media_id": 31,
      "model": "v4.5", "seed": 0, "negative_prompt": "blur", "motion_mode": "normal",
      "style": "anime"}),
    ("sound_effect", "/video/sound_effect/generate",
     SoundEffectRequest("Waves", source_video_id=41, original_sound_switch=False, seed=3),
     {"sound_effect_content": "Waves", "source_video_id": 41, "original_sound_switch": False,
      "seed": 3}),
    ("lip_sync", "/video/lip_sync/generate",
     LipSyncRequest(video_media_id=51, audio_media_id=52),
     {"video_media_id": 51, "audio_media_id": 52}),
    ("lip_sync", "/video/lip_sync/generate",
     LipSyncRequest(source_video_id=53, lip_sync_tts_speaker_id="Emily",
                    lip_sync_tts_content="Hello"),
     {"source_video_id": 53, "lip_sync_tts_speaker_id": "Emily", "lip_sync_tts_content": "Hello"}),
    ("fusion", "/video/fusion/generate", FUSION,
     {"image_references": [{"type": "subject", "img_id": 21, "ref_name": "hero"},
                           {"type": "background", "img_id": 22, "ref_name": "old town"}],
      "prompt": "@hero walks through @old town", "duration": 5, "quality": "540p",
      "aspect_ratio": "16:9", "model": "v4.5"}),
]


@pytest.mark.parametrize(("method", "path", "request_", "body"), GENERATE_CALLS)
def test_each_generate_call_sends_only_what_is_set_with_the_chosen_trace_id(
        client, api, method, path, request_, body):
    api.post(f"{BASE}{path}", json=ok({"video_id": 777}),
             match=[matchers.json_params_matcher(body)])
    submission = getattr(client, method)(request_, trace_id="t-kind")
    assert (submission.video_id, submission.trace_id) == (777, "t-kind")
    assert api.calls[0].request.headers["ai-trace-id"] == "t-kind"
    assert api.calls[0].request.headers["API-KEY"] == KEY


@pytest.mark.parametrize(("method", "path", "request_", "body"), GENERATE_CALLS[:1] + GENERATE_CALLS[-1:])
def test_a_video_id_may_come_as_a_string(client, api, method, path, request_, body):
    api.post(f"{BASE}{path}", json=ok({"video_id": "2354019100783543969", "credit": 45}))
    assert getattr(client, method)(request_, trace_id="t").video_id == 2354019100783543969


def test_a_generate_answer_without_video_id_is_malformed(client, api):
    api.post(f"{BASE}/video/fusion/generate", json=ok({}))
    with pytest.raises(MalformedResponse):
        client.fusion(FUSION, trace_id="t")


def test_a_kind_needs_a_trace_id(client, api):
    with pytest.raises(ValueError):
        client.transition(TRANSITION, trace_id="")


@pytest.mark.parametrize(("err_code", "error_class"), [
    (400011, InvalidRequest),
    (400017, InvalidRequest),
    (400018, InvalidRequest),
    (400032, InvalidRequest),
    (500047, VideoNotFound),
    (500070, TemplateRefused),
    (500071, TemplateRefused),
    (500069, ServerError),
])
def test_each_refusal_code_has_its_error_class(client, api, err_code, error_class):
    api.post(f"{BASE}/video/extend/generate", json={"ErrCode": err_code, "ErrMsg": "refused"})
    with pytest.raises(pixverse.PixVerseError) as caught:
        client.extend(ExtendRequest("p", 5, "540p", source_video_id=1), trace_id="t-refused")
    assert type(caught.value) is error_class
    assert (caught.value.err_code, caught.value.err_msg, caught.value.trace_id) == (
        err_code, "refused", "t-refused")


def test_template_refusals_are_final_not_retryable():
    assert TemplateRefused("x").retryable is False
    assert issubclass(TemplateRefused, InvalidRequest)


# --- Checks before sending -------------------------------------------------------------


REFUSED_HERE = [
    ("extend", ExtendRequest("p", 5, "540p"), "source_video_id"),
    ("extend", ExtendRequest("p", 5, "540p", source_video_id=1, video_media_id=2),
     "source_video_id"),
    ("extend", ExtendRequest("p", 7, "540p", source_video_id=1), "duration"),
    ("transition", TransitionRequest("", 1, 2, 5, "540p"), "prompt"),
    ("sound_effect", SoundEffectRequest("x" * 2049, source_video_id=1), "sound_effect_content"),
    ("sound_effect", SoundEffectRequest("Waves"), "source_video_id"),
    ("sound_effect", SoundEffectRequest("Waves", source_video_id=1, seed=-1), "seed"),
    ("lip_sync", LipSyncRequest(source_video_id=1), "audio_media_id"),
    ("lip_sync", LipSyncRequest(source_video_id=1, audio_media_id=2,
                                lip_sync_tts_speaker_id="Auto", lip_sync_tts_content="Hi"),
     "audio_media_id"),
    ("lip_sync", LipSyncRequest(source_video_id=1, lip_sync_tts_speaker_id="Auto"),
     "lip_sync_tts_content"),
    ("lip_sync", LipSyncRequest(source_video_id=1, lip_sync_tts_speaker_id="Auto",
                                lip_sync_tts_content="x" * 201), "lip_sync_tts_content"),
    ("fusion", FusionRequest((), "p", 5, "540p", "16:9"), "image_references"),
    ("fusion", FusionRequest(tuple(ImageReference("subject", i, f"r{i}") for i in range(1, 5)),
                             "@r1 @r2 @r3 @r4", 5, "540p", "16:9"), "image_references"),
    ("fusion", FusionRequest((ImageReference("subject", 1, "hero"),), "a hero walks",
                             5, "540p", "16:9"), "prompt"),
    ("fusion", FusionRequest((ImageReference("subject", 1, "hero-1"),), "@hero-1",
                             5, "540p", "16:9"), "image_references"),
    ("fusion", FusionRequest((ImageReference("subject", 1, "x" * 31),), "@" + "x" * 31,
                             5, "540p", "16:9"), "image_references"),
    ("fusion", FusionRequest((ImageReference("person", 1, "hero"),), "@hero",
                             5, "540p", "16:9"), "image_references"),
    ("fusion", FusionRequest((ImageReference("subject", 1, "a"), ImageReference("subject", 2, "a")),
                             "@a", 5, "540p", "16:9"), "image_references"),
    ("fusion", FusionRequest((ImageReference("subject", 1, "hero"),), "@hero",
                             5, "540p", "16:9", model="v5"), "model"),
    ("fusion", FusionRequest((ImageReference("subject", 1, "hero"),), "@hero",
                             5, "540p", "2:1"), "aspect_ratio"),
]


@pytest.mark.parametrize(("method", "request_", "field"), REFUSED_HERE)
def test_a_request_the_api_would_refuse_is_refused_before_anything_is_sent(
        client, api, no_slot, method, request_, field):
    with pytest.raises(InvalidParameters) as caught:
        getattr(client, method)(request_, trace_id="t-checked")
    assert field in {problem.field for problem in caught.value.problems}
    assert caught.value.kind == "invalid_parameters"
    assert caught.value.trace_id == "t-checked"
    assert field in caught.value.err_msg
    assert len(api.calls) == 0
    assert no_slot == []


def test_a_reference_name_may_have_letters_digits_underscores_and_spaces(client, api):
    api.post(f"{BASE}/video/fusion/generate", json=ok({"video_id": 1}))
    client.fusion(FusionRequest((ImageReference("subject", 1, "Ёжик_2 big"),), "@Ёжик_2 big runs",
                                5, "540p", "1:1"), trace_id="t")


# --- Text and image with a template, camera movement or sound --------------------------


def test_text_and_image_send_the_template_camera_and_sound_fields_only_when_set(client, api):
    api.post(f"{BASE}/video/text/generate", json=ok({"video_id": 1}),
             match=[matchers.json_params_matcher(
                 {"prompt": "p", "duration": 5, "quality": "540p", "template_id": 315446315336768})])
    api.post(f"{BASE}/video/img/generate", json=ok({"video_id": 2}),
             match=[matchers.json_params_matcher(
                 {"img_id": 9, "prompt": "p", "duration": 5, "quality": "540p",
                  "camera_movement": "zoom_in", "sound_effect_switch": True,
                  "sound_effect_content": "Rain"})])
    client.text_to_video(VideoRequest("p", 5, "540p", template_id=315446315336768), trace_id="a")
    client.image_to_video(9, VideoRequest("p", 5, "540p", camera_movement="zoom_in",
                                          sound_effect_switch=True, sound_effect_content="Rain"),
                          trace_id="b")


@pytest.mark.parametrize(("request_", "field"), [
    (VideoRequest("p", 5, "540p", template_id=1, camera_movement="zoom_in"), "camera_movement"),
    (VideoRequest("p", 5, "540p", sound_effect_content="Rain"), "sound_effect_content"),
    (VideoRequest("p", 5, "540p", sound_effect_switch=True, sound_effect_content="x" * 2049),
     "sound_effect_content"),
])
def test_a_template_or_sound_combination_the_api_refuses_is_refused_here(
        client, api, no_slot, request_, field):
    for call in (lambda: client.text_to_video(request_, trace_id="t"),
                 lambda: client.image_to_video(9, request_, trace_id="t")):
        with pytest.raises(InvalidParameters) as caught:
            call()
        assert field in {problem.field for problem in caught.value.problems}
    assert len(api.calls) == 0 and no_slot == []


def test_a_status_answer_says_whether_the_video_has_sound(client, api, settings):
    settings.PIXVERSE_STATUS_ENDPOINT = "result"
    api.get(f"{BASE}/video/result/5", json=ok({"id": 5, "status": 1, "url": "https://x/5.mp4",
                                               "has_audio": True}))
    assert client.video_status(5).details["has_audio"] is True


# --- Media upload ----------------------------------------------------------------------


def test_it_uploads_a_video_as_multipart_field_file(client, api):
    api.post(f"{BASE}/media/upload", json=ok(
        {"media_id": 61, "media_type": "video", "url": "https://x/61.mp4"}))
    uploaded = client.upload_media(mp4_bytes(), "clips/holiday.mp4")
    assert uploaded == UploadedMedia(61, "video", "https://x/61.mp4", uploaded.trace_id)
    sent = api.calls[0].request
    assert sent.headers["Content-Type"].startswith("multipart/form-data")
    assert b'name="file"; filename="holiday.mp4"' in sent.body
    assert b"Content-Type: video/mp4" in sent.body


def test_an_audio_is_told_by_its_content_not_its_name(client, api):
    api.post(f"{BASE}/media/upload", json=ok({"media_id": "62"}))
    uploaded = client.upload_media(wav_bytes(), "speech.mp4")
    assert (uploaded.media_id, uploaded.media_type, uploaded.url) == (62, None, None)
    assert b"Content-Type: audio/wav" in api.calls[0].request.body


@pytest.mark.parametrize(("data", "message"), [
    (b"just some text, not a video" * 20, "MP4, MOV or WebM"),
    (mp4_bytes(1922, 16, frames=2), "1920 px"),
])
def test_a_file_pixverse_would_refuse_is_refused_before_upload(client, api, no_slot, data, message):
    with pytest.raises(InvalidMediaError) as caught:
        client.upload_media(data, "x.mp4")
    assert message in caught.value.err_msg
    assert len(api.calls) == 0 and no_slot == []


def test_an_upload_answer_without_media_id_is_malformed(client, api):
    api.post(f"{BASE}/media/upload", json=ok({"url": "https://x"}))
    with pytest.raises(MalformedResponse):
        client.upload_media(wav_bytes(), "a.wav")


# --- TTS speakers ----------------------------------------------------------------------


SPEAKERS = [TtsSpeaker("Auto", "Auto"), TtsSpeaker("7", "Emily")]


@pytest.mark.parametrize("resp", [
    [{"speaker_id": "Auto", "name": "Auto"}, {"speaker_id": 7, "name": "Emily"}],
    {"list": [{"speaker_id": "Auto"}, {"id": "7", "name": "Emily"}], "total": 2},
    {"data": [{"id": "Auto", "name": "Auto"}, {"speaker_id": "7", "name": "Emily"}]},
    {"items": [{"speaker_id": "Auto", "name": ""}, {"id": 7, "name": "Emily"}]},
])
def test_it_reads_every_form_of_the_speaker_list(client, api, resp):
    api.get(f"{BASE}/video/lip_sync/tts_list", json=ok(resp))
    assert client.tts_speakers() == SPEAKERS


@pytest.mark.parametrize(("status", "body"), [
    (404, "404 page not found"),
    (404, {"ErrCode": 404, "ErrMsg": "Not Found"}),
    (405, ""),
])
def test_the_speakers_fall_back_to_the_newer_route_and_remember_it(client, api, status, body):
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
    older = api.get(f"{BASE}/video/lip_sync/tts_list", status=status, **kwargs)
    newer = api.get(f"{BASE}/video/tts_speaker", json=ok({"data": [{"speaker_id": "Auto"}]}))
    assert client.tts_speakers() == [TtsSpeaker("Auto", "Auto")]
    assert client.tts_speakers() == [TtsSpeaker("Auto", "Auto")]
    assert (older.call_count, newer.call_count) == (1, 2)
    assert pixverse._speaker_endpoints == {"https://pixverse.test": "tts_speaker"}
    # The status route's memory is its own.
    assert pixverse._status_endpoints == {}


def test_neither_speaker_route_is_route_not_found(client, api):
    api.get(f"{BASE}/video/lip_sync/tts_list", status=404, body="")
    api.get(f"{BASE}/video/tts_speaker", status=404, body="")
    with pytest.raises(RouteNotFound):
        client.tts_speakers()


def test_another_error_on_the_speaker_list_does_not_fall_back(client, api):
    api.get(f"{BASE}/video/lip_sync/tts_list", json={"ErrCode": 401, "ErrMsg": "Invalid API Key"},
            status=401)
    with pytest.raises(pixverse.InvalidKey):
        client.tts_speakers()
    assert len(api.calls) == 1


def test_a_speaker_without_an_id_is_malformed(client, api):
    api.get(f"{BASE}/video/lip_sync/tts_list", json=ok({"list": [{"name": "Nobody"}]}))
    with pytest.raises(MalformedResponse):
        client.tts_speakers()


def test_a_list_answer_without_a_list_is_malformed(client, api):
    api.get(f"{BASE}/video/lip_sync/tts_list", json=ok({"total": 0}))
    with pytest.raises(MalformedResponse):
        client.tts_speakers()


# --- Effect templates ------------------------------------------------------------------


def test_it_reads_the_effect_templates_with_ids_as_numbers_or_strings(client, api):
    api.get(f"{BASE}/video/effects/templates/list", json=ok({"list": [
        {"template_id": "315446315336768", "name": "Kiss", "qualities": ["360p", "540p"],
         "activated": True},
        {"id": 42, "template_name": "Hug", "activated": False},
        {"template_id": 43},
    ]}))
    assert client.effect_templates() == [
        EffectTemplate(315446315336768, "Kiss", ("360p", "540p"), True),
        EffectTemplate(42, "Hug", None, False),
        EffectTemplate(43, "43", None, None),
    ]


def test_the_effect_templates_may_be_the_resp_itself(client, api):
    api.get(f"{BASE}/video/effects/templates/list", json=ok([{"template_id": 1, "name": "A"}]))
    assert client.effect_templates() == [EffectTemplate(1, "A")]


def test_a_template_without_an_id_is_malformed(client, api):
    api.get(f"{BASE}/video/effects/templates/list", json=ok({"data": [{"name": "A"}]}))
    with pytest.raises(MalformedResponse):
        client.effect_templates()


def test_only_list_calls_accept_a_list_as_resp(client, api):
    api.get(f"{BASE}/account/balance", json=ok([1, 2]))
    with pytest.raises(MalformedResponse):
        client.balance()
