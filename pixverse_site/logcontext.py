"""What every log line carries: the request id, and the generation and trace id being worked on.

One line per event, never a key: the filter adds only these ids, and the
JSON formatter (LOG_FORMAT=json) writes one object per line for log shippers.
"""

import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator

_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("log_context", default=None)
FIELDS = ("request_id", "generation_id", "trace_id")


@contextlib.contextmanager
def log_context(**ids) -> Iterator[None]:
    """Within this block, log lines carry these ids (added to any already set)."""
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current_request_id() -> str | None:
    """The id of the request being answered (the audit log's correlation id), if any."""
    return (_context.get() or {}).get("request_id")


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        current = _context.get() or {}
        for name in FIELDS:
            setattr(record, name, current.get(name, "-"))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({name: getattr(record, name, "-") for name in FIELDS})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
