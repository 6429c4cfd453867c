"""The composition root: build_app(settings) wires the Bolt app, the services and their adapters into a Runtime
(bot.runtime). `serve`, `chat`, the admin CLI and the scheduler all build through it; nothing else wires."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.domain.budgets import Scope, ScopeKind
from bot.metrics import BudgetUse, Metrics
from bot.runtime import Runtime
from bot.services.access.groups import UserGroupSync
from bot.services.access.requests import AccessRequests
from bot.services.admin.dispatcher import AdminService
from bot.services.conversation.chat import ChatService
from bot.services.conversation.claude import ClaudeGateway
from bot.services.conversation.gate import Gate
from bot.services.conversation.observer import Observers
from bot.services.conversation.records import RecordWriter
from bot.services.conversation.secret_alerts import SecretAlerts
from bot.services.conversation.stops import AnswerStops
from bot.services.keys.alerts import KeyAlerts
from bot.services.keys.registry import KeyRegistry
from bot.services.personal.commands import PersonalService
from bot.services.schedules.service import ScheduledPrompts
from bot.services.spend.alerts import BudgetAlerts
from bot.services.spend.report import budget_lines
from bot.slack.access_requests import SlackRequestBoard
from bot.slack.client import SlackErrorCounter
from bot.slack.directory import UserDirectory
from bot.slack.safe_text import SafeWebClient
from bot.slack.scheduled_runs import SlackScheduleRunner
from bot.slack.slack_port import SlackApiPort
from bot.store.clock import Clock, system_clock
from bot.store.db import Database, create_engine

log = logging.getLogger(__name__)


class ClientTokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment even when given a client built with that token, and warns
    "As you gave `client` as well, `token` will be unused." at every start: expected here, so not shown."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


BOLT_LOGGER = logging.getLogger("slack_bolt")
BOLT_LOGGER.addFilter(ClientTokenNotice())

# `claude-gate chat` works without Slack credentials; Bolt still wants a token to be constructed.
NO_SLACK_TOKEN = "xoxb-not-configured"


def slack_client(settings: Settings, metrics: Metrics | None = None) -> AsyncWebClient:
    """One client with one aiohttp session: without it slack_sdk opens a new session, and so a new connection
    (and a DNS lookup in a thread), for every API call. It neutralises whatever it posts (docs/security.md)."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else NO_SLACK_TOKEN
    try:
        asyncio.get_running_loop()
        session: aiohttp.ClientSession | None = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
    except RuntimeError:  # built outside an event loop (a script): slack_sdk makes sessions as it goes
        session = None
    return SafeWebClient(
        token=token,
        base_url=settings.slack_api_url,
        session=session,
        retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=2),
                        AsyncRateLimitErrorRetryHandler(max_retry_count=4),
                        SlackErrorCounter(metrics or Metrics())],  # last: sees what the others did not retry
    )


async def pooled_budget_uses(sessions: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock
                             ) -> list[BudgetUse]:
    """The org, group and role budgets as /metrics shows them (read at scrape time; never a person's own budget)."""
    async with sessions() as session:
        lines = await budget_lines(session, settings, clock())
    uses = []
    for line in lines:
        scope = Scope.parse(line.scope)
        if scope.kind is ScopeKind.USER:
            continue
        uses.append(BudgetUse(scope.kind.value, scope.id or scope.kind.value, line.period.value, line.limit / 1_000_000,
                              None if line.spent is None else line.spent / 1_000_000))
    return uses


def build_app(settings: Settings, *, clock: Clock = system_clock, engine: AsyncEngine | None = None) -> Runtime:
    from bot.listeners import register_listeners

    db = Database.of(engine or create_engine(settings.database_url))
    metrics = Metrics()
    client = slack_client(settings, metrics)
    bolt = AsyncApp(
        client=client,
        signing_secret=settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else "",
        request_verification_enabled=not settings.socket_mode,
        logger=BOLT_LOGGER,
    )
    directory = UserDirectory(client, ttl_seconds=settings.user_cache_seconds)
    claude = ClaudeGateway(base_url=settings.anthropic_base_url)
    slack = SlackApiPort(client, directory, connected=settings.slack_bot_token is not None)
    records = RecordWriter(db.engine, settings.prices, settings.budget_zone)
    gate = Gate(db=db, settings=settings, clock=clock, slack=slack, records=records)
    metrics.watch_record_backlog(lambda: records.backlog)
    metrics.budget_source = partial(pooled_budget_uses, db.sessions, settings, clock)
    observer = Observers(metrics, KeyAlerts(db=db, settings=settings, clock=clock, slack=slack),
                         SecretAlerts(db=db, settings=settings, clock=clock, slack=slack),
                         BudgetAlerts(db=db, settings=settings, clock=clock, slack=slack))
    chat = ChatService(db=db, settings=settings, clock=clock, slack=slack, gate=gate, claude=claude,
                       observer=observer, stops=AnswerStops(db=db, settings=settings, clock=clock, slack=slack))
    access_requests = AccessRequests(db=db, settings=settings, clock=clock, slack=slack,
                                     board=SlackRequestBoard(client))
    admin = AdminService(db=db, settings=settings, clock=clock, slack=slack, requests=access_requests)
    personal = PersonalService(db=db, settings=settings, clock=clock, slack=slack)
    runtime = Runtime(settings=settings, clock=clock, db=db, client=client, bolt=bolt,
                      directory=directory, slack=slack, claude=claude, gate=gate, records=records, chat=chat,
                      admin=admin, personal=personal, metrics=metrics, access_requests=access_requests,
                      user_groups=UserGroupSync(db=db, settings=settings, clock=clock, slack=slack),
                      keys=KeyRegistry(db=db, settings=settings, clock=clock, slack=slack),
                      schedules=ScheduledPrompts(db=db, settings=settings, clock=clock, slack=slack,
                                                 runner=SlackScheduleRunner(client, chat), gate=gate))
    register_listeners(runtime)
    return runtime
