"""The audit log (issue 12, item 7): who added, replaced, tested or removed a key, changed a limit
or a role, deleted a job or ran an admin action on one, and when; never a key, its ciphertext or
its hash; read-only and filterable in the admin, for staff only."""

import json
from datetime import timedelta

import pytest
import responses
from auditlog.models import LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core import serializers
from django.urls import reverse
from django.utils import timezone

from generations import audit
from generations.models import ApiCredential, Generation, KeyGrant, TeamKey
from tests.test_views import BASE, KEY, make_generation

A = LogEntry.Action
NEW_KEY = "sk-alice-second-key-BBBB"
TEAM_RAW = "sk-admin-typed-key-ADMN"


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(f"{BASE}/account/balance", json={"ErrCode": 0, "ErrMsg": "success", "Resp": {
            "account_id": 1, "credit_monthly": 100, "credit_package": 50}})
        yield rsps


@pytest.fixture(autouse=True)
def _no_workers(monkeypatch):
    monkeypatch.setattr("generations.queue.kick_scheduler", lambda **kw: None)


@pytest.fixture
def alice(db):
    return User.objects.create_user("alice", "alice@example.com", "pw-alice")


@pytest.fixture
def root(db):
    return User.objects.create_superuser("root", "root@example.com", "pw")


def entries(model, **filters):
    return LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(model), **filters)


def assert_recent(entry: LogEntry, actor: User) -> None:
    assert entry.actor == actor
    assert timezone.now() - timedelta(minutes=1) < entry.timestamp <= timezone.now()


def secrets_of_keys() -> set[str]:
    """Every stored key's ciphertext and hash, as they are now."""
    rows = ApiCredential.objects.values("encrypted_key", "key_hash")
    return {value for row in rows for value in row.values() if value}


def assert_no_key_material(secrets: set[str], *pages: str) -> None:
    dump = serializers.serialize("json", LogEntry.objects.all())
    for entry in LogEntry.objects.all():
        dump += audit.describe(entry) + str(entry) + json.dumps(entry.additional_data)
    for secret in secrets:
        assert secret not in dump
        for page in pages:
            assert secret not in page
    assert "encrypted_key" not in dump and "key_hash" not in dump


def test_a_members_key_added_replaced_tested_and_removed_is_in_the_log(client, alice, api):
    client.force_login(alice)
    secrets = {KEY, NEW_KEY}
    client.post(reverse("api-key"), {"action": "save", "api_key": KEY})
    secrets |= secrets_of_keys()
    added = entries(ApiCredential, action=A.CREATE).get()
    assert_recent(added, alice)
    assert added.changes_dict["last4"] == ["None", "AAAA"]

    client.post(reverse("api-key"), {"action": "save", "api_key": NEW_KEY})
    secrets |= secrets_of_keys()
    replaced = entries(ApiCredential, additional_data__event="key_replaced").get()
    assert_recent(replaced, alice)
    assert replaced.additional_data == {"event": "key_replaced", "old": "••••AAAA", "new": "••••BBBB"}
    changed = entries(ApiCredential, action=A.UPDATE).exclude(additional_data__event="key_replaced").get()
    assert changed.changes_dict["last4"] == ["AAAA", "BBBB"] and changed.actor == alice

    client.post(reverse("api-key"), {"action": "test"})
    tested = entries(ApiCredential, additional_data__event="key_tested").get()
    assert_recent(tested, alice)
    assert tested.action == A.ACCESS and tested.additional_data["accepted"] is True

    client.post(reverse("api-key"), {"action": "remove", "confirm": "1"})
    removed = entries(ApiCredential, action=A.DELETE).get()
    assert_recent(removed, alice)
    assert removed.object_repr == "…BBBB"
    client.force_login(User.objects.create_superuser("root", password="pw"))
    pages = [client.get("/admin/auditlog/logentry/").content.decode()]
    pages += [client.get(f"/admin/auditlog/logentry/{entry.pk}/change/").content.decode()
              for entry in LogEntry.objects.all()]
    assert "Key tested" in pages[0] and "••••BBBB" in "".join(pages)
    assert_no_key_material(secrets, *pages)


def test_a_refused_test_is_in_the_log_too(client, alice):
    credential = ApiCredential(user=alice)
    credential.set_key(KEY)
    credential.save()
    client.force_login(alice)
    with responses.RequestsMock() as refusing:
        refusing.get(f"{BASE}/account/balance", status=401,
                     json={"ErrCode": 401, "ErrMsg": "Invalid API Key"})
        response = client.post(reverse("api-key"), {"action": "test"}, follow=True)
    assert "PixVerse does not accept this key" in response.content.decode()
    tested = entries(ApiCredential, additional_data__event="key_tested").get()
    assert tested.actor == alice and tested.additional_data["accepted"] is False


def test_a_sandbox_key_is_logged_as_a_key_but_the_sandbox_itself_is_not(client, alice):
    client.force_login(alice)
    client.post(reverse("api-key"), {"action": "sandbox"})
    assert entries(ApiCredential, action=A.CREATE).get().actor == alice
    assert not LogEntry.objects.filter(content_type__app_label="sandbox").exists()
    from generations.sandbox.models import SandboxAccount

    assert SandboxAccount.objects.exists()
    assert_no_key_material(secrets_of_keys())


def test_a_team_key_added_and_replaced_in_the_admin_is_in_the_log(client, root, alice):
    client.force_login(root)
    response = client.post("/admin/generations/teamkey/add/", {
        "name": "Studio key", "api_key": TEAM_RAW, "default_monthly_limit": "500",
        "grants-TOTAL_FORMS": "1", "grants-INITIAL_FORMS": "0",
        "grants-0-member": str(alice.pk), "grants-0-monthly_limit": "200"})
    assert response.status_code == 302
    key = TeamKey.objects.get()
    secrets = {TEAM_RAW, "sk-admin-other-key-ADMN", *secrets_of_keys()}
    added = entries(ApiCredential, action=A.CREATE).get()
    assert_recent(added, root)
    assert added.changes_dict["default_monthly_limit"] == ["None", "500"]
    grant = entries(KeyGrant, action=A.CREATE).get()
    assert_recent(grant, root)
    assert grant.changes_dict["monthly_limit"] == ["None", "200"]
    assert grant.changes_dict["member"] == ["None", "alice"]

    # A new key ending in the same four characters: the row shows no change, the event does.
    grant_id = KeyGrant.objects.get().pk
    response = client.post(f"/admin/generations/teamkey/{key.pk}/change/", {
        "name": "Studio key", "api_key": "sk-admin-other-key-ADMN", "default_monthly_limit": "500",
        "grants-TOTAL_FORMS": "1", "grants-INITIAL_FORMS": "1",
        "grants-0-id": str(grant_id), "grants-0-key": str(key.pk), "grants-0-member": str(alice.pk),
        "grants-0-monthly_limit": "200"})
    assert response.status_code == 302
    secrets |= secrets_of_keys()
    replaced = entries(ApiCredential, additional_data__event="key_replaced").get()
    assert_recent(replaced, root)
    assert replaced.additional_data["old"] == replaced.additional_data["new"] == "••••ADMN"
    pages = [client.get("/admin/auditlog/logentry/").content.decode()]
    pages += [client.get(f"/admin/auditlog/logentry/{entry.pk}/change/").content.decode()
              for entry in LogEntry.objects.all()]
    assert "Studio key …ADMN" in pages[0] and "Key replaced" in pages[0]
    assert_no_key_material(secrets, *pages)


def test_a_limit_changed_or_taken_away_is_in_the_log(client, root, alice):
    key = ApiCredential(name="Studio key", default_monthly_limit=500)
    key.set_key(TEAM_RAW)
    key.save()
    grant = KeyGrant.objects.create(member=alice, key=key, monthly_limit=200)
    client.force_login(root)
    response = client.post(f"/admin/generations/teamkey/{key.pk}/change/", {
        "name": "Studio key", "api_key": "", "default_monthly_limit": "800",
        "grants-TOTAL_FORMS": "1", "grants-INITIAL_FORMS": "1",
        "grants-0-id": str(grant.pk), "grants-0-key": str(key.pk), "grants-0-member": str(alice.pk),
        "grants-0-monthly_limit": "300"})
    assert response.status_code == 302
    limit = entries(KeyGrant, action=A.UPDATE).get()
    assert_recent(limit, root)
    assert limit.changes_dict == {"monthly_limit": ["200", "300"]}
    default = entries(ApiCredential, action=A.UPDATE).get()
    assert_recent(default, root)
    assert default.changes_dict == {"default_monthly_limit": ["500", "800"]}
    assert not entries(ApiCredential, additional_data__event="key_replaced").exists()

    response = client.post(f"/admin/generations/teamkey/{key.pk}/change/", {
        "name": "Studio key", "api_key": "", "default_monthly_limit": "800",
        "grants-TOTAL_FORMS": "1", "grants-INITIAL_FORMS": "1",
        "grants-0-id": str(grant.pk), "grants-0-key": str(key.pk), "grants-0-member": str(alice.pk),
        "grants-0-monthly_limit": "300", "grants-0-DELETE": "on"})
    assert response.status_code == 302
    assert_recent(entries(KeyGrant, action=A.DELETE).get(), root)


def test_a_members_role_changed_in_the_admin_is_in_the_log(client, root, alice):
    editors = Group.objects.create(name="Editors")
    client.force_login(root)
    # A new account is given the member role (a group) when it is made: that is logged too.
    made = LogEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    response = client.post(f"/admin/auth/user/{alice.pk}/change/", {
        "username": "alice", "email": "alice@example.com", "is_active": "on", "is_staff": "on",
        "groups": [str(editors.pk)], "date_joined_0": "2026-01-01", "date_joined_1": "10:00:00",
        "pixverse_credential-TOTAL_FORMS": "0", "pixverse_credential-INITIAL_FORMS": "0"})
    assert response.status_code == 302, response.content.decode()[:2000]
    staff = entries(User, action=A.UPDATE, object_id=alice.pk, pk__gt=made).exclude(
        changes__has_key="groups").get()
    assert_recent(staff, root)
    assert staff.changes_dict == {"is_staff": ["False", "True"]}
    changed = entries(User, object_id=alice.pk, changes__has_key="groups", pk__gt=made).order_by("pk")
    assert [entry.changes_dict["groups"]["operation"] for entry in changed] == ["delete", "add"]
    groups = changed.last()
    assert_recent(groups, root)
    assert groups.changes_dict["groups"]["objects"] == ["Editors"]
    assert "groups: added Editors" in audit.describe(groups)
    # A password or a sign-in is no change of role.
    alice.refresh_from_db()
    alice.set_password("another-pw")
    alice.save()
    client.force_login(alice)
    updates = entries(User, object_id=alice.pk, action=A.UPDATE, pk__gt=made)
    assert not updates.exclude(pk__in=[staff.pk, *changed.values_list("pk", flat=True)]).exists()
    assert "pbkdf2" not in serializers.serialize("json", LogEntry.objects.all())
    assert "md5$" not in serializers.serialize("json", LogEntry.objects.all())


def test_a_job_deleted_from_its_page_or_from_the_admin_is_in_the_log(client, root, alice):
    mine = make_generation(alice, prompt="A wolf I delete", credits=45)
    theirs = make_generation(alice, prompt="A wolf staff delete")
    client.force_login(alice)
    assert client.post(reverse("delete", args=[mine.code])).status_code == 302
    by_owner = entries(Generation).get()
    assert_recent(by_owner, alice)
    assert by_owner.action == A.DELETE and by_owner.changes_dict["prompt"] == ["A wolf I delete", "None"]
    assert by_owner.changes_dict["owner"] == ["alice", "None"]

    client.force_login(root)
    response = client.post(f"/admin/generations/generation/{theirs.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    by_staff = entries(Generation).exclude(pk=by_owner.pk).get()
    assert_recent(by_staff, root)
    assert by_staff.changes_dict["code"][0] == str(theirs.code)

    several = [make_generation(alice, prompt=f"A wolf {n}").pk for n in range(2)]
    response = client.post("/admin/generations/generation/", {
        "action": "delete_selected", "_selected_action": several, "post": "yes"})
    assert response.status_code == 302 and not Generation.objects.exists()
    assert entries(Generation, actor=root, action=A.DELETE).count() == 3


def test_a_jobs_creation_and_its_workers_changes_are_not_in_the_log(alice):
    job = make_generation(alice)
    job.retry()
    job.cancel()
    assert not entries(Generation).exists()


@pytest.mark.parametrize(("action", "event", "status", "done"), [
    ("cancel", "job_cancelled", Generation.Status.QUEUED, True),
    ("poll_now", "job_status_read", Generation.Status.RUNNING, True),
    ("retry", "job_retried", Generation.Status.FAILED, True),
    ("cancel", "job_cancelled", Generation.Status.DONE, False),
])
def test_an_admin_action_on_jobs_is_in_the_log(client, root, alice, action, event, status, done):
    job = make_generation(alice, status=status)
    client.force_login(root)
    response = client.post("/admin/generations/generation/", {"action": action, "_selected_action": [job.pk]})
    assert response.status_code == 302
    entry = entries(Generation, additional_data__event=event).get()
    assert_recent(entry, root)
    assert entry.object_id == job.pk and entry.additional_data["done"] is done
    if action == "retry":
        assert entry.additional_data["new_job"] == str(Generation.objects.exclude(pk=job.pk).get().code)


def test_the_audit_page_is_read_only_even_for_a_superuser(client, root, alice):
    entry = audit.record(alice, "key_tested", make_generation(alice), accepted=True)
    client.force_login(root)
    assert client.get("/admin/auditlog/logentry/").status_code == 200
    page = client.get(f"/admin/auditlog/logentry/{entry.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.get("/admin/auditlog/logentry/add/").status_code == 403
    assert client.post(f"/admin/auditlog/logentry/{entry.pk}/change/", {}).status_code == 403
    assert client.post(f"/admin/auditlog/logentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    response = client.post("/admin/auditlog/logentry/", {"action": "delete_selected",
                                                         "_selected_action": [entry.pk], "post": "yes"})
    assert LogEntry.objects.filter(pk=entry.pk).exists()
    assert response.status_code in (200, 302)


def test_staff_who_may_view_entries_see_them_members_do_not(client, alice, db):
    audit.record(alice, "key_tested", make_generation(alice), accepted=True)
    client.force_login(alice)
    assert client.get("/admin/auditlog/logentry/").status_code == 302  # the admin's sign-in
    helper = User.objects.create_user("helper", password="pw", is_staff=True)
    client.force_login(helper)
    assert client.get("/admin/auditlog/logentry/").status_code == 403
    helper.user_permissions.add(Permission.objects.get(codename="view_logentry",
                                                       content_type__app_label="auditlog"))
    assert client.get("/admin/auditlog/logentry/").status_code == 200


def test_the_audit_page_filters_by_actor_action_event_model_and_date(client, root, alice):
    job = make_generation(alice, prompt="A wolf to test")
    tested = audit.record(alice, "key_tested", job, accepted=True)
    cancelled = audit.record(root, "job_cancelled", job, done=True)
    grant = KeyGrant.objects.create(member=alice, key=ApiCredential.objects.create(name="Studio key"))
    granted = entries(KeyGrant).get()
    old = audit.record(root, "job_status_read", job, done=False)
    LogEntry.objects.filter(pk=old.pk).update(timestamp=timezone.now() - timedelta(days=40))
    client.force_login(root)

    def shown(**query) -> set[int]:
        response = client.get("/admin/auditlog/logentry/", query)
        assert response.status_code == 200
        return {entry.pk for entry in response.context["cl"].result_list}

    assert {tested.pk, cancelled.pk, granted.pk, old.pk} <= shown()
    assert shown(actor__id__exact=alice.pk) == {tested.pk}
    assert shown(action__exact=A.ACCESS) == {tested.pk, old.pk}
    assert shown(event="job_cancelled") == {cancelled.pk}
    assert shown(model=ContentType.objects.get_for_model(KeyGrant).pk) == {granted.pk}
    since = str(timezone.now() - timedelta(days=7))
    assert old.pk not in shown(timestamp__gte=since)
    page = client.get("/admin/auditlog/logentry/").content.decode()
    assert "Key tested" in page and "Job cancelled (admin)" in page and "accepted by PixVerse: yes" in page
    assert grant.member.username in page


def test_a_secret_field_is_never_tracked():
    from auditlog.registry import auditlog

    for model in auditlog.get_models():
        fields = auditlog.get_model_fields(model)
        names = {field.name for field in model._meta.get_fields()}
        for secret in audit.SECRET_FIELDS & names:
            assert secret in fields["exclude_fields"] or (
                fields["include_fields"] and secret not in fields["include_fields"]), (model, secret)


def test_an_entry_still_says_who_once_the_member_is_deleted(client, root, alice):
    entry = audit.record(alice, "key_tested", make_generation(alice), accepted=True)
    client.force_login(root)
    assert client.post(f"/admin/auth/user/{alice.pk}/delete/", {"post": "yes"}).status_code == 302
    entry.refresh_from_db()
    assert entry.actor is None
    assert "alice@example.com (deleted since)" in client.get("/admin/auditlog/logentry/").content.decode()
    # Deleting the member deleted their jobs too, and says who did.
    assert entries(Generation, action=A.DELETE).get().actor == root


def test_an_entry_has_the_clients_address_as_the_portal_reads_it(client, alice, api, settings):
    settings.PORTAL_TRUSTED_PROXY_COUNT = 1
    client.force_login(alice)
    # The leftmost entry is the client's own writing; the proxy appended the real one.
    client.post(reverse("api-key"), {"action": "save", "api_key": KEY},
                headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9"})
    client.post(reverse("api-key"), {"action": "test"}, headers={"X-Forwarded-For": "not an address"})
    assert entries(ApiCredential, action=A.CREATE).get().remote_addr == "203.0.113.9"
    assert entries(ApiCredential, additional_data__event="key_tested").get().remote_addr is None
