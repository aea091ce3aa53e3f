"""The portal's pages: dashboard, submissions, job cards, the key page, accounts."""

import html
import io
import json
import re
from datetime import timedelta

import pytest
import requests
import responses
from django.conf import settings
from django.contrib.auth.models import User
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string
from PIL import Image

from generations.models import ApiCredential, Generation
from generations.pixverse import Balance

BASE = "https://pixverse.test/openapi/v2"
KEY = "sk-alice-secret-key-AAAA"
S = Generation.Status


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(f"{BASE}/account/balance", json={"ErrCode": 0, "ErrMsg": "success", "Resp": {
            "account_id": 1, "credit_monthly": 100, "credit_package": 50}})
        yield rsps


@pytest.fixture
def started(monkeypatch, django_capture_on_commit_callbacks):
    """Workers the views start. They are started on commit, which the test's own
    transaction would hold back, so those callbacks run at once here."""
    calls = []
    monkeypatch.setattr("generations.queue.kick_scheduler", lambda **kw: calls.append("kick"))
    monkeypatch.setattr("django.db.transaction.on_commit", lambda func, using=None, robust=False: func())
    return calls


@pytest.fixture
def alice(db):
    user = User.objects.create_user("alice", "alice@example.com", "pw-alice")
    credential = ApiCredential(user=user)
    credential.set_key(KEY)
    credential.save()
    return user


@pytest.fixture
def bob(db):
    return User.objects.create_user("bob", "bob@example.com", "pw-bob")


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


def make_generation(owner, **fields):
    values = {"kind": "text", "prompt": "A wolf", "model": "v5", "quality": "360p", "duration": 5,
              "credits": 45} | fields
    return Generation.objects.create(owner=owner, **values)


TEXT = {"prompt": "A wolf in the snow", "model": "v5", "quality": "540p", "duration": "5",
        "aspect_ratio": "16:9", "motion_mode": "normal", "style": "", "negative_prompt": "", "seed": ""}


def png(size=(64, 48)):
    out = io.BytesIO()
    Image.new("RGB", size, "purple").save(out, "PNG")
    out.seek(0)
    out.name = "photo.png"
    return out


# --- Dashboard -----------------------------------------------------------------------------


def test_the_dashboard_needs_a_sign_in(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def known_balance(user, monthly=100, package=50):
    """The balance as the scheduler last read it (what pages show)."""
    ApiCredential.record_balance(ApiCredential.objects.get(user=user).key_hash,
                                 Balance(account_id=1, credit_monthly=monthly, credit_package=package))


def test_the_dashboard_shows_balance_forms_and_only_my_jobs(as_alice, alice, bob, api):
    known_balance(alice)
    make_generation(User.objects.get(username="alice"), prompt="mine")
    make_generation(bob, prompt="not mine")
    page = as_alice.get("/").content.decode()
    assert "150</strong> credits" in page
    assert "100 monthly · 50 package" in page
    assert 'name="prompt"' in page and 'name="aspect_ratio"' in page
    assert "mine" in page and "not mine" not in page
    assert "Estimated cost: <strong>45</strong>" in page
    assert KEY not in page


def test_no_page_waits_on_pixverse_for_the_balance(as_alice, alice, started):
    """PixVerse hangs: the dashboard answers at once and asks the scheduler for the balance."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as hanging:
        hanging.get(f"{BASE}/account/balance", body=requests.ReadTimeout("hangs"))
        page = as_alice.get("/").content.decode()
        assert not hanging.calls
    assert "Reading your credits…" in page
    assert ApiCredential.objects.get().balance_due_at is not None
    assert started == ["kick"]


def test_a_stale_balance_is_shown_with_its_age_while_it_is_read_again(as_alice, alice, started):
    known_balance(alice)
    ApiCredential.objects.update(balance_read_at=timezone.now() - timedelta(minutes=5))
    panel = as_alice.get(reverse("balance"), headers={"HX-Request": "true"}).content.decode()
    assert "150</strong> credits" in panel
    assert "as of 5" in panel and "updating" in panel
    assert "load delay" in panel  # the panel asks again until the fresh one is there


def test_a_balance_that_jobs_have_changed_is_read_again_when_shown(as_alice, alice, started):
    known_balance(alice)
    assert ApiCredential.objects.get().balance_due_at is None
    ApiCredential.balance_changed(ApiCredential.objects.get().key_hash)
    panel = as_alice.get(reverse("balance"), headers={"HX-Request": "true"}).content.decode()
    assert "updating" in panel
    assert ApiCredential.objects.get().balance_due_at is not None


def test_the_image_tab_has_the_upload_field(as_alice, api):
    page = as_alice.get("/?mode=image").content.decode()
    assert 'type="file"' in page and 'accept="image/jpeg,image/png,image/webp"' in page
    assert 'name="aspect_ratio"' not in page


def test_the_estimate_follows_the_settings(as_alice):
    def estimate(**params):
        return as_alice.get(reverse("estimate"), params, headers={"HX-Request": "true"}).content.decode()

    assert "<strong>120</strong>" in estimate(quality="720p", duration="8", motion_mode="normal")
    assert "<strong>90</strong>" in estimate(quality="360p", duration="5", motion_mode="fast")
    assert "not available" in estimate(quality="1080p", duration="8", motion_mode="normal")


# --- Submitting -------------------------------------------------------------------------------


def test_a_text_job_is_stored_and_handed_to_a_worker(as_alice, alice, api, started):
    response = as_alice.post(reverse("create-text"), TEXT)
    assert response.status_code == 302
    generation = Generation.objects.get()
    assert (generation.owner, generation.status, generation.kind) == (alice, S.QUEUED, "text")
    assert (generation.quality, generation.duration, generation.aspect_ratio) == ("540p", 5, "16:9")
    assert generation.credits == 45
    assert generation.trace_id
    assert started == ["kick"]
    # The form post itself makes no PixVerse call: the worker submits, the balance is the known one.
    assert not api.calls


def test_an_htmx_submission_answers_with_the_new_card(as_alice, api, started):
    as_alice.get(reverse("dashboard"))  # the page the form is in, which sets the CSRF cookie
    response = as_alice.post(reverse("create-text"), TEXT, headers={"HX-Request": "true"})
    assert response.status_code == 200
    generation = Generation.objects.get()
    body = response.content.decode()
    assert f'id="job-{generation.code}"' in body
    assert 'hx-trigger="every 3s"' in body
    assert "<html" not in body
    # The new card's ETag, made from the job just saved, is the one its first poll
    # finds stored (same values after the database's round trip): answered 304.
    headers = json.loads(html.unescape(re.search(r'hx-headers="([^"]*If-None-Match[^"]*)"', body).group(1)))
    poll = as_alice.get(reverse("card", args=[generation.code]), headers={"HX-Request": "true", **headers})
    assert poll.status_code == 304


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"motion_mode": "fast", "duration": "8"}, "motion_mode", "5-second videos only"),
    ({"motion_mode": "fast", "quality": "1080p"}, "motion_mode", "not available at 1080p"),
    ({"quality": "1080p", "duration": "8"}, "duration", "1080p videos of 5 seconds only"),
    ({"prompt": "   "}, "prompt", "required"),
    ({"quality": "4k"}, "quality", "Select a valid choice"),
    ({"seed": "-1"}, "seed", "greater than or equal to 0"),
    ({"prompt": "x" * 2049}, "prompt", "longer than 2048 characters"),
])
def test_refused_settings_are_said_next_to_the_field_and_nothing_is_stored(
    as_alice, api, started, change, field, words
):
    response = as_alice.post(reverse("create-text"), TEXT | change, headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert response.headers["HX-Retarget"] == "#text-form"
    body = response.content.decode()
    assert words in body
    assert f'id="id_{field}"' in body and 'aria-invalid="true"' in body
    assert Generation.objects.count() == 0
    assert started == []
    # What the member typed is still there.
    if change.get("prompt", "").strip():
        assert change["prompt"] in body
    else:
        assert "A wolf in the snow" in body or change.get("prompt") == "   "


def test_a_job_over_the_known_balance_is_refused_before_any_call(as_alice, alice, api, started):
    known_balance(alice, monthly=100, package=0)
    response = as_alice.post(reverse("create-text"), TEXT | {"quality": "1080p"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "This video costs 120 credits; the PixVerse balance of this key is 100." in page
    assert Generation.objects.count() == 0
    assert started == []
    assert as_alice.post(reverse("create-text"), TEXT | {"quality": "720p"}).status_code == 302
    assert not [c for c in api.calls if "generate" in c.request.url]


def test_without_a_key_the_form_says_where_to_add_it(client, bob, started):
    client.force_login(bob)
    response = client.post(reverse("create-text"), TEXT)
    assert response.status_code == 400
    assert "Add your PixVerse API key" in response.content.decode()
    assert Generation.objects.count() == 0


def test_an_image_job_keeps_the_uploaded_image(as_alice, api, started):
    response = as_alice.post(reverse("create-image"), {**TEXT, "image": png()})
    assert response.status_code == 302
    generation = Generation.objects.get()
    assert generation.kind == "image"
    assert generation.source_image.name.endswith("source.png")
    assert as_alice.get(reverse("source-image", args=[generation.code])).status_code == 200


def test_a_bad_image_is_refused_next_to_the_field(as_alice, api, started):
    bad = io.BytesIO(b"GIF89a....")
    bad.name = "cat.png"
    response = as_alice.post(reverse("create-image"), {**TEXT, "image": bad},
                             headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert "Use a JPEG, PNG or WebP image." in response.content.decode()
    assert Generation.objects.count() == 0


def test_htmx_posts_need_the_csrf_token(alice, api, started):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(reverse("create-text"), TEXT, headers={"HX-Request": "true"}).status_code == 403
    page = client.get("/")
    token = page.cookies["csrftoken"].value
    assert '"X-CSRFToken": "' in page.content.decode()
    response = client.post(reverse("create-text"), TEXT,
                           headers={"HX-Request": "true", "X-CSRFToken": token})
    assert response.status_code == 200


# --- Job cards -------------------------------------------------------------------------------


def test_another_members_private_job_is_a_404_everywhere(as_alice, bob, started):
    theirs = make_generation(bob, status=S.FAILED, is_private=True)
    for name in ("card", "video", "source-image", "detail", "delete"):
        assert as_alice.get(reverse(name, args=[theirs.code]),
                            headers={"HX-Request": "true"}).status_code == 404
    for name in ("retry", "cancel", "privacy", "delete"):
        assert as_alice.post(reverse(name, args=[theirs.code])).status_code == 404
    assert Generation.objects.count() == 1


def test_a_team_mates_shared_job_can_be_seen_but_not_changed(as_alice, bob, started):
    theirs = make_generation(bob, status=S.FAILED)
    card = as_alice.get(reverse("card", args=[theirs.code]), headers={"HX-Request": "true"})
    assert card.status_code == 200
    assert as_alice.get(reverse("detail", args=[theirs.code])).status_code == 200
    for name in ("retry", "cancel", "privacy", "delete"):
        assert as_alice.post(reverse(name, args=[theirs.code])).status_code == 404
    assert Generation.objects.get().status == S.FAILED


@pytest.mark.parametrize("name", ["retry", "cancel"])
def test_a_button_on_the_card_of_a_job_deleted_in_another_tab_says_it_is_gone(as_alice, alice, started,
                                                                              name):
    generation = make_generation(alice, status=S.FAILED if name == "retry" else S.QUEUED)
    code = generation.code
    generation.delete()
    response = as_alice.post(reverse(name, args=[code]), headers={"HX-Request": "true"})
    # portal.js swaps a gone card in (X-Job-Gone) in place of the one clicked on.
    assert response.status_code == 404 and response["X-Job-Gone"] == "1"
    assert response["HX-Retarget"] == f"#job-{code}" and response["HX-Reswap"] == "outerHTML"
    assert "was deleted or made private" in response.content.decode()
    assert as_alice.post(reverse(name, args=[code])).status_code == 404
    assert not Generation.objects.exists()


def test_an_active_card_keeps_polling_and_a_finished_one_stops(as_alice, alice):
    generation = make_generation(alice, status=S.RUNNING)
    url = reverse("card", args=[generation.code])
    active = as_alice.get(url, headers={"HX-Request": "true"})
    assert 'hx-trigger="every 3s"' in active.content.decode()
    assert "HX-Trigger" not in active.headers
    Generation.objects.filter(pk=generation.pk).update(status=S.DONE, video_url="https://cdn/v.mp4")
    done = as_alice.get(url, headers={"HX-Request": "true"})
    # Done at PixVerse: it plays from there and polls until our own copy is stored.
    assert 'hx-trigger="every 3s"' in done.content.decode()
    assert "Saving the portal's own copy" in done.content.decode()
    assert "<video" in done.content.decode()
    assert json.loads(done.headers["HX-Trigger"]) == {"balance-changed": {}}
    Generation.objects.filter(pk=generation.pk).update(video_file="videos/v.mp4")
    stored = as_alice.get(url, headers={"HX-Request": "true"})
    assert "hx-trigger" not in stored.content.decode()


def test_a_poll_of_an_unchanged_card_is_answered_304_and_a_change_shows(as_alice, alice, bob,
                                                                        django_assert_num_queries):
    generation = make_generation(alice, status=S.RUNNING)
    url = reverse("card", args=[generation.code])
    htmx = {"HX-Request": "true"}
    as_alice.get(reverse("dashboard"))  # a first visit sets the CSRF cookie the card's forms use
    page = as_alice.get(reverse("dashboard")).content.decode()
    # The card in the page carries its ETag: even its first poll is answered 304.
    headers = json.loads(html.unescape(re.search(r'hx-headers="([^"]*If-None-Match[^"]*)"', page).group(1)))
    first_poll = as_alice.get(url, headers={**htmx, **headers})
    assert first_poll.status_code == 304
    first = as_alice.get(url, headers=htmx)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag == headers["If-None-Match"]
    # The page's card posts without JavaScript too; a card fetched by htmx posts with
    # htmx, which sends the page's token as a header, so it carries no token of its own.
    assert 'name="csrfmiddlewaretoken"' in page
    assert 'name="csrfmiddlewaretoken"' not in first.content.decode()
    assert "no-cache" in first.headers["Cache-Control"] and "private" in first.headers["Cache-Control"]
    # The running time ticks in the browser, so the card is the same from poll to poll.
    assert 'data-elapsed-since="' in first.content.decode()
    # Session (unless Redis holds it), member, and one narrow read of the job: no card
    # is rendered.
    cached_session = settings.SESSION_ENGINE.endswith("cached_db")
    with django_assert_num_queries(2 if cached_session else 3):
        again = as_alice.get(url, headers={**htmx, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""

    # A change of what the card shows (here, a note on the job) makes a new card.
    Generation.objects.filter(pk=generation.pk).update(error_reason=Generation.Reason.RETRYING)
    changed = as_alice.get(url, headers={**htmx, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    # The new card's next poll asks with the new ETag (the one its answer carried).
    card_headers = json.loads(html.unescape(
        re.search(r'hx-headers="([^"]*If-None-Match[^"]*)"', changed.content.decode()).group(1)))
    assert card_headers["If-None-Match"] == changed.headers["ETag"]
    # Another member, or another language, gets a card of their own.
    as_bob = Client()
    as_bob.force_login(bob)
    assert as_bob.get(url, headers=htmx).headers["ETag"] != changed.headers["ETag"]
    russian = as_alice.get(url, headers={**htmx, "Accept-Language": "ru"})
    assert russian.headers["ETag"] != changed.headers["ETag"]
    # Nobody learns of someone else's private job from its etag.
    Generation.objects.filter(pk=generation.pk).update(is_private=True)
    assert as_bob.get(url, headers={**htmx, "If-None-Match": etag}).status_code == 404


def test_a_team_mates_card_in_the_history_is_current_from_its_first_poll(as_alice, bob):
    generation = make_generation(bob, status=S.RUNNING, prompt="A fox at dawn")
    url = reverse("card", args=[generation.code])
    htmx = {"HX-Request": "true"}
    as_alice.get(reverse("history"))  # a first visit sets the CSRF cookie
    page = as_alice.get(reverse("history")).content.decode()
    headers = json.loads(html.unescape(re.search(r'hx-headers="([^"]*If-None-Match[^"]*)"', page).group(1)))
    # The card in the team's page and the card's own read agree on the ETag.
    assert as_alice.get(url, headers={**htmx, **headers}).status_code == 304
    assert '<span class="owner">bob</span>' in as_alice.get(url, headers=htmx).content.decode()


def test_without_javascript_a_card_link_leads_to_the_dashboard(as_alice, alice):
    generation = make_generation(alice)
    response = as_alice.get(reverse("card", args=[generation.code]))
    assert response.status_code == 302
    assert response.url.endswith(f"#job-{generation.code}")


def test_a_failed_job_shows_its_reason_and_can_be_tried_again(as_alice, alice, started):
    failed = make_generation(alice, status=S.FAILED, seed=7, style="anime", aspect_ratio="9:16",
                             error_reason=Generation.Reason.NO_CREDITS)
    page = as_alice.get(reverse("card", args=[failed.code]), headers={"HX-Request": "true"})
    assert "no credits left" in page.content.decode()
    assert "Try again" in page.content.decode()
    response = as_alice.post(reverse("retry", args=[failed.code]))
    assert response.status_code == 302
    again = Generation.objects.exclude(pk=failed.pk).get()
    assert (again.status, again.seed, again.style, again.aspect_ratio) == (S.QUEUED, 7, "anime", "9:16")
    assert again.trace_id != failed.trace_id
    assert started == ["kick"]


def test_an_active_job_can_be_cancelled(as_alice, alice):
    generation = make_generation(alice)
    as_alice.post(reverse("cancel", args=[generation.code]))
    generation.refresh_from_db()
    assert generation.status == S.CANCELLED


def test_the_stored_video_plays_and_downloads(as_alice, alice, settings):
    from django.core.files.base import ContentFile

    generation = make_generation(alice, status=S.DONE, video_id=99, video_url="https://cdn/v.mp4")
    generation.video_file.save("v.mp4", ContentFile(b"\x00\x00\x00\x18ftypmp42"), save=True)
    page = as_alice.get("/").content.decode()
    assert reverse("video", args=[generation.code]) in page
    played = as_alice.get(reverse("video", args=[generation.code]))
    assert played["Content-Type"] == "video/mp4"
    downloaded = as_alice.get(reverse("video", args=[generation.code]) + "?download=1")
    assert 'attachment; filename="pixverse-99.mp4"' in downloaded["Content-Disposition"]


@pytest.fixture
def stored_video(alice):
    from django.core.files.base import ContentFile

    generation = make_generation(alice, status=S.DONE, video_id=99, video_url="https://cdn/v.mp4")
    generation.video_file.save("v.mp4", ContentFile(bytes(range(200))), save=True)
    return generation


@pytest.mark.parametrize(("asked", "first", "last"), [
    ("bytes=0-1", 0, 1),        # what Safari asks first
    ("bytes=100-", 100, 199),   # from a point to the end: seeking
    ("bytes=150-999", 150, 199),
    ("bytes=-10", 190, 199),    # the last ten bytes (where an MP4 may keep its index)
])
def test_a_video_is_sent_in_byte_ranges(as_alice, stored_video, asked, first, last):
    response = as_alice.get(reverse("video", args=[stored_video.code]), headers={"Range": asked})
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/200"
    assert response["Content-Length"] == str(last - first + 1)
    assert response["Content-Type"] == "video/mp4"
    assert b"".join(response.streaming_content) == bytes(range(first, last + 1))


def test_a_range_outside_the_video_is_416_and_other_ranges_get_the_whole(as_alice, stored_video):
    url = reverse("video", args=[stored_video.code])
    outside = as_alice.get(url, headers={"Range": "bytes=500-"})
    assert outside.status_code == 416 and outside["Content-Range"] == "bytes */200"
    several = as_alice.get(url, headers={"Range": "bytes=0-1,5-6"})
    assert several.status_code == 200 and several["Accept-Ranges"] == "bytes"
    assert b"".join(several.streaming_content) == bytes(range(200))


def test_a_private_video_is_not_sent_in_ranges_to_others_either(stored_video, bob):
    stored_video.set_private(True)
    client = Client()
    client.force_login(bob)
    response = client.get(reverse("video", args=[stored_video.code]), headers={"Range": "bytes=0-1"})
    assert response.status_code == 404


def test_behind_nginx_the_portal_checks_and_nginx_sends(as_alice, stored_video, settings):
    settings.PORTAL_MEDIA_ACCEL_REDIRECT = "/protected-media/"
    response = as_alice.get(reverse("video", args=[stored_video.code]) + "?download=1")
    assert response["X-Accel-Redirect"] == f"/protected-media/{stored_video.video_file.name}"
    assert response["Content-Type"] == "video/mp4"
    assert 'attachment; filename="pixverse-99.mp4"' in response["Content-Disposition"]
    assert response.content == b""


# --- The key page -------------------------------------------------------------------------------


def test_saving_a_key_checks_it_and_stores_it_encrypted(client, bob, api):
    client.force_login(bob)
    response = client.post(reverse("api-key"), {"action": "save", "api_key": "  sk-new-key-ZZZZ "},
                           follow=True)
    assert "150 credits" in response.content.decode()
    credential = ApiCredential.objects.get(user=bob)
    assert credential.last4 == "ZZZZ"
    assert "sk-new-key" not in credential.encrypted_key
    assert api.calls[0].request.headers["API-KEY"] == "sk-new-key-ZZZZ"
    page = client.get(reverse("api-key")).content.decode()
    assert "••••ZZZZ" in page and "sk-new-key" not in page


def test_an_invalid_key_is_refused_next_to_the_field_and_not_stored(client, bob):
    client.force_login(bob)
    with responses.RequestsMock() as api:
        api.get(f"{BASE}/account/balance", status=401, json={"ErrCode": 401, "ErrMsg": "Invalid API Key"})
        response = client.post(reverse("api-key"), {"action": "save", "api_key": "sk-wrong-9999"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "PixVerse does not accept this key" in body
    assert "sk-wrong-9999" not in body
    assert not ApiCredential.objects.filter(user=bob).exists()


def test_the_key_page_tests_and_removes_the_key(as_alice, alice, api):
    response = as_alice.post(reverse("api-key"), {"action": "test"}, follow=True)
    assert "PixVerse accepts your key: 150 credits" in response.content.decode()
    assert ApiCredential.objects.get().verified_at is not None
    # One click asks first; the confirmation removes it.
    asked = as_alice.post(reverse("api-key"), {"action": "remove"})
    assert asked.status_code == 200 and "Remove this key?" in asked.content.decode()
    assert ApiCredential.objects.exists()
    as_alice.post(reverse("api-key"), {"action": "remove", "confirm": "1"})
    assert not ApiCredential.objects.exists()


def test_no_page_ever_shows_the_key(as_alice, alice, api, started):
    make_generation(alice, status=S.FAILED, error_reason=Generation.Reason.INVALID_KEY)
    for url in ("/", reverse("api-key"), "/?mode=image"):
        assert KEY not in as_alice.get(url).content.decode()


# --- Accounts ----------------------------------------------------------------------------------


def test_sign_up_is_off_unless_enabled(client, db, settings):
    settings.PORTAL_SIGNUP_ENABLED = False
    assert client.get(reverse("signup")).status_code == 404
    assert "Create an account" not in client.get(reverse("login")).content.decode()


def test_sign_up_when_enabled(client, db, settings):
    settings.PORTAL_SIGNUP_ENABLED = True
    assert "Create an account" in client.get(reverse("login")).content.decode()
    response = client.post(reverse("signup"), {"username": "carol", "email": "carol@example.com",
                                               "password1": "a-long-pass-9", "password2": "a-long-pass-9"})
    assert response.status_code == 302
    assert User.objects.filter(username="carol").exists()
    bad = client.post(reverse("signup"), {"username": "dave", "password1": "x", "password2": "y"})
    assert bad.status_code == 400


def test_password_reset_sends_an_email(client, alice, monkeypatch):
    # The view hands the mail to a worker (tests/test_sign_in.py); here the task runs at once.
    monkeypatch.setattr("generations.queue.async_task", lambda func, *args, **kw: import_string(func)(*args))
    response = client.post(reverse("password_reset"), {"email": "alice@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert "/accounts/reset/" in mail.outbox[0].body


def test_password_change(client, alice):
    client.force_login(alice)
    response = client.post(reverse("password_change"), {
        "old_password": "pw-alice", "new_password1": "n3w-long-pass", "new_password2": "n3w-long-pass"})
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("n3w-long-pass")


def test_a_debug_error_page_does_not_show_the_key(client, bob, settings, monkeypatch):
    # Django's technical 500 page lists every frame's local variables.
    settings.DEBUG = True
    client.raise_request_exception = False
    client.force_login(bob)

    def broken(self, **kwargs):
        raise RuntimeError("unexpected")

    monkeypatch.setattr("generations.pixverse.PixVerseClient.balance", broken)
    # Built, so that the key is not in this source, which the page shows around the frame.
    secret = "-".join(["sk", "leak", "me", "7777"])
    response = client.post(reverse("api-key"), {"action": "save", "api_key": secret})
    assert response.status_code == 500
    assert "RuntimeError" in response.content.decode()
    assert secret not in response.content.decode()


# --- Starting from an earlier job ------------------------------------------------------------


def test_the_forms_start_from_an_earlier_jobs_settings(as_alice, alice, bob, api):
    mine = make_generation(alice, prompt="A fox at dusk", quality="720p", duration=8, seed=42,
                           style="clay", aspect_ratio="9:16", negative_prompt="blur")
    page = as_alice.get(f"/?from={mine.code}").content.decode()
    assert "A fox at dusk</textarea>" in page
    assert '<option value="720p" selected>' in page
    assert '<option value="9:16" selected>' in page
    assert 'value="42"' in page and "blur</textarea>" in page
    theirs = make_generation(bob, prompt="Not yours", is_private=True)
    assert "Not yours" not in as_alice.get(f"/?from={theirs.code}").content.decode()
    assert as_alice.get("/?from=not-a-uuid").status_code == 200


def test_after_a_plain_post_the_form_keeps_the_settings(as_alice, api, started):
    response = as_alice.post(reverse("create-text"), TEXT | {"seed": "7"}, follow=True)
    code = Generation.objects.get().code
    assert response.redirect_chain == [(f"{reverse('dashboard')}?mode=text&from={code}", 302)]
    page = response.content.decode()
    assert "A wolf in the snow</textarea>" in page
    assert 'value="7"' in page


def test_an_image_job_can_use_an_earlier_jobs_image(as_alice, alice, api, started):
    as_alice.post(reverse("create-image"), {**TEXT, "image": png()})
    first = Generation.objects.get()
    page = as_alice.get(f"/?from={first.code}").content.decode()
    assert reverse("source-image", args=[first.code]) in page
    response = as_alice.post(reverse("create-image"), {**TEXT, "source": str(first.code)})
    assert response.status_code == 302
    second = Generation.objects.exclude(pk=first.pk).get()
    assert second.source_image.name == first.source_image.name


def test_an_image_job_needs_an_image(as_alice, alice, bob, api, started):
    response = as_alice.post(reverse("create-image"), TEXT)
    assert response.status_code == 400
    assert "Choose an image to animate." in response.content.decode()
    theirs = make_generation(bob, kind="image", is_private=True)
    theirs.source_image.save("x.png", png(), save=True)
    response = as_alice.post(reverse("create-image"), {**TEXT, "source": str(theirs.code)})
    assert response.status_code == 400
    assert Generation.objects.filter(owner=alice).count() == 0


def test_staff_see_jobs_in_the_admin_without_keys(client, alice):
    make_generation(alice, prompt="An admin can find me", video_id=123456789012)
    User.objects.create_superuser("staff", password="pw")
    client.login(username="staff", password="pw")
    page = client.get("/admin/generations/generation/?q=123456789012").content.decode()
    assert "An admin can find me" in page
    assert KEY not in page
    assert client.get("/admin/generations/generation/?status__exact=queued").status_code == 200


@pytest.mark.parametrize("name", ["card", "detail", "video", "retry", "cancel"])
def test_a_cards_job_paths_are_what_reverse_gives(alice, name):
    from django.urls import clear_script_prefix, set_script_prefix

    from generations.cards import job_path

    generation = make_generation(alice, status=S.RUNNING)
    assert job_path(generation, name) == reverse(name, args=[generation.code])
    # Served under a path prefix (SCRIPT_NAME), the links carry it too.
    set_script_prefix("/portal/")
    try:
        assert job_path(generation, name) == reverse(name, args=[generation.code])
        assert job_path(generation, name).startswith("/portal/generations/")
    finally:
        clear_script_prefix()


def test_a_cards_remix_link_is_the_dashboard_filled_from_the_job(alice):
    from django.urls import clear_script_prefix, set_script_prefix

    from generations.cards import remix_path

    generation = make_generation(alice, kind="image")
    expected = f"{reverse('dashboard')}?mode=image&from={generation.code}"
    assert remix_path(generation) == expected
    set_script_prefix("/portal/")
    try:
        assert remix_path(generation) == f"/portal/?mode=image&from={generation.code}"
    finally:
        clear_script_prefix()


def test_a_cards_settings_line_in_english_and_russian(as_alice, alice, bob):
    bob.username = "<b>ob"
    bob.save()
    theirs = make_generation(bob, status=S.RUNNING, quality="540p", duration=8, aspect_ratio="9:16",
                             motion_mode="fast", style="anime", seed=7, credits=1)
    mine = make_generation(alice, status=S.RUNNING, credits=90)
    htmx = {"HX-Request": "true"}

    def settings_line(generation, language="en"):
        page = as_alice.get(reverse("card", args=[generation.code]),
                            headers={**htmx, "Accept-Language": language}).content.decode()
        return re.search(r'<p class="params-line muted small">\s*(.*?)\s*</p>', page, re.S).group(1)

    # A team mate's name, escaped, then every setting the job was made with.
    assert settings_line(theirs) == ('<span class="owner">&lt;b&gt;ob</span> · v5 · 540p · 8 s · 9:16'
                                     ' · fast motion · Anime · seed 7 · 1 credit')
    # One's own job: no name; settings left at their defaults are not listed.
    assert settings_line(mine) == "v5 · 360p · 5 s · 90 credits"
    assert settings_line(theirs, "ru") == ('<span class="owner">&lt;b&gt;ob</span> · v5 · 540p · 8 с'  # noqa: RUF001
                                           ' · 9:16 · быстрое движение · Аниме · сид 7 · 1 кредит')
    assert settings_line(mine, "ru").endswith("5 с · 90 кредитов")  # noqa: RUF001


# --- An expired session under htmx; pages no shared cache keeps ---------------------------------------


def signed_out_htmx(current_url="http://testserver/history/?member=bob"):
    return {"HX-Request": "true", "HX-Current-URL": current_url}


def test_an_htmx_request_without_a_session_sends_the_browser_to_sign_in_and_back(client, alice):
    from urllib.parse import parse_qs, urlsplit

    job = make_generation(alice, status=S.RUNNING)
    asked = [("get", reverse("card", args=[job.code]), {}), ("get", reverse("estimate"), {}),
             ("post", reverse("create-text"), TEXT), ("get", reverse("balance"), {}),
             ("get", reverse("history") + "?page=2", {})]
    for method, url, data in asked:
        response = getattr(client, method)(url, data, headers=signed_out_htmx())
        # Not a 302 that htmx would follow and swap into the card or the form.
        assert response.status_code == 200, url
        assert response.content == b"" and "Location" not in response.headers
        target = urlsplit(response.headers["HX-Redirect"])
        assert target.path == reverse("login"), url
        assert parse_qs(target.query)["next"] == ["/history/?member=bob"], url
        assert parse_qs(target.query)["expired"] == ["1"], url
    # The sign-in page says why, the dashboard included (whose "next" is only "/").
    page = client.get(reverse("login"), {"next": "/", "expired": "1"}).content.decode()
    assert "your session may have ended" in page
    assert "your session may have ended" not in client.get(reverse("login"), {"next": "/"}).content.decode()
    # Another site's page is not where sign-in leads: the request's own path is.
    elsewhere = client.get(reverse("balance"), headers=signed_out_htmx("https://evil.example/x"))
    assert parse_qs(urlsplit(elsewhere.headers["HX-Redirect"]).query)["next"] == [reverse("balance")]


def test_a_poll_or_the_estimate_without_a_session_leaves_the_page_where_it_is(client, alice):
    """portal.js marks what the page asks by itself (X-Portal-Background): a running card's
    poll must not take the page away while the member types; the page says it instead."""
    job = make_generation(alice, status=S.RUNNING)
    for url in (reverse("card", args=[job.code]), reverse("estimate")):
        response = client.get(url, headers={**signed_out_htmx(), "X-Portal-Background": "1"})
        assert response.status_code == 200 and response.content == b"", url
        assert "HX-Redirect" not in response.headers and "Location" not in response.headers
        assert response["HX-Trigger"] == "portal:session-ended" and response["HX-Reswap"] == "none"
    # A form sent without a session still goes to sign in (its draft is kept in the tab).
    sent = client.post(reverse("create-text"), TEXT,
                       headers={**signed_out_htmx(), "X-Portal-Background": "1"})
    assert "HX-Redirect" in sent.headers


def test_a_plain_request_without_a_session_keeps_its_redirect(client, db):
    response = client.get(reverse("history"))
    assert response.status_code == 302 and "HX-Redirect" not in response.headers
    assert response.url == f"{reverse('login')}?next={reverse('history')}"


def test_signed_in_pages_and_files_are_private(as_alice, alice, stored_video):
    from django.core.files.base import ContentFile

    stored_video.source_image.save("s.png", ContentFile(png().getvalue()), save=True)
    htmx = {"HX-Request": "true"}
    for url, headers in [("/", {}), (reverse("history"), {}),
                         (reverse("history"), {**htmx, "HX-Target": "results"}),
                         (reverse("detail", args=[stored_video.code]), {}),
                         (reverse("card", args=[stored_video.code]), htmx),
                         (reverse("video", args=[stored_video.code]), {}),
                         (reverse("video", args=[stored_video.code]), {"Range": "bytes=0-1"}),
                         (reverse("source-image", args=[stored_video.code]), {}),
                         (reverse("activity"), {}), (reverse("api-key"), {})]:
        response = as_alice.get(url, headers=headers)
        assert response.status_code in (200, 206), url
        assert "private" in response.headers.get("Cache-Control", ""), url
        assert "Cookie" in response.headers.get("Vary", ""), url


def test_private_caching_costs_no_query_where_the_session_is_not_read(client, alice,
                                                                      django_assert_max_num_queries,
                                                                      django_assert_num_queries):
    # /healthz's own: the database, the broker (none with Redis), the heartbeat.
    with django_assert_max_num_queries(3) as anonymous:
        client.get("/healthz")
    client.force_login(alice)
    with django_assert_num_queries(len(anonymous.captured_queries)):
        client.get("/healthz")


@pytest.mark.parametrize("pasted", ["sk-chat-\u200bpaste-KEY1", "sk-кириллица-KEY2", "sk-tab\there-KEY3"])
def test_a_key_pasted_with_characters_no_key_has_is_refused_next_to_the_field(client, bob, settings,
                                                                            pasted):
    settings.DEBUG = True  # nor may a debug page show it
    client.force_login(bob)
    with responses.RequestsMock() as nothing_sent:
        response = client.post(reverse("api-key"), {"action": "save", "api_key": pasted})
        assert not nothing_sent.calls
    assert response.status_code == 400
    body = response.content.decode()
    assert "characters a PixVerse key cannot have" in body
    assert pasted not in body and pasted.strip()[-4:] not in body
    assert not ApiCredential.objects.filter(user=bob).exists()


def test_time_elements_carry_html_datetimes_without_microseconds(as_alice, alice):
    import re

    done = make_generation(alice, status=S.DONE, video_url="https://cdn/v.mp4", video_file="videos/v.mp4")
    for url in ("/", reverse("detail", args=[done.code])):
        values = re.findall(r'<time datetime="([^"]+)"', as_alice.get(url).content.decode())
        assert values
        for value in values:
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", value), value

