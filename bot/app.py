"""build_app(settings) → the Bolt AsyncApp and everything it needs. The only place that wires."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from bot.config import Settings
from bot.listeners.in_flight import InFlightListeners
from bot.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from bot.metrics import BudgetUse, Metrics, may_scrape, relayed
from bot.services.access.requests import AccessRequestCommands, AccessRequests
from bot.services.access.roles import bootstrap_owners
from bot.services.admin.dispatcher import AdminService
from bot.services.conversation.chat import ChatService
from bot.services.conversation.claude import ClaudeGateway
from bot.services.conversation.gate import Gate
from bot.services.conversation.process_leases import ProcessLease
from bot.services.conversation.records import RecordWriter
from bot.services.conversation.secret_alerts import SecretAlerts
from bot.services.keys.alerts import KeyAlerts
from bot.services.keys.registry import ensure_default_key
from bot.services.personal.commands import PersonalService
from bot.services.spend.alerts import BudgetAlerts
from bot.services.spend.report import budget_lines
from bot.slack.access_requests import SlackRequestBoard
from bot.slack.client import SlackErrorCounter
from bot.slack.connection import SlackLink
from bot.slack.directory import UserDirectory
from bot.slack.safe_text import SafeWebClient
from bot.slack.workspace import SlackWorkspace
from bot.store.clock import Clock, system_clock
from bot.store.db import create_engine, read_only, session_factory

if TYPE_CHECKING:
    from bot.scheduler import JobScheduler

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # Slack payloads are far smaller; bigger bodies are refused with 413
SHUTDOWN_GRACE_SECONDS = 20.0  # answers under way may finish; Heroku sends SIGKILL 30 s after SIGTERM


@dataclass
class Runtime:
    """The running application: the Bolt app and the services its listeners use."""

    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    client: AsyncWebClient
    bolt: AsyncApp
    directory: UserDirectory
    workspace: SlackWorkspace  # the Workspace port services reach Slack through
    claude: ClaudeGateway
    gate: Gate
    records: RecordWriter  # the one writer of finishes and held refusals (the gate inserts admissions itself)
    chat: ChatService
    admin: AdminService
    personal: PersonalService
    metrics: Metrics
    access_requests: AccessRequests
    reads: async_sessionmaker[AsyncSession] = field(init=False)  # for work that only reads (bot.store.db.read_only)
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    listeners: InFlightListeners = field(default_factory=InFlightListeners)  # Bolt's listener tasks under way
    jobs: JobScheduler | None = None  # started by start_jobs() (`serve`), never by build_app
    lease: ProcessLease | None = None  # this process's own lease: hold_lease() (`serve`, `chat`), never by build_app
    slack: SlackLink = field(default_factory=SlackLink)  # what /healthz says of Slack (`serve` checks it)

    def __post_init__(self) -> None:
        self.reads = read_only(self.sessions)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run work in the background, keeping a strong reference until it ends (PITFALLS: asyncio)."""
        task = asyncio.create_task(coro, name=name)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    async def start(self) -> None:
        """Start-up work that needs the database: the default key, bootstrap owners.

        Several processes may start at once against one database: whoever loses the race to create the default
        key or the first owners finds them made by the winner on its second pass.
        """
        async for attempt in AsyncRetrying(retry=retry_if_exception_type(IntegrityError), stop=stop_after_attempt(2),
                                           reraise=True, before_sleep=lambda retry_state: log.info(
                                               "another process is setting up the database; checking again")):
            with attempt:
                async with self.sessions.begin() as session:
                    await ensure_default_key(session, self.clock, rotate_days=self.settings.rotation_days)
                    made = await bootstrap_owners(session, self.clock, self.settings.bootstrap_owners)
        if made:
            log.info("bootstrap owners: %s", ", ".join(made))

    async def hold_lease(self) -> ProcessLease:
        """Hold this process's lease (its admitted records carry it) and close, now and every few seconds, the answers
        of processes whose lease lapsed. `serve` and `chat` call this before they take requests."""
        self.lease = ProcessLease(sessions=self.sessions, clock=self.clock, workspace=self.workspace, gate=self.gate,
                                  lease_seconds=self.settings.process_lease_seconds)
        await self.lease.start()
        return self.lease

    async def start_jobs(self) -> JobScheduler:
        """Rotation reminders and housekeeping on this loop (APScheduler). Only `serve` calls this: tests build many
        apps and start a scheduler only when they ask for one."""
        from bot.scheduler import JobScheduler

        self.jobs = JobScheduler(sessions=self.sessions, clock=self.clock, settings=self.settings, client=self.client,
                                 workspace=self.workspace, access_requests=self.access_requests,
                                 holder=self.lease.holder if self.lease is not None else None)
        await self.jobs.start()
        return self.jobs

    async def close(self, *, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Stop after the intake has stopped: running listeners get ``grace`` seconds to finish, then the jobs,
        background work, clients, the record writer, this process's lease and the database close, in that order."""
        await self.listeners.drain(grace)
        if self.jobs is not None:
            await self.jobs.shutdown()
        for task in list(self.background):
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        await self.claude.close()
        await self.records.close()
        if self.lease is not None:  # after the records are written: then nothing of this process is in flight
            await self.lease.stop()
        await self.engine.dispose()
        if self.client.session is not None:
            await self.client.session.close()

    async def database_ok(self) -> bool:
        try:
            async with asyncio.timeout(3):
                async with self.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
            return True
        except Exception as exc:
            log.warning("health check: database unreachable: %s", type(exc).__name__)
            return False

    def signed_by_slack(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Slack's signature over ``body`` (HMAC-SHA256 with the signing secret, within 5 minutes), in constant time.
        Anything malformed (no secret, a timestamp that is not a number, a non-ASCII signature) is not signed."""
        secret = self.settings.slack_signing_secret
        timestamp, signature = headers.get("X-Slack-Request-Timestamp"), headers.get("X-Slack-Signature")
        if secret is None or not secret.get_secret_value() or not timestamp or not signature:
            return False
        try:
            return SignatureVerifier(secret.get_secret_value()).is_valid(body, timestamp, signature)
        except (ValueError, TypeError, OverflowError):
            return False

    def web_app(self, *, events: bool = True) -> web.Application:
        """HTTP mode: POST /slack/events (signature checked here before parsing, and again by Bolt), GET /healthz
        and GET /metrics."""

        async def slack_events(request: web.Request) -> web.Response:
            # The signature first, over the raw bytes, before anything parses the body: an unsigned request costs
            # one HMAC and one log line that holds nothing its sender chose.
            if not self.signed_by_slack(await request.read(), request.headers):
                log.warning("refused a request to /slack/events without a valid Slack signature (401)")
                return web.Response(status=401, text="invalid signature")
            try:
                bolt_request = await to_bolt_request(request)
            except (TypeError, AttributeError, KeyError, ValueError, RecursionError) as exc:  # Bolt could not read it
                log.warning("malformed request body refused: %s", type(exc).__name__)
                return web.Response(status=400, text="malformed payload")
            bolt_response = await self.bolt.async_dispatch(bolt_request)
            return await to_aiohttp_response(bolt_response)

        async def healthz(_request: web.Request) -> web.Response:
            # 503 only when the database is down: Slack unreachable (or still connecting) is said, not failed on
            ok = await self.database_ok()
            return web.json_response({"ok": ok, "database": "ok" if ok else "unreachable",
                                      "slack": await self.slack.status()}, status=200 if ok else 503)

        async def metrics(request: web.Request) -> web.Response:
            token = self.settings.metrics_token.get_secret_value() if self.settings.metrics_token else None
            if not may_scrape(request.remote, request.headers.get("Authorization"),
                              forwarded=relayed(request.headers.keys()),
                              token=token):
                if token:
                    return web.Response(status=401, text="metrics need Authorization: Bearer $METRICS_TOKEN\n",
                                        headers={"WWW-Authenticate": "Bearer"})
                return web.Response(status=403, text="metrics are served to loopback clients, not through a proxy; "
                                    "set METRICS_TOKEN to read them from elsewhere\n")
            return web.Response(body=await self.metrics.render(), headers={"Content-Type": METRICS_CONTENT_TYPE})

        app = web.Application(client_max_size=MAX_BODY_BYTES)
        if events:
            app.router.add_post("/slack/events", slack_events)
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/metrics", metrics)
        return app


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
    (and a DNS lookup in a thread), for every API call. It neutralises whatever it posts (PRODUCT §2)."""
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
        kind, _, name = line.scope.partition(":")
        if kind == "user":
            continue
        uses.append(BudgetUse(kind, name or kind, line.period.value, line.limit / 1_000_000,
                              None if line.spent is None else line.spent / 1_000_000))
    return uses


def build_app(settings: Settings, *, clock: Clock = system_clock, engine: AsyncEngine | None = None) -> Runtime:
    from bot.listeners import register_listeners

    engine = engine or create_engine(settings.database_url)
    sessions = session_factory(engine)
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
    records = RecordWriter(engine, settings.prices, settings.budget_zone)
    gate = Gate(sessions, settings, clock, records)
    metrics.watch_record_backlog(lambda: records.backlog)
    metrics.budget_source = partial(pooled_budget_uses, sessions, settings, clock)
    workspace = SlackWorkspace(client, directory, connected=settings.slack_bot_token is not None)
    alerts = KeyAlerts(sessions=sessions, settings=settings, clock=clock, workspace=workspace)
    secret_alerts = SecretAlerts(sessions=sessions, clock=clock, settings=settings, workspace=workspace)
    budget_alerts = BudgetAlerts(sessions=sessions, settings=settings, clock=clock, workspace=workspace)
    chat = ChatService(gate=gate, claude=claude, sessions=sessions, settings=settings, clock=clock,
                       on_key_failure=alerts.key_failed, on_key_recovered=alerts.key_recovered,
                       on_no_active_key=alerts.no_active_key, on_secret_blocked=secret_alerts.secret_blocked,
                       metrics=metrics, on_spend=budget_alerts.check)
    admin = AdminService(sessions=sessions, settings=settings, clock=clock, workspace=workspace)
    personal = PersonalService(sessions=sessions, settings=settings, clock=clock)
    access_requests = AccessRequests(sessions=sessions, settings=settings, clock=clock,
                                     board=SlackRequestBoard(client))
    admin.handlers.update(AccessRequestCommands(access_requests).handlers())
    runtime = Runtime(settings=settings, clock=clock, engine=engine, sessions=sessions, client=client, bolt=bolt,
                      directory=directory, workspace=workspace, claude=claude, gate=gate, records=records, chat=chat,
                      admin=admin, personal=personal, metrics=metrics, access_requests=access_requests)
    register_listeners(runtime)
    return runtime
