"""A running job's progress: the time it is expected to take, fixed at submission, and the
card's bar, which the browser moves from data attributes (the card stays the same)."""

import html
import json
import re
from datetime import timedelta

import pytest
import responses
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from generations import jobs
from generations.models import ApiCredential, Generation
from generations.ratelimit import key_fingerprint

BASE = "https://pixverse.test/openapi/v2"
KEY = "sk-member-key-0042"
S = Generation.Status
HTMX = {"HX-Request": "true"}


@pytest.fixture
def alice(db):
    user = User.objects.create_user("alice")
    credential = ApiCredential(user=user)
    credential.set_key(KEY)
    credential.save()
    return user


def job(owner, **fields) -> Generation:
    values = {"kind": "text", "prompt": "A wolf", "model": "v5", "quality": "360p", "duration": 5,
              "credits": 45} | fields
    return Generation.objects.create(owner=owner, **values)


def finished(owner, seconds: float, **fields) -> Generation:
    """A done job whose video was ready `seconds` after its submission (the bracket's middle)."""
    submitted = timezone.now() - timedelta(minutes=5)
    return job(owner, status=S.DONE, submitted_at=submitted,
               last_read_at=submitted + timedelta(seconds=seconds - 2),
               finished_at=submitted + timedelta(seconds=seconds + 2), **fields)


def test_before_anything_is_learned_the_expected_time_is_a_fallback_by_length_and_quality(db):
    # A minute for a 5-second video, plus half a read interval (2 s) until a read notices it.
    assert jobs.expected_seconds("360p", 5, "text") == 62
    assert jobs.expected_seconds("720p", 8, "image") == 98
    assert jobs.expected_seconds("1080p", 5, "text") == 92


def test_the_expected_time_is_learned_from_recent_videos_of_the_same_kind(alice):
    for seconds in (30, 32, 40):
        finished(alice, seconds)
    finished(alice, 50, kind="image")
    finished(alice, 300, quality="720p")  # another quality: not counted
    assert jobs.expected_seconds("360p", 5, "text") == 34  # median 32 + 2
    assert jobs.expected_seconds("360p", 5, "image") == 52
    # No image video of 8 s yet: what text ones took, then the fallback.
    finished(alice, 70, duration=8)
    assert jobs.expected_seconds("360p", 8, "image") == 72
    assert jobs.expected_seconds("540p", 8, "image") == 98


@responses.activate
def test_the_expected_time_is_fixed_from_creation_when_the_job_is_submitted(alice):
    responses.post(f"{BASE}/video/text/generate", json={"ErrCode": 0, "ErrMsg": "ok",
                                                        "Resp": {"video_id": 5}})
    queued = job(alice, created=timezone.now() - timedelta(seconds=10))
    assert queued.expected_seconds is None
    credential = ApiCredential.objects.get(key_hash=key_fingerprint(KEY))
    assert jobs.submit(queued, credential.client())
    queued.refresh_from_db()
    assert queued.status == S.RUNNING
    # Ten seconds in the queue, then 62 s as such videos are expected to take.
    assert queued.expected_seconds in (72, 73)


def progress_bar(card: str) -> str:
    return re.search(r"<progress\b[^>]*>", card, re.S).group(0)


def test_a_running_card_carries_the_bar_the_browser_moves(client, alice):
    running = job(alice, status=S.RUNNING, expected_seconds=65, submitted_at=timezone.now())
    client.force_login(alice)
    first = client.get(reverse("card", args=[running.code]), headers=HTMX)
    card = first.content.decode()
    bar = progress_bar(card)
    assert 'max="65"' in bar and 'data-expected-seconds="65"' in bar
    assert f'data-progress-since="{running.created.isoformat()}"' in bar
    assert " value=" not in bar  # without JavaScript: indeterminate, never a made-up value
    assert f'aria-describedby="progress-{running.code}"' in bar and "aria-label=" in bar
    assert "usually ready in about 1 min 5 s" in card
    formats = html.unescape(re.search(r'data-formats="([^"]*)"', card).group(1))
    assert json.loads(formats) == ["about %(t)s left", "taking longer than usual"]
    assert 'class="placeholder"' in card

    # What the portal learns later does not change the card: the expected time was
    # fixed at submission, and the bar is the same in every rendering of the card.
    for seconds in (5, 6, 7):
        finished(alice, seconds)
    again = client.get(reverse("card", args=[running.code]), headers=HTMX)
    assert again.headers["ETag"] == first.headers["ETag"]
    assert progress_bar(again.content.decode()) == bar
    assert client.get(reverse("card", args=[running.code]),
                      headers={**HTMX, "If-None-Match": first.headers["ETag"]}).status_code == 304


def test_a_job_submitted_before_expected_times_has_an_indeterminate_bar(client, alice):
    running = job(alice, status=S.RUNNING, submitted_at=timezone.now())
    client.force_login(alice)
    bar = progress_bar(client.get(reverse("card", args=[running.code]), headers=HTMX).content.decode())
    assert "data-expected-seconds" not in bar and "max=" not in bar


def test_a_queued_card_has_no_bar_yet(client, alice):
    queued = job(alice)
    client.force_login(alice)
    card = client.get(reverse("card", args=[queued.code]), headers=HTMX).content.decode()
    assert "<progress" not in card and 'class="placeholder"' in card


def test_a_running_image_job_shows_its_source_image_instead_of_the_shimmer(
        client, alice, settings, django_assert_num_queries):
    running = job(alice, kind="image", status=S.RUNNING, expected_seconds=40)
    running.source_image.save("source.png", ContentFile(b"png"), save=True)
    client.force_login(alice)
    client.get("/")  # the page the card is polled from (it notes the member's role in the session)
    url = reverse("card", args=[running.code])
    # The card renders from its one narrow read: nothing it shows is loaded later.
    cached_session = settings.SESSION_ENGINE.endswith("cached_db")
    with django_assert_num_queries(2 if cached_session else 3):
        card = client.get(url, headers=HTMX).content.decode()
    image = re.search(r'<img class="running-source"[^>]*>', card).group(0)
    assert f'src="{reverse("source-image", args=[running.code])}"' in image
    assert 'loading="lazy"' in image and 'alt="The image being animated"' in image
    assert 'class="placeholder"' not in card and "<progress" in card


def test_the_video_page_of_a_running_job_has_the_bar_too(client, alice):
    running = job(alice, status=S.RUNNING, expected_seconds=40)
    client.force_login(alice)
    page = client.get(reverse("detail", args=[running.code])).content.decode()
    assert 'data-expected-seconds="40"' in progress_bar(page)
