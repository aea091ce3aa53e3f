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
    InvalidImageError,
    InvalidKey,
    InvalidRequest,
    MalformedResponse,
    NoCredits,
    PixVerseClient,
    PixVerseError,
    RateLimited,
    ServerError,
    VideoRequest,
    VideoState,
)
from generations.sandbox.models import SandboxAccount, SandboxRequest, SandboxVideo

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
