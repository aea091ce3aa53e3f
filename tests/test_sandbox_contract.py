"""Contract: the same client, over real HTTP, against the live sandbox.

The assertions are the ones tests/test_pixverse_client.py makes against
`responses` (results, trace ids, error classes and ErrCodes); here a real
server produces the answers, so the sandbox is held to the API the client
expects of the real service.
"""

import io
import threading
import time
import uuid

import pytest
import requests
from django.core.signals import request_finished
from PIL import Image

from generations.pixverse import (
    Balance,
    ConcurrencyLimit,
    ExtendRequest,
    FusionRequest,
    ImageReference,
    InvalidImageError,
    InvalidKey,
    InvalidRequest,
    LipSyncRequest,
    MalformedResponse,
    NoCredits,
    PixVerseClient,
    PixVerseError,
    RateLimited,
    ServerError,
    SoundEffectRequest,
    TemplateRefused,
    TransitionRequest,
    TtsSpeaker,
    VideoNotFound,
    VideoRequest,
    VideoState,
)
from generations.sandbox.models import (
    TEMPLATE_IDS,
    SandboxAccount,
    SandboxMedia,
    SandboxRequest,
    SandboxVideo,
)
from tests.media_samples import has_audio_track, mp4_bytes, wav_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def png_bytes(width=320, height=180):
    out = io.BytesIO()
    Image.new("RGB", (width, height), "orange").save(out, "PNG")
    return out.getvalue()


def new_trace() -> str:
    return str(uuid.uuid4())


def assert_submission(submission, trace_id):
    assert isinstance(submission.video_id, int)
    assert 0 < submission.video_id < 2**63
    assert submission.trace_id == trace_id


def assert_error(error, error_class, err_code):
    assert type(error) is error_class
    assert error.err_code == err_code
    assert error.err_msg
    uuid.UUID(error.trace_id)


@pytest.fixture
def account(db):
    return SandboxAccount.issue("contract", credits=1000, generation_seconds=0.3)


@pytest.fixture
def client(account, sandbox_url):
    return PixVerseClient(account[1], base_url=sandbox_url)


def wait_until_final(client, video_id, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        result = client.video_status(video_id)
        if result.state.is_final or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


# --- The five calls -----------------------------------------------------------------------


def test_balance(client, account):
    balance = client.balance()
    assert balance == Balance(account_id=account[0].account_id, credit_monthly=1000, credit_package=0)


def test_text_to_video_charges_the_price_list_and_ends_in_a_playable_video(client):
    trace_id = new_trace()
    submission = client.text_to_video(
        VideoRequest("A wolf in the snow", 5, "720p", model="v5", aspect_ratio="16:9"),
        trace_id=trace_id,
    )
    assert_submission(submission, trace_id)
    assert client.balance().total == 1000 - 60
    first = client.video_status(submission.video_id)
    assert first.state is VideoState.RUNNING
    done = wait_until_final(client, submission.video_id)
    assert done.state is VideoState.DONE
    video = requests.get(done.url, timeout=5)
    assert video.status_code == 200
    assert video.headers["Content-Type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"
    assert len(video.content) > 10_000


def test_upload_and_image_to_video(client, account):
    uploaded = client.upload_image(png_bytes())
    assert uploaded.img_id > 0
    # The uploaded image, to the key that uploaded it.
    image = requests.get(uploaded.img_url, headers={"API-KEY": account[1]}, timeout=5)
    assert image.content == png_bytes()
    trace_id = new_trace()
    submission = client.image_to_video(
        uploaded.img_id, VideoRequest("A magical forest", 5, "540p"), trace_id=trace_id
    )
    assert_submission(submission, trace_id)
    assert wait_until_final(client, submission.video_id).state is VideoState.DONE


def test_both_status_dialects(client, settings):
    submission = client.text_to_video(VideoRequest("p", 5, "360p"), trace_id=new_trace())
    wait_until_final(client, submission.video_id)
    spec = client.video_status(submission.video_id)
    settings.PIXVERSE_STATUS_ENDPOINT = "result"
    real = client.video_status(submission.video_id)
    assert (spec.endpoint, spec.raw_status) == ("status", "done")
    assert (real.endpoint, real.raw_status) == ("result", 1)
    assert spec.state is real.state is VideoState.DONE
    assert spec.url == real.url
    assert real.details["outputWidth"] == 640


def test_the_client_falls_back_when_the_spec_status_route_is_missing(account, client):
    account[0].spec_status_route = False
    account[0].save()
    submission = client.text_to_video(VideoRequest("p", 5, "360p"), trace_id=new_trace())
    assert client.video_status(submission.video_id).endpoint == "result"


# --- Idempotency ---------------------------------------------------------------------------


def test_a_resent_trace_id_returns_the_same_video_and_bills_once(client):
    trace_id = new_trace()
    first = client.text_to_video(VideoRequest("p", 5, "360p"), trace_id=trace_id)
    again = client.text_to_video(VideoRequest("p", 5, "360p"), trace_id=trace_id)
    assert first.video_id == again.video_id
    assert client.balance().total == 1000 - 45
    assert SandboxVideo.objects.count() == 1


# --- Errors ----------------------------------------------------------------------------------


def test_an_unknown_key(sandbox_url):
    with pytest.raises(InvalidKey) as caught:
        PixVerseClient("sk-sandbox-nope", base_url=sandbox_url).balance()
    assert_error(caught.value, InvalidKey, 401)
    assert caught.value.http_status == 401


@pytest.mark.parametrize(("dialect", "err_code", "http_status"),
                         [("real", 500090, 200), ("spec", 403, 403)])
def test_no_credits(sandbox_url, dialect, err_code, http_status):
    _, key = SandboxAccount.issue("poor", credits=44, dialect=dialect)
    client = PixVerseClient(key, base_url=sandbox_url)
    with pytest.raises(NoCredits) as caught:
        client.text_to_video(VideoRequest("p", 5, "360p"), trace_id=new_trace())
    assert_error(caught.value, NoCredits, err_code)
    assert caught.value.http_status == http_status
    assert client.balance().total == 44


def test_the_concurrency_limit(sandbox_url):
    _, key = SandboxAccount.issue("busy", credits=1000, concurrency_limit=2, generation_seconds=30)
    client = PixVerseClient(key, base_url=sandbox_url)
    for _ in range(2):
        client.text_to_video(VideoRequest("p", 5, "360p"), trace_id=new_trace())
    with pytest.raises(ConcurrencyLimit) as caught:
        client.text_to_video(VideoRequest("p", 5, "360p"), trace_id=new_trace())
    assert_error(caught.value, ConcurrencyLimit, 500044)
    assert client.balance().total == 1000 - 2 * 45


def test_one_request_per_second(client, settings):
    settings.SANDBOX_MIN_INTERVAL = 5
    client.balance()
    with pytest.raises(RateLimited) as caught:
        client.balance()
    assert_error(caught.value, RateLimited, 429)
    assert caught.value.http_status == 429


def test_every_answer_is_in_the_accounts_request_log(client, account, settings):
    submission = client.text_to_video(VideoRequest("p", 5, "360p"), trace_id=new_trace())
    client.video_status(submission.video_id)
    settings.SANDBOX_MIN_INTERVAL = 5
    with pytest.raises(RateLimited):
        client.balance()
    log = list(SandboxRequest.objects.order_by("started_at"))
    assert [(r.method, r.path.rsplit("/", 1)[-1], r.http_status, r.err_code) for r in log] == [
        ("POST", "generate", 200, 0),
        ("GET", "status", 200, 0),
        ("GET", "balance", 429, 429),
    ]
    assert all(r.account == account[0] for r in log)
    assert log[1].video_id == submission.video_id
    assert log[0].started_at < log[1].started_at < log[2].started_at
    assert time.time() - 10 < log[0].started_at


def test_the_request_log_forgets_after_a_day(account):
    old = SandboxRequest.objects.create(account=account[0], started_at=time.time() - 2 * 86400,
                                        duration_ms=1, method="GET", path="/x", http_status=200)
    new = SandboxRequest.objects.create(account=account[0], started_at=time.time() - 3600,
                                        duration_ms=1, method="GET", path="/x", http_status=200)
    assert SandboxRequest.prune() == 1
    assert list(SandboxRequest.objects.all()) == [new]
    assert not SandboxRequest.objects.filter(pk=old.pk).exists()


def test_the_limit_judges_arrivals_not_the_sandboxs_own_work(client, settings, monkeypatch):
    """A slow key lookup for one request must not make the next, which arrived
    well over the interval later, look too early (the old order refused it)."""
    from generations.sandbox import views
    from generations.sandbox.models import hash_key

    slow = [0.3]

    def slow_first_lookup(raw_key):
        if slow:
            time.sleep(slow.pop())
        return hash_key(raw_key)

    monkeypatch.setattr(views, "hash_key", slow_first_lookup)
    settings.SANDBOX_MIN_INTERVAL = 0.25
    started = time.monotonic()
    client.balance()
    client.balance()  # arrives ~0.3 s after the first, its answer right away
    assert time.monotonic() - started < 0.6
    first, second = SandboxRequest.objects.order_by("started_at")
    assert (first.http_status, second.http_status) == (200, 200)
    assert second.started_at - first.started_at >= 0.3


def test_the_client_limiter_keeps_the_sandbox_limit(client, settings):
    settings.SANDBOX_MIN_INTERVAL = 0.9
    settings.PIXVERSE_MIN_INTERVAL = 1.05
    client.balance()
    client.balance()


@pytest.mark.parametrize(("request_", "err_code", "field"), [
    (VideoRequest("p", 7, "360p"), 400017, "duration"),
    (VideoRequest("p", 5, "4k"), 400017, "quality"),
    (VideoRequest("p", 8, "540p", motion_mode="fast"), 400017, "motion_mode"),
    (VideoRequest("p", 5, "1080p", motion_mode="fast"), 400017, "motion_mode"),
    (VideoRequest("p", 5, "360p", model="v99"), 400017, "model"),
    (VideoRequest("x" * 2049, 5, "360p"), 400018, "2048"),
])
def test_invalid_parameters(client, request_, err_code, field):
    client.check = False  # what the sandbox itself answers
    with pytest.raises(InvalidRequest) as caught:
        client.text_to_video(request_, trace_id=new_trace())
    assert_error(caught.value, InvalidRequest, err_code)
    assert field in caught.value.err_msg
    assert client.balance().total == 1000


def test_an_image_id_of_another_account(client, sandbox_url):
    _, other_key = SandboxAccount.issue("other", credits=100)
    other_image = PixVerseClient(other_key, base_url=sandbox_url).upload_image(png_bytes())
    with pytest.raises(InvalidRequest) as caught:
        client.image_to_video(other_image.img_id, VideoRequest("p", 5, "360p"), trace_id=new_trace())
    assert_error(caught.value, InvalidRequest, 400032)


def test_an_image_over_the_limit_is_refused_by_the_server_too(client, sandbox_url, account):
    # Past the client's own check, the server must say the same thing.
    big = png_bytes(4001, 10)
    response = requests.post(
        f"{sandbox_url}/openapi/v2/image/upload",
        headers={"API-KEY": account[1], "ai-trace-id": new_trace()},
        files={"image": ("big.png", big, "image/png")}, timeout=5,
    )
    assert response.json()["ErrCode"] == 500033
    with pytest.raises(InvalidImageError):
        client.upload_image(big)


def test_a_video_that_fails_moderation_is_refunded(client):
    submission = client.text_to_video(VideoRequest("something forbidden", 5, "360p"),
                                      trace_id=new_trace())
    assert client.balance().total == 1000 - 45
    assert wait_until_final(client, submission.video_id).state is VideoState.MODERATION_FAILED
    assert client.balance().total == 1000


def test_a_video_that_fails(client, account):
    account[0].fault_generation_failure_rate = 1.0
    account[0].save()
    submission = client.text_to_video(VideoRequest("p", 5, "360p"), trace_id=new_trace())
    result = wait_until_final(client, submission.video_id)
    assert result.state is VideoState.FAILED
    assert result.url is None


def test_an_unknown_video(client):
    # The real service's answer (API-NOTES.md): HTTP 400 with ErrCode 500047. Which
    # error class the client makes of it is test_pixverse_client.py's business.
    with pytest.raises(PixVerseError) as caught:
        client.video_status(12345)
    assert caught.value.err_code == 500047
    assert caught.value.http_status == 400


# --- Faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "error_class", "err_code", "http_status"), [
    ("fault_http_500_rate", ServerError, 500, 500),
    ("fault_error_rate", ServerError, 500069, 200),
    ("fault_malformed_rate", MalformedResponse, None, 200),
])
def test_switchable_faults(client, account, fault, error_class, err_code, http_status):
    setattr(account[0], fault, 1.0)
    account[0].save()
    with pytest.raises(error_class) as caught:
        client.balance()
    assert type(caught.value) is error_class
    assert caught.value.err_code == err_code
    assert caught.value.http_status == http_status


def test_slow_answers_meet_the_clients_timeout(client, account, settings):
    settings.PIXVERSE_READ_TIMEOUT = 0.3
    account[0].fault_slow_seconds = 1.0
    account[0].save()
    from generations.pixverse import TransportError

    # The server goes on with the request after the client gave up. Its thread
    # shares the test's in-memory SQLite connection, so the test must not end
    # (and flush the database) until the server has closed the response: a row
    # in the request log is not enough, the thread may still hold a statement.
    answered = threading.Event()

    def on_finished(**kwargs):
        answered.set()

    request_finished.connect(on_finished, weak=False)
    try:
        with pytest.raises(TransportError) as caught:
            client.balance()
        assert caught.value.maybe_sent is True
        assert answered.wait(timeout=10)
    finally:
        request_finished.disconnect(on_finished)
    assert SandboxRequest.objects.get().path == "/sandbox/openapi/v2/account/balance"


def test_the_sandbox_is_off_unless_enabled(client, settings):
    settings.PIXVERSE_SANDBOX_ENABLED = False
    from generations.pixverse import RouteNotFound

    with pytest.raises(RouteNotFound):
        client.balance()


def test_a_request_slot_is_judged_by_arrival_times(account):
    sandbox_account = account[0]
    assert sandbox_account.claim_request_slot(1.0, now=1000.0)
    assert not sandbox_account.claim_request_slot(1.0, now=1000.99)
    assert sandbox_account.claim_request_slot(1.0, now=1001.0)
    sandbox_account.refresh_from_db()
    assert sandbox_account.last_request_at == 1001.0


# --- The real platform's other calls (API-NOTES.md, section 3) -------------------------------


def raw_post(sandbox_url, key, path, **kwargs) -> dict:
    """A request the client would refuse itself: to see that the sandbox refuses it too."""
    response = requests.post(f"{sandbox_url}/openapi/v2{path}", timeout=5,
                             headers={"API-KEY": key, "ai-trace-id": new_trace()}, **kwargs)
    return response.json()


def finished_video(client, **request) -> int:
    submission = client.text_to_video(VideoRequest("A wolf", 5, "360p", **request),
                                      trace_id=new_trace())
    assert wait_until_final(client, submission.video_id).state is VideoState.DONE
    return submission.video_id


def downloaded(result) -> bytes:
    response = requests.get(result.url, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "video/mp4"
    return response.content


def test_a_transition_between_two_uploaded_images(client, settings):
    first, last = client.upload_image(png_bytes()), client.upload_image(png_bytes(180, 320))
    trace_id = new_trace()
    submission = client.transition(
        TransitionRequest("Day turns to night", first.img_id, last.img_id, 5, "720p"),
        trace_id=trace_id)
    assert_submission(submission, trace_id)
    assert client.balance().total == 1000 - 60
    done = wait_until_final(client, submission.video_id)
    assert done.state is VideoState.DONE
    assert done.details["has_audio"] is False
    assert downloaded(done)[4:8] == b"ftyp"
    settings.PIXVERSE_STATUS_ENDPOINT = "result"
    real = client.video_status(submission.video_id)
    assert (real.details["outputWidth"], real.details["has_audio"]) == (1280, False)


def test_a_transition_from_another_accounts_image(client, sandbox_url):
    _, other_key = SandboxAccount.issue("other", credits=100)
    foreign = PixVerseClient(other_key, base_url=sandbox_url).upload_image(png_bytes())
    mine = client.upload_image(png_bytes())
    with pytest.raises(InvalidRequest) as caught:
        client.transition(TransitionRequest("p", mine.img_id, foreign.img_id, 5, "540p"),
                          trace_id=new_trace())
    assert_error(caught.value, InvalidRequest, 400032)
    assert client.balance().total == 1000


def test_extend_a_finished_video_or_an_uploaded_one(client):
    video_id = finished_video(client)
    extended = client.extend(ExtendRequest("It keeps running", 5, "540p", source_video_id=video_id),
                             trace_id=new_trace())
    assert wait_until_final(client, extended.video_id).state is VideoState.DONE
    media = client.upload_media(mp4_bytes(), "clip.mp4")
    assert media.media_type == "video"
    from_upload = client.extend(ExtendRequest("On", 5, "360p", video_media_id=media.media_id),
                                trace_id=new_trace())
    assert wait_until_final(client, from_upload.video_id).state is VideoState.DONE
    assert client.balance().total == 1000 - 45 - 45 - 45
    assert SandboxVideo.objects.get(video_id=extended.video_id).source_video.video_id == video_id


def test_extend_refuses_a_video_that_is_not_finished_or_not_this_accounts(client, sandbox_url):
    running = client.text_to_video(VideoRequest("p", 5, "360p"), trace_id=new_trace())
    _, other_key = SandboxAccount.issue("other", credits=100, generation_seconds=0)
    other = PixVerseClient(other_key, base_url=sandbox_url)
    foreign = other.text_to_video(VideoRequest("p", 5, "360p"), trace_id=new_trace())
    for video_id in (running.video_id, foreign.video_id, 12345):
        with pytest.raises(VideoNotFound) as caught:
            client.extend(ExtendRequest("p", 5, "540p", source_video_id=video_id),
                          trace_id=new_trace())
        assert_error(caught.value, VideoNotFound, 500047)
    assert client.balance().total == 1000 - 45


def test_a_video_to_extend_must_be_shorter_than_40_seconds(client, account):
    long_one = SandboxMedia.objects.create(account=account[0], media_type="video", format="mp4",
                                           duration=40.0)
    with pytest.raises(VideoNotFound) as caught:
        client.extend(ExtendRequest("p", 5, "540p", video_media_id=long_one.media_id),
                      trace_id=new_trace())
    assert "40 s" in caught.value.err_msg


@pytest.mark.parametrize(("body", "err_code", "detail"), [
    ({"prompt": "p", "model": "v5", "duration": 5, "quality": "540p"}, 400011, "source_video_id"),
    ({"model": "v5", "duration": 5, "quality": "540p", "source_video_id": 1}, 400011, "prompt"),
    ({"prompt": "p", "model": "v5", "duration": 5, "quality": "540p", "source_video_id": 1,
      "video_media_id": 2}, 400017, "not both"),
    ({"prompt": "p", "model": "v5", "duration": 5, "quality": "1080p", "motion_mode": "fast",
      "source_video_id": 1}, 400017, "motion_mode"),
    ({"prompt": "x" * 2049, "model": "v5", "duration": 5, "quality": "540p",
      "source_video_id": 1}, 400018, "2048"),
])
def test_the_sandbox_refuses_what_the_client_checks_too(client, account, sandbox_url,
                                                        body, err_code, detail):
    answer = raw_post(sandbox_url, account[1], "/video/extend/generate", json=body)
    assert answer["ErrCode"] == err_code
    assert detail in answer["ErrMsg"]
    assert client.balance().total == 1000


def test_a_sound_effect_on_a_finished_video_has_an_audio_track(client):
    video_id = finished_video(client)
    submission = client.sound_effect(SoundEffectRequest("Wind and howling", source_video_id=video_id),
                                     trace_id=new_trace())
    assert client.balance().total == 1000 - 45 - 10
    done = wait_until_final(client, submission.video_id)
    assert done.state is VideoState.DONE
    assert done.details["has_audio"] is True
    assert has_audio_track(downloaded(done))


def test_the_samples_of_silent_kinds_are_silent(client):
    # So that the audio check above says something: a text video has no sound.
    video_id = finished_video(client)
    assert not has_audio_track(downloaded(client.video_status(video_id)))


def test_a_lip_sync_by_tts_or_by_uploaded_audio_has_an_audio_track(client):
    video_id = finished_video(client)
    speakers = client.tts_speakers()
    assert TtsSpeaker("Emily", "Emily") in speakers
    by_tts = client.lip_sync(LipSyncRequest(source_video_id=video_id,
                                            lip_sync_tts_speaker_id="Emily",
                                            lip_sync_tts_content="Hello from the sandbox"),
                             trace_id=new_trace())
    audio = client.upload_media(wav_bytes(1.5), "speech.wav")
    assert audio.media_type == "audio"
    by_audio = client.lip_sync(LipSyncRequest(source_video_id=video_id,
                                              audio_media_id=audio.media_id),
                               trace_id=new_trace())
    # 22 bytes of text: 2 units of 15; 1.5 s of audio: 2 seconds started.
    assert client.balance().total == 1000 - 45 - 8 - 8
    for submission in (by_tts, by_audio):
        done = wait_until_final(client, submission.video_id)
        assert done.state is VideoState.DONE
        assert has_audio_track(downloaded(done))


def test_a_lip_sync_refuses_an_unknown_speaker_and_a_video_as_audio(client):
    video_id = finished_video(client)
    with pytest.raises(InvalidRequest) as caught:
        client.lip_sync(LipSyncRequest(source_video_id=video_id, lip_sync_tts_speaker_id="Nobody",
                                       lip_sync_tts_content="Hi"), trace_id=new_trace())
    assert_error(caught.value, InvalidRequest, 400017)
    not_audio = client.upload_media(mp4_bytes(), "clip.mp4")
    with pytest.raises(VideoNotFound) as caught:
        client.lip_sync(LipSyncRequest(source_video_id=video_id, audio_media_id=not_audio.media_id),
                        trace_id=new_trace())
    assert_error(caught.value, VideoNotFound, 500047)


def test_a_lip_sync_with_audio_and_tts_at_once_is_refused(client, account, sandbox_url):
    video_id = finished_video(client)
    answer = raw_post(sandbox_url, account[1], "/video/lip_sync/generate", json={
        "source_video_id": video_id, "audio_media_id": 1, "lip_sync_tts_speaker_id": "Auto",
        "lip_sync_tts_content": "Hi"})
    assert answer["ErrCode"] == 400017


def test_a_fusion_of_a_subject_and_a_background(client):
    hero, town = client.upload_image(png_bytes()), client.upload_image(png_bytes())
    submission = client.fusion(FusionRequest(
        (ImageReference("subject", hero.img_id, "hero"),
         ImageReference("background", town.img_id, "old town")),
        "@hero walks through @old town", 5, "540p", "16:9"), trace_id=new_trace())
    assert client.balance().total == 1000 - 45
    assert wait_until_final(client, submission.video_id).state is VideoState.DONE


def test_a_fusion_with_another_accounts_image(client, sandbox_url):
    _, other_key = SandboxAccount.issue("other", credits=100)
    foreign = PixVerseClient(other_key, base_url=sandbox_url).upload_image(png_bytes())
    with pytest.raises(InvalidRequest) as caught:
        client.fusion(FusionRequest((ImageReference("subject", foreign.img_id, "hero"),),
                                    "@hero", 5, "540p", "16:9"), trace_id=new_trace())
    assert_error(caught.value, InvalidRequest, 400032)


@pytest.mark.parametrize(("change", "detail"), [
    ({"prompt": "a hero walks"}, "@hero"),
    ({"model": "v5"}, "v4.5"),
    ({"image_references": [{"type": "subject", "img_id": 1, "ref_name": "hero!"}]}, "letters"),
    ({"image_references": [{"type": "person", "img_id": 1, "ref_name": "hero"}]}, "subject"),
])
def test_the_sandbox_refuses_a_fusion_the_client_would_refuse(account, sandbox_url, change, detail):
    body = {"image_references": [{"type": "subject", "img_id": 1, "ref_name": "hero"}],
            "prompt": "@hero", "model": "v4.5", "duration": 5, "quality": "540p",
            "aspect_ratio": "16:9", **change}
    answer = raw_post(sandbox_url, account[1], "/video/fusion/generate", json=body)
    assert answer["ErrCode"] == 400017
    assert detail in answer["ErrMsg"]


def test_a_new_kind_resent_with_its_trace_id_is_billed_once(client):
    video_id = finished_video(client)
    trace_id = new_trace()
    request = SoundEffectRequest("Rain", source_video_id=video_id)
    first = client.sound_effect(request, trace_id=trace_id)
    again = client.sound_effect(request, trace_id=trace_id)
    assert first.video_id == again.video_id
    assert client.balance().total == 1000 - 45 - 10


def test_an_uploaded_media_is_served_only_to_its_key(client, account):
    media = client.upload_media(wav_bytes(), "a.wav")
    assert requests.get(media.url, timeout=5).status_code == 404
    mine = requests.get(media.url, headers={"API-KEY": account[1]}, timeout=5)
    assert mine.content == wav_bytes()


@pytest.mark.parametrize(("files", "err_code"), [
    ({"file": ("notes.mp4", b"this is not a video at all" * 40, "video/mp4")}, 500032),
    ({"file": ("photo.mp3", png_bytes(), "audio/mpeg")}, 500032),
    ({"file": ("wide.mp4", mp4_bytes(1922, 16, frames=2), "video/mp4")}, 500033),
    ({"image": ("clip.mp4", mp4_bytes(), "video/mp4")}, 400011),
])
def test_the_media_upload_refuses_what_is_not_a_video_or_audio_it_takes(
        client, account, sandbox_url, files, err_code):
    answer = raw_post(sandbox_url, account[1], "/media/upload", files=files)
    assert answer["ErrCode"] == err_code
    assert answer["ErrMsg"]
    assert not SandboxMedia.objects.exists()


def test_the_speakers_come_from_the_newer_route_when_the_older_is_gone(client, account):
    account[0].tts_list_route = False
    account[0].save()
    speakers = client.tts_speakers()
    assert speakers[0] == TtsSpeaker("Auto", "Auto")
    paths = [r.path.split("/openapi/v2")[1] for r in SandboxRequest.objects.order_by("started_at")]
    assert paths == ["/video/lip_sync/tts_list", "/video/tts_speaker"]
    client.tts_speakers()
    assert SandboxRequest.objects.count() == 3


def test_the_effect_templates_say_which_are_activated(client, account):
    templates = client.effect_templates()
    assert [t.template_id for t in templates] == list(TEMPLATE_IDS)
    assert [t.activated for t in templates] == [True, True, True, False]
    assert templates[0].qualities == ("360p", "540p", "720p")
    account[0].activated_templates = list(TEMPLATE_IDS)
    account[0].save()
    assert all(t.activated for t in client.effect_templates())
    account[0].activated_templates = None  # the admin form emptied
    account[0].save()
    assert not any(t.activated for t in client.effect_templates())
    with pytest.raises(TemplateRefused):
        client.text_to_video(VideoRequest("p", 5, "540p", template_id=TEMPLATE_IDS[0]),
                             trace_id=new_trace())


def test_text_and_image_with_a_template(client):
    kiss, _hug, muscle, venom = TEMPLATE_IDS
    submission = client.text_to_video(VideoRequest("p", 5, "540p", template_id=kiss),
                                      trace_id=new_trace())
    assert wait_until_final(client, submission.video_id).state is VideoState.DONE
    image = client.upload_image(png_bytes())
    client.image_to_video(image.img_id, VideoRequest("p", 5, "360p", template_id=muscle),
                          trace_id=new_trace())
    with pytest.raises(TemplateRefused) as caught:
        client.text_to_video(VideoRequest("p", 5, "540p", template_id=venom), trace_id=new_trace())
    assert_error(caught.value, TemplateRefused, 500070)
    with pytest.raises(TemplateRefused) as caught:
        client.image_to_video(image.img_id, VideoRequest("p", 5, "1080p", template_id=kiss),
                              trace_id=new_trace())
    assert_error(caught.value, TemplateRefused, 500071)
    with pytest.raises(InvalidRequest) as caught:
        client.text_to_video(VideoRequest("p", 5, "540p", template_id=99), trace_id=new_trace())
    assert_error(caught.value, InvalidRequest, 400017)
    assert client.balance().total == 1000 - 45 - 45


def test_a_text_video_with_a_sound_effect_costs_more_and_has_sound(client):
    submission = client.text_to_video(
        VideoRequest("Waves", 8, "360p", sound_effect_switch=True, sound_effect_content="Surf"),
        trace_id=new_trace())
    assert client.balance().total == 1000 - 90 - 20
    done = wait_until_final(client, submission.video_id)
    assert done.details["has_audio"] is True
    assert has_audio_track(downloaded(done))
