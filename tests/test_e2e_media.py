"""End to end: posters, the source image behind a running job, and a progress bar that moves.

A real web server, qcluster and sandbox (the fixtures of test_end_to_end.py), in Chromium.
"""

import re

import pytest
from PIL import Image

from tests.processes import django_shell
from tests.test_end_to_end import CHROMIUM, browser, portal, sign_in, wait_for_playable_video  # noqa: F401

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(),
                       reason="Debian's chromium is not installed"),
]


def member_with_a_slow_key(env, name: str, seconds: int) -> None:
    """A member whose sandbox key takes `seconds` for each video: long enough to watch it run."""
    django_shell(env, f"""
from django.contrib.auth.models import User
from generations.models import ApiCredential
from generations.sandbox.models import SandboxAccount
user = User.objects.create_user({name!r}, password="e2e-long-password")
_, key = SandboxAccount.issue({name!r}, credits=1000, generation_seconds={seconds})
credential = ApiCredential(user=user)
credential.set_key(key)
credential.save()
""")


def test_a_running_card_shows_progress_and_the_done_card_a_poster(portal, browser):
    base, env = portal
    member_with_a_slow_key(env, "ivy", 12)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    posters = []
    page.on("response", lambda r: posters.append(r.status) if r.url.endswith("/poster.jpg") else None)
    sign_in(page, base, "ivy")

    page.fill("#id_prompt", "A heron over a misty lake")
    page.click("text=Generate video")
    bar = page.locator(".job-card.status-running progress[data-expected-seconds]")
    bar.wait_for(timeout=30_000)
    text = page.locator(".job-card.status-running .progress span")
    page.wait_for_function("(el) => el.value > 0", arg=bar.element_handle(), timeout=5_000)
    first = bar.evaluate("el => el.value")
    page.wait_for_timeout(2_500)
    assert bar.evaluate("el => el.value") > first  # moving, between polls answered 304
    assert bar.evaluate("el => el.max") == int(bar.get_attribute("data-expected-seconds"))
    assert re.fullmatch(r"about .+ left|taking longer than usual", text.inner_text()), text.inner_text()

    # Done: the copy is stored with its poster, which the video shows before it plays.
    wait_for_playable_video(page, ".job-card.status-done")
    video = page.locator(".job-card.status-done video[data-poster]")
    video.wait_for(timeout=60_000)
    page.wait_for_function("(el) => el.poster !== ''", arg=video.element_handle(), timeout=10_000)
    poster_url = video.evaluate("el => el.poster")
    assert poster_url.endswith("/poster.jpg")
    natural = page.evaluate("""async (url) => {
        const image = new Image();
        image.src = url;
        await image.decode();
        return [image.naturalWidth, image.naturalHeight];
    }""", poster_url)
    assert natural == [640, 360]
    assert posters and set(posters) == {200}, posters
    # Not a black frame: the poster's pixels, read back in the page.
    brightness = page.evaluate("""async (url) => {
        const image = new Image();
        image.src = url;
        await image.decode();
        const canvas = document.createElement("canvas");
        canvas.width = 64; canvas.height = 36;
        const context = canvas.getContext("2d");
        context.drawImage(image, 0, 0, 64, 36);
        const data = context.getImageData(0, 0, 64, 36).data;
        let sum = 0;
        for (let i = 0; i < data.length; i += 4) sum += data[i] + data[i + 1] + data[i + 2];
        return sum / (data.length / 4) / 3;
    }""", poster_url)
    assert brightness > 40
    # The video holds its shape (640×360) from its width and height attributes.
    box = video.bounding_box()
    assert box["width"] / box["height"] == pytest.approx(640 / 360, rel=0.02)
    assert video.get_attribute("preload") == "metadata"  # woken up: it is in view

    # The video's page has the same player, and says what was read from the file.
    page.locator(".job-card.status-done .prompt a").click()
    page.wait_for_selector("text=640 × 360 px")
    assert "No sound" in page.locator("dl.facts").inner_text()
    page.close()


def test_a_running_image_job_shows_its_source_image(portal, browser, tmp_path):
    base, env = portal
    member_with_a_slow_key(env, "jude", 15)
    picture = tmp_path / "dunes.png"
    Image.new("RGB", (640, 360), "orange").save(picture)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, base, "jude")
    page.goto(f"{base}/?mode=image")
    page.set_input_files("#id_image", str(picture))
    page.fill("#id_prompt", "Dunes in the wind")
    page.click("text=Animate image")
    source = page.locator(".job-card.status-running img.running-source")
    source.wait_for(timeout=30_000)
    page.wait_for_function("(el) => el.complete && el.naturalWidth === 640", arg=source.element_handle(),
                           timeout=10_000)
    card = page.locator(".job-card.status-running")
    assert card.locator(".placeholder").count() == 0
    assert card.locator("progress").count() == 1
    wait_for_playable_video(page, ".job-card.status-done:has-text('Dunes in the wind')")
    page.close()


def test_videos_far_below_the_fold_fetch_neither_poster_nor_video(portal, browser):
    base, env = portal
    django_shell(env, """
from pathlib import Path
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.utils import timezone
from generations import video_facts
from generations.models import Generation
sample = sorted((Path(video_facts.__file__).parent / "sandbox" / "samples").glob("*.mp4"))[0]
facts = video_facts.read(sample.open("rb"))
user = User.objects.create_user("kai", password="e2e-long-password")
for i in range(12):
    g = Generation.objects.create(owner=user, kind="text", prompt=f"Wave {i}", model="v5", quality="360p",
                                  duration=5, credits=45, status="done", video_id=1000 + i,
                                  finished_at=timezone.now())
    g.video_file.save("v.mp4", ContentFile(sample.read_bytes()), save=False)
    g.poster.save("p.jpg", ContentFile(facts.poster_jpeg), save=False)
    Generation.objects.filter(pk=g.pk).update(video_file=g.video_file.name,
                                              **Generation._facts_fields(facts, g.poster.name))
""")
    page = browser.new_page(viewport={"width": 1280, "height": 700})
    fetched = []
    page.on("request", lambda r: fetched.append(r.url) if re.search(r"/(poster\.jpg|video\.mp4)", r.url)
            else None)
    sign_in(page, base, "kai")
    page.wait_for_timeout(1_500)
    cards = page.locator(".job-card")
    assert cards.count() == 12
    posters = [url for url in fetched if url.endswith("/poster.jpg")]
    # Only the videos near the viewport (three rows at most) fetched anything.
    assert 0 < len(posters) < 12, fetched
    last = page.locator(".job-card video").last
    assert last.get_attribute("preload") == "none" and last.evaluate("el => el.poster") == ""
    last.scroll_into_view_if_needed()
    page.wait_for_function("(el) => el.poster !== ''", arg=last.element_handle(), timeout=5_000)

    # With a mouse, a video previews muted under the pointer; a click plays it with sound.
    first = page.locator(".job-card video").first
    first.scroll_into_view_if_needed()
    first.hover()
    page.wait_for_function("(el) => !el.paused && el.muted", arg=first.element_handle(), timeout=10_000)
    first.click()
    page.wait_for_function("(el) => !el.paused && !el.muted", arg=first.element_handle(), timeout=5_000)
    page.mouse.move(0, 0)
    page.wait_for_timeout(300)
    assert first.evaluate("el => !el.paused")  # watched, not a preview: it plays on
    page.close()
