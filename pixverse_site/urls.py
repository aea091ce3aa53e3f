from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # Always routed; every sandbox view answers 404 unless PIXVERSE_SANDBOX_ENABLED.
    path("sandbox/", include("generations.sandbox.urls")),
    path("", include("generations.urls")),
]
