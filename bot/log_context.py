"""Structured logs that carry the request / message id from callback to outbound send.

The ids live in context variables: the callback route binds `request_id`, the pipeline
binds `message_id`, the outbox dispatcher binds `outbox_id`; every log line written
while they are bound carries them, in JSON (`log_format = "json"`) or in text. Across a
process boundary (the Redis queue) `snapshot()` / `bind(**ids)` carry them along.
"""

from __future__ import annotations

import contextvars
import json
import logging
import random
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

# The ids a log line may carry, in the order they are printed.
FIELDS = ("request_id", "message_id", "outbox_id", "account_id", "broadcast_id")

_vars: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"crmbot_{name}", default=None) for name in FIELDS
}

# Attributes every LogRecord has; anything else passed through `extra=` is logged too.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


def new_request_id() -> str:
    """A short random id for one inbound request (to correlate log lines, not a secret:
    no system call per callback)."""
    return f"{random.getrandbits(64):016x}"


@contextmanager
def bind(**ids: object) -> Iterator[None]:
    """Bind ids (None values are skipped) for the duration of the block."""
    tokens: list[tuple[contextvars.ContextVar[str | None], contextvars.Token[str | None]]] = []
    for name, value in ids.items():
        if name not in _vars:
            raise KeyError(f"unknown log context field {name!r}; known: {', '.join(FIELDS)}")
        if value is None:
            continue
        var = _vars[name]
        tokens.append((var, var.set(str(value))))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def snapshot() -> dict[str, str]:
    """The ids bound right now (to carry them through a queue to another process)."""
    return {name: value for name, var in _vars.items() if (value := var.get()) is not None}


def restore(ids: Mapping[str, str]) -> AbstractContextManager[None]:
    """Bind ids carried from another process; unknown names are ignored (newer senders)."""
    return bind(**{k: v for k, v in ids.items() if k in _vars})


class ContextFilter(logging.Filter):
    """Copies the bound ids onto every record so any formatter can use them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _vars.items():
            if not hasattr(record, name):
                setattr(record, name, var.get())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, bound ids, extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and key not in FIELDS and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable lines with the bound ids appended as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(
            f"{name}={value}" for name in FIELDS if (value := getattr(record, name, None))
        )
        return f"{line} [{ids}]" if ids else line


def configure_logging(log_format: str = "text", level: str = "INFO") -> None:
    """Install one stderr handler with the chosen format on the root logger."""
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
