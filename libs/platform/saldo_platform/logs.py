"""Logs: one JSON object per line on stderr, for every logger in the process (uvicorn's too).

Each line has `time` (ISO 8601, UTC), `level`, `logger`, `message` and `service`; `trace_id`
and `span_id` while an OpenTelemetry span is current; `correlation_id` while a command or an
event is being handled; `exc_info` (the traceback text) for an exception. A log shipper then
needs no parsing rules, and a line finds its trace by `trace_id`.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from opentelemetry import trace

from saldo_platform import context as saldo_context

# Loggers that libraries may have given handlers of their own (uvicorn's default config does):
# their records go to the root handler like everyone else's.
_LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.service:
            line["service"] = self.service
        # Formatted in the thread that logged (StreamHandler is synchronous), so the span and the
        # acting context are those of the code that wrote the record.
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            line["trace_id"] = format(span.trace_id, "032x")
            line["span_id"] = format(span.span_id, "016x")
        acting = saldo_context.current()
        if acting is not None:
            line["correlation_id"] = acting.correlation_id  # client-chosen: JSON-quoted, never raw
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every log record of this process to stderr as JSON lines, from `level` up.

    Call it before uvicorn starts and give uvicorn `log_config=None`, so it installs no
    plain-text handlers of its own.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    # aiokafka reports every rebalance and reconnection at INFO: only its warnings, unless DEBUG.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    # Python's warnings and uncaught exceptions would otherwise be plain text on stderr.
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind: type[BaseException], value: BaseException,
                  traceback: TracebackType | None) -> None:
    logging.getLogger("saldo").critical("uncaught %s", kind.__name__, exc_info=(kind, value, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or args.exc_type is SystemExit:  # as the default hook: silent
        return
    name = args.thread.name if args.thread else "?"
    logging.getLogger("saldo").critical("uncaught %s in thread %s", args.exc_type.__name__, name,
                                        exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
