"""Run the whole portal in one terminal: the web server (with the sandbox) and a worker.

Ctrl-C stops both; if either stops by itself, the other is stopped too and
the command exits with an error, so a broken half is never left running.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

GRACE_SECONDS = 10


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    """Ask each child to stop, then kill whatever of its process group is left."""
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for process in processes.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        # qcluster forks workers; if it was stopped mid-start they can outlive it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class Command(BaseCommand):
    help = "Start the web server and a django-q2 worker cluster together."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        # Each child leads its own process group, so a terminal's Ctrl-C reaches
        # only this command, which then stops each child exactly once.
        processes = {
            "web": subprocess.Popen([*manage, "runserver", "--noreload", options["addrport"]],
                                    start_new_session=True),
            "worker": subprocess.Popen([*manage, "qcluster"], start_new_session=True),
        }
        stopping = False

        def request_stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        exit_code = 0
        try:
            while not stopping:
                for name, process in processes.items():
                    if process.poll() is not None:
                        self.stderr.write(f"{name} stopped (exit {process.returncode}); "
                                          "stopping the rest.")
                        exit_code = 1
                        stopping = True
                time.sleep(0.2)
        finally:
            self.stdout.write("Stopping the web server and the worker…")
            _stop(processes)
        sys.exit(exit_code)
