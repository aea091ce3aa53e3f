from django.conf import settings
from django.http import HttpRequest


def portal(request: HttpRequest) -> dict:
    from generations import roles

    user = getattr(request, "user", None)
    return {"signup_enabled": settings.PORTAL_SIGNUP_ENABLED,
            # Lazily: most answers (cards, polls) never ask.
            "may_generate": (lambda: roles.may_generate(user)) if user is not None else False}
