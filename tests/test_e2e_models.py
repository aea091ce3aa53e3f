"""End to end, in Chromium: the form offers the chosen model's options (issue 13, item 1).

A member moves from v5 to v6: styles and motion go, sound and 15-second videos
come, the estimate follows per second, focus stays where it was, and the video
made with those settings plays with them on its card. Then back to v5, where
what v5 does not take falls back to its defaults.
"""

import pytest
from playwright.sync_api import expect

from tests.processes import django_shell
from tests.test_e2e_pages import MEMBERS, Console
from tests.test_end_to_end import browser, portal, sign_in, wait_for_playable_video  # noqa: F401

pytestmark = pytest.mark.slow


def test_the_form_follows_the_chosen_model_and_the_video_keeps_its_settings(portal, browser):
    base, env = portal
    django_shell(env, MEMBERS + "member('vera')")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    console = Console(page)
    sign_in(page, base, "vera")
    page.fill("#id_prompt", "A lighthouse in a storm, wide")
    expect(page.locator("#id_style")).to_be_visible()
    expect(page.locator("#id_generate_audio")).to_have_count(0)
    expect(page.locator("#id_prompt")).to_have_attribute("maxlength", "2048")

    # Near the model's limit the box says how much is used; a paste the browser cut at the
    # limit is said to have been cut (the paste is raised, then cut as the browser does).
    page.fill("#id_prompt", "a" * 1700)
    expect(page.locator("#id_prompt-count")).to_have_text("1700 of 2048 characters")
    page.fill("#id_prompt", "")
    page.evaluate("""() => {
      const box = document.getElementById("id_prompt");
      const data = new DataTransfer();
      data.setData("text/plain", "b".repeat(3000));
      box.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true }));
      box.value = "b".repeat(box.maxLength);
      box.dispatchEvent(new Event("input", { bubbles: true }));
    }""")
    expect(page.locator("#id_prompt-count")).to_contain_text("2048 of 2048 characters")
    expect(page.locator("#id_prompt-count")).to_contain_text("cut at this model's limit")
    page.fill("#id_prompt", "A lighthouse in a storm, wide")
    expect(page.locator("#id_prompt-count")).to_be_hidden()

    # With the keyboard: focus on the model, choose v6.
    page.locator("#id_model").focus()
    page.select_option("#id_model", "v6")
    expect(page.locator("#id_generate_audio")).to_be_visible()
    expect(page.locator("#id_prompt")).to_have_attribute("maxlength", "5000")  # v6 takes longer prompts
    expect(page.locator("#id_style")).to_have_count(0)
    expect(page.locator("#id_motion_mode")).to_have_count(0)
    expect(page.locator("#id_duration option")).to_have_count(15)
    expect(page.locator("#id_model")).to_be_focused()
    page.select_option("#id_duration", "12")
    page.select_option("#id_aspect_ratio", "21:9")
    expect(page.locator(".estimate")).to_contain_text("Estimated cost: 84 credits")  # 7 a second at 540p
    page.check("#id_generate_audio")
    expect(page.locator(".estimate")).to_contain_text("Estimated cost: 108 credits")  # 9 with sound

    page.get_by_role("button", name="Generate video").click()
    card = page.locator(".job-card", has_text="A lighthouse in a storm, wide")
    card.wait_for()
    expect(card.locator(".params-line")).to_contain_text("v6 · 540p · 12 s · 21:9 · with sound")
    wait_for_playable_video(page, ".job-card.status-done")
    # The form keeps the model's options after the job started.
    expect(page.locator("#id_model")).to_have_value("v6")
    expect(page.locator("#id_generate_audio")).to_be_visible()

    # Back to v5: 12 s and 21:9 are not v5's, so its defaults come back.
    page.select_option("#id_model", "v5")
    expect(page.locator("#id_style")).to_be_visible()
    expect(page.locator("#id_duration")).to_have_value("5")
    expect(page.locator("#id_aspect_ratio")).to_have_value("16:9")
    expect(page.locator(".estimate")).to_contain_text("Estimated cost: 45 credits")
    assert console.problems() == []
    page.close()

    # In Russian, the model's own refusals and options are Russian too.
    context = browser.new_context(locale="ru-RU", viewport={"width": 390, "height": 844})
    page = context.new_page()
    sign_in(page, base, "vera")
    page.select_option("#id_model", "v6")
    expect(page.get_by_label("Со звуком")).to_be_visible()  # noqa: RUF001 (Russian is meant)
    page.select_option("#id_model", "c1")
    expect(page.locator("#id_aspect_ratio option[value='21:9']")).to_have_count(0)
    expect(page.locator("#id_multi_clip")).to_have_count(0)

    # A model changed again the moment the options arrive is still followed: the new
    # fields are live as soon as they are in the page (htmx settles at once, base.html).
    page.evaluate("""() => document.body.addEventListener("htmx:afterSwap", () => setTimeout(() => {
      const model = document.querySelector("#id_model");
      model.value = "c1";
      model.dispatchEvent(new Event("change", { bubbles: true }));
      window.changedAgain = true;
    }, 0), { once: true })""")
    page.select_option("#id_model", "v6")
    page.wait_for_function("window.changedAgain === true")
    expect(page.locator("#id_model")).to_have_value("c1")
    expect(page.locator("#id_aspect_ratio option[value='21:9']")).to_have_count(0)
    expect(page.locator("#id_generate_audio")).to_have_count(1)  # c1 has native audio too
    context.close()


# Runs when the page's HTML is parsed, before htmx has started (its listener comes later):
# a member quicker than the page's scripts.
CHOSEN_BEFORE_HTMX = """document.addEventListener("DOMContentLoaded", () => {
  const model = document.querySelector("#id_model");
  if (!model) return;
  model.value = "v6";
  model.dispatchEvent(new Event("change", { bubbles: true }));
  const prompt = document.querySelector("#id_prompt");
  prompt.value = "Typed while the page loaded";
  prompt.dispatchEvent(new Event("input", { bubbles: true }));
});"""


def test_what_was_chosen_before_the_pages_scripts_started_is_followed(portal, browser):
    base, env = portal
    django_shell(env, MEMBERS + "member('quinn')")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console = Console(page)
    sign_in(page, base, "quinn")
    page.add_init_script(CHOSEN_BEFORE_HTMX)
    page.reload()
    expect(page.locator("#id_model")).to_have_value("v6")
    # v6's options came, as if the model had been chosen after the page was ready.
    expect(page.locator("#id_generate_audio")).to_be_visible()
    expect(page.locator("#id_style")).to_have_count(0)
    expect(page.locator("#id_prompt")).to_have_value("Typed while the page loaded")
    assert console.problems() == []
    context.close()
