"""The poster view and the players that show it: on cards and on a video's page."""

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from generations import video_facts
from generations.models import Generation

SAMPLE = sorted((Path(video_facts.__file__).parent / "sandbox" / "samples").glob("*.mp4"))[0]
S = Generation.Status
HTMX = {"HX-Request": "true"}


@pytest.fixture
def alice(db):
    return User.objects.create_user("alice")


@pytest.fixture
def bob(db):
    return User.objects.create_user("bob")


def stored_video(owner, **fields) -> Generation:
    """A finished job with our copy and the facts read from it, as store_video leaves it."""
    generation = Generation.objects.create(
        owner=owner, kind="text", prompt="A wolf", model="v5", quality="360p", duration=5, credits=45,
        status=S.DONE, video_id=77, finished_at=timezone.now(), **fields)
    facts = video_facts.read(SAMPLE.open("rb"))
    generation.video_file.save("77.mp4", ContentFile(SAMPLE.read_bytes()), save=False)
    generation.poster.save("77.jpg", ContentFile(facts.poster_jpeg), save=False)
    Generation.objects.filter(pk=generation.pk).update(
        video_file=generation.video_file.name, **Generation._facts_fields(facts, generation.poster.name))
    generation.refresh_from_db()
    return generation


def as_member(client, user):
    client.force_login(user)
    return client


def test_the_poster_is_served_to_the_owner_and_to_team_mates(client, alice, bob):
    generation = stored_video(alice)
    for member in (alice, bob):
        response = as_member(client, member).get(reverse("poster", args=[generation.code]))
        assert response.status_code == 200
        assert response["Content-Type"] == "image/jpeg"
        assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"
        assert "private" in response["Cache-Control"]


def test_a_member_who_may_not_see_the_job_gets_404_for_its_poster(client, alice, bob):
    generation = stored_video(alice, is_private=True)
    assert as_member(client, bob).get(reverse("poster", args=[generation.code])).status_code == 404
    client.logout()
    response = client.get(reverse("poster", args=[generation.code]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_job_without_a_poster_has_none_to_serve(client, alice):
    generation = Generation.objects.create(owner=alice, kind="text", prompt="A wolf", model="v5",
                                           quality="360p", duration=5, credits=45, status=S.DONE)
    assert as_member(client, alice).get(reverse("poster", args=[generation.code])).status_code == 404


def video_tag(page: str) -> str:
    return re.search(r"<video\b[^>]*>", page, re.S).group(0)


def test_a_done_card_has_a_lazy_poster_at_the_videos_shape(client, alice):
    generation = stored_video(alice)
    card = as_member(client, alice).get(reverse("card", args=[generation.code]), headers=HTMX)
    tag = video_tag(card.content.decode())
    assert 'preload="none"' in tag
    assert 'width="640" height="360"' in tag
    assert f'data-poster="{reverse("poster", args=[generation.code])}"' in tag
    # The poster is fetched only once the card is near the viewport (portal.js), never eagerly.
    assert " poster=" not in tag
    assert f'src="{reverse("video", args=[generation.code])}"' in tag


def test_a_video_whose_facts_are_unknown_keeps_a_16_9_place(client, alice):
    Generation.objects.create(owner=alice, kind="text", prompt="A wolf", model="v5", quality="360p",
                              duration=5, credits=45, status=S.DONE, video_url="https://cdn.pixverse.test/1.mp4")
    page = as_member(client, alice).get(reverse("dashboard")).content.decode()
    tag = video_tag(page)
    assert 'class="ratio-unknown"' in tag and "data-poster" not in tag and "width=" not in tag


def test_the_video_page_shows_the_player_and_the_facts(client, alice):
    generation = stored_video(alice)
    page = as_member(client, alice).get(reverse("detail", args=[generation.code])).content.decode()
    tag = video_tag(page)
    assert 'preload="none"' in tag and 'width="640" height="360"' in tag and "data-poster=" in tag
    facts = re.sub(r"\s+", " ", re.search(r'<dl class="facts">.*?</dl>', page, re.S).group(0))
    assert "<dt>Video length</dt><dd>5.0 s</dd>" in facts
    assert "<dt>Resolution</dt><dd>640 × 360 px</dd>" in facts
    assert "<dt>Sound</dt><dd>No sound</dd>" in facts


def test_a_job_without_facts_shows_none_on_its_page(client, alice):
    generation = Generation.objects.create(owner=alice, kind="text", prompt="A wolf", model="v5",
                                           quality="360p", duration=5, credits=45, status=S.DONE)
    page = as_member(client, alice).get(reverse("detail", args=[generation.code])).content.decode()
    assert "Resolution" not in page and "Video length" not in page and "<dt>Sound" not in page


def test_a_deleted_job_takes_its_poster_along(alice, django_capture_on_commit_callbacks):
    generation = stored_video(alice)
    poster = Path(generation.poster.path)
    assert poster.exists()
    with django_capture_on_commit_callbacks(execute=True):
        generation.delete()
    assert not poster.exists()
