from django.conf import settings
from django.http import HttpRequest


def portal(request: HttpRequest) -> dict:
    from generations import roles

    return {"signup_enabled": settings.PORTAL_SIGNUP_ENABLED,
            # Lazily: only pages and cards with a Remix or a form ask.
            "may_generate": lambda: roles.may_generate_shown(request)}
