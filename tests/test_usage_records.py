"""The usage records: the staff page's filters, figures and CSV, and a member's own usage."""

import csv
import datetime as dt
import io

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from generations.models import ApiCredential, Generation
from generations.usage import Month, records

S = Generation.Status
OWN_KEY = "sk-alice-own-key-AAAA"
TEAM_KEY = "sk-studio-team-key-TTTT"
MARCH = "2026-03"


def at(month: int, day: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=dt.UTC)


@pytest.fixture
def alice(db):
    user = User.objects.create_user("alice", password="pw")
    credential = ApiCredential(user=user)
    credential.set_key(OWN_KEY)
    credential.save()
    return user


@pytest.fixture
def bob(db):
    return User.objects.create_user("bob", password="pw")


@pytest.fixture
def studio(db):
    key = ApiCredential(name="Studio")
    key.set_key(TEAM_KEY)
    key.save()
    return key


@pytest.fixture
def clock(monkeypatch):
    """Set the time that "this month" is read from."""
    def move_to(moment: dt.datetime) -> None:
        monkeypatch.setattr("django.utils.timezone.now", lambda: moment)
    return move_to


@pytest.fixture
def staff(client, db):
    client.force_login(User.objects.create_user("boss", password="pw", is_staff=True))
    return client


def make(owner, created=None, **fields):
    values = {"kind": "text", "prompt": "A wolf", "model": "v5", "quality": "360p", "duration": 5,
              "credits": 45, "status": S.DONE, "created": created or at(3, 10)} | fields
    return Generation.objects.create(owner=owner, **values)


def figures(response, member="Total"):
    """The per-member records the page was rendered with (the total for "Total")."""
    records_ = response.context["records"]
    if member == "Total":
        return records_.total
    return dict(records_.rows).get(member)


def csv_rows(response) -> list[list[str]]:
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


# --- Access ---------------------------------------------------------------------------------------


def test_members_who_are_not_staff_get_403_on_the_page_and_the_csv(client, alice):
    client.force_login(alice)
    assert client.get(reverse("usage")).status_code == 403
    assert client.get(reverse("usage-csv")).status_code == 403
    client.logout()
    assert "/accounts/login/" in client.get(reverse("usage-csv")).url


# --- The month ------------------------------------------------------------------------------------


def test_the_month_is_this_one_by_default(staff, alice, clock):
    clock(at(3, 15))
    make(alice, created=at(3, 2), credits=10)
    make(alice, created=at(2, 27), credits=20)
    response = staff.get(reverse("usage"))
    assert response.status_code == 200
    assert figures(response).spent == 10
    page = response.content.decode()
    assert 'type="month" name="month" value="2026-03"' in page
    # Back to February; no step to April, which has not begun.
    assert "?month=2026-02" in page and "?month=2026-04" not in page
    assert 'href="/usage/records.csv?month=2026-03"' in page
    assert "?month=2026-03" in staff.get(reverse("usage"), {"month": "2026-02"}).content.decode()


def test_month_boundaries_are_in_utc(staff, alice, settings):
    settings.TIME_ZONE = "Asia/Tokyo"  # UTC+9: the local day would start nine hours earlier
    make(alice, created=at(2, 28, 23, 59), credits=1)
    make(alice, created=at(3, 1, 0, 0), credits=10)
    make(alice, created=at(3, 31, 23, 59), credits=100)
    make(alice, created=at(4, 1, 0, 0), credits=1000)
    assert figures(staff.get(reverse("usage"), {"month": MARCH})).spent == 110
    assert figures(staff.get(reverse("usage"), {"month": "2026-02"})).spent == 1
    assert figures(staff.get(reverse("usage"), {"month": "2026-04"})).spent == 1000


def test_months_step_over_the_year(staff):
    assert Month(2026, 12).next() == Month(2027, 1)
    assert Month(2027, 1).previous() == Month(2026, 12)
    assert Month(2026, 12).end == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    page = staff.get(reverse("usage"), {"month": "2025-12", "member": ""}).content.decode()
    assert "month=2025-11" in page and "month=2026-01" in page


# --- Figures and filters ----------------------------------------------------------------------------


def test_spent_held_jobs_and_failures_per_member_and_in_total(staff, alice, bob):
    make(alice, credits=45)
    make(alice, credits=100, status=S.RUNNING)
    make(alice, credits=200, status=S.QUEUED)
    make(alice, credits=240, status=S.MODERATED, video_id=7)
    make(bob, credits=90)
    make(bob, credits=300, status=S.FAILED, video_id=8)
    make(bob, credits=300, status=S.TIMED_OUT, video_id=9)
    make(bob, credits=300, status=S.CANCELLED)
    response = staff.get(reverse("usage"), {"month": MARCH})
    a, b, total = figures(response, "alice"), figures(response, "bob"), figures(response)
    assert (a.jobs, a.failures, a.refunded, a.spent, a.held) == (4, 1, 1, 45, 300)
    assert (b.jobs, b.failures, b.refunded, b.spent, b.held) == (4, 2, 0, 90, 0)
    assert (total.jobs, total.failures, total.refunded, total.spent, total.held) == (8, 3, 1, 135, 300)
    page = response.content.decode()
    assert "<caption" in page and '<th scope="row">alice</th>' in page and "<tfoot>" in page
    assert "refunded after moderation: 1" in page


def test_the_member_filter(staff, alice, bob):
    make(alice, credits=45)
    make(bob, credits=90)
    response = staff.get(reverse("usage"), {"month": MARCH, "member": "bob"})
    assert figures(response).spent == 90 and figures(response, "alice") is None


def test_the_key_filter_by_team_key_and_members_own_keys(staff, alice, studio):
    make(alice, credits=45)  # alice's own key
    make(alice, credits=90, team_key=studio)
    by_key = staff.get(reverse("usage"), {"month": MARCH, "key": studio.pk})
    assert figures(by_key).spent == 90
    assert f'<option value="{studio.pk}" selected>Studio</option>' in by_key.content.decode()
    assert figures(staff.get(reverse("usage"), {"month": MARCH, "key": "own"})).spent == 45


def test_the_model_and_kind_filters(staff, alice):
    make(alice, credits=1, model="v4", kind="text")
    make(alice, credits=10, model="v5", kind="image")
    make(alice, credits=100, model="v5", kind="text")
    assert figures(staff.get(reverse("usage"), {"month": MARCH, "model": "v5"})).spent == 110
    assert figures(staff.get(reverse("usage"), {"month": MARCH, "kind": "image"})).spent == 10
    both = staff.get(reverse("usage"), {"month": MARCH, "model": "v5", "kind": "text"})
    assert figures(both).spent == 100
    assert figures(both).spent == sum(f.spent for _, f in both.context["records"].rows)
    assert both.context["usage"].total == 100  # the chart is filtered too


@pytest.mark.parametrize("params, field", [
    ({"month": "2026-13"}, "month"),
    ({"month": "March"}, "month"),
    ({"month": "0000-01"}, "month"),
    ({"month": "9999-12"}, "month"),
    ({"member": "nobody"}, "member"),
    ({"key": "12345"}, "key"),
    ({"key": "x' OR 1=1"}, "key"),
    ({"model": "v99"}, "model"),
    ({"kind": "audio"}, "kind"),
])
def test_bad_filters_get_a_message_next_to_the_field_and_a_400(staff, alice, params, field):
    make(alice)
    for url in (reverse("usage"), reverse("usage-csv")):
        response = staff.get(url, params)
        assert response.status_code == 400, (url, params)
        assert field in response.context["form"].errors
        page = response.content.decode()
        assert 'class="errorlist' in page and 'aria-invalid="true"' in page
        assert "Some filters could not be used" in page
        assert "Download CSV" not in page  # it would download this page


def test_the_query_count_stays_the_same_with_more_jobs(staff, alice, bob, studio):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff.get(reverse("usage"), {"month": MARCH}).status_code == 200
        return len(captured)

    make(alice)
    queries()  # the first page of a session also notes the member's role in it
    few = queries()
    for day in range(1, 29):
        make(alice, created=at(3, day), status=S.FAILED)
        make(bob, created=at(3, day), team_key=studio)
        make(bob, created=at(3, day), status=S.RUNNING)
    assert queries() == few


def test_records_are_two_queries(alice, django_assert_num_queries):
    make(alice)
    make(alice, status=S.FAILED)
    with django_assert_num_queries(2):
        records(Generation.objects.all())


# --- The CSV ------------------------------------------------------------------------------------------


def test_the_csv_has_one_row_per_job_of_the_filtered_month(staff, alice, bob, studio):
    make(alice, created=at(3, 2, 8, 30), credits=45, video_id=111, model="v5", quality="540p", duration=8)
    make(alice, created=at(3, 3), credits=240, status=S.MODERATED, video_id=112)
    make(bob, created=at(3, 4), credits=90, team_key=studio, kind="image")
    make(alice, created=at(4, 1), credits=999)
    response = staff.get(reverse("usage-csv"), {"month": MARCH})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="pixverse-usage-2026-03.csv"'
    header, *rows = csv_rows(response)
    assert header == ["Date (UTC)", "Member", "Key", "Kind", "Model", "Quality", "Duration (s)", "Status",
                      "Credits counted", "Video id"]
    assert rows == [
        ["2026-03-02 08:30:00", "alice", "the member's own key ••••AAAA", "Text to video", "v5", "540p", "8",
         "Done", "45", "111"],
        ["2026-03-03 12:00:00", "alice", "the member's own key ••••AAAA", "Text to video", "v5", "360p", "5",
         "Blocked by moderation", "0", "112"],
        ["2026-03-04 12:00:00", "bob", "Studio ••••TTTT", "Image to video", "v5", "360p", "5", "Done",
         "90", ""],
    ]


def test_the_csv_keeps_the_filters(staff, alice, bob, studio):
    make(alice, credits=45)
    make(bob, credits=90, team_key=studio)
    make(bob, credits=10, model="v4")
    rows = csv_rows(staff.get(reverse("usage-csv"), {"month": MARCH, "member": "bob", "model": "v5"}))[1:]
    assert [row[1] for row in rows] == ["bob"] and rows[0][8] == "90"
    rows = csv_rows(staff.get(reverse("usage-csv"), {"month": MARCH, "key": studio.pk}))[1:]
    assert [row[8] for row in rows] == ["90"]
    page = staff.get(reverse("usage"), {"month": MARCH, "member": "bob"}).content.decode()
    assert 'href="/usage/records.csv?month=2026-03&amp;member=bob"' in page


def test_the_csv_is_safe_from_formula_injection(staff, db):
    for name in ("=cmd", "+sum", "-2+3", "@here"):
        make(User.objects.create_user(name), credits=5)
    key = ApiCredential(name='=HYPERLINK("http://evil")')
    key.set_key("sk-evil-key-EEEE")
    key.save()
    make(User.objects.create_user("carol"), credits=5, team_key=key)
    rows = csv_rows(staff.get(reverse("usage-csv"), {"month": MARCH}))[1:]
    members = sorted(row[1] for row in rows)
    assert members == sorted(["'=cmd", "'+sum", "'-2+3", "'@here", "carol"])
    assert "'=HYPERLINK(\"http://evil\") ••••EEEE" in [row[2] for row in rows]


def test_the_csv_never_holds_key_material(staff, alice, studio):
    make(alice, credits=45)
    make(alice, credits=90, team_key=studio)
    text = staff.get(reverse("usage-csv"), {"month": MARCH}).content.decode()
    for credential in ApiCredential.objects.all():
        assert credential.encrypted_key not in text
        assert credential.key_hash not in text
    assert OWN_KEY not in text and TEAM_KEY not in text
    assert OWN_KEY[:-4] not in text and TEAM_KEY[:-4] not in text


# --- A member's own usage --------------------------------------------------------------------------------


def test_the_account_page_shows_the_members_own_usage_this_month_only(client, alice, bob, studio,
                                                                     clock):
    clock(at(3, 20))
    make(alice, credits=45)
    make(alice, credits=90, team_key=studio)
    make(alice, credits=100, status=S.RUNNING, team_key=studio)
    make(alice, credits=240, status=S.MODERATED, video_id=5)
    make(alice, credits=7000, created=at(2, 27))  # last month
    make(bob, credits=5000)
    client.force_login(alice)
    response = client.get(reverse("account"))
    assert response.status_code == 200
    own = response.context["own_usage"]
    assert (own.total.jobs, own.total.failures, own.total.spent, own.total.held) == (4, 1, 135, 100)
    per_key = dict(own.rows)
    assert per_key["Studio ••••TTTT"].spent == 90 and per_key["Studio ••••TTTT"].held == 100
    assert per_key["••••AAAA"].spent == 45
    page = response.content.decode()
    assert "Your usage this month" in page and "Studio ••••TTTT" in page
    assert "5000" not in page and "7000" not in page and "bob" not in page
    assert f'href="{reverse("history")}?member=me"' in page
