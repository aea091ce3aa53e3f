"""Prepare the local run: a demo member with a sandbox key, and print the login.

Idempotent: the demo login is kept in the git-ignored data folder and reused
on every start, so a browser that is signed in stays signed in.
"""

import json
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from generations.sandbox.models import SandboxAccount, hash_key

DEMO_USERNAME = "demo"


class Command(BaseCommand):
    help = "Create or refresh the demo member of the local run and print its login."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args: Any, **options: Any) -> None:
        path = settings.DATA_DIR / "demo-login.json"
        saved = json.loads(path.read_text()) if path.exists() else {}
        password = saved.get("password") or secrets.token_urlsafe(9)
        raw_key = saved.get("sandbox_key")
        if not raw_key or not SandboxAccount.objects.filter(key_hash=hash_key(raw_key)).exists():
            _, raw_key = SandboxAccount.issue("demo")

        User = get_user_model()
        user, _ = User.objects.get_or_create(username=DEMO_USERNAME)
        user.is_staff = user.is_superuser = True
        if not user.check_password(password):
            user.set_password(password)
        user.save()

        path.write_text(json.dumps({"username": DEMO_USERNAME, "password": password,
                                    "sandbox_key": raw_key}))
        path.chmod(0o600)
        self.stdout.write(self.style.SUCCESS(
            f"\n  PixVerse portal: {options['url']}\n"
            f"  Demo login:      {DEMO_USERNAME} / {password}\n"
            f"  Sandbox key for the CLI is in {path}\n"
        ))
