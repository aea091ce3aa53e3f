from django.contrib import admin
from django.urls import include, path

from pixverse_site import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    # Always routed; every sandbox view answers 404 unless PIXVERSE_SANDBOX_ENABLED.
    path("sandbox/", include("generations.sandbox.urls")),
    path("", include("generations.urls")),
]
