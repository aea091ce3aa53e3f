"""The portal's URLs plus a bare view, the baseline bench/cards.py compares the job card with."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path

from pixverse_site.urls import urlpatterns as portal_urlpatterns


@login_required
def bare(request: HttpRequest) -> HttpResponse:
    # Same middleware and the same session and user lookups as the card; no query of its own.
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/bare/", bare), *portal_urlpatterns]
