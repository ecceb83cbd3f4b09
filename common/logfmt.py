"""Log lines as `event key=value ...`: messages are stable event names, data rides in `extra`."""

import logging

# Attributes every LogRecord has; anything else on a record came in through `extra`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if not extra:
            return line
        return line + " " + " ".join(f"{key}={value}" for key, value in sorted(extra.items()))
