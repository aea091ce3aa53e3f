"""Sign-in lockouts (django-axes), look-alike user names at sign-up, and password reset."""

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.module_loading import import_string

LIMIT = 5  # PORTAL_LOGIN_ATTEMPTS' default
LOCKED = "Too many failed sign-ins from here. Try again in 15 minutes, or reset your password."


@pytest.fixture
def member(db):
    return User.objects.create_user("member1", "member1@example.com", "right-password")


@pytest.fixture
def queued(monkeypatch):
    """The tasks the views hand to django-q2, recorded instead of sent to a worker."""
    tasks = []
    monkeypatch.setattr("generations.queue.async_task", lambda func, *args, **kw: tasks.append((func, args)))
    return tasks


def run(tasks):
    """Run recorded tasks as a worker would."""
    for func, args in tasks:
        import_string(func)(*args)


def sign_in(client, username, password="wrong", path="/accounts/login/", **extra):  # noqa: S107
    return client.post(path, {"username": username, "password": password}, **extra)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


# --- 1. The admin's sign-in ---------------------------------------------------------------------


def test_the_admin_sign_in_locks_a_staff_member_out(client, db):
    User.objects.create_superuser("boss", "boss@example.com", "right-password")
    for _ in range(LIMIT - 1):
        assert sign_in(client, "boss", path="/admin/login/").status_code == 200  # the admin's own answer
    assert sign_in(client, "boss", path="/admin/login/").status_code == 429
    locked = sign_in(client, "boss", "right-password", path="/admin/login/")
    assert locked.status_code == 429
    assert LOCKED in locked.content.decode()
    assert not signed_in(client)


def test_the_portal_sign_in_answers_400_then_429_on_its_own_page(client, member):
    for _ in range(LIMIT - 1):
        assert sign_in(client, "member1").status_code == 400
    assert sign_in(client, "member1").status_code == 429
    locked = sign_in(client, "member1", "right-password")
    page = locked.content.decode()
    assert locked.status_code == 429 and LOCKED in page
    assert 'name="username"' in page and 'value="member1"' in page
    assert reverse("password_reset") in page
    assert not signed_in(client)


# --- 2. Variants of the user name ------------------------------------------------------------------


def test_variants_of_the_user_name_share_its_counter(client, member):
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in "member1")
    for variant in (" member1", "member1 ", "member1\t", fullwidth):
        assert sign_in(client, variant).status_code == 400
    assert sign_in(client, "member1").status_code == 429
    assert sign_in(client, " member1", "right-password").status_code == 429
    attempt = AccessAttempt.objects.get()
    assert attempt.username == "member1" and attempt.failures_since_start == LIMIT + 1


def test_the_counter_keeps_case_as_sign_in_does(client, member):
    # Django's sign-in tells Member1 from member1; so does the counter.
    for _ in range(LIMIT):
        sign_in(client, "Member1")
    assert sign_in(client, "member1", "right-password").status_code == 302


# --- 3. Per user name and address together -------------------------------------------------------------


def test_the_same_user_name_signs_in_from_another_address(client, member):
    for _ in range(LIMIT):
        sign_in(client, "member1", REMOTE_ADDR="203.0.113.5")
    assert sign_in(client, "member1", "right-password", REMOTE_ADDR="203.0.113.5").status_code == 429
    assert sign_in(client, "member1", "right-password", REMOTE_ADDR="198.51.100.7").status_code == 302


def test_behind_a_proxy_the_client_is_read_from_the_forwarded_header(client, member, settings):
    settings.PORTAL_TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "172.18.0.2"}  # every request arrives from the proxy
    for _ in range(LIMIT):
        sign_in(client, "member1", HTTP_X_FORWARDED_FOR="203.0.113.5", **proxy)
    # What the stranger writes into the header themselves is left of what the proxy appends.
    spoofed = "198.51.100.7, 203.0.113.5"
    assert sign_in(client, "member1", "right-password", HTTP_X_FORWARDED_FOR=spoofed,
                   **proxy).status_code == 429
    member_client = Client()
    assert sign_in(member_client, "member1", "right-password", HTTP_X_FORWARDED_FOR="198.51.100.7",
                   **proxy).status_code == 302


def test_without_a_trusted_proxy_the_forwarded_header_is_ignored(client, member):
    for n in range(LIMIT):
        sign_in(client, "member1", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
    again = sign_in(client, "member1", "right-password", HTTP_X_FORWARDED_FOR="198.51.100.99")
    assert again.status_code == 429


# --- 4. Counted in the database ------------------------------------------------------------------------


def test_failures_are_counted_in_the_database_for_every_process(member):
    first, second = Client(), Client()  # two processes, with nothing in memory in common but the database
    for _ in range(LIMIT - 1):
        sign_in(first, "member1")
    cache.clear()
    assert sign_in(second, "member1").status_code == 429
    assert AccessAttempt.objects.get(username="member1", ip_address="127.0.0.1").failures_since_start == LIMIT


def test_a_successful_sign_in_resets_the_count(client, member):
    for _ in range(LIMIT - 1):
        sign_in(client, "member1")
    assert sign_in(client, "member1", "right-password").status_code == 302
    assert not AccessAttempt.objects.exists()


# --- A password reset lifts the lockout -------------------------------------------------------------------


def test_a_password_reset_lifts_the_lockout(client, member):
    for _ in range(LIMIT):
        sign_in(client, "member1")
    uid = urlsafe_base64_encode(force_bytes(member.pk))
    token = default_token_generator.make_token(member)
    form_url = client.get(reverse("password_reset_confirm", args=[uid, token])).url
    done = client.post(form_url, {"new_password1": "a-new-long-pass-9", "new_password2": "a-new-long-pass-9"})
    assert done.status_code == 302 and done.url == reverse("password_reset_complete")
    assert not AccessAttempt.objects.exists()
    assert sign_in(client, "member1", "a-new-long-pass-9").status_code == 302


# --- 17. Look-alike user names ----------------------------------------------------------------------------


def sign_up(client, username):
    return client.post(reverse("signup"), {"username": username, "email": f"{len(username)}@example.com",
                                           "password1": "a-long-pass-9", "password2": "a-long-pass-9"})


@pytest.fixture
def signup_on(settings):
    settings.PORTAL_SIGNUP_ENABLED = True


@pytest.mark.parametrize("lookalike", [
    "dem\N{CYRILLIC SMALL LETTER O}",
    "DEMO",
    "\N{FULLWIDTH LATIN SMALL LETTER D}emo",
    "dem0",
    "dern\N{CYRILLIC SMALL LETTER O}",
])
def test_sign_up_refuses_a_name_that_looks_like_an_existing_one(client, db, signup_on, lookalike):
    User.objects.create_user("demo", password="x")
    response = sign_up(client, lookalike)
    assert response.status_code == 400
    assert response.context["form"].has_error("username")
    assert not User.objects.filter(username=lookalike).exists()


def test_a_whole_name_in_another_alphabet_that_looks_the_same_is_refused(client, db, signup_on):
    User.objects.create_user("coco", password="x")
    cyrillic_coco = "\N{CYRILLIC SMALL LETTER ES}\N{CYRILLIC SMALL LETTER O}" * 2
    response = sign_up(client, cyrillic_coco)
    assert response.status_code == 400
    assert "looks like an existing member" in response.content.decode()


def test_sign_up_refuses_a_name_mixing_alphabets(client, db, signup_on):
    response = sign_up(client, "ivan\N{CYRILLIC SMALL LETTER I}")
    assert response.status_code == 400
    assert "one alphabet" in response.content.decode()


@pytest.mark.parametrize("name", ["иван", "josé", "alice2", "山田taro"])
def test_sign_up_accepts_names_in_one_alphabet(client, db, signup_on, name):
    User.objects.create_user("demo", password="x")
    assert sign_up(client, name).status_code == 302


# --- 18. Password reset -------------------------------------------------------------------------------------


def ask_reset(client, email, **extra):
    return client.post(reverse("password_reset"), {"email": email}, **extra)


def test_the_reset_view_queues_the_mail_and_the_task_sends_it(client, member, queued):
    response = ask_reset(client, "member1@example.com")
    assert response.status_code == 302 and response.url == reverse("password_reset_done")
    assert mail.outbox == []
    # The address, where the link points and the language: never a token.
    assert queued == [("generations.accounts.send_password_reset_mail",
                       ("member1@example.com", "testserver", False, "en"))]
    run(queued)
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["member1@example.com"]
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/reset/" in line)
    assert link.startswith("http://testserver/accounts/reset/")
    assert client.get(link.removeprefix("http://testserver")).status_code == 302  # to the new-password form


def test_known_and_unknown_addresses_get_the_same_answer_and_the_same_work(client, member, queued):
    known, unknown = ask_reset(client, "member1@example.com"), ask_reset(client, "nobody@example.com")
    assert (known.status_code, known.url) == (unknown.status_code, unknown.url)
    assert [func for func, _ in queued] == ["generations.accounts.send_password_reset_mail"] * 2
    run(queued)
    assert [m.to for m in mail.outbox] == [["member1@example.com"]]


def test_resets_over_the_limit_per_address_send_nothing_and_answer_the_same(client, member, queued, settings):
    settings.PORTAL_PASSWORD_RESETS_PER_ADDRESS = 3
    answers = [ask_reset(client, "Member1@Example.com", REMOTE_ADDR=f"198.51.100.{n}") for n in range(5)]
    assert {(a.status_code, a.url) for a in answers} == {(302, reverse("password_reset_done"))}
    run(queued)
    assert len(mail.outbox) == 3
    page = client.get(reverse("password_reset_done")).content.decode()
    assert "If an account has this address" in page


def test_resets_over_the_limit_per_client_send_nothing(client, db, queued, settings):
    settings.PORTAL_PASSWORD_RESETS_PER_CLIENT = 10
    for n in range(12):
        assert ask_reset(client, f"someone{n}@example.com").status_code == 302
    assert len(queued) == 10
    assert ask_reset(client, "someone@example.com", REMOTE_ADDR="198.51.100.1").status_code == 302
    assert len(queued) == 11
