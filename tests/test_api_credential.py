"""Members' PixVerse keys: encrypted at rest, shown by last four, rotatable; the demo set-up."""

import io
import json

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from generations import crypto
from generations.models import ApiCredential
from generations.sandbox.models import SandboxAccount

RAW = "sk-live-abcdefghijklmnop-WXYZ"


@pytest.fixture
def alice(db):
    return User.objects.create_user("alice", password="x")


@pytest.fixture
def credential(alice):
    credential = ApiCredential(user=alice)
    credential.set_key(RAW)
    credential.save()
    return credential


def test_the_key_is_stored_encrypted_and_shown_by_its_last_four(credential):
    stored = ApiCredential.objects.get(pk=credential.pk)
    assert RAW not in stored.encrypted_key
    assert stored.last4 == "WXYZ"
    assert stored.masked == "••••WXYZ"
    assert RAW not in repr(stored) and RAW not in str(stored)
    assert crypto.decrypt(stored.encrypted_key) == RAW


def test_the_client_is_built_with_the_decrypted_key(credential):
    client = credential.client(base_url="https://x.test")
    assert client._api_key == RAW
    assert RAW not in repr(client)


def test_rotation_re_encrypts_with_the_newest_key(credential, settings):
    old_keys = list(settings.PORTAL_ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()
    settings.PORTAL_ENCRYPTION_KEYS = [new_key, *old_keys]
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert out.getvalue().strip() == "1 re-encrypted, 0 unreadable"
    # The old key can go now.
    settings.PORTAL_ENCRYPTION_KEYS = [new_key]
    assert ApiCredential.objects.get().client()._api_key == RAW


def test_a_key_nobody_can_open_is_reported(credential, settings):
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(SystemExit):
        call_command("rotate_encryption_keys", stdout=io.StringIO(), stderr=io.StringIO())


def test_a_bad_encryption_key_setting_fails_loudly(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.PORTAL_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    with pytest.raises(ImproperlyConfigured, match="PORTAL_ENCRYPTION_KEYS"):
        crypto.encrypt("x")


def test_the_admin_shows_only_the_last_four(credential, client):
    User.objects.create_superuser("staff", password="pw")
    client.login(username="staff", password="pw")
    for url in ("/admin/generations/apicredential/",
                f"/admin/generations/apicredential/{credential.pk}/change/"):
        page = client.get(url).content.decode()
        assert "WXYZ" in page
        assert RAW not in page and credential.encrypted_key not in page


@pytest.mark.django_db(transaction=True)
def test_the_cli_uses_a_members_stored_key(sandbox_url, settings):
    _, raw_key = SandboxAccount.issue("bob", credits=321)
    bob = User.objects.create_user("bob")
    credential = ApiCredential(user=bob)
    credential.set_key(raw_key)
    credential.save()
    out, err = io.StringIO(), io.StringIO()
    call_command("pixverse", "--user", "bob", "--base-url", sandbox_url, "balance",
                 stdout=out, stderr=err)
    assert json.loads(out.getvalue())["total"] == 321
    assert raw_key not in out.getvalue() + err.getvalue()
    with pytest.raises(CommandError, match="no PixVerse key stored"):
        call_command("pixverse", "--user", "nobody", "balance")


def test_setup_demo_is_idempotent_and_keeps_the_key_encrypted(db, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    first = io.StringIO()
    call_command("setup_demo", stdout=first)
    credential = ApiCredential.objects.get(user__username="demo")
    call_command("setup_demo", stdout=io.StringIO())
    again = ApiCredential.objects.get(user__username="demo")
    assert again.encrypted_key == credential.encrypted_key
    assert SandboxAccount.objects.filter(label="demo").count() == 1
    saved = json.loads((tmp_path / "demo-login.json").read_text())
    assert saved.keys() == {"username", "password"}
    assert f"demo / {saved['password']}" in first.getvalue()
    assert User.objects.get(username="demo").check_password(saved["password"])
    assert "sk-sandbox" not in first.getvalue()
