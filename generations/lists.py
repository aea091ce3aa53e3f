"""What PixVerse lists for the forms: the lip-sync voices and an account's effect templates.

Read by a worker, never while a page waits (a form shown before the list is
known offers what needs none: the automatic voice, no template), and kept a
day, shared by every process (in Redis where there is one). Voices belong to
the service, cached per base URL; templates are activated per PixVerse
account, cached per key. A list that cannot be read is asked for again a
minute later.
"""

import hashlib
import logging

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext

from generations import queue
from generations.crypto import CannotDecrypt
from generations.pixverse import PixVerseError

logger = logging.getLogger(__name__)

LIST_TTL = 24 * 3600
RETRY_AFTER = 60


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _voices_key(credential=None) -> str:
    return "pixverse:voices:" + _digest(settings.PIXVERSE_BASE_URL)


def _templates_key(credential) -> str:
    return "pixverse:templates:" + _digest(f"{settings.PIXVERSE_BASE_URL} {credential.key_hash}")


_READERS = {
    "voices": (_voices_key, lambda client: [(v.speaker_id, v.name) for v in client.tts_speakers()]),
    "templates": (_templates_key, lambda client: [
        {"id": t.template_id, "name": t.name, "qualities": list(t.qualities) if t.qualities else None}
        for t in client.effect_templates() if t.activated is not False]),
}


def _known(name: str, credential) -> list | None:
    """The list as last read; when unknown, a worker is asked to read it (once a minute)."""
    cache_key = _READERS[name][0](credential)
    known = cache.get(cache_key)
    if known is None and cache.add(f"{cache_key}:asked", True, RETRY_AFTER):
        queue.read_list(name, credential.pk)
    return known


def read(name: str, credential_id: int) -> None:
    """A worker's task: read one list with this key and keep it (ids only in the payload)."""
    from generations.models import ApiCredential

    credential = ApiCredential.objects.filter(pk=credential_id).first()
    if credential is None:
        return
    cache_key, read_with = _READERS[name]
    try:
        found = read_with(credential.client())
    except (PixVerseError, CannotDecrypt) as error:
        logger.info("the PixVerse %s list could not be read: %s", name,
                    getattr(error, "kind", type(error).__name__))
        return
    cache.set(cache_key(credential), found, LIST_TTL)


def voices(credential) -> list[tuple[str, str]]:
    """(speaker id, name) for each voice; PixVerse's automatic one while the list is unknown."""
    found = _known("voices", credential) if credential else None
    return [tuple(voice) for voice in found] if found else [("Auto", gettext("Automatic"))]


def templates(credential) -> list[dict]:
    """The effect templates this key's account may use: {"id", "name", "qualities"} each
    (qualities None where PixVerse does not say); none while the list is unknown."""
    return (_known("templates", credential) or []) if credential else []
