"""Staff: the admin (members with key state, job actions) and the team usage page."""

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from generations.models import ApiCredential, Generation
from generations.usage import Month, team_usage

S = Generation.Status
KEY = "sk-staff-test-key-QQQQ"


@pytest.fixture
def staff(client, db):
    user = User.objects.create_superuser("staff", password="pw")
    client.force_login(user)
    return client


@pytest.fixture
def alice(db):
    user = User.objects.create_user("alice")
    credential = ApiCredential(user=user)
    credential.set_key(KEY)
    credential.save()
    return user


@pytest.fixture
def started(monkeypatch):
    calls = []
    monkeypatch.setattr("generations.queue.kick_scheduler", lambda **kw: calls.append("kick"))
    return calls


def make(owner, **fields):
    values = {"kind": "text", "prompt": "A wolf", "model": "v5", "quality": "360p", "duration": 5,
              "credits": 45} | fields
    return Generation.objects.create(owner=owner, **values)


def test_members_are_listed_with_their_keys_last_four_only(staff, alice):
    page = staff.get("/admin/auth/user/").content.decode()
    assert "••••QQQQ" in page and KEY not in page
    detail = staff.get(f"/admin/auth/user/{alice.pk}/change/").content.decode()
    assert "••••QQQQ" in detail and KEY not in detail
    assert ApiCredential.objects.get().encrypted_key not in detail


def act(staff, action, jobs):
    return staff.post("/admin/generations/generation/", {
        "action": action, "_selected_action": [str(j.pk) for j in jobs]}, follow=True)


def test_poll_now_hands_running_jobs_to_the_members_worker(staff, alice, started):
    running = make(alice, status=S.RUNNING, next_attempt_at=timezone.now() + dt.timedelta(minutes=5))
    done = make(alice, status=S.DONE)
    response = act(staff, "poll_now", [running, done])
    running.refresh_from_db()
    assert running.next_attempt_at <= timezone.now()
    assert started == ["kick"]
    assert "1 of 2 jobs done." in response.content.decode()


def test_cancel_and_retry_from_the_admin(staff, alice, started):
    queued = make(alice)
    failed = make(alice, status=S.FAILED, seed=5)
    act(staff, "cancel", [queued])
    queued.refresh_from_db()
    assert queued.status == S.CANCELLED
    act(staff, "retry", [failed])
    again = Generation.objects.exclude(pk__in=[queued.pk, failed.pk]).get()
    assert (again.status, again.seed, again.owner) == (S.QUEUED, 5, alice)
    assert again.trace_id != failed.trace_id
    assert started == ["kick"]


def test_staff_who_may_only_view_jobs_cannot_spend_or_change_them(client, alice, started):
    from django.contrib.auth.models import Permission

    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_generation"))
    client.force_login(viewer)
    private = make(alice, status=S.FAILED, is_private=True)
    page = client.get("/admin/generations/generation/").content.decode()
    assert 'value="retry"' not in page and 'value="cancel"' not in page
    response = act(client, "retry", [private])
    assert Generation.objects.count() == 1  # nothing made, nothing billed
    assert started == []
    assert response.status_code == 200
    viewer.user_permissions.add(Permission.objects.get(codename="retry_generation"))
    viewer = User.objects.get(pk=viewer.pk)  # permissions are cached on the user
    client.force_login(viewer)
    act(client, "retry", [private])
    assert Generation.objects.count() == 2


def test_the_admin_lists_background_tasks_and_sandbox_accounts(staff):
    for url in ("/admin/django_q/success/", "/admin/django_q/failure/", "/admin/django_q/schedule/",
                "/admin/sandbox/sandboxaccount/"):
        assert staff.get(url).status_code == 200, url
    assert "pixverse-dispatch-workers" in staff.get("/admin/django_q/schedule/").content.decode()


def test_usage_counts_credits_of_finished_jobs_per_member_and_week(alice, db):
    bob = User.objects.create_user("bob")

    def at(day):
        return dt.datetime(2026, 3, day, 12, tzinfo=dt.UTC)

    make(alice, status=S.DONE, credits=45, created=at(10), finished_at=at(10))
    make(alice, status=S.DONE, credits=120, created=at(11), finished_at=at(11))
    make(alice, status=S.DONE, credits=60, created=at(3), finished_at=at(3))
    make(bob, status=S.DONE, credits=90, created=at(10), finished_at=at(10))
    make(bob, status=S.FAILED, credits=240, created=at(10), finished_at=at(10))
    make(bob, status=S.MODERATED, credits=240, created=at(10), finished_at=at(10))
    # The same week as March's first days, but February's job.
    make(bob, status=S.DONE, credits=999, created=at(1) - dt.timedelta(days=2))
    usage = team_usage(month=Month(2026, 3))
    # Every week (from Monday) with days of March, the first and last partly.
    assert usage.weeks[0] == dt.date(2026, 2, 23) and usage.weeks[-1] == dt.date(2026, 3, 30)
    assert len(usage.weeks) == 6
    assert usage.members == ["alice", "bob"]
    assert usage.spent[("alice", dt.date(2026, 3, 9))] == 165
    assert usage.spent[("alice", dt.date(2026, 3, 2))] == 60
    assert usage.member_total("bob") == 90
    assert usage.total == 315
    assert dict(usage.by_status)["Done"] == 4
    bars = usage.bars()
    assert max(b.y + b.height for b in bars) == pytest.approx(240)
    assert min(b.y for b in bars) == pytest.approx(0)  # the busiest week fills the chart
    assert [x for x, _ in usage.ticks()][:2] == pytest.approx([640 / 12, 640 / 4])


def test_the_usage_page_is_for_staff_only(client, alice, staff):
    make(alice, status=S.DONE, credits=45, finished_at=timezone.now())
    page = staff.get(reverse("usage")).content.decode()
    assert "<svg" in page and 'role="img"' in page and "<rect" in page
    assert "Credits spent per week: 45" in page
    client.force_login(alice)
    response = client.get(reverse("usage"))
    # The portal's own answer, not the admin's sign-in page.
    assert response.status_code == 403
    client.logout()
    assert "/accounts/login/" in client.get(reverse("usage")).url
