"""End to end, in Chromium, against the built-in sandbox (issue 13): a transition from two
uploaded images, then an extend of the result, then a lip sync of that, each playing,
with the sound track in the lip-synced copy; no console error on the way."""

import pytest
import requests
from PIL import Image
from playwright.sync_api import expect

from tests.media_samples import has_audio_track
from tests.processes import django_shell
from tests.test_e2e_pages import MEMBERS, Console
from tests.test_end_to_end import browser, portal, sign_in, wait_for_playable_video  # noqa: F401

pytestmark = pytest.mark.slow

DONE_CARD = ".job-card.status-done:has-text('{}')"


def signed_in_with_two_frames(portal, browser, tmp_path, member: str, colours: tuple[str, str]):
    """A new member signed in on a laptop-sized page, and two images of those colours to upload."""
    base, env = portal
    django_shell(env, MEMBERS + f"member({member!r})")
    frames = []
    for colour in colours:
        frames.append(tmp_path / f"{colour}.png")
        Image.new("RGB", (640, 360), colour).save(frames[-1])
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    console = Console(page)
    sign_in(page, base, member)
    return page, console, *frames


def open_transition_with_frames(page, first, last) -> None:
    """The transition form with its two frames chosen, each previewed."""
    page.get_by_role("link", name="Transition").click()
    page.set_input_files("#id_first_image", str(first))
    page.set_input_files("#id_last_image", str(last))
    expect(page.locator("#first-preview")).to_be_visible()
    expect(page.locator("#last-preview")).to_be_visible()


def test_a_transition_then_its_extend_then_a_lip_sync_of_that_each_play(portal, browser, tmp_path):
    base, _env = portal
    page, console, first, last = signed_in_with_two_frames(portal, browser, tmp_path, "tara",
                                                           ("gold", "midnightblue"))

    # A transition from two uploaded images, each previewed.
    open_transition_with_frames(page, first, last)
    page.fill("#id_prompt", "Dawn turns to dusk over the bay")
    expect(page.locator(".estimate")).to_contain_text("Estimated cost: 45 credits")
    page.get_by_role("button", name="Make the transition").click()
    wait_for_playable_video(page, DONE_CARD.format("Dawn turns to dusk"))
    expect(page.locator(".job-card", has_text="Dawn turns to dusk").locator(".params-line")).to_contain_text(
        "Transition")

    # Extend the result: from its page, the extend form starts with it chosen.
    made = page.locator(".job-card", has_text="Dawn turns to dusk")
    made.get_by_role("link", name="Dawn turns to dusk").click()
    page.get_by_role("link", name="Extend", exact=True).click()
    expect(page.locator("#id_source_video option:checked")).to_contain_text("Dawn turns to dusk")
    page.fill("#id_prompt", "The lights of the town come on")
    page.get_by_role("button", name="Extend the video").click()
    wait_for_playable_video(page, DONE_CARD.format("The lights of the town"))

    # A lip sync of the extended video, spoken by one of the sandbox's voices.
    card = page.locator(".job-card", has_text="The lights of the town")
    card.get_by_role("link", name="The lights of the town").click()
    page.get_by_role("link", name="Lip sync").click()
    expect(page.locator("#id_source_video option:checked")).to_contain_text("The lights of the town")
    page.select_option("#id_speaker", index=0)  # the list may still be on its way: "Auto" is always there
    page.fill("#id_prompt", "Good evening from the harbour")
    expect(page.locator(".estimate")).to_contain_text("Estimated cost: 8 credits")
    page.get_by_role("button", name="Sync the lips").click()
    wait_for_playable_video(page, DONE_CARD.format("Good evening from the harbour"))

    # Its stored copy has a sound track, and its page says what it was made from.
    synced = page.locator(".job-card", has_text="Good evening from the harbour")
    expect(synced.locator(".params-line")).to_contain_text("Lip sync")
    href = synced.get_by_text("Download").get_attribute("href")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    video = requests.get(base + href, cookies=cookies, timeout=30)
    assert video.status_code == 200 and has_audio_track(video.content)
    synced.get_by_role("link", name="Good evening from the harbour").click()
    expect(page.locator(".facts")).to_contain_text("Made from")
    expect(page.locator(".facts")).to_contain_text("The lights of the town")
    assert console.problems() == []
    page.close()


def test_a_refused_form_keeps_its_files_and_a_lost_session_keeps_the_words(portal, browser, tmp_path):
    base, _env = portal
    page, console, first, last = signed_in_with_two_frames(portal, browser, tmp_path, "rita",
                                                           ("green", "white"))

    # Refused for its missing prompt: the two chosen frames are still chosen and previewed,
    # so adding the prompt is all it takes.
    open_transition_with_frames(page, first, last)
    page.get_by_role("button", name="Make the transition").click()
    expect(page.locator("#transition-form .errorlist")).to_have_count(1)
    expect(page.locator("#first-preview")).to_be_visible()
    expect(page.locator("#last-preview")).to_be_visible()
    page.fill("#id_prompt", "Spring turns to winter")
    page.get_by_role("button", name="Make the transition").click()
    expect(page.locator(".job-card", has_text="Spring turns to winter")).to_be_visible()

    # The session ends while a prompt is being written: the page's own requests (the
    # estimate after a choice) leave the page where it is and say so; sending the form goes
    # to sign in, which says why, and back on the dashboard the prompt and choices are there.
    page.goto(f"{base}/")
    page.fill("#id_prompt", "A lighthouse in a storm, seen from the sea")
    page.context.clear_cookies(name="sessionid")  # the CSRF cookie stays, as when a session expires
    page.select_option("#id_quality", "720p")
    expect(page.locator(".session-ended")).to_contain_text("Your session has ended")
    assert page.url == f"{base}/"
    page.get_by_role("button", name="Generate video").click()
    page.wait_for_url(f"{base}/accounts/login/**")
    expect(page.locator("main .note")).to_contain_text("your session may have ended")
    page.fill("#id_username", "rita")
    page.fill("#id_password", "e2e-long-password")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")
    expect(page.locator("#id_prompt")).to_have_value("A lighthouse in a storm, seen from the sea")
    expect(page.locator("#id_quality")).to_have_value("720p")
    # Once a job starts from it, the draft is gone.
    page.get_by_role("button", name="Generate video").click()
    expect(page.locator(".job-card", has_text="A lighthouse in a storm")).to_be_visible()
    page.reload()
    expect(page.locator("#id_prompt")).to_have_value("")
    expect(page.locator("#id_quality")).to_have_value("540p")
    assert console.problems(allow=("400",)) == []
    page.close()
