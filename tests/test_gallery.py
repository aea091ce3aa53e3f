"""The gallery's markup as the server writes it: the lightbox's trigger on finished cards
(a link to the video's page, which portal.js turns into the lightbox), the lightbox itself,
and the image field's drop zone. Its behaviour in a browser: tests/test_e2e_gallery.py."""

import re

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from generations.models import ApiCredential, Generation


@pytest.fixture
def alice(db):
    user = User.objects.create_user("alice", password="pw-alice")
    credential = ApiCredential(user=user)
    credential.set_key("sk-alice-secret-key-AAAA")
    credential.save()
    return user


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


def make_generation(owner, **fields):
    values = {"kind": "text", "prompt": "A wolf", "model": "v5", "quality": "360p", "duration": 5,
              "credits": 45} | fields
    return Generation.objects.create(owner=owner, **values)


def triggers(html: str) -> list[str]:
    return re.findall(r'<a [^>]*data-lightbox-open[^>]*>', html)


def test_a_finished_card_links_to_its_page_for_the_lightbox(as_alice, alice):
    done = make_generation(alice, status="done", video_url="https://cdn.test/v.mp4")
    make_generation(alice, status="running", prompt="Still going")
    make_generation(alice, status="failed", prompt="Went wrong")
    html = as_alice.get(reverse("dashboard")).content.decode()
    # Without JavaScript the trigger is a plain link to the video's page.
    assert triggers(html) == [f'<a class="button small" href="{reverse("detail", args=[done.code])}" '
                              'data-lightbox-open>']
    assert ">View large</a>" in html


def test_the_history_has_the_trigger_and_the_lightbox(as_alice, alice):
    done = make_generation(alice, status="done", video_url="https://cdn.test/v.mp4")
    html = as_alice.get(reverse("history")).content.decode()
    assert f'href="{reverse("detail", args=[done.code])}" data-lightbox-open' in html
    assert html.count('<dialog id="lightbox"') == 1
    assert 'aria-labelledby="lightbox-prompt"' in html


def test_a_card_fetched_by_htmx_has_the_trigger_but_no_lightbox(as_alice, alice):
    done = make_generation(alice, status="done", video_url="https://cdn.test/v.mp4")
    html = as_alice.get(reverse("card", args=[done.code]), headers={"HX-Request": "true"}).content.decode()
    assert f'href="{reverse("detail", args=[done.code])}" data-lightbox-open' in html
    assert "<dialog" not in html


def test_the_lightbox_is_on_the_dashboard_once_with_its_words_translated(as_alice):
    html = as_alice.get(reverse("dashboard")).content.decode()
    assert html.count('<dialog id="lightbox"') == 1
    # The script fills the places of the position's wording.
    assert 'data-position="Video %(n)s of %(total)s"' in html
    for name in ("Close", "Previous", "Next", "Details", "Download", "Remix"):
        assert f">{name}<" in html


def test_the_download_and_remix_links_are_marked_for_the_lightbox(as_alice, alice):
    done = make_generation(alice, status="done", video_url="https://cdn.test/v.mp4",
                           video_file="videos/v.mp4")
    html = as_alice.get(reverse("dashboard")).content.decode()
    assert f'href="{reverse("video", args=[done.code])}?download=1" data-download>' in html
    assert f'href="{reverse("dashboard")}?mode=text&amp;from={done.code}" data-remix>' in html


def test_the_image_field_is_in_a_drop_zone_with_the_scripts_wordings(as_alice):
    html = as_alice.get(reverse("dashboard") + "?mode=image").content.decode()
    zone = html[html.index("data-drop-zone"):html.index('<p id="image-preview-size"')]
    assert 'type="file"' in zone
    # Shown by portal.js only, which is what makes drops and pastes work.
    assert '<p class="drop-hint muted small" hidden>You can also drop an image here or paste one.</p>' in zone
    assert 'data-not-image="%(name)s is not an image. Use a JPEG, PNG or WebP image."' in zone
    assert 'data-size-format="%(width)s × %(height)s · %(size)s"' in zone
    assert 'data-kilobytes="%(n)s KB"' in zone
    assert 'data-megabytes="%(n)s MB"' in zone
    assert 'data-preview-size="image-preview-size"' in zone
