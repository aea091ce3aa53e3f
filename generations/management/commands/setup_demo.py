"""Prepare the local run: a demo member with a stored sandbox key, and print the login.

Idempotent: the demo password is kept in the git-ignored data folder and
reused on every start, so a browser that is signed in stays signed in; the
demo's sandbox key lives only encrypted, as every member's key does.
"""

import json
import secrets
from typing import Any
from urllib.parse import urljoin

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.urls import reverse

from generations import roles
from generations.models import ApiCredential
from generations.sandbox.models import SandboxAccount

DEMO_USERNAME = "demo"


class Command(BaseCommand):
    help = "Create or refresh the demo member of the local run and print its login."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args: Any, **options: Any) -> None:
        path = settings.DATA_DIR / "demo-login.json"
        saved = json.loads(path.read_text()) if path.exists() else {}
        password = saved.get("password") or secrets.token_urlsafe(9)

        User = get_user_model()
        user, _ = User.objects.get_or_create(username=DEMO_USERNAME)
        # The local run's only member: staff, so the admin can be tried too.
        user.is_staff = user.is_superuser = True
        if not user.check_password(password):
            user.set_password(password)
        user.save()
        if roles.role_of(user) not in roles.STAFF_ROLES:
            roles.set_role(user, roles.Role.OWNER)

        credential = ApiCredential.objects.filter(user=user).first()
        has_sandbox_key = credential is not None and SandboxAccount.objects.filter(
            label=DEMO_USERNAME, key_last4=credential.last4
        ).exists()
        if not has_sandbox_key:
            _, raw_key = SandboxAccount.issue(DEMO_USERNAME)
            credential = credential or ApiCredential(user=user)
            credential.set_key(raw_key)
            credential.save()
        # With PIXVERSE_WEBHOOK_SECRET set, the local run takes the sandbox's webhooks
        # as a deployment takes PixVerse's; without it, the sandbox sends none.
        secret = settings.PIXVERSE_WEBHOOK_SECRET
        SandboxAccount.objects.filter(label=DEMO_USERNAME, key_last4=credential.last4).update(
            webhook_url=urljoin(options["url"], reverse("pixverse-webhook")) if secret else "",
            webhook_secret=secret,
        )

        path.write_text(json.dumps({"username": DEMO_USERNAME, "password": password}))
        path.chmod(0o600)
        self.stdout.write(self.style.SUCCESS(
            f"\n  PixVerse portal: {options['url']}\n"
            f"  Demo login:      {DEMO_USERNAME} / {password}\n"
            f"  Try the API:     .venv/bin/python manage.py pixverse --user {DEMO_USERNAME} balance\n"
        ))
