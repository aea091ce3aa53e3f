"""End to end, in Chromium: the paths a new member walks (issue 11) — getting a key, paging
the history, Back after filtering and after starting a video, two tabs, a job deleted
elsewhere, the keyboard, and a console with no errors or CSP violations after swaps."""

import re
import time

import pytest
from playwright.sync_api import expect

from tests.processes import django_shell
from tests.test_end_to_end import browser, portal, sign_in  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow
SEARCHED = re.compile(r"q=scene(\+|%20)1")

MEMBERS = """
from django.contrib.auth.models import User
from generations.models import ApiCredential
from generations.sandbox.models import SandboxAccount
def member(name, **sandbox):
    user = User.objects.create_user(name, f"{name}@example.com", "e2e-long-password")
    _, key = SandboxAccount.issue(name, credits=5000, **sandbox)
    credential = ApiCredential(user=user)
    credential.set_key(key)
    credential.save()
    return user
"""


class Console:
    """What the page said in its console: errors, and CSP violations (reported or enforced).

    Checks go through Playwright's expect and locators: its wait_for_function and
    evaluate with a string are an eval in the page, which the portal's CSP reports.
    """

    def __init__(self, page):
        self.messages = []
        page.on("console", lambda m: self.messages.append((m.type, m.text)))
        page.on("pageerror", lambda e: self.messages.append(("pageerror", str(e))))

    def problems(self, allow=()):
        return [(kind, text) for kind, text in self.messages
                if (kind in ("error", "pageerror") or "Content Security Policy" in text)
                and not any(a in text for a in allow)]


def test_a_new_member_gets_a_sandbox_key_in_the_browser_and_removing_it_asks_first(portal, browser):
    base, _ = portal
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    console = Console(page)
    page.goto(f"{base}/accounts/signup/")
    page.fill("#id_username", "nora")
    page.fill("#id_email", "nora@example.com")
    page.fill("#id_password1", "e2e-long-password")
    page.fill("#id_password2", "e2e-long-password")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/settings/key/")
    # Where a real key comes from, and the local run's own way to one.
    assert page.get_by_role("link", name="the PixVerse platform").get_attribute("href").startswith("https://")
    page.get_by_role("button", name="Get a sandbox key").click()
    page.wait_for_selector("text=You now have a sandbox key with")
    assert page.locator("text=Stored key:").count() == 1
    # The dashboard reads its credits in the background and shows them.
    page.goto(f"{base}/")
    page.wait_for_selector("#balance >> text=2000", timeout=20_000)

    # Remove asks first; "Keep it" keeps it.
    page.goto(f"{base}/settings/key/")
    page.get_by_role("link", name="Remove key").click()
    page.wait_for_selector("text=Remove this key?")
    page.get_by_role("link", name="Keep it").click()
    assert page.locator("text=Stored key:").count() == 1
    page.get_by_role("link", name="Remove key").click()
    page.get_by_role("button", name="Yes, remove the key").click()
    page.wait_for_selector("text=Your PixVerse key is removed.")
    assert page.locator("text=Stored key:").count() == 0

    # The account page keeps the address for password resets.
    page.goto(f"{base}/settings/account/")
    assert page.locator("#id_email").input_value() == "nora@example.com"
    assert console.problems() == []
    page.close()


def test_the_history_pages_and_back_after_live_filtering_shows_what_the_url_says(portal, browser):
    base, env = portal
    django_shell(env, MEMBERS + """
from django.utils import timezone
from datetime import timedelta
from generations.models import Generation
olga, pete = member("olga"), member("pete")
now = timezone.now()
for i in range(30):
    Generation.objects.create(owner=olga if i % 2 else pete, kind="text", prompt=f"Harbour scene {i:02d}",
        model="v5", quality="360p", duration=5, credits=45, status="done", finished_at=now,
        created=now - timedelta(minutes=i))
""")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    console = Console(page)
    sign_in(page, base, "olga")
    page.goto(f"{base}/history/")
    cards = page.locator("#results .job-card")
    assert cards.count() == 24 and "Harbour scene 00" in cards.first.inner_text()
    page.get_by_role("link", name="Older").click()
    page.wait_for_url("**/history/?page=2")
    expect(cards).to_have_count(6)
    assert "Harbour scene 24" in cards.first.inner_text()
    page.get_by_role("link", name="Newer").click()
    page.wait_for_url("**/history/?page=1")
    expect(cards).to_have_count(24)

    # Live filtering, then away and Back: the fields say what the URL and results say.
    page.select_option("#id_member", "pete")
    page.wait_for_url("**member=pete**")
    page.fill("#id_q", "scene 1")
    page.wait_for_url(SEARCHED)
    expect(cards).to_have_count(5)
    page.locator("#results .job-card .prompt a").first.click()
    page.wait_for_url("**/generations/**")
    page.go_back()
    page.wait_for_url(SEARCHED)
    expect(cards).to_have_count(5)
    assert page.locator("#id_q").input_value() == "scene 1"
    assert page.locator("#id_member").input_value() == "pete"
    # Back again, to before the search: the box is empty and the member stays.
    page.go_back()
    page.wait_for_url("**/history/?member=pete")
    expect(page.locator("#id_q")).to_have_value("")
    assert page.locator("#id_member").input_value() == "pete"
    assert console.problems() == []
    page.close()


def test_two_tabs_the_keyboard_and_back_after_starting_a_video(portal, browser):
    base, env = portal
    django_shell(env, MEMBERS + 'member("quinn")')
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console = Console(page)
    sign_in(page, base, "quinn")
    other = context.new_page()
    other_console = Console(other)
    other.goto(f"{base}/")

    # A refused combination: the messages stand next to the fields...
    page.fill("#id_prompt", "A kite over the dunes")
    page.select_option("#id_motion_mode", "fast")
    page.select_option("#id_duration", "8")
    page.locator("#text-form button[type=submit]").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#text-form .errorlist")
    # ...the focus goes to the first field to fix, and the refusal is announced.
    expect(page.locator("#id_motion_mode")).to_be_focused()
    expect(page.locator("#announcer")).to_contain_text("not started")
    # Fixed and sent from the keyboard: the job starts, the old messages go, the focus
    # stays on the button and the start is announced.
    page.select_option("#id_motion_mode", "normal")
    page.locator("#text-form button[type=submit]").focus()
    page.keyboard.press("Enter")
    page.locator("#job-list .job-card", has_text="A kite over the dunes").wait_for()
    expect(page.locator("#announcer")).to_contain_text("on its way")
    assert page.locator("#text-form .errorlist").count() == 0
    assert page.locator("#text-form [aria-invalid]").count() == 0
    expect(page.locator("#text-form button[type=submit]")).to_be_focused()
    assert page.locator("#id_prompt").input_value() == "A kite over the dunes"

    # The other tab learns of the new job without a reload, once.
    other.locator("#job-list .job-card", has_text="A kite over the dunes").wait_for(timeout=15_000)
    other.locator(".job-card.status-done", has_text="A kite over the dunes").wait_for(timeout=60_000)
    assert other.locator("#job-list .job-card", has_text="A kite over the dunes").count() == 1

    # Away and Back: the dashboard shows the job (never a stale copy of the page).
    page.locator("#job-list .job-card .prompt a").first.click()
    page.wait_for_url("**/generations/**")
    page.go_back()
    page.wait_for_url(f"{base}/")
    assert page.locator("#job-list .job-card", has_text="A kite over the dunes").count() == 1
    # The refused form's answer is a 400 on purpose (bad input); the browser notes it.
    assert console.problems(allow=("status of 400",)) == [] and other_console.problems() == []
    context.close()


def test_a_job_deleted_in_another_tab_says_so_and_stops_polling(portal, browser):
    base, env = portal
    django_shell(env, MEMBERS + """
from django.utils import timezone
from datetime import timedelta
from generations.models import Generation
user = member("rita", generation_seconds=300)
Generation.objects.create(owner=user, kind="text", prompt="A glacier calving", model="v5", quality="360p",
                          duration=5, credits=45, status="running", video_id=10**15 + 7,
                          submitted_at=timezone.now(), next_attempt_at=timezone.now() + timedelta(hours=1))
""")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console = Console(page)
    polls = []
    page.on("request", lambda r: polls.append(time.monotonic()) if r.url.endswith("/card/") else None)
    sign_in(page, base, "rita")
    page.locator(".job-card.status-running", has_text="A glacier calving").wait_for()

    # Deleted from its detail page in another tab, with the warning that PixVerse may still bill it.
    other = context.new_page()
    other.goto(f"{base}/history/")
    other.locator(".job-card .prompt a", has_text="A glacier calving").click()
    other.get_by_role("link", name="Delete").click()
    other.wait_for_selector("text=PixVerse may finish it and bill its credits")
    other.get_by_role("button", name="Delete").click()
    other.wait_for_selector("text=The video is deleted.")

    page.wait_for_selector("#job-list >> text=This video was deleted or made private", timeout=10_000)
    stopped_at = len(polls)
    page.wait_for_timeout(7_000)
    assert len(polls) == stopped_at, "the card still polls"
    # The one poll that found it gone is the browser's 404 line; nothing else.
    assert console.problems(allow=("404",)) == []
    context.close()


def test_times_are_shown_in_the_browsers_time_zone(portal, browser):
    base, env = portal
    django_shell(env, MEMBERS + """
from django.utils import timezone
from generations.models import Generation
user = member("sami")
Generation.objects.create(owner=user, kind="text", prompt="A tram at noon", model="v5", quality="360p",
    duration=5, credits=45, status="done", created=timezone.datetime(2026, 6, 1, 12, 0, tzinfo=timezone.UTC),
    finished_at=timezone.datetime(2026, 6, 1, 12, 1, tzinfo=timezone.UTC))
""")
    context = browser.new_context(timezone_id="Asia/Tokyo", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, base, "sami")  # the first page tells the portal the browser's zone
    page.locator(".job-card .prompt a", has_text="A tram at noon").click()
    expect(page.locator(".facts")).to_contain_text("9 p.m. JST")  # 12:00 UTC
    # A zone chosen on the account page wins over the browser's.
    page.goto(f"{base}/settings/account/")
    page.select_option("#id_time_zone", "Europe/Berlin")
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector("text=Your account is saved.")
    page.goto(f"{base}/history/?member=me")  # an old job: other tests' newer ones come first
    page.locator(".job-card .prompt a", has_text="A tram at noon").click()
    expect(page.locator(".facts")).to_contain_text("2 p.m. CEST")
    context.close()


def test_a_long_prompt_is_clamped_on_its_card_and_whole_on_its_page(portal, browser):
    base, env = portal
    django_shell(env, MEMBERS + """
from django.utils import timezone
from generations.models import Generation
user = member("uma")
prompt = ("A very long prompt about a winding river " * 60)[:2048]
Generation.objects.create(owner=user, kind="text", prompt=prompt, model="v5", quality="360p", duration=5,
                          credits=45, status="done", finished_at=timezone.now())
""")
    page = browser.new_page(viewport={"width": 390, "height": 844})
    sign_in(page, base, "uma")
    prompt = page.locator(".job-card .prompt").first
    assert prompt.bounding_box()["height"] < 100  # three lines, not several screens
    prompt.locator("a").click()
    page.wait_for_url("**/generations/**")
    whole = ("A very long prompt about a winding river " * 60)[:2048].strip()
    assert page.locator("#prompt-text").inner_text() == whole
    page.close()


def test_a_file_that_is_no_image_is_refused_next_to_the_field_when_picked(portal, browser, tmp_path):
    base, env = portal
    django_shell(env, MEMBERS + 'member("vera")')
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    console = Console(page)
    sign_in(page, base, "vera")
    page.goto(f"{base}/?mode=image")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    page.set_input_files("#id_image", str(notes))
    expect(page.locator(".field:has(#id_image) .errorlist")).to_contain_text("notes.txt is not an image")
    fake = tmp_path / "fake.png"
    fake.write_text("not a picture either")
    page.set_input_files("#id_image", str(fake))  # named like one, but none the browser can read
    expect(page.locator(".field:has(#id_image) .errorlist")).to_contain_text("fake.png is not an image")
    expect(page.locator("#image-preview")).to_be_hidden()
    page.fill("#id_prompt", "Never sent")
    page.locator("#image-form button[type=submit]").click()
    page.wait_for_timeout(500)
    assert page.locator("#job-list .job-card", has_text="Never sent").count() == 0
    assert console.problems() == []
    page.close()
