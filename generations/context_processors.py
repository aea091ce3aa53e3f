from django.conf import settings
from django.http import HttpRequest


def portal(request: HttpRequest) -> dict:
    return {"signup_enabled": settings.PORTAL_SIGNUP_ENABLED}
