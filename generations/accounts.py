"""Accounts: what sign-in lockouts (django-axes), sign-up and password reset need from the portal.

django-axes counts failed sign-ins per user name and client address together,
in the database; the functions here tell it which user name and which address
a request is (settings.py names them). Sign-up refuses user names that look
like an existing one. Password-reset mail is limited per address and per
client, and sent by a worker (send_password_reset_mail, queued through
generations/queue.py).
"""

import hashlib
import unicodedata
from datetime import timedelta
from functools import cache

from axes.backends import AxesStandaloneBackend
from confusable_homoglyphs import categories, confusables
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm, UsernameField
from django.http import HttpRequest
from django.utils import timezone, translation

# --- Sign-in lockouts -------------------------------------------------------------------------------


def signin_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """The user name a sign-in is for, as Django's sign-in form reads it (AXES_USERNAME_CALLABLE).

    Stripped and NFKC-normalised exactly like the form's field, so " member1",
    "member1\\t" and member1 in fullwidth letters share member1's counter. Not casefolded:
    Django's ModelBackend tells "Member1" from "member1", so the counter does too.
    """
    field = get_user_model().USERNAME_FIELD
    raw = (credentials or {}).get(field)
    if raw is None and request is not None:
        raw = request.POST.get(field)
    max_length = get_user_model()._meta.get_field(field).max_length or 254
    return UsernameField(max_length=max_length).to_python(raw) or None


def client_address(request: HttpRequest) -> str | None:
    """The client's address (AXES_CLIENT_IP_CALLABLE, and the password-reset limit).

    Behind PORTAL_TRUSTED_PROXY_COUNT proxies, each appending the address it
    was reached from to X-Forwarded-For, the client is the entry that many
    places from the right; whatever stands left of it the client wrote itself.
    """
    count = settings.PORTAL_TRUSTED_PROXY_COUNT
    if count:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [hop for hop in hops if hop]
        if len(hops) >= count:
            return hops[-count][:45]
    return request.META.get("REMOTE_ADDR")


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' check that refuses a locked-out sign-in, for sign-ins that come with a request.

    Every sign-in from outside reaches authenticate() through a view, with its
    request; only code inside the process (the test client's login(), a shell)
    comes without one, and has no client to count.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


# --- Sign-up: user names that look alike ------------------------------------------------------------

def _homoglyphs(char: str) -> list[str]:
    found = confusables.is_confusable(char, greedy=True)
    # The library wraps right-to-left glyphs in direction marks.
    return [glyph["c"].strip("\u200e\u200f") for glyph in found[0]["homoglyphs"]] if found else []


@cache
def _prototype(char: str) -> str:
    """The character (or characters) Unicode's confusables map char to: TR39's skeleton, one step.

    The library lists, for each character, what it can be confused with: a
    look-alike lists only its prototype; a prototype lists all its look-alikes.
    """
    glyphs = _homoglyphs(char)
    if len(glyphs) != 1:
        return char
    target = glyphs[0]
    if len(target) > 1 or len(_homoglyphs(target)) > 1:
        return target
    # Two characters that only list each other: either may be the prototype; both map to one.
    return min(char, target)


def _skeleton(text: str) -> str:
    nfd = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", "".join(_prototype(c) for c in nfd))


def lookalike_keys(username: str) -> set[str]:
    """What two user names share when they look alike: NFKC, casefolded, Unicode's skeleton.

    Casefolding before the skeleton joins "Demo" and "demo"; after it, "Ivan"
    and "lvan" (capital I looks like l, which casefolding first would hide).
    """
    name = unicodedata.normalize("NFKC", username)
    return {_skeleton(name.casefold()), _skeleton(name).casefold()}


def username_looks_taken(username: str) -> bool:
    """Whether an existing account's user name looks like this one.

    Every name is compared (no stored skeleton to index): sign-up is rare and a team is small.
    """
    keys = lookalike_keys(username)
    names = get_user_model().objects.values_list(get_user_model().USERNAME_FIELD, flat=True)
    return any(keys & lookalike_keys(name) for name in names.iterator())


# TR39's "highly restrictive" mixes: Latin with the scripts written together in Japanese,
# Chinese or Korean (none of them has letters that pass for Latin ones).
_ALLOWED_SCRIPT_MIXES = [{"LATIN", "HAN", "HIRAGANA", "KATAKANA"}, {"LATIN", "HAN", "BOPOMOFO"},
                         {"LATIN", "HAN", "HANGUL"}]


def mixes_scripts(username: str) -> bool:
    """Whether a user name mixes alphabets (Latin and Cyrillic, say); digits and marks belong to all."""
    scripts = categories.unique_aliases(username) - {"COMMON", "INHERITED"}
    return len(scripts) > 1 and not any(scripts <= allowed for allowed in _ALLOWED_SCRIPT_MIXES)


# --- Password reset ---------------------------------------------------------------------------------

PASSWORD_RESET_WINDOW = timedelta(hours=1)


def _digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def password_reset_allowed(email: str, client: str | None) -> bool:
    """Whether a reset mail to this address, asked for by this client, is within the hourly limits.

    An allowed one is counted. The address is compared as Django finds its
    accounts (case-insensitively); only hashes are stored.
    """
    from generations.models import PasswordResetRequest

    since = timezone.now() - PASSWORD_RESET_WINDOW
    PasswordResetRequest.objects.filter(created__lt=since).delete()
    email_hash = _digest("email", unicodedata.normalize("NFKC", email).casefold())
    client_hash = _digest("client", client or "")
    recent = PasswordResetRequest.objects.filter(created__gte=since)
    # Two requests at the same instant may both pass: a mailbox gets at most one mail more.
    if (recent.filter(email_hash=email_hash).count() >= settings.PORTAL_PASSWORD_RESETS_PER_ADDRESS
            or recent.filter(client_hash=client_hash).count() >= settings.PORTAL_PASSWORD_RESETS_PER_CLIENT):
        return False
    PasswordResetRequest.objects.create(email_hash=email_hash, client_hash=client_hash)
    return True


def send_password_reset_mail(email: str, domain: str, use_https: bool, language: str) -> None:
    """The worker's task: mail a reset link to each active account with this address, if any.

    The link's token is made here, so no task argument or result holds it.
    """
    form = PasswordResetForm({"email": email})
    if not form.is_valid():
        return
    with translation.override(language):
        form.save(domain_override=domain, use_https=use_https)
