from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("generations.urls")),
]

if settings.PIXVERSE_SANDBOX_ENABLED:
    urlpatterns.append(path("sandbox/", include("generations.sandbox.urls")))
