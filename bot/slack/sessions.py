"""Slack's agent sessions around each answer (docs.slack.dev "Agent sessions").

Every answer in a thread is a session: ``processing`` once the gate admits it (titled after the question, with the
asker as its initiator: one ``agents.sessions.setStatus``, which also shows Slack's stop button), ``active`` when it
ends — through ``chat.stopStream``'s ``session_status`` when the answer's last stream ends it, else one more
``setStatus``. Slack does not move a session out of ``processing`` by itself (not even after its stop button):
every path that ends an answer ends its session, the sweep of a crashed process's answers included.

An app not declared as an agent (an older install on the assistant panel) cannot open sessions: the first refusal
is remembered for a while and those answers show the assistant thread's thinking status instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

PROCESSING, ACTIVE = "processing", "active"
THINKING = "is thinking…"
LOADING_MESSAGES = ["Reading the thread…", "Thinking it through…", "Writing the answer…"]
NO_SESSIONS_MEMORY = 3600.0  # seconds an app that may not open sessions shows the thinking status instead
TITLE_LIMIT = 200  # Slack's limit for a session's title
STOP_SUBSCRIPTION_WARNING = "missing_agent_session_stopped_event_subscription"


async def end_agent_session(client: AsyncWebClient, channel: str, thread_ts: str) -> bool:
    """Set the thread's session ``active``; False (logged) when Slack refused or could not be reached."""
    try:
        await client.agents_sessions_setStatus(channel_id=channel, thread_ts=thread_ts, status=ACTIVE)
        return True
    except (SlackClientError, OSError, TimeoutError) as exc:
        error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
        log.warning("could not end the agent session of %s/%s: %s", channel, thread_ts, error)
        return False


class AgentSessions:
    """One per process: opens answers' sessions, and remembers an app that may not have any."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._unavailable_until = 0.0
        self._warned = False

    @property
    def available(self) -> bool:
        return self.clock() >= self._unavailable_until

    async def begin(self, client: AsyncWebClient, *, channel: str, thread_ts: str, title: str, asker: str,
                    thinking: Callable[[], Awaitable[Any]] | None = None) -> bool:
        """The answer's session in ``processing``; True when it was opened (and must be ended). Where sessions are
        not available, the thinking status instead (``thinking``, or the assistant thread's status)."""
        if self.available:
            try:
                response = await client.agents_sessions_setStatus(
                    channel_id=channel, thread_ts=thread_ts, status=PROCESSING, title=title[:TITLE_LIMIT],
                    initiator_user_id=asker)
                if response.get("warning") == STOP_SUBSCRIPTION_WARNING and not self._warned:
                    self._warned = True
                    log.warning("Slack says the app does not subscribe to agent_session_stopped: people see no stop "
                                "button (update the app from `claude-gate manifest`)")
                return True
            except SlackApiError as exc:
                self._unavailable_until = self.clock() + NO_SESSIONS_MEMORY
                log.info("agent sessions are not available (%s): showing the thinking status for a while",
                         exc.response.get("error"))
        if thinking is not None:
            await thinking()
        else:
            await client.assistant_threads_setStatus(channel_id=channel, thread_ts=thread_ts, status=THINKING,
                                                     loading_messages=LOADING_MESSAGES)
        return False
