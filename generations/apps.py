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
