"""Structured (JSON) logging for every process, one line per record."""

from __future__ import annotations

import logging
import sys
import time

import orjson

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
REDACTED_FIELDS = frozenset(
    {"idempotency_key", "token", "signature", "card", "email", "phone", "cookie"}
)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object with its ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record; sensitive field names are redacted."""
        fields = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                fields[key] = "[redacted]" if key in REDACTED_FIELDS else value
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(fields, default=str).decode()


def configure(level: str = "INFO") -> None:
    """Send JSON lines to stderr from ``level`` up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
