"""A new member's way in and what pages say (issue 11): where a key comes from, a sandbox
key in the browser, an e-mail at sign-up and on the account page, the time zone, what a
job cost, the estimate's warnings, and pages that are never reused stale."""

import re
from datetime import timedelta

import pytest
import responses
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from generations.models import ApiCredential, Generation
from generations.sandbox.models import SandboxAccount, hash_key
from tests.test_views import BASE, KEY, TEXT, S, known_balance, make_generation

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(db):
    user = User.objects.create_user("alice", "alice@example.com", "pw-alice")
    credential = ApiCredential(user=user)
    credential.set_key(KEY)
    credential.save()
    return user


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def as_bob(client):
    client.force_login(User.objects.create_user("bob", "bob@example.com", "pw-bob"))
    return client


@pytest.fixture
def on_commit_now(monkeypatch):
    monkeypatch.setattr("generations.queue.kick_scheduler", lambda **kw: None)
    monkeypatch.setattr("django.db.transaction.on_commit", lambda func, using=None, robust=False: func())


# --- Where a key comes from -----------------------------------------------------------------------


def test_the_key_page_says_where_a_pixverse_key_comes_from(as_bob, settings):
    page = as_bob.get(reverse("api-key")).content.decode()
    assert f'href="{settings.PIXVERSE_KEYS_URL}"' in page
    assert "API Keys" in page


def test_with_the_sandbox_on_a_member_gets_a_sandbox_key_in_the_browser(as_bob, settings, on_commit_now):
    settings.PIXVERSE_SANDBOX_ENABLED = True
    assert "Get a sandbox key" in as_bob.get(reverse("api-key")).content.decode()
    response = as_bob.post(reverse("api-key"), {"action": "sandbox"}, follow=True)
    page = response.content.decode()
    assert "You now have a sandbox key with" in page
    credential = ApiCredential.objects.get(user__username="bob")
    # The stored key is a sandbox account's key, and it never reaches the page.
    raw = credential.client()._api_key
    assert SandboxAccount.objects.filter(key_hash=hash_key(raw), label="bob").exists()
    assert raw not in page
    assert credential.balance_due_at is not None  # its credits are read in the background


def test_without_the_sandbox_there_is_no_sandbox_key(as_bob, settings):
    settings.PIXVERSE_SANDBOX_ENABLED = False
    assert "Get a sandbox key" not in as_bob.get(reverse("api-key")).content.decode()
    assert as_bob.post(reverse("api-key"), {"action": "sandbox"}).status_code == 400
    assert not SandboxAccount.objects.exists() and not ApiCredential.objects.exists()


def test_the_admins_add_issues_a_key_shows_it_once_and_can_be_used_twice(client):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    url = "/admin/sandbox/sandboxaccount/add/"
    form = {"label": "studio", "credit_monthly": "500", "credit_package": "0", "concurrency_limit": "5",
            "dialect": "real", "spec_status_route": "on", "fault_error_rate": "0", "fault_http_500_rate": "0",
            "fault_malformed_rate": "0", "fault_slow_seconds": "0", "fault_generation_failure_rate": "0",
            "fault_http_429_rate": "0", "fault_timeout_after_billing_rate": "0",
            "fault_drop_after_billing_rate": "0", "fault_hang_seconds": "40", "fault_hang_calls": "",
            "fault_file_error_rate": "0", "fault_file_slow_seconds": "0"}
    keys = []
    for label in ("studio", "studio 2"):
        response = client.post(url, {**form, "label": label})
        assert response.status_code == 200, response.content[:2000]
        assert "no-store" in response["Cache-Control"]
        shown = re.search(r'id="issued-key" type="text" value="([^"]+)"', response.content.decode())
        keys.append(shown.group(1))
    first, second = SandboxAccount.objects.order_by("pk")
    assert first.key_hash == hash_key(keys[0]) and second.key_hash == hash_key(keys[1])
    assert first.key_last4 == keys[0][-4:]
    # Shown once: the account's own page has only the last four.
    page = client.get(f"/admin/sandbox/sandboxaccount/{first.pk}/change/").content.decode()
    assert keys[0] not in page and first.key_last4 in page


def test_a_key_with_no_credits_is_saved_with_a_warning_not_good_news(as_bob):
    with responses.RequestsMock() as api:
        api.get(f"{BASE}/account/balance", json={"ErrCode": 0, "ErrMsg": "success", "Resp": {
            "account_id": 1, "credit_monthly": 0, "credit_package": 0}})
        page = as_bob.post(reverse("api-key"), {"action": "save", "api_key": "sk-empty-0000"},
                           follow=True).content.decode()
    assert 'class="message warning"' in page and "it has 0 credits" in page
    assert ApiCredential.objects.filter(user__username="bob").exists()


def test_remove_key_asks_before_it_removes(as_alice):
    page = as_alice.get(reverse("api-key")).content.decode()
    assert 'name="action" value="remove"' not in page  # no one-click removal
    asking = as_alice.get(reverse("api-key") + "?remove=1").content.decode()
    assert "Remove this key?" in asking and 'name="confirm" value="1"' in asking
    as_alice.post(reverse("api-key"), {"action": "remove"})
    assert ApiCredential.objects.exists()
    as_alice.post(reverse("api-key"), {"action": "remove", "confirm": "1"})
    assert not ApiCredential.objects.exists()


# --- E-mail at sign-up and on the account page -----------------------------------------------------------


def test_sign_up_asks_for_an_address_that_nobody_else_uses(client, settings):
    settings.PORTAL_SIGNUP_ENABLED = True
    User.objects.create_user("dora", "Dora@Example.com", "x")
    form = {"username": "carol", "password1": "a-long-pass-9", "password2": "a-long-pass-9"}
    missing = client.post(reverse("signup"), form)
    assert missing.status_code == 400 and missing.context["form"].has_error("email")
    taken = client.post(reverse("signup"), {**form, "email": "dora@example.COM"})
    assert taken.status_code == 400 and "Another member uses this address" in taken.content.decode()
    assert client.post(reverse("signup"), {**form, "email": "carol@example.com"}).status_code == 302
    assert User.objects.get(username="carol").email == "carol@example.com"


def test_a_member_sets_their_address_and_time_zone_on_the_account_page(as_alice):
    page = as_alice.get(reverse("account")).content.decode()
    assert 'value="alice@example.com"' in page
    response = as_alice.post(reverse("account"), {"email": "alice@new.example", "time_zone": "Asia/Tokyo"})
    assert response.status_code == 302
    assert User.objects.get(username="alice").email == "alice@new.example"
    assert response.cookies["portal_tz"].value == "Asia/Tokyo"
    assert response.cookies["portal_tz_chosen"].value == "1"
    assert "Asia/Tokyo" in as_alice.get(reverse("account")).content.decode()
    refused = as_alice.post(reverse("account"), {"email": "not an address", "time_zone": "Mars/Olympus"})
    assert refused.status_code == 400
    assert refused.context["form"].has_error("email") and refused.context["form"].has_error("time_zone")
    # Back to the browser's zone: the choice is forgotten.
    back = as_alice.post(reverse("account"), {"email": "alice@new.example", "time_zone": ""})
    assert back.cookies["portal_tz_chosen"].value == ""


def test_times_are_shown_in_the_readers_zone_with_its_name(as_alice, alice):
    job = make_generation(alice, status=S.DONE, finished_at=timezone.now())
    job.created = timezone.datetime(2026, 12, 2, 12, 0, tzinfo=timezone.UTC)
    job.save()
    as_alice.cookies["portal_tz"] = "Europe/Moscow"
    page = as_alice.get(reverse("detail", args=[job.code])).content.decode()
    assert "3 p.m. MSK" in page  # 12:00 UTC
    as_alice.cookies["portal_tz"] = "Not/A_Zone"
    assert "noon UTC" in as_alice.get(reverse("detail", args=[job.code])).content.decode()


def test_a_fresh_job_was_made_just_now(as_alice, alice):
    make_generation(alice, status=S.DONE, finished_at=timezone.now())
    page = as_alice.get("/").content.decode()
    assert "just now" in page and "0 minutes" not in page
    Generation.objects.update(created=timezone.now() - timedelta(minutes=5))
    assert "5\xa0minutes ago" in as_alice.get("/").content.decode()


# --- What a job cost, and the estimate -------------------------------------------------------------


def test_a_moderated_job_says_its_credits_are_refunded_and_an_unsent_one_spent_none(as_alice, alice):
    make_generation(alice, prompt="blocked", status=S.MODERATED, video_id=7, credits=45)
    make_generation(alice, prompt="never sent", status=S.FAILED, credits=60)
    make_generation(alice, prompt="made", status=S.DONE, video_id=8, credits=90)
    page = as_alice.get("/").content.decode()
    assert "45 credits, refunded" in page
    assert "no credits spent" in page and "60 credits" not in page
    assert "90 credits" in page


def test_the_estimate_warns_before_a_video_costs_more_than_the_known_balance(as_alice, alice):
    known_balance(alice, monthly=30, package=0)
    estimate = as_alice.get(reverse("estimate"), {**TEXT, "duration": "5"}).content.decode()
    assert "45</strong> credits" in estimate
    assert "more than the 30 credits left" in estimate
    known_balance(alice, monthly=100, package=0)
    assert "credits left" not in as_alice.get(reverse("estimate"), TEXT).content.decode()


def test_an_unavailable_combination_says_why(as_alice):
    asked = {**TEXT, "quality": "1080p", "duration": "8"}
    estimate = as_alice.get(reverse("estimate"), asked).content.decode()
    assert "This combination is not available." in estimate
    assert "The v5 model makes 1080p videos of 5 seconds only." in estimate


# --- Pages are not reused stale; gone jobs ------------------------------------------------------------


def test_pages_are_never_stored_but_card_polls_revalidate(as_alice, alice):
    assert "no-store" in as_alice.get("/")["Cache-Control"]
    assert "no-store" in as_alice.get(reverse("history"))["Cache-Control"]
    job = make_generation(alice)
    card = as_alice.get(reverse("card", args=[job.code]), headers={"HX-Request": "true"})
    assert "no-store" not in card["Cache-Control"] and "no-cache" in card["Cache-Control"]


def test_the_activity_check_lists_jobs_started_since_for_other_tabs(as_alice, alice):
    since = timezone.now() - timedelta(minutes=1)
    make_generation(alice, created=since - timedelta(minutes=5))
    new = make_generation(alice)
    data = as_alice.get(reverse("activity"), {"since": since.isoformat()}).json()
    assert data["started"] == [{"id": f"job-{new.code}", "card": reverse("card", args=[new.code])}]


def test_a_poll_of_a_deleted_job_says_so_and_stops(as_alice, alice):
    job = make_generation(alice)
    code = job.code
    job.delete()
    for name in ("card", "detail"):
        response = as_alice.get(reverse(name, args=[code]), headers={"HX-Request": "true"})
        assert response.status_code == 404 and response["X-Job-Gone"] == "1"
        body = response.content.decode()
        assert "deleted or made private" in body and "hx-trigger" not in body
    for name in ("card", "detail"):  # a page, not a poll: the plain 404
        response = as_alice.get(reverse(name, args=[code]))
        assert response.status_code == 404 and "X-Job-Gone" not in response.headers


def test_deleting_an_active_job_warns_that_pixverse_may_still_bill_it(as_alice, alice):
    running = make_generation(alice, status=S.RUNNING, video_id=5)
    assert "may finish it and bill its credits" in as_alice.get(
        reverse("delete", args=[running.code])).content.decode()
    done = make_generation(alice, status=S.DONE, video_id=6)
    assert "may finish it" not in as_alice.get(reverse("delete", args=[done.code])).content.decode()


def test_the_detail_page_is_headed_by_its_prompt(as_alice, alice):
    job = make_generation(alice, prompt="A red fox jumps over a frozen river at dawn " * 5)
    page = as_alice.get(reverse("detail", args=[job.code])).content.decode()
    heading = re.search(r'<h1 class="detail-title">([^<]*)</h1>', page).group(1)
    assert heading.startswith("A red fox jumps") and heading.endswith("…") and len(heading) <= 90
    assert re.search(r"<title>A red fox jumps", page)


def test_a_page_past_the_last_one_says_so_with_a_way_back(as_alice, alice):
    make_generation(alice, status=S.DONE)
    page = as_alice.get(reverse("history"), {"q": "wolf", "page": "3"}).content.decode()
    assert "This page is past the last one." in page and 'href="?q=wolf"' in page
    assert "No videos match" not in page


def test_a_cancelled_job_does_not_say_how_long_it_took(as_alice, alice):
    make_generation(alice, status=S.CANCELLED, finished_at=timezone.now())
    assert "took" not in as_alice.get("/").content.decode()
