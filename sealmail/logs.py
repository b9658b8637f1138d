"""Logging set-up for ``sealmail serve``: text or JSON lines; never message content.

Every line carries ``queue_id`` and ``tenant`` when the code that logs is handling a
message (:mod:`core.logcontext`): JSON has them as fields, text as ``key=value`` at the end.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TextIO

from core import logcontext

_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields (queue_id, tenant, ...) are kept."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = {
            k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")
        }
        if extras:
            base += " " + " ".join(f"{k}={v}" for k, v in sorted(extras.items()))
        return base


class ContextFilter(logging.Filter):
    """Adds the queue id and tenant of the message being handled (when known); a value
    given explicitly with ``extra=`` wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in logcontext.current().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class _DropLoginDataNotice(logging.Filter):
    """aiosmtpd itself sets the deprecated ``Session.login_data`` on every AUTH and warns
    about its own use; the warning tells an operator nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


def setup_logging(fmt: str, level: str, stream: TextIO | None = None) -> logging.Handler:
    """Replace the root logger's handlers with one writing to ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiosmtpd logs each command (it would log addresses at info); keep it to warnings
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    logging.getLogger("mail.log").addFilter(_DropLoginDataNotice())
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # database drivers log statements with their parameters (addresses) at debug; the AWS
    # SDK logs where it found credentials at info
    for name in ("aiosqlite", "asyncpg", "sqlalchemy.engine", "botocore", "boto3", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
