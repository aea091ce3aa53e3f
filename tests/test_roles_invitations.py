"""Roles (owner, admin, member, guest) on Django's groups, and invitations by e-mail (issue 12)."""

import html
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from generations import roles
from generations.models import ApiCredential, Generation, Invitation
from tests.test_views import KEY, TEXT, make_generation

pytestmark = pytest.mark.django_db
Role = roles.Role
PASSWORDS = {"password1": "a-long-pass-9", "password2": "a-long-pass-9"}


@pytest.fixture
def guest(db):
    user = User.objects.create_user("gus", "gus@example.com", "pw")
    roles.set_role(user, Role.GUEST)
    return user


def test_the_four_roles_exist_with_their_permissions():
    assert set(Group.objects.values_list("name", flat=True)) >= set(Role.values)
    member = User.objects.create_user("mia", password="x")
    assert roles.role_of(member) == Role.MEMBER and roles.may_generate(member)
    roles.set_role(member, Role.GUEST)
    member = User.objects.get(pk=member.pk)
    assert roles.role_of(member) == Role.GUEST and not roles.may_generate(member)
    roles.set_role(member, Role.ADMIN)
    member = User.objects.get(pk=member.pk)
    assert member.is_staff and member.has_perm("generations.retry_generation")
    assert member.has_perm("generations.add_teamkey") and member.has_perm("auth.change_user")


def test_the_first_superuser_is_the_owner_and_the_next_an_admin(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-pass-9")
    call_command("createsuperuser", "--no-input", username="root", email="root@example.com")
    call_command("createsuperuser", "--no-input", username="root2", email="root2@example.com")
    assert roles.role_of(User.objects.get(username="root")) == Role.OWNER
    assert roles.role_of(User.objects.get(username="root2")) == Role.ADMIN


def test_a_guest_sees_the_teams_work_but_reaches_no_spending_view_or_action(client, guest, monkeypatch):
    monkeypatch.setattr("generations.queue.kick_scheduler", lambda **kw: None)
    teammate = User.objects.create_user("tina", password="x")
    shared = make_generation(teammate, prompt="A shared sunset", status=Generation.Status.DONE, video_id=1)
    make_generation(teammate, prompt="Tina's private sketch", is_private=True)
    client.force_login(guest)
    page = client.get("/").content.decode()
    assert "A shared sunset" in page and "private sketch" not in page
    assert "You are a guest" in page and 'name="prompt"' not in page
    # Nothing offered that would only say no: no Remix, no Try again, on pages and on polled cards.
    assert "Remix" not in page
    assert "Remix" not in client.get(reverse("detail", args=[shared.code])).content.decode()
    assert "Remix" not in client.get(reverse("history")).content.decode()
    card = client.get(reverse("card", args=[shared.code]), headers={"HX-Request": "true"}).content.decode()
    assert "Remix" not in card
    assert reverse("api-key") not in page
    assert client.get(reverse("history")).status_code == 200
    assert client.get(reverse("detail", args=[shared.code])).status_code == 200
    for url, data in ((reverse("create-text"), TEXT), (reverse("create-image"), TEXT),
                      (reverse("retry", args=[shared.code]), {}), (reverse("api-key"), {"action": "sandbox"}),
                      (reverse("api-key"), {"action": "save", "api_key": KEY})):
        assert client.post(url, data).status_code == 403, url
    assert client.get(reverse("api-key")).status_code == 403
    assert client.get(reverse("usage")).status_code == 403
    assert Generation.objects.count() == 2 and not ApiCredential.objects.filter(user=guest).exists()


def test_staff_set_roles_in_the_admin(client):
    owner = User.objects.create_superuser("root", "root@example.com", "pw")
    bea = User.objects.create_user("bea", password="x")
    client.force_login(owner)
    page = client.get("/admin/auth/user/").content.decode()
    assert "Owner" in page and "Member" in page
    client.post("/admin/auth/user/", {"action": "make_guest", "_selected_action": [bea.pk, owner.pk]})
    assert roles.role_of(User.objects.get(pk=bea.pk)) == Role.GUEST
    assert roles.role_of(User.objects.get(pk=owner.pk)) == Role.OWNER  # not oneself


def invite(client, email="new@example.com", role="member") -> str:
    response = client.post("/admin/generations/invitation/add/", {
        "email": email, "role": role,
        "expires_at_0": (timezone.now() + timedelta(days=7)).strftime("%Y-%m-%d"),
        "expires_at_1": "12:00:00"})
    assert response.status_code == 200, response.content.decode()[:2000]
    page = response.content.decode()
    assert '<ol class="breadcrumbs">' in page  # Django 6's admin styles only that
    return html.unescape(re.search(r'id="invitation-link"[^>]*>([^<]+)</textarea>', page).group(1))


def test_an_invitation_link_works_once_and_gives_its_role(client, settings):
    settings.PORTAL_SIGNUP_ENABLED = False
    owner = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(owner)
    link = invite(client, role="guest")
    assert len(mail.outbox) == 1 and link in mail.outbox[0].body and mail.outbox[0].to == ["new@example.com"]
    invitation = Invitation.objects.get()
    assert link.rsplit("/", 2)[-2] not in invitation.token_hash  # only a hash is stored
    client.logout()
    path = link.removeprefix("http://testserver")
    page = client.get(path)
    assert page.status_code == 200 and "new@example.com" in page.content.decode()
    bad = client.post(path, {"username": "newbie", "password1": "a", "password2": "b"})
    assert bad.status_code == 400 and not User.objects.filter(username="newbie").exists()
    joined = client.post(path, {"username": "newbie", **PASSWORDS})
    assert joined.status_code == 302
    newbie = User.objects.get(username="newbie")
    assert newbie.email == "new@example.com" and roles.role_of(newbie) == Role.GUEST
    assert Invitation.objects.get().accepted_by == newbie
    client.logout()
    again = client.post(path, {"username": "other", **PASSWORDS})
    assert again.status_code == 410 and not User.objects.filter(username="other").exists()


def test_the_same_link_used_at_the_same_moment_makes_one_account(client, monkeypatch):
    # Both requests found the invitation open; the other one's accept lands between this
    # one's look-up and its own accept (Invitation.accept's conditional update).
    owner = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(owner)
    path = invite(client).removeprefix("http://testserver")
    client.logout()
    open_one = Invitation.open_one

    def found_open_then_taken(token):
        invitation = open_one(token)
        Invitation.objects.filter(pk=invitation.pk).update(accepted_at=timezone.now(), accepted_by=owner)
        return invitation

    monkeypatch.setattr(Invitation, "open_one", staticmethod(found_open_then_taken))
    late = client.post(path, {"username": "late", **PASSWORDS})
    assert late.status_code == 410
    assert not User.objects.filter(username="late").exists()  # its account rolled back with it
    assert Invitation.objects.get().accepted_by == owner


def test_an_expired_or_unknown_invitation_is_refused(client):
    owner = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(owner)
    path = invite(client).removeprefix("http://testserver")
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    client.logout()
    assert client.get(path).status_code == 410
    assert client.get(reverse("accept-invitation", args=["not-a-token"])).status_code == 410


def test_sending_again_makes_a_new_link_and_the_old_one_stops(client):
    owner = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(owner)
    old = invite(client).removeprefix("http://testserver")
    client.post("/admin/generations/invitation/", {"action": "send_again",
                                                   "_selected_action": [Invitation.objects.get().pk]})
    new = re.search(r"http://testserver(/accounts/invitation/[^/]+/)", mail.outbox[-1].body).group(1)
    assert new != old
    client.logout()
    assert client.get(old).status_code == 410 and client.get(new).status_code == 200


def test_a_second_invitation_to_an_open_address_is_refused_so_a_reload_sends_none(client):
    owner = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(owner)
    invite(client, email="twice@example.com")
    again = client.post("/admin/generations/invitation/add/", {
        "email": "TWICE@example.com", "role": "member",
        "expires_at_0": (timezone.now() + timedelta(days=7)).strftime("%Y-%m-%d"),
        "expires_at_1": "12:00:00"})
    assert "An invitation to this address is open already" in again.content.decode()
    assert Invitation.objects.count() == 1 and len(mail.outbox) == 1


def test_the_demo_account_of_the_local_run_is_the_owner(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    call_command("setup_demo", stdout=__import__("io").StringIO())
    assert roles.role_of(User.objects.get(username="demo")) == Role.OWNER


def test_a_jobs_key_is_stored_in_no_language_and_shown_in_the_readers(client):
    from django.utils import translation

    from generations.templatetags.portal import paid_with_text

    user = User.objects.create_user("kim", password="x")
    own = ApiCredential(user=user)
    own.set_key(KEY)
    own.save()
    job = make_generation(user)
    assert job.paid_with == "••••AAAA"
    with translation.override("ru"):
        assert paid_with_text(job.paid_with) == "личный ключ участника ••••AAAA"


def test_an_invitation_and_its_acceptance_are_in_the_audit_log(client):
    from auditlog.models import LogEntry

    owner = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(owner)
    path = invite(client, email="logged@example.com", role="guest").removeprefix("http://testserver")
    client.logout()
    client.post(path, {"username": "logged", **PASSWORDS})
    entries = LogEntry.objects.filter(content_type__model="invitation").order_by("pk")
    created, accepted = entries[0], entries.last()
    assert created.actor == owner and created.changes_dict["role"][1] == "guest"
    assert "accepted_at" in accepted.changes_dict
    invitation = Invitation.objects.get()
    assert invitation.token_hash not in str(list(entries.values()))
