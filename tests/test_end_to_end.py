"""End to end: a real web server, a real qcluster and the sandbox, driven in Chromium.

A member signs in, saves a PixVerse key, makes a video from a prompt and one
from an image, and watches each card turn into a playable video without
reloading the page.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.processes import django_shell, free_port

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    """The portal as `./dev run` starts it, on a fresh database; yields (base URL, env)."""
    data = tmp_path_factory.mktemp("portal")
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIXVERSE_", "DATABASE_", "REDIS_", "SANDBOX_"))}
    env.update(
        DATA_DIR=str(data), DEBUG="true", PIXVERSE_SANDBOX_ENABLED="true",
        PIXVERSE_BASE_URL=f"http://127.0.0.1:{port}/sandbox", SANDBOX_GENERATION_SECONDS="3",
        PORTAL_SIGNUP_ENABLED="true", LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1",
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v", "0"], env=env, check=True, cwd=ROOT, timeout=120)
    log = (data / "portal.log").open("w")
    process = subprocess.Popen([*manage, "runportal", f"127.0.0.1:{port}"], env=env, cwd=ROOT,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(f"{base}/accounts/login/", timeout=2)
            break
        except requests.ConnectionError:
            time.sleep(0.3)
    try:
        yield base, env
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def sandbox_key(env) -> str:
    issued = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "sandbox", "issue-key", "--label", "e2e",
         "--credits", "1000"], env=env, cwd=ROOT, capture_output=True, text=True, check=True,
    )
    return issued.stdout.strip()


def sign_in(page, base: str, username: str) -> None:
    """Sign in through the login form, as a member does, landing on the dashboard."""
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "e2e-long-password")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")


def wait_for_playable_video(page, card_selector: str) -> None:
    video = page.locator(f"{card_selector} video")
    video.wait_for(timeout=60_000)
    # Finished videos load only near the viewport (portal.js): a member scrolls to one to watch it.
    video.scroll_into_view_if_needed()
    page.wait_for_function(
        "(el) => el.readyState >= 1 && el.duration > 0",
        arg=video.element_handle(), timeout=30_000,
    )


def test_a_member_makes_videos_from_a_prompt_and_an_image(portal, browser, tmp_path):
    base, env = portal
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    # Sign up (the local run allows it), which lands on the key page.
    page.goto(f"{base}/accounts/signup/")
    page.fill("#id_username", "erin")
    page.fill("#id_email", "erin@example.com")
    page.fill("#id_password1", "e2e-long-password")
    page.fill("#id_password2", "e2e-long-password")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/settings/key/")

    # A wrong key is refused next to the field; the right one is saved and masked.
    page.fill("#id_api_key", "sk-sandbox-not-a-real-key")
    page.click("main button[type=submit]")
    assert page.locator(".field.has-error").inner_text().count("does not accept this key") == 1
    key = sandbox_key(env)
    page.fill("#id_api_key", key)
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Your PixVerse key is saved")
    assert key not in page.content()
    assert f"••••{key[-4:]}" in page.content()

    # Text to video: the card appears and becomes a playable video, no reload.
    page.goto(f"{base}/")
    page.evaluate("window.notReloaded = true")
    page.fill("#id_prompt", "A wolf in the snow at dawn")
    page.select_option("#id_quality", "720p")
    page.wait_for_selector("text=Estimated cost: 60 credits")
    page.click("text=Generate video")
    card = page.locator(".job-card").first
    card.wait_for()
    assert "A wolf in the snow at dawn" in card.inner_text()
    wait_for_playable_video(page, ".job-card.status-done")
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("#id_prompt").input_value() == "A wolf in the snow at dawn"
    # The balance followed the job.
    page.wait_for_selector("text=940 credits")

    # Image to video, with a preview of the chosen image.
    picture = tmp_path / "forest.png"
    Image.new("RGB", (640, 360), "forestgreen").save(picture)
    page.goto(f"{base}/?mode=image")
    page.evaluate("window.notReloaded = true")
    page.set_input_files("#id_image", str(picture))
    page.wait_for_selector("#image-preview:not([hidden])")
    page.fill("#id_prompt", "A magical forest")
    page.click("text=Animate image")
    page.locator(".job-card", has_text="A magical forest").wait_for()
    wait_for_playable_video(page, ".job-card.status-done:has-text('A magical forest')")
    assert page.evaluate("window.notReloaded") is True

    # Our stored copy downloads.
    download = page.locator(".job-card", has_text="A magical forest").get_by_text("Download")
    with page.expect_download() as info:
        download.click()
    assert info.value.suggested_filename.endswith(".mp4")
    page.close()


def test_pages_work_without_javascript(portal, browser):
    base, _ = portal
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, base, "erin")
    page.fill("#id_prompt", "A lighthouse in a storm")
    page.select_option("#id_motion_mode", "fast")
    page.select_option("#id_duration", "8")
    page.click("text=Generate video")
    # Refused next to the field, with the prompt kept.
    assert "Fast motion is available for 5-second videos only." in page.content()
    assert page.locator("#id_prompt").input_value() == "A lighthouse in a storm"
    page.select_option("#id_duration", "5")
    page.click("text=Generate video")
    page.wait_for_selector("text=Your video is on its way.")
    # A reload shows the same state the live card would.
    deadline = time.monotonic() + 60
    card = page.locator(".job-card", has_text="A lighthouse").first
    while "status-done" not in card.get_attribute("class"):
        assert time.monotonic() < deadline, "the job never finished"
        time.sleep(1)
        page.reload()
    context.close()


def test_the_served_image_and_video_are_not_public(portal):
    base, _ = portal
    anonymous = requests.get(f"{base}/", timeout=5, allow_redirects=False)
    assert anonymous.status_code == 302


def test_a_member_filters_the_team_history_and_remixes_a_team_mates_video(portal, browser):
    base, env = portal
    django_shell(env, """
from django.contrib.auth.models import User
from django.utils import timezone
from generations.models import ApiCredential, Generation
from generations.sandbox.models import SandboxAccount
for name in ("frank", "gina"):
    user = User.objects.create_user(name, password="e2e-long-password")
    _, key = SandboxAccount.issue(name, credits=1000)
    credential = ApiCredential(user=user)
    credential.set_key(key)
    credential.save()
frank = User.objects.get(username="frank")
common = dict(owner=frank, kind="text", model="v4.5", duration=5, credits=60, status="done",
              finished_at=timezone.now())
Generation.objects.create(prompt="A lighthouse at night", quality="720p", seed=77, **common)
Generation.objects.create(prompt="A red balloon over the city", quality="360p", **common)
Generation.objects.create(prompt="Frank's private lighthouse sketch", quality="360p", is_private=True,
                          **common)
""")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, base, "gina")

    page.goto(f"{base}/history/")
    page.evaluate("window.notReloaded = true")
    page.select_option("#id_member", "frank")
    page.wait_for_url("**/history/?member=frank")
    cards = page.locator("#results .job-card")
    cards.first.wait_for()
    assert cards.count() == 2  # the private one stays hidden
    page.fill("#id_q", "lighthouse")
    page.wait_for_url("**q=lighthouse**")
    page.wait_for_function("document.querySelectorAll('#results .job-card').length === 1")
    assert "A lighthouse at night" in cards.first.inner_text()
    assert "private lighthouse sketch" not in page.content()
    assert page.evaluate("window.notReloaded") is True
    # The filtered view is a link that can be shared.
    shared = browser.new_page()
    shared.context.add_cookies(page.context.cookies())
    shared.goto(page.url)
    assert shared.locator("#results .job-card").count() == 1
    shared.close()

    # Remix: the form opens with frank's settings; gina submits it as her own video.
    cards.first.get_by_text("Remix").click()
    page.wait_for_url(f"{base}/?mode=text&from=*")
    assert page.locator("#id_prompt").input_value() == "A lighthouse at night"
    assert page.locator("#id_quality").input_value() == "720p"
    assert page.locator("#id_model").input_value() == "v4.5"
    assert page.locator("#id_seed").input_value() == "77"
    page.click("text=Generate video")
    mine = page.locator("#job-list .job-card", has_text="A lighthouse at night").first
    mine.wait_for()
    wait_for_playable_video(page, "#job-list .job-card.status-done")
    page.close()


def test_a_running_cards_polls_are_answered_304_and_its_time_ticks(portal, browser):
    """The card's ETag at work in a real browser: polls of an unchanged job carry
    If-None-Match and are answered 304, and the running time still moves."""
    base, env = portal
    django_shell(env, """
from datetime import timedelta
from django.contrib.auth.models import User
from django.utils import timezone
from generations.models import ApiCredential, Generation
from generations.sandbox.models import SandboxAccount
user = User.objects.create_user("hana", password="e2e-long-password")
_, key = SandboxAccount.issue("hana", credits=1000, generation_seconds=60)
credential = ApiCredential(user=user)
credential.set_key(key)
credential.save()
Generation.objects.create(owner=user, kind="text", prompt="A slow tide", model="v5", quality="360p",
                          duration=5, credits=45, status="running", video_id=10**15,
                          submitted_at=timezone.now(), next_attempt_at=timezone.now() + timedelta(hours=1))
""")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, base, "hana")

    polls = []
    page.on("request", lambda r: polls.append(r) if r.url.endswith("/card/") else None)
    card = page.locator(".job-card.status-running").first
    elapsed = card.locator("[data-elapsed-since]")
    first = elapsed.inner_text()
    page.wait_for_timeout(10_000)  # three polls at 3 s
    assert len(polls) >= 3
    asked = [p.all_headers().get("if-none-match") for p in polls]
    answers = [p.response().status for p in polls if p.response()]
    # Every poll asks "changed since?" with the card's ETag, from the first one on, and
    # an unchanged job is answered 304: the card in the page stays as it is.
    assert asked[0] and set(asked) == {asked[0]}, asked
    assert set(answers) == {304}, answers
    assert elapsed.inner_text() != first  # ticking in the page, not fetched
    assert "A slow tide" in card.inner_text()

    # A change comes with the next poll (a 200 with the new card, which has no CSRF
    # field: htmx sends the page's token), and that card's Cancel works.
    django_shell(env, "from generations.models import Generation\n"
                      "Generation.objects.filter(prompt='A slow tide').update(error_reason='retrying')")
    page.wait_for_selector(".job-card >> text=trying again", timeout=10_000)
    assert page.locator(".job-card input[name=csrfmiddlewaretoken]").count() == 0
    page.locator(".job-card").first.get_by_role("button", name="Cancel").click()
    page.wait_for_selector(".job-card.status-cancelled", timeout=10_000)
