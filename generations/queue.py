"""The one module that imports django-q2: what the portal hands to its workers.

The scheduler's tasks carry no arguments at all: its loop (generations/jobs.py)
finds its work in the database. A password-reset mail carries the address
asked for, never a link or its token (the worker makes those).
"""

from django_q.tasks import async_task


def kick_scheduler(*, force: bool = False) -> None:
    """Have a worker run the scheduler loop, unless a live one will see the new work anyway."""
    from generations.models import SchedulerRunner

    if force or not SchedulerRunner.any_alive():
        async_task("generations.jobs.run_scheduler", task_name="pixverse-scheduler",
                   group="pixverse")


def on_worker_spawn(sender, **kwargs) -> None:
    """A worker process started (a new cluster, or one replacing a killed worker): start its loop.

    Connected to django-q2's post_spawn in apps.py, so a restarted cluster is
    back at work in seconds rather than at the next minute's schedule.
    """
    kick_scheduler(force=True)


def connect_worker_signals() -> None:
    from django_q.signals import post_spawn

    post_spawn.connect(on_worker_spawn, dispatch_uid="pixverse-scheduler-on-spawn")


def send_password_reset(email: str, *, domain: str, use_https: bool, language: str) -> None:
    """Have a worker mail a reset link to the accounts with this address, if there are any."""
    async_task("generations.accounts.send_password_reset_mail", email, domain, use_https, language,
               task_name="password-reset", group="accounts")


def read_list(name: str, credential_id: int) -> None:
    """Have a worker read one of PixVerse's lists (voices, templates) with this key."""
    async_task("generations.lists.read", name, credential_id, task_name=f"pixverse-{name}", group="pixverse")
