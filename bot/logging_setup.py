"""Logging for the process: one format, and no secret ever reaches a log line."""

from __future__ import annotations

import logging
from collections.abc import Iterable


class RedactSecrets(logging.Filter):
    """Replaces every configured secret (tokens, signing secret, API keys) in log messages."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in self.secrets:
            redacted = redacted.replace(secret, "[redacted]")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


# Loggers that write request and response bodies at DEBUG (prompts, answers, Slack payloads): on only when
# LOG_LEVEL=DEBUG and LOG_PROMPTS=true, since prompt text is not kept anywhere else unless LOG_PROMPTS is set.
PAYLOAD_LOGGERS = ("slack_sdk.web", "slack_sdk.socket_mode", "slack_bolt", "anthropic")
# Library chatter: Alembic's plugin set-up, per-request SQL, one INFO line per HTTP request (httpx, under the
# Anthropic SDK). Only with LOG_LEVEL=DEBUG.
CHATTY_LOGGERS = ("alembic", "sqlalchemy.engine", "httpx", "httpcore", "httpx2", "httpcore2", "apscheduler")


def configure_logging(level: int, secrets: Iterable[str], *, log_prompts: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    debug = level <= logging.DEBUG
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)
    for name in PAYLOAD_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if debug and log_prompts else max(level, logging.INFO))
