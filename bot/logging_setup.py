"""Logging for the process: text (default) or one JSON object a line (LOG_FORMAT=json); no secret in any line.

The request a line belongs to is known through context variables: the Slack event id (set by a Bolt middleware) and
the request record id (set when the gate admits or refuses). Each Bolt listener runs in a task of its own, which
starts with a copy of the context, so a line never carries another request's ids.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime

EVENT_ID: ContextVar[str | None] = ContextVar("slack_event_id", default=None)
RECORD_ID: ContextVar[int | None] = ContextVar("request_record_id", default=None)


class RedactSecrets(logging.Filter):
    """Replaces every configured secret (tokens, signing secret, API keys) in log messages."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


# Loggers that write request and response bodies at DEBUG (prompts, answers, Slack payloads): on only when
# LOG_LEVEL=DEBUG and LOG_PROMPTS=true, since prompt text is not kept anywhere else unless LOG_PROMPTS is set.
PAYLOAD_LOGGERS = ("slack_sdk.web", "slack_sdk.socket_mode", "slack_bolt", "anthropic", "websockets")
# SQL with its parameters and rows (INFO already echoes them), and psycopg's connection attempts (host, database):
# WARNING unless LOG_LEVEL=DEBUG and LOG_PROMPTS=true
SQL_LOGGERS = ("sqlalchemy.engine", "sqlalchemy.pool", "psycopg")
# Library chatter: Alembic's plugin set-up, per-request SQL, one INFO line per HTTP request (httpx, under the
# Anthropic SDK). Only with LOG_LEVEL=DEBUG.
CHATTY_LOGGERS = ("alembic", "httpx", "httpcore", "httpx2", "httpcore2", "apscheduler", "matplotlib")
# slack_sdk's Web API clients write "A retry handler found: …" at INFO for each retry, but only while their own
# logger's level is NOTSET or DEBUG: WARNING silences those lines (and nothing above INFO) unless LOG_LEVEL=DEBUG.
RETRY_NOTICE_LOGGERS = ("slack_sdk.web.async_base_client", "slack_sdk.web.base_client")


class JsonLines(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the request's record_id and
    event_id where known, and the exception's traceback as one string field."""

    def __init__(self, redact: RedactSecrets) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        record_id, event_id = RECORD_ID.get(), EVENT_ID.get()
        if record_id is not None:
            line["record_id"] = record_id
        if event_id is not None:
            line["event_id"] = event_id
        if record.exc_info:
            line["exception"] = self.redact.redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = self.redact.redact(record.exc_text)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: int, secrets: Iterable[str], *, log_prompts: bool = False,
                      log_format: str = "text") -> None:
    redact = RedactSecrets(secrets)
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonLines(redact))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(redact)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    debug = level <= logging.DEBUG
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)
    for name in PAYLOAD_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if debug and log_prompts else max(level, logging.INFO))
    for name in SQL_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if debug and log_prompts else logging.WARNING)
    for name in RETRY_NOTICE_LOGGERS:  # NOTSET: its parent (a payload logger) decides, as before
        logging.getLogger(name).setLevel(logging.NOTSET if debug else logging.WARNING)
