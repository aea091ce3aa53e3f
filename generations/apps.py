from auditlog.apps import AuditlogConfig
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GenerationsConfig(AppConfig):
    name = "generations"
    verbose_name = _("Generations")
    default = True  # the app's own config: this module holds auditlog's too

    def ready(self) -> None:
        from generations import (
            audit,
            checks,  # noqa: F401  (registers the system checks)
            queue,
        )

        queue.connect_worker_signals()
        from django.db.models.signals import post_migrate

        from generations import roles

        post_migrate.connect(roles.ensure_groups, sender=self, dispatch_uid="generations-roles")
        audit.register_models()


class AuditLogConfig(AuditlogConfig):
    """django-auditlog, under a name in the portal's own catalog (auditlog has no Russian)."""

    verbose_name = _("Audit log")
