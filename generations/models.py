"""The portal's data."""

from django.db import models


class RateLimitSlot(models.Model):
    """The next free request slot of one API key, shared by every process.

    See generations/ratelimit.py. The key itself is never stored, only its hash.
    """

    key_hash = models.CharField(max_length=64, primary_key=True)
    # Seconds since the epoch; a float keeps sub-second slots exact enough.
    next_at = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return f"{self.key_hash[:12]}… next at {self.next_at:.3f}"
