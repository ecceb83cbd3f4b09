"""Log lines as `event key=value ...`: messages are stable event names, data rides in `extra`."""

import logging
import threading
import time

from django.http import HttpRequest

# Attributes every LogRecord has; anything else on a record came in through `extra`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if not extra:
            return line
        return (
            line + " " + " ".join(f"{key}={_shown(value)}" for key, value in sorted(extra.items()))
        )


def _shown(value) -> str:
    # A request (Django logs one with every 4xx and 5xx) by its method and path only: its
    # query string may hold a secret (`?token=...`), which a log must not keep.
    if isinstance(value, HttpRequest):
        return f"{value.method} {value.path}"
    return str(value)


class SampledRefusals(logging.Filter):
    """Lets one 401 line (a bad token, a missing one) through per `every_seconds` in this
    process; the next one says how many were held back since. A flood of bad tokens then
    writes a line a second, not one a request."""

    def __init__(self, every_seconds: float = 1.0) -> None:
        super().__init__()
        self.every_seconds = every_seconds
        self._next_at = 0.0
        self._held_back = 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) != 401:
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._next_at:
                self._held_back += 1
                return False
            self._next_at = now + self.every_seconds
            record.held_back, self._held_back = self._held_back, 0
        return True
