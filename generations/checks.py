"""System checks: misconfigurations that stop `manage.py check` (and --deploy) with a clear message."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.compatibility)
def check_task_timeouts(app_configs, **kwargs) -> list[Error]:
    retry, timeout = settings.Q_CLUSTER.get("retry"), settings.Q_CLUSTER.get("timeout")
    if retry is not None and timeout is not None and retry <= timeout:
        return [Error(
            f"django-q2's retry ({retry} s) is not greater than its timeout ({timeout} s).",
            hint="Set Q_RETRY above Q_TIMEOUT, or a slow task is handed to a second worker "
                 "while the first still runs it.",
            id="pixverse.E001",
        )]
    return []


@register(Tags.security, deploy=True)
def check_production_secrets(app_configs, **kwargs) -> list[Error]:
    errors = []
    if settings.PORTAL_ENCRYPTION_KEYS_GENERATED:
        errors.append(Error(
            "Members' PixVerse keys are encrypted with a key generated into the data folder.",
            hint="Set PORTAL_ENCRYPTION_KEYS (or PORTAL_ENCRYPTION_KEYS_FILE) in production, and "
                 "keep it safe: every web and worker process needs the same one.",
            id="pixverse.E002",
        ))
    if settings.SECRET_KEY_GENERATED:
        errors.append(Error(
            "SECRET_KEY was generated into the data folder.",
            hint="Set SECRET_KEY (or SECRET_KEY_FILE) in production, the same for every process.",
            id="pixverse.E003",
        ))
    return errors


@register(Tags.security, deploy=True)
def check_sandbox_in_production(app_configs, **kwargs) -> list[Error]:
    if settings.PIXVERSE_SANDBOX_ENABLED and not settings.PIXVERSE_SANDBOX_IN_PRODUCTION:
        return [Error(
            "The PixVerse sandbox is enabled: anyone who reaches the site can get keys and credits.",
            hint="Turn PIXVERSE_SANDBOX_ENABLED off in production, or set "
                 "PIXVERSE_SANDBOX_IN_PRODUCTION=true if this deployment is a demo.",
            id="pixverse.E004",
        )]
    return []


@register(Tags.staticfiles, deploy=True)
def check_static_manifest(app_configs, **kwargs) -> list[Error]:
    if settings.STATIC_HASHED and not settings.STATIC_MANIFEST.exists():
        return [Error(
            f"STATIC_HASHED is on but {settings.STATIC_MANIFEST} is missing: every page would fail.",
            hint="Run `manage.py collectstatic --no-input` (the image does it at build time), or "
                 "leave STATIC_HASHED unset to serve static/ under plain names.",
            id="pixverse.E005",
        )]
    return []
