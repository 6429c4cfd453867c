"""Counting the Slack Web API calls that fail, for /metrics.

Bolt makes a new AsyncWebClient for every request, copying the app client's retry handlers; so the count is kept by
a retry handler that never retries, placed last: slack_sdk shows it every response and every exception that the
handlers before it did not retry (a 429 is counted once, after the rate-limit handler has given up).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.metrics import Metrics

_NOT_A_NAME = re.compile(r"[^a-z0-9_]")


def _label(text: str, limit: int) -> str:
    return _NOT_A_NAME.sub("_", text.lower())[:limit] or "unknown"


def api_method(request: HttpRequest) -> str:
    """`https://slack.com/api/chat.postMessage?…` → `chat_postmessage` (a bounded label)."""
    return _label(request.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1].replace(".", "_"), 60)


def error_kind(response: HttpResponse | None, error: Exception | None) -> str | None:
    """Slack's error code (`ratelimited`, `channel_not_found`…), `timeout` or `connection`; None for a success."""
    if error is not None:
        return "timeout" if isinstance(error, TimeoutError | asyncio.TimeoutError) else "connection"
    if response is None:
        return None
    body: Any = response.body
    if isinstance(body, dict) and body.get("ok") is False:
        return _label(str(body.get("error") or "unknown"), 40)
    if response.status_code == 429:
        return "ratelimited"
    if response.status_code >= 500:
        return "server"
    return None


class SlackErrorCounter(AsyncRetryHandler):
    """Never retries; counts each failed call by method and kind."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(max_retry_count=0)
        self.metrics = metrics

    async def can_retry_async(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                              error: Exception | None = None) -> bool:
        kind = error_kind(response, error)
        if kind is not None:
            self.metrics.slack_error(api_method(request), kind)
        return False
