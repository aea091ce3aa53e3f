"""Which video links the worker may fetch.

A status answer names the URL of the finished video, and the worker
downloads it and serves the copy to members. A server that is not what it
claims to be (or a bug) could name an address inside our own network (the
database, a cloud metadata service) and have us fetch it: so only https is
fetched, plain http only when PIXVERSE_BASE_URL itself is http (the local
sandbox), and never a private, loopback or link-local address unless the
base URL's own host is one (the local run). Redirects are checked the same
way at each hop (generations/jobs.py follows them one by one).
"""

import ipaddress
import socket
from functools import cache
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeURL(Exception):
    """A link the worker refuses to fetch; the message says why (no secret in it)."""


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The host's addresses; none when it does not resolve (then it cannot be fetched either)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def _is_internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (address.is_private or address.is_loopback or address.is_link_local
            or address.is_reserved or address.is_multicast or address.is_unspecified)


@cache
def _base_url_is_internal(base_url: str) -> bool:
    return any(_is_internal(a) for a in _addresses(urlsplit(base_url).hostname or ""))


def check_video_url(url: str) -> None:
    """Raise UnsafeURL unless the worker may fetch this link."""
    parts = urlsplit(url)
    base = settings.PIXVERSE_BASE_URL
    allowed_schemes = {"https", "http"} if urlsplit(base).scheme == "http" else {"https"}
    if parts.scheme not in allowed_schemes:
        raise UnsafeURL(f"the scheme {parts.scheme or 'none'!r} is not allowed")
    if not parts.hostname:
        raise UnsafeURL("the link has no host")
    if parts.username or parts.password:
        raise UnsafeURL("the link carries credentials")
    if _base_url_is_internal(base):
        return  # the local run: the sandbox itself lives on loopback
    if any(_is_internal(a) for a in _addresses(parts.hostname)):
        raise UnsafeURL(f"the host {parts.hostname!r} is an internal address")
