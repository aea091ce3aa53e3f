"""Re-encrypt every stored PixVerse key with the newest PORTAL_ENCRYPTION_KEYS key."""

from typing import Any

from django.core.management.base import BaseCommand

from generations.crypto import CannotDecrypt
from generations.models import ApiCredential


class Command(BaseCommand):
    help = "Re-encrypt stored API keys with the first of PORTAL_ENCRYPTION_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        changed = failed = 0
        for credential in ApiCredential.objects.all().iterator():
            try:
                changed += credential.reencrypt()
            except CannotDecrypt:
                failed += 1
                self.stderr.write(f"user {credential.user_id}: no configured key opens it")
        self.stdout.write(f"{changed} re-encrypted, {failed} unreadable")
        if failed:
            raise SystemExit(1)
