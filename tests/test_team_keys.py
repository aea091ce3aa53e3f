"""Team keys (issue 12): staff add a key, members they allow choose it in the form, a monthly
limit per member refuses what would go over it before anything is spent — also for two
jobs sent at the same moment — and a key PixVerse refuses is marked and its jobs say why."""

import contextlib
import os
import re
import subprocess
import sys

import pytest
import responses
from django.contrib.auth.models import User
from django.db import connection
from django.urls import reverse

from generations import jobs, keys
from generations.models import ApiCredential, Generation, KeyGrant, TeamKey
from generations.pixverse import Balance
from tests.processes import ROOT, django_shell, postgres_database
from tests.test_views import BASE, KEY, TEXT, make_generation

S = Generation.Status
TEAM_KEY = "sk-team-studio-key-TEAM"


def team_key(name="Studio key", raw=TEAM_KEY, **fields) -> ApiCredential:
    key = ApiCredential(name=name, **fields)
    key.set_key(raw)
    key.save()
    ApiCredential.record_balance(key.key_hash, Balance(account_id=1, credit_monthly=5000, credit_package=0))
    return key


@pytest.fixture
def studio(db):
    return team_key()


@pytest.fixture
def alice(db):
    user = User.objects.create_user("alice", "alice@example.com", "pw-alice")
    own = ApiCredential(user=user)
    own.set_key(KEY)
    own.save()
    ApiCredential.record_balance(own.key_hash, Balance(account_id=2, credit_monthly=100, credit_package=0))
    return user


@pytest.fixture
def as_alice(client, alice, monkeypatch):
    monkeypatch.setattr("generations.queue.kick_scheduler", lambda **kw: None)
    client.force_login(alice)
    return client


def test_a_member_given_a_team_key_chooses_it_and_the_job_records_it(as_alice, alice, studio):
    KeyGrant.objects.create(member=alice, key=studio, monthly_limit=1000)
    page = as_alice.get("/").content.decode()
    assert '<select name="key"' in page and "Studio key ••••TEAM" in page and "Your own key ••••AAAA" in page
    assert TEAM_KEY not in page
    response = as_alice.post(reverse("create-text"), {**TEXT, "key": f"team:{studio.pk}"})
    assert response.status_code == 302
    job = Generation.objects.get()
    assert job.team_key == studio and job.key_hash == studio.key_hash
    assert job.paid_with == "Studio key ••••TEAM"
    # Remembered: the next form starts on the key used last.
    assert re.search(rf'<option value="team:{studio.pk}" selected>', as_alice.get("/").content.decode())
    # The estimate says what is left of the limit.
    estimate = as_alice.get(reverse("estimate"), {**TEXT, "key": f"team:{studio.pk}"}).content.decode()
    assert "955 of 1000 credits left this month on Studio key." in estimate


def test_a_member_without_a_key_of_their_own_sees_what_the_team_keys_leave(client, studio, monkeypatch):
    monkeypatch.setattr("generations.queue.kick_scheduler", lambda **kw: None)
    bob = User.objects.create_user("bob", "bob@example.com", "pw-bob")
    client.force_login(bob)
    assert "Add your PixVerse API key to see your credits." in client.get("/").content.decode()
    KeyGrant.objects.create(member=bob, key=studio, monthly_limit=1000)
    page = client.get("/").content.decode()
    assert "Add your PixVerse API key" not in page
    assert "Studio key ••••TEAM: <strong>1000</strong> of 1000 credits left this month" in page
    assert TEAM_KEY not in page


def test_without_a_grant_a_team_key_cannot_be_chosen(as_alice, studio):
    response = as_alice.post(reverse("create-text"), {**TEXT, "key": f"team:{studio.pk}"})
    assert response.status_code == 400
    assert not Generation.objects.exists()


def test_a_job_over_the_monthly_limit_is_refused_next_to_the_field(as_alice, alice, studio):
    KeyGrant.objects.create(member=alice, key=studio, monthly_limit=100)
    make_generation(alice, team_key=studio, credits=45, status=S.DONE, video_id=1)
    # Refunded and never-taken jobs give their credits back.
    make_generation(alice, team_key=studio, credits=90, status=S.MODERATED, video_id=2)
    make_generation(alice, team_key=studio, credits=90, status=S.FAILED)
    assert KeyGrant.objects.get().left_this_month() == 55
    refused = as_alice.post(reverse("create-text"), {**TEXT, "quality": "720p", "key": f"team:{studio.pk}"})
    assert refused.status_code == 400
    errors = refused.context["form"].errors["key"]
    assert "This video costs 60 credits; 55 of your 100 credits are left this month on Studio key." in errors
    assert Generation.objects.count() == 3
    assert as_alice.post(reverse("create-text"), {**TEXT, "key": f"team:{studio.pk}"}).status_code == 302


def test_the_default_limit_applies_and_new_members_get_keys_meant_for_everyone(db):
    everyone = team_key("Everyone", raw="sk-everyone-EVRY", default_monthly_limit=300, grant_new_members=True)
    team_key("Staff only", raw="sk-staff-STAF")
    newcomer = User.objects.create_user("newcomer", password="x")
    grant = KeyGrant.objects.get(member=newcomer)
    assert grant.key_id == everyone.pk and grant.limit == 300 and grant.left_this_month() == 300
    assert [c.credential.name for c in keys.choices_for(newcomer)] == ["Everyone"]


def test_try_again_goes_on_the_same_team_key_within_the_limit(as_alice, alice, studio):
    grant = KeyGrant.objects.create(member=alice, key=studio, monthly_limit=90)
    failed = make_generation(alice, team_key=studio, credits=45, status=S.FAILED, video_id=3)
    response = as_alice.post(reverse("retry", args=[failed.code]))
    assert response.status_code == 302
    again = Generation.objects.latest("pk")
    assert again.team_key == studio and again.key_hash == studio.key_hash
    # 90 of 90 are held now (the failed one was taken by PixVerse, the new one is reserved).
    refused = as_alice.post(reverse("retry", args=[failed.code]), headers={"HX-Request": "true"})
    assert "are left this month on Studio key" in refused.content.decode()
    assert Generation.objects.count() == 2
    grant.delete()
    gone = as_alice.post(reverse("retry", args=[failed.code]), follow=True)
    assert "You may no longer use the key" in gone.content.decode()


RACE = """
import threading
from django.contrib.auth.models import User
from django.db import connections
from generations import keys
from generations.models import ApiCredential, Generation, KeyGrant
alice = User.objects.create_user("alice", password="x")
studio = ApiCredential(name="Studio key")
studio.set_key("sk-team-studio-key-TEAM")
studio.save()
KeyGrant.objects.create(member=alice, key=studio, monthly_limit=60)
choice = keys.choices_for(alice)[0]

def submit(start, outcomes):
    try:
        start.wait()
        keys.reserve(choice, 45, lambda: Generation.objects.create(
            owner=alice, kind="text", prompt="race", model="v5", quality="540p", duration=5,
            credits=45, team_key=studio))
        outcomes.append("stored")
    except keys.LimitReached:
        outcomes.append("refused")
    except Exception as error:  # what went wrong is the assertion's message
        outcomes.append(repr(error))
    finally:
        connections.close_all()

rounds = []
for _round in range(5):
    Generation.objects.all().delete()
    start, outcomes = threading.Barrier(2), []
    threads = [threading.Thread(target=submit, args=(start, outcomes)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    rounds.append(",".join(sorted(outcomes)) + f" {Generation.objects.count()}")
print(sorted(set(rounds)))
"""


@pytest.mark.slow
def test_two_jobs_sent_at_the_same_moment_cannot_both_take_the_last_credits(tmp_path):
    """Two threads, each with its own connection, as two web processes would be, on the
    database this run uses: a file for SQLite (the test database's shared memory has
    table locks that no busy timeout waits for), a fresh database on PostgreSQL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env["DATA_DIR"] = str(tmp_path)
    with contextlib.ExitStack() as stack:
        if connection.vendor == "postgresql":
            env["DATABASE_URL"] = stack.enter_context(postgres_database("pixverse_limits"))
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], env=env, cwd=ROOT, check=True,
                       timeout=120)
        assert django_shell(env, RACE) == "['refused,stored 1']"


def test_a_key_pixverse_refuses_is_marked_broken_and_its_waiting_jobs_fail(as_alice, alice, studio):
    KeyGrant.objects.create(member=alice, key=studio)
    waiting = [make_generation(alice, team_key=studio) for _ in range(2)]
    with responses.RequestsMock() as api:
        api.get(f"{BASE}/account/balance", status=401, json={"ErrCode": 401, "ErrMsg": "Invalid API Key"})
        jobs.read_balance(studio.key_hash)
    studio.refresh_from_db()
    assert studio.broken_at is not None and "Invalid API Key" in studio.broken_error
    assert {g.status for g in Generation.objects.filter(pk__in=[w.pk for w in waiting])} == {S.FAILED}
    assert set(Generation.objects.values_list("error_reason", flat=True)) == {Generation.Reason.INVALID_KEY}
    assert "refuses the team key this video was to be paid with (Studio key ••••TEAM)" in (
        Generation.objects.first().reason_text)
    # Members choosing it are told; staff see it at a glance.
    page = as_alice.get("/").content.decode()
    assert "Studio key ••••TEAM (refused by PixVerse)" in page
    refused = as_alice.post(reverse("create-text"), {**TEXT, "key": f"team:{studio.pk}"})
    assert refused.status_code == 400 and "PixVerse refuses this key" in refused.content.decode()
    # A good read later puts it right.
    with responses.RequestsMock() as api:
        api.get(f"{BASE}/account/balance", json={"ErrCode": 0, "ErrMsg": "success", "Resp": {
            "account_id": 1, "credit_monthly": 10, "credit_package": 0}})
        jobs.read_balance(studio.key_hash)
    assert ApiCredential.objects.get(pk=studio.pk).broken_at is None


def test_staff_see_each_team_keys_health_and_balance_at_a_glance(client, studio, monkeypatch):
    monkeypatch.setattr("generations.queue.kick_scheduler", lambda **kw: None)
    spare = team_key(name="Spare key", raw="sk-team-spare-key-SPAR")
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    page = client.get("/admin/generations/teamkey/").content.decode()
    assert page.count(">working<") == 2 and page.count(">5000<") == 2
    with responses.RequestsMock() as api:
        api.get(f"{BASE}/account/balance", status=401, json={"ErrCode": 401, "ErrMsg": "Invalid API Key"})
        jobs.read_balance(studio.key_hash)
    ApiCredential.record_balance(spare.key_hash, Balance(account_id=3, credit_monthly=620, credit_package=15))
    page = client.get("/admin/generations/teamkey/").content.decode()
    studio_row = re.search(r"<tr[^>]*>(?:(?!</tr>).)*Studio key.*?</tr>", page, re.S).group(0)
    spare_row = re.search(r"<tr[^>]*>(?:(?!</tr>).)*Spare key.*?</tr>", page, re.S).group(0)
    assert "refused by PixVerse since" in studio_row and "Invalid API Key" in studio_row
    assert "working" in spare_row and ">635<" in spare_row  # monthly + package credits


def test_staff_add_a_team_key_in_the_admin_and_never_see_it_again(client, db, monkeypatch):
    monkeypatch.setattr("generations.queue.kick_scheduler", lambda **kw: None)
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    member = User.objects.create_user("bea", password="x")
    response = client.post("/admin/generations/teamkey/add/", {
        "name": "Studio key", "api_key": "sk-admin-typed-key-ADMN", "concurrency": "5",
        "default_monthly_limit": "500",
        "grants-TOTAL_FORMS": "1", "grants-INITIAL_FORMS": "0",
        "grants-0-member": str(member.pk), "grants-0-monthly_limit": "200"})
    assert response.status_code == 302, response.content.decode()[:3000]
    key = TeamKey.objects.get()
    assert key.last4 == "ADMN" and key.balance_due_at is not None
    assert KeyGrant.objects.get().member == member
    for url in ("/admin/generations/teamkey/", f"/admin/generations/teamkey/{key.pk}/change/"):
        page = client.get(url).content.decode()
        assert "sk-admin-typed-key" not in page and "••••ADMN" in page
    # Members' own keys are listed apart from the team's.
    assert "Studio key" not in client.get("/admin/generations/apicredential/").content.decode()
    assert client.post("/admin/generations/teamkey/add/", {
        "name": "No key", "api_key": "", "grants-TOTAL_FORMS": "0",
        "grants-INITIAL_FORMS": "0"}).status_code == 200  # refused: a new key needs its key
    assert TeamKey.objects.count() == 1
