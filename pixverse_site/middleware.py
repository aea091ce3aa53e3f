"""Request plumbing: a request id for every log line, and a cap on request size."""

import re
import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

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


class RequestSizeLimitMiddleware:
    """Refuse a request body larger than PORTAL_MAX_REQUEST_BYTES before it is read.

    Django caps form fields but not uploaded files; without this a client
    could fill the disk with one upload.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.PORTAL_MAX_REQUEST_BYTES:
            limit = settings.PORTAL_MAX_REQUEST_BYTES // (1024 * 1024)
            return HttpResponse(
                _("The request is too large; the limit is %(mb)s MB.") % {"mb": limit},
                status=413, content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)
