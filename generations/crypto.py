"""Encryption at rest for members' PixVerse keys (Fernet, rotatable with MultiFernet).

PORTAL_ENCRYPTION_KEYS lists Fernet keys, newest first: new values are
encrypted with the first, and any of them decrypts. To rotate, put a new key
in front and run `manage.py rotate_encryption_keys`, then drop the old key.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CannotDecrypt(Exception):
    """The stored value was encrypted with a key that is no longer configured."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError) as e:
        raise ImproperlyConfigured(f"PORTAL_ENCRYPTION_KEYS: not a list of Fernet keys ({e})") from e


def _current() -> MultiFernet:
    return _fernet(tuple(settings.PORTAL_ENCRYPTION_KEYS))


def encrypt(value: str) -> str:
    return _current().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken:
        raise CannotDecrypt("no configured encryption key opens this value") from None


def reencrypt(token: str) -> str:
    """The same value, encrypted with the newest key."""
    try:
        return _current().rotate(token.encode()).decode()
    except InvalidToken:
        raise CannotDecrypt("no configured encryption key opens this value") from None
