"""The sandbox's switchable faults, over real HTTP, and its billing log.

Each fault is driven the way the portal's engine meets it: through
PixVerseClient where the client's view is the point, with raw `requests`
where the client would hide the detail (HTTP status, body, timing).
"""

import io
import threading
import time
import uuid

import pytest
import requests
from django.core.exceptions import ValidationError
from django.core.signals import request_finished
from django.utils import timezone
from PIL import Image

from generations.pixverse import (
    NoCredits,
    PixVerseClient,
    RateLimited,
    TransportError,
    VideoRequest,
)
from generations.sandbox.models import (
    SandboxAccount,
    SandboxCharge,
    SandboxRequest,
    SandboxVideo,
)
from generations.sandbox.views import SAMPLES, SOUND_SAMPLE

pytestmark = pytest.mark.django_db(transaction=True)


def new_trace() -> str:
    return str(uuid.uuid4())


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 180), "orange").save(out, "PNG")
    return out.getvalue()


def switch_on(account: SandboxAccount, **faults) -> None:
    for name, value in faults.items():
        setattr(account, name, value)
    account.save()


def finished_video(account: SandboxAccount) -> SandboxVideo:
    now = timezone.now()
    return SandboxVideo.objects.create(
        account=account, trace_id=new_trace(), kind="text", params={"quality": "360p"},
        credits=45, outcome=SandboxVideo.Outcome.SUCCESS, created=now, ready_at=now,
    )


@pytest.fixture
def account(db):
    return SandboxAccount.issue("faults", credits=1000, generation_seconds=0.3)


@pytest.fixture
def client(account, sandbox_url):
    return PixVerseClient(account[1], base_url=sandbox_url)


@pytest.fixture
def answered():
    """Set when the live server has finished a request (cleared by the test before one).

    The server's thread shares the test's in-memory SQLite connection, so after
    the client gave up (timeout, dropped connection) the test waits for the
    server to be done before it reads the database or ends.
    """
    event = threading.Event()

    def on_finished(**kwargs):
        event.set()

    request_finished.connect(on_finished, weak=False)
    yield event
    request_finished.disconnect(on_finished)


def headers(account, trace_id=None):
    return {"API-KEY": account[1], "ai-trace-id": trace_id or new_trace()}


# --- Billed, and the answer lost ------------------------------------------------------------


def test_a_generate_call_answered_after_the_timeout_is_billed_once(client, account, settings,
                                                                     answered):
    settings.PIXVERSE_READ_TIMEOUT = 0.3
    switch_on(account[0], fault_timeout_after_billing_rate=1.0, fault_hang_seconds=0.8)
    trace_id = new_trace()
    with pytest.raises(TransportError) as caught:
        client.text_to_video(VideoRequest("p", 5, "360p"), trace_id=trace_id)
    assert caught.value.maybe_sent is True
    assert answered.wait(timeout=5)
    assert SandboxCharge.objects.filter(trace_id=trace_id).count() == 1
    account[0].refresh_from_db()
    assert account[0].credits == 1000 - 45

    switch_on(account[0], fault_timeout_after_billing_rate=0.0)
    again = client.text_to_video(VideoRequest("p", 5, "360p"), trace_id=trace_id)
    assert again.video_id == SandboxVideo.objects.get(trace_id=trace_id).video_id
    assert SandboxCharge.objects.filter(trace_id=trace_id).count() == 1
    assert client.balance().total == 1000 - 45


def test_a_generate_call_whose_connection_is_dropped_is_billed_once(client, account, answered):
    switch_on(account[0], fault_drop_after_billing_rate=1.0)
    trace_id = new_trace()
    with pytest.raises(TransportError) as caught:
        client.text_to_video(VideoRequest("p", 5, "360p"), trace_id=trace_id)
    assert caught.value.maybe_sent is True
    assert answered.wait(timeout=5)
    assert SandboxVideo.objects.filter(trace_id=trace_id).exists()
    assert SandboxCharge.objects.filter(trace_id=trace_id).count() == 1
    # The log says the sandbox closed the connection without answering (nginx's 444).
    assert SandboxRequest.objects.get().http_status == 444


def test_a_dropped_connection_is_no_http_answer_at_all(account, sandbox_url, answered):
    switch_on(account[0], fault_drop_after_billing_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{sandbox_url}/openapi/v2/video/text/generate", headers=headers(account),
                      json={"prompt": "p", "duration": 5, "quality": "360p"}, timeout=5)
    assert answered.wait(timeout=5)
    account[0].refresh_from_db()
    assert account[0].credits == 1000 - 45


@pytest.mark.parametrize("fault", ["fault_drop_after_billing_rate",
                                   "fault_timeout_after_billing_rate"])
def test_billing_faults_spare_a_resent_trace_id(client, account, fault):
    trace_id = new_trace()
    first = client.text_to_video(VideoRequest("p", 5, "360p"), trace_id=trace_id)
    switch_on(account[0], fault_hang_seconds=5.0, **{fault: 1.0})
    started = time.monotonic()
    again = client.text_to_video(VideoRequest("p", 5, "360p"), trace_id=trace_id)
    assert time.monotonic() - started < 2
    assert again.video_id == first.video_id
    assert SandboxCharge.objects.filter(trace_id=trace_id).count() == 1


def test_billing_faults_spare_a_refused_call(client, account):
    switch_on(account[0], fault_drop_after_billing_rate=1.0, credit_monthly=10)
    with pytest.raises(NoCredits):
        client.text_to_video(VideoRequest("p", 5, "360p"), trace_id=new_trace())
    assert not SandboxCharge.objects.exists()


# --- Refusals -------------------------------------------------------------------------------


def test_a_429_fault(client, account):
    switch_on(account[0], fault_http_429_rate=1.0)
    with pytest.raises(RateLimited) as caught:
        client.balance()
    assert (caught.value.err_code, caught.value.http_status) == (429, 429)


def test_the_429_fault_answers_the_rate_limits_envelope(account, sandbox_url):
    switch_on(account[0], fault_http_429_rate=1.0)
    response = requests.get(f"{sandbox_url}/openapi/v2/account/balance",
                            headers=headers(account), timeout=5)
    assert response.status_code == 429
    assert response.json() == {"ErrCode": 429, "ErrMsg": "Too Many Requests", "Resp": None}


def test_the_spec_status_route_can_answer_404_in_the_envelope(client, account, sandbox_url,
                                                               settings):
    submission = client.text_to_video(VideoRequest("p", 5, "360p"), trace_id=new_trace())
    switch_on(account[0], spec_status_404_envelope=True)
    response = requests.get(f"{sandbox_url}/openapi/v2/video/status",
                            params={"video_id": submission.video_id},
                            headers=headers(account), timeout=5)
    assert response.status_code == 404
    assert response.json() == {"ErrCode": 404, "ErrMsg": "Not Found", "Resp": None}
    settings.PIXVERSE_STATUS_ENDPOINT = "result"
    assert client.video_status(submission.video_id).endpoint == "result"


def test_without_the_spec_status_route_the_404_is_plain_text(client, account, sandbox_url):
    switch_on(account[0], spec_status_route=False, spec_status_404_envelope=True)
    response = requests.get(f"{sandbox_url}/openapi/v2/video/status", params={"video_id": 1},
                            headers=headers(account), timeout=5)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize("route", ["video/status?video_id={id}", "video/result/{id}"])
@pytest.mark.parametrize("whose", ["unknown", "foreign"])
def test_an_unknown_or_foreign_video_is_invalid_media(account, sandbox_url, route, whose):
    video_id = 12345
    if whose == "foreign":
        video_id = finished_video(SandboxAccount.issue("other")[0]).video_id
    response = requests.get(f"{sandbox_url}/openapi/v2/{route.format(id=video_id)}",
                            headers=headers(account), timeout=5)
    assert response.status_code == 400
    assert response.json() == {"ErrCode": 500047, "ErrMsg": "The provided media is invalid",
                               "Resp": None}


# --- Hangs ----------------------------------------------------------------------------------

HANG = 0.3


def call(client, kind):
    if kind == "balance":
        return client.balance()
    if kind == "upload":
        return client.upload_image(png_bytes())
    if kind == "generate":
        return client.text_to_video(VideoRequest("p", 5, "360p"), trace_id=new_trace())
    if kind == "lists":
        return client.effect_templates()
    return client.video_status(SandboxVideo.objects.first().video_id)


def timed(function, *args) -> float:
    started = time.monotonic()
    function(*args)
    return time.monotonic() - started


@pytest.mark.parametrize("kind", ["balance", "upload", "generate", "status", "lists"])
def test_calls_of_a_listed_kind_hang(client, account, kind, settings):
    finished_video(account[0])
    settings.PIXVERSE_STATUS_ENDPOINT = "result"
    switch_on(account[0], fault_hang_calls=kind, fault_hang_seconds=HANG)
    assert timed(call, client, kind) >= HANG
    other = "balance" if kind != "balance" else "status"
    assert timed(call, client, other) < HANG


def test_a_lists_hang_covers_the_speakers_and_the_templates(client, account):
    switch_on(account[0], fault_hang_calls="lists", fault_hang_seconds=HANG)
    assert timed(client.tts_speakers) >= HANG
    assert timed(client.effect_templates) >= HANG


def test_a_status_hang_covers_both_status_routes(client, account, settings):
    video = finished_video(account[0])
    switch_on(account[0], fault_hang_calls="status", fault_hang_seconds=HANG)
    settings.PIXVERSE_STATUS_ENDPOINT = "status"
    assert timed(client.video_status, video.video_id) >= HANG
    settings.PIXVERSE_STATUS_ENDPOINT = "result"
    assert timed(client.video_status, video.video_id) >= HANG


def test_the_calls_that_hang_must_be_known_kinds(account):
    account[0].fault_hang_calls = "balance, status"
    account[0].full_clean()
    account[0].fault_hang_calls = "balance, poll"
    with pytest.raises(ValidationError) as caught:
        account[0].full_clean()
    assert "poll" in str(caught.value.message_dict["fault_hang_calls"])


def test_the_activated_templates_must_be_known_ids(account):
    from generations.sandbox.models import TEMPLATE_IDS

    assert account[0].activated_templates == list(TEMPLATE_IDS[:-1])
    for fine in ([], None, list(TEMPLATE_IDS)):
        account[0].activated_templates = fine
        account[0].full_clean()
    for wrong, message in (([12345], "12345"), (["Kiss"], "list of template ids"),
                           ({"Kiss": 1}, "list of template ids")):
        account[0].activated_templates = wrong
        with pytest.raises(ValidationError) as caught:
            account[0].full_clean()
        assert message in str(caught.value.message_dict["activated_templates"])


# --- Video files ----------------------------------------------------------------------------


def file_url(sandbox_url, video):
    return f"{sandbox_url}/files/videos/{video.video_id}.mp4"


def test_video_files_can_fail_for_the_account_that_owns_them(account, sandbox_url):
    switch_on(account[0], fault_file_error_rate=1.0)
    faulty = finished_video(account[0])
    healthy = finished_video(SandboxAccount.issue("other")[0])
    assert requests.get(file_url(sandbox_url, faulty), timeout=5).status_code == 503
    assert requests.get(file_url(sandbox_url, healthy), timeout=5).status_code == 200


@pytest.mark.parametrize(("kind", "params", "sound"), [
    ("text", {"quality": "360p"}, False),
    ("transition", {"quality": "540p"}, False),
    ("text", {"quality": "360p", "sound_effect_switch": True}, True),
    ("sound_effect", {}, True),
    ("lip_sync", {}, True),
])
def test_a_video_that_must_have_sound_is_served_the_sample_with_sound(
        account, sandbox_url, kind, params, sound):
    video = finished_video(account[0])
    SandboxVideo.objects.filter(pk=video.pk).update(kind=kind, params=params)
    content = requests.get(file_url(sandbox_url, video), timeout=5).content
    if sound:
        assert content == SOUND_SAMPLE.read_bytes()
    else:
        assert content == SAMPLES[video.video_id % len(SAMPLES)].read_bytes()


def test_the_sample_with_sound_is_small_and_not_among_the_silent_ones():
    assert SOUND_SAMPLE not in SAMPLES
    assert SOUND_SAMPLE.stat().st_size < 300_000


def test_video_files_can_come_slowly(account, sandbox_url):
    switch_on(account[0], fault_file_slow_seconds=0.5)
    video = finished_video(account[0])
    started = time.monotonic()
    response = requests.get(file_url(sandbox_url, video), timeout=5)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "video/mp4"
    assert response.content == SAMPLES[video.video_id % len(SAMPLES)].read_bytes()
    assert 0.45 <= elapsed < 3


# --- The billing log ------------------------------------------------------------------------


def test_each_new_video_is_charged_once_and_a_resent_trace_id_not_at_all(client, account):
    trace_id = new_trace()
    client.text_to_video(VideoRequest("p", 5, "720p"), trace_id=trace_id)
    client.text_to_video(VideoRequest("p", 5, "720p"), trace_id=trace_id)
    charge = SandboxCharge.objects.get()
    assert (charge.account, charge.trace_id, charge.credits) == (account[0], trace_id, 60)
    assert charge.video == SandboxVideo.objects.get()
    assert SandboxCharge.billed_more_than_once() == []


def test_a_moderation_refund_is_a_negative_charge(client, account):
    trace_id = new_trace()
    submission = client.text_to_video(VideoRequest("something forbidden", 5, "360p"),
                                      trace_id=trace_id)
    time.sleep(0.4)
    client.video_status(submission.video_id)
    client.balance()  # a second request finds nothing more to refund
    credits = sorted(SandboxCharge.objects.filter(trace_id=trace_id)
                     .values_list("credits", flat=True))
    assert credits == [-45, 45]
    assert SandboxCharge.billed_more_than_once() == []


def test_trace_ids_billed_more_than_once(account):
    other = SandboxAccount.issue("other")[0]
    for owner, trace_id in [(account[0], "twice"), (account[0], "twice"), (account[0], "once"),
                            (other, "elsewhere"), (other, "elsewhere"), (other, "once")]:
        SandboxCharge.objects.create(account=owner, trace_id=trace_id, credits=45)
    SandboxCharge.objects.create(account=account[0], trace_id="once", credits=-45)
    assert SandboxCharge.billed_more_than_once() == ["elsewhere", "twice"]
    assert SandboxCharge.billed_more_than_once(account[0]) == ["twice"]


def test_an_uploaded_image_is_served_only_to_the_key_that_uploaded_it(sandbox_account, sandbox_url):
    _account, key = sandbox_account
    _other, other_key = SandboxAccount.issue("other", credits=10)
    uploaded = PixVerseClient(key, base_url=sandbox_url).upload_image(png_bytes())
    assert requests.get(uploaded.img_url, timeout=10).status_code == 404
    assert requests.get(uploaded.img_url, headers={"API-KEY": other_key}, timeout=10).status_code == 404
    mine = requests.get(uploaded.img_url, headers={"API-KEY": key}, timeout=10)
    assert mine.status_code == 200 and mine.content.startswith(b"\x89PNG")

