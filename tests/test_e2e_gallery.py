"""The gallery in a real browser: images dropped on or pasted into the image field, and
the lightbox over the dashboard's and the history's finished videos.

The portal, the browser and the sandbox as in tests/test_end_to_end.py. Drops and pastes
are dispatched as events carrying a DataTransfer, which is what a browser hands the page
for a real drag or Ctrl+V. Every test also checks that the console stayed free of errors.
"""

import base64
import io
import random
from decimal import ROUND_HALF_UP, Decimal

import pytest
from PIL import Image

from tests.processes import django_shell
from tests.test_end_to_end import (  # noqa: F401
    browser,
    portal,
    pytestmark,
    sign_in,
    wait_for_playable_video,
)

DESKTOP = {"width": 1366, "height": 768}
HARBOUR = [f"Harbour scene {n:02}" for n in range(1, 27)]  # mira's, more than a history page
PHONE = {"width": 390, "height": 844}

MEMBER = """
from django.contrib.auth.models import User
from generations.models import ApiCredential
from generations.sandbox.models import SandboxAccount
user = User.objects.create_user({name!r}, password="e2e-long-password")
_, key = SandboxAccount.issue({name!r}, credits=1000)
credential = ApiCredential(user=user)
credential.set_key(key)
credential.save()
"""

# Finished videos with the portal's own copy (one sample file, stored once, shared by all).
FINISHED_VIDEOS = """
from pathlib import Path
from django.contrib.auth.models import User
from django.core.files import File
from django.utils import timezone
from generations.models import Generation
owner = User.objects.get(username={name!r})
stored = None
for prompt in {prompts!r}:
    generation = Generation.objects.create(
        owner=owner, kind="text", prompt=prompt, model="v5", quality="360p", duration=5, credits=45,
        status="done", finished_at=timezone.now())
    if stored is None:
        with Path("generations/sandbox/samples/sample-1.mp4").open("rb") as sample:
            generation.video_file.save("video.mp4", File(sample))
        stored = generation.video_file.name
    else:
        Generation.objects.filter(pk=generation.pk).update(video_file=stored)
"""


@pytest.fixture(scope="module")
def members(portal):
    """Members of this module's portal: ivan makes videos from images, lena and mira have
    finished videos for the lightbox (three on lena's dashboard, 26 in mira's history)."""
    _, env = portal
    for name in ("ivan", "lena", "mira"):
        django_shell(env, MEMBER.format(name=name))
    django_shell(env, FINISHED_VIDEOS.format(
        name="lena", prompts=["A fox in tall grass", "Rain on a tin roof", "First light on the lake"]))
    django_shell(env, FINISHED_VIDEOS.format(
        name="mira", prompts=HARBOUR))


def open_page(browser, base: str, username: str, viewport=DESKTOP):
    """A signed-in page, and the list its console's errors (and uncaught exceptions) go to."""
    page = browser.new_page(viewport=viewport)
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, base, username)
    return page, errors


def png(width: int, height: int, noisy: bool = False) -> bytes:
    image = Image.new("RGB", (width, height), "steelblue")
    if noisy:  # incompressible, so the file is megabytes
        image = Image.frombytes("RGB", (width, height), random.randbytes(width * height * 3))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def size_text(width: int, height: int, size: int) -> str:
    """The preview's size line for an English page, as portal.js writes it."""
    kilobytes = Decimal(size) / 1024
    unit = "KB" if kilobytes < 1024 else "MB"
    value = kilobytes if unit == "KB" else kilobytes / 1024
    number = f"{value.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP):,}".removesuffix(".0")
    return f"{width} × {height} · {number} {unit}"


# Puts a file into window.transfer: a DataTransfer, as a drag or a paste carries it.
HOLD_FILE = """([name, type, data]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  window.transfer = new DataTransfer();
  window.transfer.items.add(new File([bytes], name, { type }));
}"""
HOLD_LARGE_FILE = """([name, size]) => {
  const bytes = new Uint8Array(size);
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  window.transfer = new DataTransfer();
  window.transfer.items.add(new File([bytes], name, { type: "image/png" }));
}"""
DRAG = """([selector, type]) => {
  const event = new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: window.transfer });
  document.querySelector(selector).dispatchEvent(event);
  return event.defaultPrevented;
}"""
PASTE = """(selector) => {
  const event = new ClipboardEvent("paste",
                                   { bubbles: true, cancelable: true, clipboardData: window.transfer });
  document.querySelector(selector).dispatchEvent(event);
  return event.defaultPrevented;
}"""


def hold_file(page, name: str, type_: str, data: bytes) -> None:
    page.evaluate(HOLD_FILE, [name, type_, base64.b64encode(data).decode()])


def drop(page, selector: str = "[data-drop-zone]") -> None:
    for type_ in ("dragenter", "dragover"):
        assert page.evaluate(DRAG, [selector, type_]) is True  # the zone takes the file
    assert "dragging" in page.locator("[data-drop-zone]").get_attribute("class")
    page.evaluate(DRAG, [selector, "drop"])
    assert "dragging" not in page.locator("[data-drop-zone]").get_attribute("class")


def chosen_file(page) -> dict | None:
    return page.evaluate("""() => {
      const file = document.querySelector("#id_image").files[0];
      return file ? { name: file.name, size: file.size, type: file.type } : null;
    }""")


def image_posts(page) -> list:
    posts = []
    page.on("request", lambda r: posts.append(r)
            if r.method == "POST" and "/generations/image/" in r.url else None)
    return posts


def animate(page, prompt: str) -> None:
    page.fill("#id_prompt", prompt)
    page.click("text=Animate image")
    page.locator(".job-card", has_text=prompt).wait_for()
    wait_for_playable_video(page, f".job-card.status-done:has-text('{prompt}')")


def test_an_image_dropped_on_the_field_is_previewed_with_its_size_and_animated(portal, browser, members):
    base, _ = portal
    page, errors = open_page(browser, base, "ivan")
    page.goto(f"{base}/?mode=image")
    page.evaluate("window.notReloaded = true")
    page.locator("[data-drop-zone].ready").wait_for()
    assert page.get_by_text("You can also drop an image here or paste one.").is_visible()

    data = png(640, 360)
    hold_file(page, "lake.png", "image/png", data)
    drop(page)
    # In the form's own input, so the form sends it as a chosen file.
    assert chosen_file(page) == {"name": "lake.png", "size": len(data), "type": "image/png"}
    page.wait_for_selector("#image-preview:not([hidden])")
    assert page.locator("#image-preview").evaluate("(img) => img.naturalWidth") == 640
    size = page.locator("#image-preview-size")
    size.wait_for()
    assert size.inner_text() == size_text(640, 360, len(data))

    animate(page, "A calm lake at noon")
    assert page.evaluate("window.notReloaded") is True
    assert errors == []
    page.close()


def test_an_image_pasted_on_the_page_is_previewed_with_its_size_and_animated(portal, browser, members):
    base, _ = portal
    page, errors = open_page(browser, base, "ivan")
    page.goto(f"{base}/?mode=image")
    page.locator("[data-drop-zone].ready").wait_for()
    data = png(800, 600, noisy=True)
    assert len(data) > 2**20  # so the size is said in MB
    hold_file(page, "image.png", "image/png", data)

    # Into a text field, a paste is the field's own: the image is not taken.
    assert page.evaluate(PASTE, "#id_prompt") is False
    assert chosen_file(page) is None
    # Anywhere else on the page, the image goes into the field.
    assert page.evaluate(PASTE, "body") is True
    assert chosen_file(page) == {"name": "image.png", "size": len(data), "type": "image/png"}
    page.wait_for_selector("#image-preview:not([hidden])")
    size = page.locator("#image-preview-size")
    size.wait_for()
    assert size.inner_text() == size_text(800, 600, len(data))
    assert "MB" in size.inner_text()

    animate(page, "Static on an old television")
    assert errors == []
    page.close()


def test_a_dropped_file_that_is_no_image_is_refused_next_to_the_field(portal, browser, members):
    base, _ = portal
    page, errors = open_page(browser, base, "ivan")
    posts = image_posts(page)
    page.goto(f"{base}/?mode=image")
    page.locator("[data-drop-zone].ready").wait_for()

    hold_file(page, "notes.txt", "text/plain", b"not a picture\n")
    drop(page)
    message = page.locator("#image-field .field.has-error .errorlist")
    assert message.inner_text() == "notes.txt is not an image. Use a JPEG, PNG or WebP image."
    assert message.get_attribute("role") == "alert"
    assert page.locator("#id_image").get_attribute("aria-invalid") == "true"
    assert chosen_file(page) is None
    assert page.locator("#image-preview").is_hidden()

    # An image dropped next clears the message.
    hold_file(page, "lake.png", "image/png", png(64, 64))
    drop(page)
    assert chosen_file(page)["name"] == "lake.png"
    assert message.count() == 0
    assert page.locator("#id_image").get_attribute("aria-invalid") is None
    assert posts == []
    assert errors == []
    page.close()


def test_a_dropped_image_over_the_limit_is_refused_before_sending(portal, browser, members):
    base, _ = portal
    page, errors = open_page(browser, base, "ivan")
    posts = image_posts(page)
    page.goto(f"{base}/?mode=image")
    page.locator("[data-drop-zone].ready").wait_for()
    limit = int(page.locator("#id_image").get_attribute("data-max-bytes"))

    page.evaluate(HOLD_LARGE_FILE, ["huge.png", limit + 1])
    drop(page)
    assert chosen_file(page)["size"] == limit + 1
    too_large = page.locator("#id_image").get_attribute("data-too-large")
    message = page.locator("#image-field .errorlist")
    assert message.inner_text() == too_large
    page.fill("#id_prompt", "Too big to send")
    page.click("text=Animate image")
    page.wait_for_timeout(500)
    assert posts == []
    assert message.inner_text() == too_large
    assert page.evaluate("document.activeElement.id") == "id_image"
    assert errors == []
    page.close()


HREF = "(a) => a.href"  # the full URL


def card_facts(cards, index: int) -> dict:
    card = cards.nth(index)
    return {
        "prompt": card.locator(".prompt a").inner_text(),
        "detail": card.locator(".prompt a").evaluate(HREF),
        "download": card.locator("a[data-download]").evaluate(HREF),
        "remix": card.locator("a[data-remix]").evaluate(HREF),
        "video": card.locator("video").evaluate("(v) => v.currentSrc || v.src"),
    }


def lightbox_facts(page) -> dict:
    box = page.locator("#lightbox")
    return {
        "prompt": box.locator("#lightbox-prompt").inner_text(),
        "detail": box.locator("[data-lightbox-detail]").evaluate(HREF),
        "download": box.locator("[data-lightbox-download]").evaluate(HREF),
        "remix": box.locator("[data-lightbox-remix]").evaluate(HREF),
        "video": box.locator("video").evaluate("(v) => v.src"),
    }


def focus_in_lightbox(page) -> bool:
    return page.evaluate("document.getElementById('lightbox').contains(document.activeElement)")


def test_the_lightbox_steps_through_the_dashboards_finished_videos(portal, browser, members):
    base, _ = portal
    page, errors = open_page(browser, base, "lena")
    cards = page.locator("#job-list .job-card.status-done")
    cards.nth(2).wait_for()
    assert cards.count() == 3
    facts = [card_facts(cards, i) for i in range(3)]
    # Track any focus that leaves the open dialog.
    page.evaluate("""() => {
      window.focusOutside = [];
      document.addEventListener("focusin", (e) => {
        const box = document.getElementById("lightbox");
        if (box.open && !box.contains(e.target)) window.focusOutside.push(e.target.outerHTML);
      });
    }""")
    # The first card's own video is playing when the lightbox opens: it stops.
    first_video = cards.first.locator("video")
    first_video.evaluate("(v) => { v.muted = true; return v.play(); }")

    trigger = cards.first.get_by_role("link", name="View large")
    trigger.click()
    dialog = page.get_by_role("dialog", name=facts[0]["prompt"])
    dialog.wait_for()
    assert first_video.evaluate("(v) => v.paused") is True
    assert lightbox_facts(page) == facts[0]
    assert page.locator("[data-lightbox-position]").inner_text() == "Video 1 of 3"
    assert focus_in_lightbox(page)
    assert page.url == f"{base}/"  # the link was not followed
    dialog = page.locator("#lightbox")  # its name follows the video shown

    page.keyboard.press("ArrowRight")
    assert lightbox_facts(page) == facts[1]
    assert page.locator("[data-lightbox-position]").inner_text() == "Video 2 of 3"
    page.keyboard.press("ArrowLeft")
    assert lightbox_facts(page) == facts[0]
    page.keyboard.press("ArrowLeft")  # the first stays the first
    assert lightbox_facts(page) == facts[0]
    assert dialog.get_by_role("button", name="Previous").get_attribute("aria-disabled") == "true"
    dialog.get_by_role("button", name="Next").click()
    dialog.get_by_role("button", name="Next").click()
    assert lightbox_facts(page) == facts[2]
    assert dialog.get_by_role("button", name="Next").get_attribute("aria-disabled") == "true"
    page.keyboard.press("ArrowRight")  # the last stays the last
    assert lightbox_facts(page) == facts[2]
    for _ in range(12):
        page.keyboard.press("Tab")
    assert focus_in_lightbox(page) or page.evaluate("document.activeElement === document.body")
    assert page.evaluate("window.focusOutside") == []

    page.keyboard.press("Escape")
    page.wait_for_selector("#lightbox", state="hidden")
    assert trigger.evaluate("(a) => a === document.activeElement")
    # Its video let go of.
    assert page.locator("#lightbox video").evaluate("(v) => v.paused && !v.getAttribute('src')")

    # Opened again from the second card, its Details go to that video's page.
    cards.nth(1).get_by_role("link", name="View large").click()
    dialog = page.get_by_role("dialog", name=facts[1]["prompt"])
    dialog.get_by_role("link", name="Details").click()
    page.wait_for_url(facts[1]["detail"])
    assert facts[1]["prompt"] in page.locator("#prompt-text").inner_text()
    assert errors == []
    page.close()


def test_the_lightbox_fits_a_phone_and_a_laptop(portal, browser, members):
    base, _ = portal
    for viewport in (PHONE, DESKTOP):
        page, errors = open_page(browser, base, "lena", viewport=viewport)
        page.locator("#job-list .job-card.status-done").first.get_by_role("link", name="View large").click()
        box = page.locator("#lightbox")
        box.wait_for()
        page.wait_for_function("(v) => v.readyState >= 1", arg=box.locator("video").element_handle())
        bounds = box.bounding_box()
        if viewport is PHONE:  # the whole screen
            assert bounds == {"x": 0, "y": 0, "width": 390, "height": 844}
        else:
            assert bounds["width"] > 1000 and bounds["height"] <= 768
        for control in (box.get_by_role("button", name="Close"), box.get_by_role("button", name="Next"),
                        box.get_by_role("link", name="Details"), box.locator("video")):
            control.scroll_into_view_if_needed()
            inside = control.bounding_box()
            assert inside["x"] >= 0 and inside["x"] + inside["width"] <= viewport["width"] + 1, viewport
            assert inside["height"] > 0
        assert box.locator("video").bounding_box()["height"] > 150
        box.get_by_role("button", name="Close").click()
        page.wait_for_selector("#lightbox", state="hidden")
        assert errors == []
        page.close()


def test_the_lightbox_works_on_history_pages_and_filters_swapped_in(portal, browser, members):
    base, _ = portal
    page, errors = open_page(browser, base, "mira")
    page.goto(f"{base}/history/?member=me")
    page.evaluate("window.notReloaded = true")
    cards = page.locator("#results .job-card.status-done")
    cards.first.wait_for()
    assert cards.count() == 24

    # The next page, swapped in by htmx.
    page.locator(".pagination").get_by_role("link", name="Older").click()
    page.wait_for_url("**page=2**")
    page.wait_for_function("document.querySelectorAll('#results .job-card').length === 2")
    # The view and the focus go to the new page's top, not left by the link at the bottom.
    page.wait_for_function("document.activeElement && document.activeElement.closest('#results') !== null")
    assert 0 <= page.evaluate("document.getElementById('results').getBoundingClientRect().top") < 200
    facts = [card_facts(cards, i) for i in range(2)]
    cards.first.get_by_role("link", name="View large").click()
    page.get_by_role("dialog", name=facts[0]["prompt"]).wait_for()
    assert page.locator("[data-lightbox-position]").inner_text() == "Video 1 of 2"
    page.keyboard.press("ArrowRight")
    assert lightbox_facts(page) == facts[1]
    page.keyboard.press("Escape")
    page.wait_for_selector("#lightbox", state="hidden")
    assert cards.first.get_by_role("link", name="View large").evaluate("(a) => a === document.activeElement")

    # A search, swapped in: the lightbox steps through what it found.
    page.fill("#id_q", "scene 1")
    page.wait_for_url("**q=scene**")
    found = len([prompt for prompt in HARBOUR if "1" in prompt])  # each word is looked for
    page.wait_for_function(f"document.querySelectorAll('#results .job-card').length === {found}")
    facts = [card_facts(cards, i) for i in range(found)]
    cards.last.get_by_role("link", name="View large").click()
    page.get_by_role("dialog", name=facts[-1]["prompt"]).wait_for()
    assert page.locator("[data-lightbox-position]").inner_text() == f"Video {found} of {found}"
    page.keyboard.press("ArrowLeft")
    assert lightbox_facts(page) == facts[-2]
    page.locator("#lightbox").get_by_role("link", name="Remix").click()
    page.wait_for_url(f"{base}/?mode=text&from=*")
    assert page.locator("#id_prompt").input_value() == facts[-2]["prompt"]
    assert errors == []
    page.close()
