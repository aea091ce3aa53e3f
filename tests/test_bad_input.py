"""Bad input from outside: each gets a 4xx with a clear message, and nothing is half-stored.

Page numbers, activity times, invisible prompts, uploads over the request limit,
and the same form sent twice.
"""

import io
import re
import uuid
from datetime import timedelta
from pathlib import Path

import django_htmx
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from generations import paging, views
from generations.forms import image_upload_limit
from generations.models import ApiCredential, Generation

ROOT = Path(__file__).resolve().parent.parent
S = Generation.Status
TEXT = {"prompt": "A wolf in the snow", "model": "v5", "quality": "540p", "duration": "5",
        "aspect_ratio": "16:9", "motion_mode": "normal", "style": "", "negative_prompt": "", "seed": ""}
HTMX = {"HX-Request": "true"}


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


@pytest.fixture
def started(monkeypatch):
    """Workers the views start, run at once (the test's transaction never commits)."""
    calls = []
    monkeypatch.setattr("generations.queue.kick_scheduler", lambda **kw: calls.append("kick"))
    monkeypatch.setattr("django.db.transaction.on_commit", lambda func, using=None, robust=False: func())
    return calls


def make(owner, **fields):
    values = {"kind": "text", "prompt": "A wolf", "model": "v5", "quality": "360p", "duration": 5,
              "credits": 45} | fields
    return Generation.objects.create(owner=owner, **values)


def png(padding: int = 0):
    """A small PNG, made as large as asked with bytes after its end (still a valid image)."""
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "purple").save(out, "PNG")
    out.write(b"\0" * padding)
    out.seek(0)
    out.name = "photo.png"
    return out


def token_in(body: str) -> str:
    return re.search(r'name="submission" value="([0-9a-f-]+)"', body).group(1)


# --- History pages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["1000000000000000000", "9" * 30, str(paging.MAX_PAGE + 1)])
def test_a_page_number_past_the_deepest_one_is_a_404_not_an_error(as_alice, alice, page):
    make(alice)
    assert as_alice.get(reverse("history"), {"page": page}).status_code == 404
    results = as_alice.get(reverse("history"), {"page": page}, headers={**HTMX, "HX-Target": "results"})
    assert results.status_code == 404


@pytest.mark.parametrize("page", ["-5", "0", "1e3", "", "9" * 5000])
def test_other_page_numbers_that_are_not_page_numbers_show_the_first_page(as_alice, alice, page):
    make(alice, prompt="only one")
    response = as_alice.get(reverse("history"), {"page": page})
    assert response.status_code == 200
    assert [g.prompt for g in response.context["page"]] == ["only one"]


def test_the_deepest_page_offers_no_older_one(as_alice, alice, monkeypatch):
    monkeypatch.setattr(paging, "MAX_PAGE", 2)
    for n in range(60):
        make(alice, prompt=f"job {n}")
    assert as_alice.get(reverse("history"), {"page": 1}).context["page"].has_next
    deepest = as_alice.get(reverse("history"), {"page": 2})
    assert deepest.status_code == 200 and not deepest.context["page"].has_next
    assert "page=3" not in deepest.content.decode()


def test_a_page_past_the_end_leads_back_to_the_last_page_with_jobs(as_alice, alice):
    for n in range(30):  # two pages of 24
        make(alice, prompt=f"job {n}")
    past = as_alice.get(reverse("history"), {"page": 99})
    assert past.status_code == 200 and list(past.context["page"]) == []
    assert "page=2" in past.content.decode() and "page=98" not in past.content.decode()


# --- Activity ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("since", ["2024-13-45T10:00", "yesterday", "2024-01-01T25:00:00Z",
                                   "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_activity_since_a_time_that_is_not_one_is_a_400_in_json(as_alice, since):
    response = as_alice.get(reverse("activity"), {"since": since})
    assert response.status_code == 400
    assert "ISO 8601" in response.json()["error"]


def test_activity_takes_times_with_or_without_a_zone(as_alice, alice):
    make(alice, status=S.DONE, finished_at=timezone.now() - timedelta(minutes=1))
    an_hour_ago = timezone.now() - timedelta(hours=1)
    for since in (an_hour_ago.isoformat(), timezone.make_naive(an_hour_ago).isoformat(timespec="minutes")):
        response = as_alice.get(reverse("activity"), {"since": since})
        assert response.status_code == 200, since
        assert len(response.json()["finished"]) == 1
    assert as_alice.get(reverse("activity")).json()["finished"] == []


# --- Invisible prompts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", [
    "\u200b",
    "\u200b\u200c\u200d\u2060\ufeff",   # zero-width space, non-joiner, joiner, word joiner, BOM
    " \u00a0\u3000\t\n",                 # no-break and ideographic spaces, controls
    "\u202e\u2066\u00ad",                # bidi controls, soft hyphen
    "\u3164\u115f",                      # Hangul fillers: letters drawn as nothing
])
def test_a_prompt_of_invisible_characters_is_refused_and_nothing_is_stored(as_alice, started, prompt):
    response = as_alice.post(reverse("create-text"), TEXT | {"prompt": prompt}, headers=HTMX)
    assert response.status_code == 400
    body = response.content.decode()
    assert "This field is required." in body and 'id="id_prompt"' in body
    assert Generation.objects.count() == 0
    assert started == []


def test_invisible_characters_are_trimmed_from_both_prompts_and_kept_inside(as_alice, started):
    astronaut = "\U0001f469\u200d\U0001f680"  # one emoji, held together by a zero-width joiner
    response = as_alice.post(reverse("create-text"), TEXT | {
        "prompt": f"\u200b\ufeff {astronaut} in space\u2060 ", "negative_prompt": "\u200bblur\u200d\u00a0"})
    assert response.status_code == 302
    generation = Generation.objects.get()
    assert generation.prompt == f"{astronaut} in space"
    assert generation.negative_prompt == "blur"


def test_a_negative_prompt_of_invisible_characters_is_left_empty(as_alice, started):
    as_alice.post(reverse("create-text"), TEXT | {"negative_prompt": "\u200b\u200b"})
    assert Generation.objects.get().negative_prompt == ""


# --- Uploads over the request limit -------------------------------------------------------------------


@pytest.fixture
def small_requests(settings):
    """A 2 MB request limit, so an image of 2.5 MB is over it."""
    settings.PORTAL_MAX_REQUEST_BYTES = 2 * 2**20
    return settings


def test_the_image_field_carries_its_size_limit_for_the_page_to_check(as_alice, small_requests):
    page = as_alice.get("/?mode=image").content.decode()
    limit = image_upload_limit()
    assert limit < small_requests.PORTAL_MAX_REQUEST_BYTES  # room for the form's other fields
    assert f'data-max-bytes="{limit}"' in page
    assert 'data-too-large="The file is larger than 1.9 MB."' in page


def test_an_image_over_the_request_limit_gets_the_page_with_the_message_next_to_the_field(
    as_alice, small_requests, started
):
    response = as_alice.post(reverse("create-image"), {**TEXT, "image": png(padding=2_500_000)})
    assert response.status_code == 413
    body = response.content.decode()
    # The dashboard, on the image form, with the size next to the image field...
    assert 'id="image-form"' in body and "<html" in body
    field = re.search(r'<div class="image-field" id="image-field">.*?id="image-preview"', body, re.S).group(0)
    assert 'id="id_image_error"' in field and "The file is larger than 1.9 MB." in field
    assert 'aria-invalid="true"' in field
    # ...and the way back to the form as it was filled in, which only the browser still has.
    assert "Back button" in body
    assert Generation.objects.count() == 0
    assert "Content-Security-Policy" in response.headers and "X-Request-ID" in response.headers


def test_with_htmx_only_the_image_field_is_replaced_and_the_rest_of_the_form_stays(
    as_alice, small_requests, started
):
    response = as_alice.post(reverse("create-image"), {**TEXT, "image": png(padding=2_500_000)},
                             headers=HTMX)
    assert response.status_code == 413
    assert response.headers["HX-Retarget"] == "#image-field"
    assert response.headers["HX-Reswap"] == "outerHTML"
    body = response.content.decode().strip()
    assert body.startswith('<div class="image-field" id="image-field">')
    assert "The file is larger than 1.9 MB." in body and 'id="id_image_error"' in body
    assert "<form" not in body and 'name="prompt"' not in body
    assert Generation.objects.count() == 0


def test_the_page_swaps_in_a_413_answer(as_alice):
    page = as_alice.get("/").content.decode()
    assert '{"code": "413", "swap": true}' in page


def test_other_requests_over_the_limit_get_the_portals_page_in_the_members_language(
    client, alice, small_requests
):
    anonymous = client.post(reverse("create-image"), {**TEXT, "image": png(padding=2_500_000)})
    assert anonymous.status_code == 413
    body = anonymous.content.decode()
    assert "That was too large to send" in body and "at most 2 MB" in body
    assert "topbar" in body and 'href="/"' in body  # the layout and a way back
    client.force_login(alice)
    text = client.generic("POST", reverse("create-text"), b"x" * (3 * 2**20),
                          content_type="application/octet-stream", headers={"Accept-Language": "ru"})
    assert text.status_code == 413
    russian = text.content.decode()
    assert '<html lang="ru"' in russian and "That was too large" not in russian
    assert Generation.objects.count() == 0


def test_files_of_another_kind_too_large_together_leave_the_form_as_filled_in_with_htmx(
    as_alice, small_requests, started
):
    files = {"first_image": png(padding=1_300_000), "last_image": png(padding=1_300_000)}
    response = as_alice.post(reverse("create", args=["transition"]), {**TEXT, **files}, headers=HTMX)
    assert response.status_code == 413
    assert response.headers["HX-Retarget"] == "#transition-too-large"
    assert response.headers["HX-Reswap"] == "outerHTML"
    body = response.content.decode().strip()
    assert body.startswith('<div id="transition-too-large" class="error-box" role="alert">')
    assert "too large together (at most 2 MB in all)" in body and "<form" not in body
    # The place it goes is in every form, empty until then.
    assert '<div id="transition-too-large"></div>' in as_alice.get("/?mode=transition").content.decode()
    assert Generation.objects.count() == 0


@pytest.mark.parametrize("url", [reverse("create-image"), reverse("create", args=["transition"])])
def test_a_guest_over_the_limit_gets_the_plain_page_not_a_form(client, db, small_requests, url):
    from generations import roles

    guest = User.objects.create_user("gus", "gus@example.com", "pw")
    roles.set_role(guest, roles.Role.GUEST)
    client.force_login(guest)
    response = client.post(url, {**TEXT, "first_image": png(padding=2_500_000)}, headers=HTMX)
    body = response.content.decode()
    assert response.status_code == 413 and "That was too large to send" in body
    assert "<form" not in body.split("<main", 1)[1].split("</main>", 1)[0]
    assert "HX-Retarget" not in response.headers


def test_without_htmx_files_too_large_together_get_the_form_with_the_way_back(
    as_alice, small_requests, started
):
    files = {"first_image": png(padding=1_300_000), "last_image": png(padding=1_300_000)}
    response = as_alice.post(reverse("create", args=["transition"]), {**TEXT, **files})
    assert response.status_code == 413
    body = response.content.decode()
    assert 'id="transition-form"' in body and "too large together" in body and "Back button" in body
    assert Generation.objects.count() == 0


def test_an_image_under_the_limit_is_still_taken(as_alice, small_requests, started):
    response = as_alice.post(reverse("create-image"), {**TEXT, "image": png(padding=500_000)})
    assert response.status_code == 302
    assert Generation.objects.get().kind == "image"


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain-form"])
def test_the_page_refuses_an_image_over_the_limit_before_sending_anything(
    as_alice, small_requests, tmp_path, htmx
):
    """The real dashboard, portal.js and htmx in Chromium: no request leaves the page."""
    page_html = as_alice.get("/?mode=image").content.decode()
    if not htmx:  # a form that htmx leaves alone posts as the browser does
        page_html = page_html.replace("hx-post=", "data-not-htmx=")
    picture = tmp_path / "big.png"
    picture.write_bytes(png(padding=2_500_000).getvalue())
    static = {"/static/js/portal.js": ROOT / "static/js/portal.js",
              "/static/django_htmx/htmx-2.min.js": Path(django_htmx.__file__).parent
              / "static/django_htmx/htmx-2.min.js"}
    sent = []

    def answer(route):
        path = route.request.url.removeprefix("http://portal.test").split("?")[0]
        if route.request.method == "GET" and path == "/":
            route.fulfill(body=page_html, content_type="text/html")
        elif path in static:
            route.fulfill(body=static[path].read_bytes(), content_type="text/javascript")
        else:
            sent.append((route.request.method, path))
            route.fulfill(status=204)

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.set_default_timeout(5000)
        page.route("**/*", answer)
        page.goto("http://portal.test/")
        page.wait_for_function("document.readyState === 'complete'")
        page.fill("#id_prompt", "A magical forest")
        page.set_input_files("#id_image", str(picture))
        # Said next to the field as soon as the file is chosen...
        assert page.locator("#id_image_error").inner_text() == "The file is larger than 1.9 MB."
        assert page.get_attribute("#id_image", "aria-invalid") == "true"
        # ...and the form is not sent, with everything typed still in it.
        page.click("text=Animate image")
        page.wait_for_timeout(300)
        assert [s for s in sent if s[0] == "POST"] == []
        assert page.input_value("#id_prompt") == "A magical forest"
        assert page.locator("#id_image_error").count() == 1
        # A smaller file clears the message.
        small = tmp_path / "small.png"
        small.write_bytes(png().getvalue())
        page.set_input_files("#id_image", str(small))
        assert page.locator("#id_image_error").count() == 0
        assert page.get_attribute("#id_image", "aria-invalid") is None
        browser.close()


# --- The same form sent twice -----------------------------------------------------------------------------


def test_each_form_shown_has_a_new_submission_token(as_alice):
    first, second = (token_in(as_alice.get("/").content.decode()) for _ in range(2))
    assert uuid.UUID(first) and first != second


def test_the_same_form_sent_twice_makes_one_job_and_a_new_form_another(as_alice, started):
    form = TEXT | {"submission": token_in(as_alice.get("/").content.decode())}
    started.clear()  # the page asked for the balance
    first = as_alice.post(reverse("create-text"), form)
    again = as_alice.post(reverse("create-text"), form)
    assert first.status_code == again.status_code == 302
    generation = Generation.objects.get()
    assert first.url == again.url and str(generation.code) in again.url
    assert started == ["kick"]
    # The form it leads to ("go again" with the same settings) is a new submission.
    remix = as_alice.get(again.url).content.decode()
    assert as_alice.post(reverse("create-text"), TEXT | {"submission": token_in(remix)}).status_code == 302
    assert Generation.objects.count() == 2


def test_a_form_sent_with_htmx_comes_back_with_a_new_token(as_alice, started):
    token = token_in(as_alice.get("/").content.decode())
    first = as_alice.post(reverse("create-text"), TEXT | {"submission": token}, headers=HTMX)
    body = first.content.decode()
    generation = Generation.objects.get()
    assert f'id="job-{generation.code}"' in body
    fresh = re.search(r'<input type="hidden" name="submission" value="([0-9a-f-]+)"[^>]*>', body)
    assert fresh.group(1) != token
    assert 'hx-swap-oob="true"' in fresh.group(0) and 'id="id_submission"' in fresh.group(0)
    # The same token again (a resent request) is the same job's card; the new one makes another.
    again = as_alice.post(reverse("create-text"), TEXT | {"submission": token}, headers=HTMX)
    assert f'id="job-{generation.code}"' in again.content.decode()
    assert Generation.objects.count() == 1
    as_alice.post(reverse("create-text"), TEXT | {"submission": fresh.group(1)}, headers=HTMX)
    assert Generation.objects.count() == 2


def test_a_form_refused_for_its_errors_keeps_its_token(as_alice, started):
    token = str(uuid.uuid4())
    refused = as_alice.post(reverse("create-text"), TEXT | {"prompt": "", "submission": token})
    assert refused.status_code == 400 and token_in(refused.content.decode()) == token


def test_posts_sent_at_the_same_moment_make_one_job_and_keep_one_image(as_alice, alice, started,
                                                                        monkeypatch, settings):
    """Neither post sees the other's job before storing its own: the unique code decides."""
    form = {**TEXT, "submission": str(uuid.uuid4())}
    assert as_alice.post(reverse("create-image"), {**form, "image": png()}).status_code == 302
    first = Generation.objects.get()
    real = views._sent_before
    calls = []

    def not_yet_stored(request, code):
        calls.append(code)
        return None if len(calls) == 1 else real(request, code)

    monkeypatch.setattr(views, "_sent_before", not_yet_stored)
    second = as_alice.post(reverse("create-image"), {**form, "image": png()})
    assert second.status_code == 302 and str(first.code) in second.url
    assert Generation.objects.count() == 1 and started == ["kick"]
    stored = list((Path(settings.MEDIA_ROOT) / "sources" / str(first.code)).iterdir())
    assert [f.name for f in stored] == [Path(first.source_image.name).name]


def test_another_member_with_the_same_token_gets_a_job_of_their_own(as_alice, alice, started):
    token = str(uuid.uuid4())
    as_alice.post(reverse("create-text"), TEXT | {"submission": token})
    bob = User.objects.create_user("bob", password="pw-bob")
    credential = ApiCredential(user=bob)
    credential.set_key("sk-bob-secret-key-BBBB")
    credential.save()
    as_bob = Client()
    as_bob.force_login(bob)
    assert as_bob.post(reverse("create-text"), TEXT | {"submission": token}).status_code == 302
    assert Generation.objects.filter(owner=bob).count() == 1
    assert Generation.objects.count() == 2


def test_a_post_without_a_token_still_makes_a_job(as_alice, started):
    as_alice.post(reverse("create-text"), TEXT)
    as_alice.post(reverse("create-text"), TEXT)
    assert Generation.objects.count() == 2
