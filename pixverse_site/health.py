"""/healthz: is this deployment able to do its work? For load balancers and the image's HEALTHCHECK.

200 when the database answers, the broker answers and the workers' heartbeat
is recent; 503 naming what is down otherwise. Anyone may ask, so the answer
names only the part that is down: an error's text can carry the database's
host, port and role, and goes to the log for the operator.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

# The heartbeat comes from a schedule that runs every minute, checked every ~30 s.
HEARTBEAT_MAX_AGE = timedelta(minutes=3)


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _broker() -> str:
    if settings.REDIS_URL:
        from django_q.brokers import get_broker

        get_broker().ping()
    else:
        from django_q.models import OrmQ

        OrmQ.objects.exists()
    return "ok"


def _worker() -> str:
    from generations.models import WorkerHeartbeat

    beat = WorkerHeartbeat.last()
    if beat is None:
        raise RuntimeError("no heartbeat yet")
    age = timezone.now() - beat
    if age > HEARTBEAT_MAX_AGE:
        raise RuntimeError(f"last heartbeat {int(age.total_seconds())} s ago")
    return "ok"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    report = {}
    for name, check in (("database", _database), ("broker", _broker), ("worker", _worker)):
        try:
            report[name] = check()
        except Exception as error:  # any failure is "down"; what it was, only in the log
            logger.warning("health check: %s is down: %s: %s", name, type(error).__name__, error)
            report[name] = "down"
    healthy = all(value == "ok" for value in report.values())
    return JsonResponse({"status": "ok" if healthy else "down", **report},
                        status=200 if healthy else 503)
