from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GenerationsConfig(AppConfig):
    name = "generations"
    verbose_name = _("Generations")

    def ready(self) -> None:
        from generations import (
            checks,  # noqa: F401  (registers the system checks)
            queue,
        )

        queue.connect_worker_signals()
        from django.db.models.signals import post_migrate

        from generations import roles

        post_migrate.connect(roles.ensure_groups, sender=self, dispatch_uid="generations-roles")
