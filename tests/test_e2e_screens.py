"""Every main page at a laptop's and a phone's width, in English and in Russian, in Chromium.

Each page must fit its width (nothing makes the page itself scroll sideways; wide tables and
the chart scroll inside their own frame), show its content, and leave the console clean. With
SCREENSHOT_DIR set, each page is also saved there, to be looked at (docs/screenshots/ holds the
last set: `SCREENSHOT_DIR=docs/screenshots ./dev test tests/test_e2e_screens.py`).
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.processes import django_shell
from tests.test_e2e_pages import Console
from tests.test_end_to_end import browser, portal, sign_in  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow

VIEWPORTS = {"laptop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}

# The owner and a team mate, each with a sandbox key and finished videos that have their
# poster and facts (as the worker stores them), so every page has something to show.
TEAM = """
from pathlib import Path
from django.contrib.auth.models import User
from django.core.files import File
from django.utils import timezone
from generations import jobs, roles
from generations.models import ApiCredential, Generation
from generations.sandbox.models import SandboxAccount
videos = {
    "sam": [("A lighthouse in a storm, waves breaking on the rocks", "sample-1.mp4", "v5", 45),
            ("A fox in tall grass at dawn", "sample-2.mp4", "v6", 84)],
    "nina": [("Rain on a tin roof, slow motion", "sample-3.mp4", "v5", 45)],
}
for name, made in videos.items():
    if name == "sam":
        user = User.objects.create_superuser(name, f"{name}@example.com", "e2e-long-password")
    else:
        user = User.objects.create_user(name, f"{name}@example.com", "e2e-long-password")
    _, key = SandboxAccount.issue(name, credits=5000)
    credential = ApiCredential(user=user)
    credential.set_key(key)
    credential.save()
    for prompt, sample, model, credits in made:
        generation = Generation.objects.create(
            owner=user, kind="text", prompt=prompt, model=model, quality="540p", duration=5,
            credits=credits, status="done", finished_at=timezone.now())
        with Path("generations/sandbox/samples", sample).open("rb") as file:
            generation.video_file.save("video.mp4", File(file))
        facts, poster = jobs._read_facts(generation, generation.video_file.name)
        generation.record_video_facts(facts, poster)
print(Generation.objects.get(prompt__startswith="A lighthouse").code)
"""


@pytest.fixture(scope="module")
def lighthouse(portal) -> str:
    """The code of sam's first video, for its page."""
    _, env = portal
    return django_shell(env, TEAM).strip().splitlines()[-1]


def pages(lighthouse: str) -> dict[str, str]:
    return {"dashboard": "/", "history": "/history/", "detail": f"/generations/{lighthouse}/",
            "key": "/settings/key/", "usage": "/usage/"}


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("width", list(VIEWPORTS))
def test_every_main_page_fits_the_screen_in_both_languages(portal, browser, lighthouse, width,
                                                           language):
    base, _ = portal
    viewport = VIEWPORTS[width]
    context = browser.new_context(viewport=viewport, locale="ru-RU" if language == "ru" else "en-US")
    page = context.new_page()
    console = Console(page)
    sign_in(page, base, "sam")
    shots = os.environ.get("SCREENSHOT_DIR")
    for name, path in pages(lighthouse).items():
        page.goto(f"{base}{path}")
        page.wait_for_load_state("networkidle")
        expect(page.locator("html")).to_have_attribute("lang", language)
        expect(page.locator("main")).to_be_visible()
        # The page itself never scrolls sideways; what is wider scrolls in its own frame.
        overflow = page.evaluate("() => document.documentElement.scrollWidth")
        assert overflow <= viewport["width"], f"{name} is {overflow} px wide at {viewport['width']} px"
        if name in ("dashboard", "history", "detail"):
            expect(page.locator("video").first).to_be_visible()
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=f"{shots}/{name}-{width}-{language}.jpg", type="jpeg", quality=70,
                            full_page=True)
    assert console.problems() == []
    context.close()


def test_the_usage_page_is_readable_on_a_phone(portal, browser, lighthouse):
    base, _ = portal
    context = browser.new_context(viewport=VIEWPORTS["phone"])
    page = context.new_page()
    sign_in(page, base, "sam")
    page.goto(f"{base}/usage/")
    # The chart's labels at a legible size as drawn (not shrunk with the chart)...
    heights = page.locator(".chart .tick, .chart .scale").evaluate_all(
        "(labels) => labels.map((label) => label.getBoundingClientRect().height)")
    assert heights and min(heights) >= 11, heights
    # ...because the chart scrolls sideways in its own frame, as the tables do.
    chart = page.locator(".chart-wrap")
    assert chart.evaluate("(frame) => frame.scrollWidth > frame.clientWidth")
    assert chart.evaluate("(frame) => getComputedStyle(frame).overflowX") == "auto"
    for table in page.locator(".table-wrap").all():
        assert table.evaluate("(frame) => getComputedStyle(frame).overflowX") == "auto"
    # Both members' figures are there.
    expect(page.locator(".usage-table").first).to_contain_text("nina")
    context.close()
