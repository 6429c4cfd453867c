"""Slack at start-up and after: are the tokens accepted (``auth.test`` for the bot token, ``apps.connections.open``
for Socket Mode's app-level token), and is Slack reachable. A refused token stops `serve` with one line (exit 1);
an unreachable Slack is a warning, checked again in the background, and `/healthz` says ``slack: unreachable``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.errors import StartupRefused

log = logging.getLogger(__name__)

SlackState = Literal["ok", "unreachable", "connecting"]
# Slack's answers that say "try again later", not "this token is refused"
TRANSIENT_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                              "request_timeout"})
RETRY_SECONDS = (5.0, 10.0, 20.0, 30.0, 60.0)  # between checks while Slack is unreachable; then every minute
CHECK_TIMEOUT_SECONDS = 10.0

HOW_TO_FIX = {
    "SLACK_BOT_TOKEN": "copy the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page (reinstall "
                       "the app if it was removed from the workspace)",
    "SLACK_APP_TOKEN": "create an app-level token with the connections:write scope on the app's Basic Information "
                       "page, and switch Socket Mode on",
}


class SlackUnreachable(Exception):
    """Slack did not answer, or answered that it cannot now: why, in a few words."""


class SlackLink:
    """What `/healthz` says of Slack: ``connecting`` until the first check (and, in Socket Mode, until the socket is
    up or while it reconnects), ``ok``, or ``unreachable``."""

    def __init__(self) -> None:
        self.state: SlackState = "connecting"
        self.socket: Any = None  # Socket Mode's client, once connecting (slack_sdk's AsyncBaseSocketModeClient)

    async def status(self) -> SlackState:
        if self.state == "ok" and self.socket is not None and not await self.socket.is_connected():
            return "connecting"
        return self.state


async def _call(variable: str, call: Any) -> dict[str, Any]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            return (await call).data
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "error")
        if error in TRANSIENT_ERRORS or exc.response.status_code >= 500:
            raise SlackUnreachable(error) from None
        raise StartupRefused(f"Slack refused {variable} ({error}): {HOW_TO_FIX[variable]}.") from None
    except (OSError, TimeoutError, SlackRequestError, aiohttp.ClientError) as exc:
        raise SlackUnreachable(type(exc).__name__) from None


async def check_tokens(client: AsyncWebClient, app_token: str | None) -> dict[str, Any]:
    """``auth.test`` with the bot token, then (Socket Mode) ``apps.connections.open`` with the app-level token.
    Returns auth.test's answer; raises StartupRefused for a refused token, SlackUnreachable otherwise."""
    auth = await _call("SLACK_BOT_TOKEN", client.auth_test())
    if app_token is not None:
        await _call("SLACK_APP_TOKEN", client.apps_connections_open(app_token=app_token))
    return auth


async def check_until_reachable(client: AsyncWebClient, app_token: str | None) -> None:
    """After an unreachable start: check again (5 s, 10 s, … then every minute) until Slack answers. Raises
    StartupRefused if Slack, once reachable, refuses a token."""
    attempt = 0
    while True:
        await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
        attempt += 1
        try:
            await check_tokens(client, app_token)
        except SlackUnreachable as exc:
            log.debug("Slack still unreachable (%s)", exc)
            continue
        log.info("Slack is reachable; the tokens are accepted")
        return


class ConnectRetryLines(logging.Filter):
    """slack_sdk's Socket Mode client logs each failed connect as "Failed to connect (error: …); Retrying..." with
    its traceback, every 10 s: one line each, the traceback only at LOG_LEVEL=DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and not logging.getLogger().isEnabledFor(logging.DEBUG) \
                and str(record.msg).startswith("Failed to connect"):
            record.exc_info, record.exc_text = None, None
        return True


# The Socket Mode client's own logger: under slack_sdk.socket_mode, whose payload lines (DEBUG) bot/logging_setup.py
# keeps off unless LOG_LEVEL=DEBUG and LOG_PROMPTS=true.
SOCKET_LOGGER = logging.getLogger("slack_sdk.socket_mode.claude_gate")
SOCKET_LOGGER.addFilter(ConnectRetryLines())
