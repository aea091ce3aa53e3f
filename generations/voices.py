"""PixVerse's lip-sync voices, read from the API once a day and shared by every process.

The list belongs to the service, not to a key, so it is cached per base URL
(in Redis where there is one). A member opening the lip-sync form waits at
most a moment for it: when PixVerse cannot be asked now, the form offers
PixVerse's automatic voice and asks again a minute later.
"""

import hashlib
import logging

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext

from generations.crypto import CannotDecrypt
from generations.pixverse import PixVerseError

logger = logging.getLogger(__name__)

VOICES_TTL = 24 * 3600
RETRY_AFTER = 60
# At most this long for a request slot of the member's key: the page is waiting.
MAX_WAIT = 2.0


def _cache_key() -> str:
    return "pixverse:voices:" + hashlib.sha256(settings.PIXVERSE_BASE_URL.encode()).hexdigest()[:32]


def fallback() -> list[tuple[str, str]]:
    return [("Auto", gettext("Automatic"))]


def voices(credential) -> list[tuple[str, str]]:
    """(speaker id, name) for each voice; PixVerse's automatic one when the list cannot be read."""
    known = cache.get(_cache_key())
    if known is not None:
        return [tuple(voice) for voice in known] or fallback()
    if credential is None:
        return fallback()
    try:
        client = credential.client(max_wait=MAX_WAIT)
        read = [(voice.speaker_id, voice.name) for voice in client.tts_speakers()]
    except (PixVerseError, CannotDecrypt) as error:
        logger.info("the lip-sync voices could not be read: %s", getattr(error, "kind", type(error).__name__))
        cache.set(_cache_key(), [], RETRY_AFTER)
        return fallback()
    cache.set(_cache_key(), read, VOICES_TTL)
    return read or fallback()
