"""The portal's data."""

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from generations import crypto

if TYPE_CHECKING:
    from generations.pixverse import PixVerseClient


class RateLimitSlot(models.Model):
    """The next free request slot of one API key, shared by every process.

    See generations/ratelimit.py. The key itself is never stored, only its hash.
    """

    key_hash = models.CharField(max_length=64, primary_key=True)
    # Seconds since the epoch; a float keeps sub-second slots exact enough.
    next_at = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return f"{self.key_hash[:12]}… next at {self.next_at:.3f}"


class ApiCredential(models.Model):
    """A member's own PixVerse key, encrypted at rest; only its last four characters show.

    The key is decrypted only to build a PixVerseClient (client()); nothing
    else reads it, so it cannot reach a page, a log line or a task argument.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pixverse_credential"
    )
    encrypted_key = models.TextField(editable=False)
    last4 = models.CharField(_("key ends with"), max_length=4, editable=False)
    verified_at = models.DateTimeField(_("verified"), null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("PixVerse key")
        verbose_name_plural = _("PixVerse keys")

    def __str__(self) -> str:
        return f"…{self.last4}"

    def __repr__(self) -> str:
        return f"<ApiCredential user={self.user_id} …{self.last4}>"

    @property
    def masked(self) -> str:
        return f"••••{self.last4}"

    def set_key(self, raw_key: str) -> None:
        raw_key = raw_key.strip()
        self.encrypted_key = crypto.encrypt(raw_key)
        self.last4 = raw_key[-4:]

    def client(self, **kwargs) -> "PixVerseClient":
        from generations.pixverse import PixVerseClient

        return PixVerseClient(crypto.decrypt(self.encrypted_key), **kwargs)

    def reencrypt(self) -> bool:
        """Encrypt with the newest key; True when the stored value changed."""
        token = crypto.reencrypt(self.encrypted_key)
        if token == self.encrypted_key:
            return False
        ApiCredential.objects.filter(pk=self.pk).update(encrypted_key=token)
        self.encrypted_key = token
        return True
