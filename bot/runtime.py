"""The running application: what one process holds once build_app (bot.app) has wired it, and its life cycle
(start-up, the process lease, the jobs, the HTTP routes, shutdown). Listeners are registered with it."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from bot.config import Settings
from bot.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from bot.metrics import Metrics, may_scrape, relayed
from bot.services.access.groups import UserGroupSync
from bot.services.access.requests import AccessRequests
from bot.services.access.roles import bootstrap_owners
from bot.services.admin.dispatcher import AdminService
from bot.services.conversation.chat import ChatService
from bot.services.conversation.claude import ClaudeGateway
from bot.services.conversation.gate import Gate
from bot.services.conversation.process_leases import ProcessLease
from bot.services.conversation.records import RECORDS_CLOSE_SECONDS, RecordWriter
from bot.services.keys.registry import KeyRegistry, ensure_default_key
from bot.services.personal.commands import PersonalService
from bot.services.schedules.service import ScheduledPrompts
from bot.slack.connection import SlackLink
from bot.slack.directory import UserDirectory
from bot.slack.listener_tasks import InFlightListeners
from bot.slack.slack_port import SlackApiPort
from bot.store.clock import Clock
from bot.store.db import Database

if TYPE_CHECKING:
    from bot.scheduler import JobScheduler

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # Slack payloads are far smaller; bigger bodies are refused with 413
SHUTDOWN_GRACE_SECONDS = 20.0  # answers under way may finish; Heroku sends SIGKILL 30 s after SIGTERM
CLOSING_STEP_SECONDS = 3.0  # each later step of shutdown (jobs, clients, lease, database): normally milliseconds


async def bounded(step: str, work: Awaitable[object], seconds: float | None = None) -> None:
    """One step of shutdown, given ``seconds``: one that hangs is named in the log and the next step goes on, so a
    stuck client or connection cannot keep the records and the lease from being closed."""
    seconds = CLOSING_STEP_SECONDS if seconds is None else seconds
    log.debug("shutdown: %s", step)
    try:
        async with asyncio.timeout(seconds):
            await work
    except TimeoutError:
        log.error("shutdown: %s did not finish within %g s; going on without it", step, seconds)


@dataclass
class Runtime:
    """The running application: the Bolt app and the services its listeners use."""

    settings: Settings
    clock: Clock
    db: Database  # the engine, the sessions and the read-only sessions: the one the services were built with
    client: AsyncWebClient
    bolt: AsyncApp
    directory: UserDirectory
    slack: SlackApiPort  # the Slack port services reach Slack through
    claude: ClaudeGateway
    gate: Gate
    records: RecordWriter  # the one writer of finishes and held refusals (the gate inserts admissions itself)
    chat: ChatService
    admin: AdminService
    personal: PersonalService
    metrics: Metrics
    access_requests: AccessRequests
    keys: KeyRegistry  # the App Home lists the keys
    user_groups: UserGroupSync  # Slack's user-group events applied to the stored groups
    schedules: ScheduledPrompts  # `/claude schedule…`, and the runs the scheduler leader starts
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    listeners: InFlightListeners = field(default_factory=InFlightListeners)  # Bolt's listener tasks under way
    jobs: JobScheduler | None = None  # started by start_jobs() (`serve`), never by build_app
    lease: ProcessLease | None = None  # this process's own lease: hold_lease() (`serve`, `chat`), never by build_app
    slack_link: SlackLink = field(default_factory=SlackLink)  # what /healthz says of Slack (`serve` checks it)

    @property
    def engine(self) -> AsyncEngine:
        return self.db.engine

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.db.sessions

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run work in the background, keeping a strong reference until it ends (asyncio holds tasks weakly)."""
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
        self.lease = ProcessLease(db=self.db, clock=self.clock, slack=self.slack, gate=self.gate,
                                  lease_seconds=self.settings.process_lease_seconds)
        await self.lease.start()
        return self.lease

    async def start_jobs(self) -> JobScheduler:
        """Rotation reminders and housekeeping on this loop (APScheduler). Only `serve` calls this: tests build many
        apps and start a scheduler only when they ask for one."""
        from bot.scheduler import JobScheduler

        self.jobs = JobScheduler(db=self.db, clock=self.clock, settings=self.settings, client=self.client,
                                 slack=self.slack, access_requests=self.access_requests, schedules=self.schedules,
                                 holder=self.lease.holder if self.lease is not None else None)
        await self.jobs.start()
        from bot.services.conversation.listed_models import watch

        # Anthropic's model list, read now and daily: retired models are refused with what to do
        self.spawn(watch(self.gate.models, self.db, self.settings, self.clock, self.slack), name="model list")
        return self.jobs

    async def close(self, *, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Stop after the intake has stopped: running listeners get ``grace`` seconds to finish, then the jobs,
        background work, clients, the record writer, this process's lease and the database close, in that order."""
        await bounded("the listeners under way", self.listeners.drain(grace), grace + CLOSING_STEP_SECONDS)
        if self.jobs is not None:
            await bounded("the scheduled jobs", self.jobs.shutdown())
        await bounded("the background work", self._end_background(), 2 * CLOSING_STEP_SECONDS)
        await bounded("Anthropic's clients", self.claude.close())
        await bounded("the stop watcher", self.chat.stops.close())
        await bounded("the record writer", self.records.close(), RECORDS_CLOSE_SECONDS + CLOSING_STEP_SECONDS)
        if self.lease is not None:  # after the records are written: then nothing of this process is in flight
            await bounded("this process's lease", self.lease.stop())
        await bounded("the database", self.engine.dispose())
        if self.client.session is not None:
            await bounded("Slack's client", self.client.session.close())

    async def _end_background(self) -> None:
        tasks = list(self.background)
        for task in tasks:
            task.cancel()
        _, late = await asyncio.wait(tasks, timeout=CLOSING_STEP_SECONDS) if tasks else (set(), set())
        for task in late:  # it swallowed its cancellation: named, with where it waits, and left behind
            where = io.StringIO()
            task.print_stack(limit=8, file=where)
            log.error("shutdown: the background task %r did not end when cancelled:\n%s", task.get_name(),
                      where.getvalue())

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
                                      "slack": await self.slack_link.status()}, status=200 if ok else 503)

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
