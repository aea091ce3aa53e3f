"""Request plumbing: a request id for every log line, a cap on request size, the
sign-in redirect of an htmx request, no shared caching of members' pages, and the
reader's time zone."""

import functools
import re
import uuid
import zoneinfo
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.urls import Resolver404, ResolverMatch, resolve, reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control, patch_vary_headers
from django_htmx.http import HttpResponseClientRedirect

from pixverse_site.logcontext import log_context

# A proxy's id is kept if it looks like one; anything else is replaced.
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{8,100}$")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request.id = given if _SANE_ID.match(given) else uuid.uuid4().hex
        with log_context(request_id=request.id):
            response = self.get_response(request)
        response["X-Request-ID"] = request.id
        return response


class HtmxSignInRedirectMiddleware:
    """Send the browser, not htmx, to the sign-in page when an htmx request has no session.

    htmx follows a 302 itself and would swap the whole sign-in page into a job
    card or the form. HX-Redirect makes the browser go there instead, and sign-in
    brings the member back to the page they were on (HX-Current-URL), not to
    the fragment's URL. Plain requests keep their 302.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code != 302 or not request.htmx:
            return response
        if urlsplit(response["Location"]).path != resolve_url(settings.LOGIN_URL):
            return response
        if request.method == "GET" and request.headers.get("X-Portal-Background") == "1":
            # A poll, or a request following the member's typing (portal.js marks them):
            # the page is not taken away from under them; it says the session ended.
            response = HttpResponse(status=200)
            response["HX-Reswap"] = "none"
            response["HX-Trigger"] = "portal:session-ended"
            patch_vary_headers(response, ["HX-Request", "X-Portal-Background"])
            return response
        # current_url_abs_path is None unless the page is on this very site.
        back = request.htmx.current_url_abs_path or request.get_full_path()
        # "expired": a page already open lost its session (the sign-in page says so, even
        # when the page was the dashboard, whose "next" alone says nothing).
        response = HttpResponseClientRedirect(redirect_to_login(back).url + "&expired=1")
        patch_vary_headers(response, ["HX-Request"])
        return response


# The reader's time zone: the browser's (portal.js writes it) or the one chosen on the
# account page (which also sets TIME_ZONE_CHOSEN_COOKIE, so the script leaves it alone).
TIME_ZONE_COOKIE = "portal_tz"
TIME_ZONE_CHOSEN_COOKIE = "portal_tz_chosen"


@functools.cache
def known_time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class TimeZoneMiddleware:
    """Show times in the reader's time zone; a cookie naming no zone is ignored (UTC)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        name = request.COOKIES.get(TIME_ZONE_COOKIE, "")
        if name in known_time_zones():
            timezone.activate(zoneinfo.ZoneInfo(name))
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


class PrivatePagesMiddleware:
    """Keep what a signed-in member is sent out of shared caches: Cache-Control private,
    and whole pages out of the browser's history cache too (no-store).

    Only a session that was read already says who asked: reading it here would
    cost a query on paths that never look at it (/healthz, the sandbox's API).
    A read session also makes SessionMiddleware add Vary: Cookie. Responses that
    set their own Cache-Control (a job card, S3 links) keep it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if (session is not None and session.accessed and not response.has_header("Cache-Control")
                and request.user.is_authenticated):
            patch_cache_control(response, private=True, no_cache=True)
            html = response.get("Content-Type", "").startswith("text/html")
            if html and not getattr(request, "htmx", False):
                # A page is never kept: Back after starting a video must show it, and browsers
                # reuse a "no-cache" page on Back without asking (only no-store stops them).
                patch_cache_control(response, no_store=True)
        return response


def resolve_or_none(path: str) -> ResolverMatch | None:
    try:
        return resolve(path)
    except Resolver404:
        return None


class RequestSizeLimitMiddleware:
    """Refuse a request body larger than PORTAL_MAX_REQUEST_BYTES before it is read.

    Django caps form fields but not uploaded files; without this a client
    could fill the disk with one upload. Last in MIDDLEWARE: nothing before it
    reads the body (CSRF reads it only in the view phase), and the member and
    their language are known, so the image form can answer with its message
    next to the image field (generations.views.image_too_large).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.PORTAL_MAX_REQUEST_BYTES:
            return self.refuse(request)
        return self.get_response(request)

    @staticmethod
    def refuse(request: HttpRequest) -> HttpResponse:
        from generations import roles, views

        # The forms' own answers only for members who may use them (not guests).
        if request.user.is_authenticated and roles.may_generate(request.user):
            if request.path_info == reverse("create-image"):
                return views.image_too_large(request)
            match = resolve_or_none(request.path_info)
            if match and match.url_name == "create":
                return views.upload_too_large(request, match.kwargs["kind"])
        return views.request_too_large(request)
