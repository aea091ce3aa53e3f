from django.contrib import admin
from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path

from pixverse_site import health


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    # At request time: the static file's hashed name is known once collectstatic ran.
    return HttpResponsePermanentRedirect(static("favicon.svg"))


urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    # Browsers ask for it on pages without an icon link (the admin's): no 404 in their console.
    path("favicon.ico", favicon),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    # Always routed; every sandbox view answers 404 unless PIXVERSE_SANDBOX_ENABLED.
    path("sandbox/", include("generations.sandbox.urls")),
    path("", include("generations.urls")),
]
