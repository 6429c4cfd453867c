"""Shared fixtures: a migrated database (SQLite, or PostgreSQL via TEST_DATABASE_URL), fake Slack and
Anthropic servers on 127.0.0.1, and the real Claude Gate app served over HTTP and driven with signed requests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.pool import NullPool

from bot.app import build_app
from bot.config import Settings
from bot.domain.roles import Role
from bot.runtime import Runtime
from bot.services.access.roles import grant_role
from bot.services.conversation.claude import sdk
from bot.store.clock import ManualClock
from bot.store.db import sync_url
from bot.store.migrate import upgrade_database
from bot.store.models import AuditEntry, Base, RequestRecord
from tests.support.fakes import FakeAnthropic, FakeSlack
from tests.support.fakes.signing import command_body, event_body, json_body, new_event_id, sign

# `serve` imports the Anthropic SDK in a thread after it listens, and the first answer waits for it (2-5 s, more
# on a busy machine). The suite imports it once here, so no test's first answer races that import against its
# own timeouts (tests/processes/test_sdk_loading.py proves the lazy loading in processes of its own).
sdk()

S = TypeVar("S")  # a service class (Harness.service)

SIGNING_SECRET = "test-signing-secret-0123456789"
BOT_TOKEN = "xoxb-test-bot-token-0123456789"
API_KEY = "sk-ant-api03-test-default-key-AbCd"

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
ON_POSTGRES = bool(TEST_DATABASE_URL and TEST_DATABASE_URL.startswith("postgres"))


def reset_postgres(url: str) -> None:
    engine = create_engine(sync_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        # a connection some earlier test left holding locks makes this fail with LockNotAvailable, never hang CI
        connection.execute(text("SET lock_timeout = '30s'"))
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


class FreshPostgres:
    """Gives each test the database a fresh migration would, without migrating again: migrating was a third of the
    suite's time. Migrated once per session; a test's database is then emptied (TRUNCATE, sequences restarted) and
    the rows the migrations seed are put back. A test that changed the schema (a downgrade, say) is followed by a
    full reset and migration, found by comparing the schema's columns and Alembic's revision with the first ones."""

    _SHAPE = text("SELECT table_name, column_name, data_type, column_default FROM information_schema.columns "
                  "WHERE table_schema = 'public' ORDER BY table_name, column_name")

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(sync_url(url), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        self._migrate()
        with self.engine.connect() as connection:
            self.shape = self._shape(connection)
            self.tables = sorted({row[0] for row in self.shape} - {"alembic_version"})
            rows = {table: connection.execute(text(f'SELECT * FROM "{table}"')).mappings().all()
                    for table in self.tables}
            # the seed is put back through the app's own table definitions (no reflection per test)
            self.seed = [(Base.metadata.tables[table].insert(), [dict(row) for row in found])
                         for table, found in rows.items() if found]

    def _migrate(self) -> None:
        reset_postgres(self.url)
        upgrade_database(self.url)

    def _shape(self, connection: Any) -> list[tuple[Any, ...]]:
        revision = list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
        return [tuple(row) for row in connection.execute(self._SHAPE)] + [("alembic_version", *revision)]

    def reset(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SET lock_timeout = '30s'"))  # a left-over lock fails the test, never hangs CI
            try:
                same = self._shape(connection) == self.shape
            except DBAPIError:
                same = False
            if same:
                listed = ", ".join(f'"{table}"' for table in self.tables)
                connection.execute(text(f"TRUNCATE {listed} RESTART IDENTITY CASCADE"))
                for insert, rows in self.seed:
                    connection.execute(insert, rows)
                return
        self._migrate()


def _bot_children() -> list[int]:
    """This process's children still running `python -m bot …` (serve, chat): Linux's /proc, nothing elsewhere."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid() and fields[0] != "Z" and \
                    b"-m\0bot\0" in (stat.parent / "cmdline").read_bytes():
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


@pytest.fixture(autouse=True)
def no_stray_bot_process() -> Iterator[None]:
    """A `serve` or `chat` a test started and did not end would go on renewing its lease and judging other
    processes' leases in the shared test database, and fail later tests: it is killed, and its test fails."""
    yield
    strays = _bot_children()
    for pid in strays:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not strays, f"bot process(es) {strays} outlived their test: killed"


@pytest.fixture(autouse=True)
def restored_logging() -> Iterator[None]:
    """A test that runs `serve` or `chat` in-process configures logging (bot/logging_setup.py): the root handlers and
    every logger's level come back afterwards, so a later test's caplog sees the records it expects."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logger.level for name, logger in logging.root.manager.loggerDict.items()
              if isinstance(logger, logging.Logger)}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            logger.setLevel(levels.get(name, logging.NOTSET))


@pytest.fixture(scope="session")
def fresh_postgres() -> FreshPostgres:
    assert TEST_DATABASE_URL is not None
    return FreshPostgres(TEST_DATABASE_URL)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once; each test starts from a copy of its file."""
    path = tmp_path_factory.mktemp("template") / "gate.db"
    upgrade_database(f"sqlite:///{path}")
    assert not path.with_name("gate.db-wal").exists(), "the template's last connection left its WAL behind"
    return path


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A freshly migrated database for each test (the state `claude-gate db upgrade` leaves a new database in)."""
    if ON_POSTGRES:
        request.getfixturevalue("fresh_postgres").reset()
        return TEST_DATABASE_URL
    path = tmp_path / "gate.db"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    return f"sqlite:///{path}"


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        yield slack


@pytest.fixture
def cluster(request: pytest.FixtureRequest, database_url: str, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic,
            tmp_path: Path) -> Iterator[Any]:
    """`serve` processes sharing the test database (tests/processes.py), with the test module's ``CLUSTER_ENV``."""
    from tests.support.processes import Cluster  # it imports this module's constants

    cluster = Cluster(database_url, fake_slack, fake_anthropic, tmp_path,
                      extra_env=getattr(request.module, "CLUSTER_ENV", None) or {})
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as anthropic:
        yield anthropic


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def settings_factory(database_url: str, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic,
                     monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    for name in ("SLACK_APP_TOKEN", "DEFAULT_ROLE", "BOOTSTRAP_OWNERS", "ALLOW_GUESTS", "ALLOW_EXTERNAL_USERS",
                 "LOG_PROMPTS", "DATABASE_URL", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(name, raising=False)

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "slack_bot_token": BOT_TOKEN,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_url": fake_slack.api_url,
            "anthropic_api_key": API_KEY,
            "anthropic_base_url": fake_anthropic.base_url,
            "database_url": database_url,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()


async def eventually(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Wait until ``predicate()`` (sync or async) is truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


async def _is(value: Any, expected: Any) -> bool:
    return (await value) == expected


@dataclass
class Harness:
    """The real app behind a real HTTP port, and ways to talk to it like Slack does."""

    runtime: Runtime
    url: str
    http: aiohttp.ClientSession
    slack: FakeSlack
    anthropic: FakeAnthropic
    clock: ManualClock

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.runtime.sessions

    def service(self, kind: type[S]) -> S:
        """A service built as bot/app.py builds its services (bot/services/base.py), on this app's database."""
        runtime = self.runtime
        return kind(db=runtime.db, settings=runtime.settings, clock=runtime.clock,  # type: ignore[call-arg]
                    slack=runtime.slack)

    async def post_signed(self, body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None,
                          headers: dict[str, str] | None = None) -> tuple[int, str]:
        all_headers = sign(body, secret, timestamp) | (headers or {})
        async with self.http.post(f"{self.url}/slack/events", data=body.encode(), headers=all_headers) as response:
            return response.status, await response.text()

    async def send_event(self, event: dict[str, Any], *, event_id: str | None = None,
                         headers: dict[str, str] | None = None, authorizations: list[dict[str, Any]] | None = None
                         ) -> str:
        event_id = event_id or new_event_id()
        body = event_body(event, event_id=event_id, team_id=self.slack.team_id, enterprise_id=self.slack.enterprise_id)
        if authorizations is not None:
            body["authorizations"] = authorizations
        status, _ = await self.post_signed(json_body(body), headers=headers)
        assert status == 200
        return event_id

    async def mention(self, user: str, text: str, *, channel: str = "C0001", ts: str | None = None,
                      thread_ts: str | None = None, event_id: str | None = None) -> str:
        ts = ts or self.slack.next_ts()
        self.slack.add_message(channel, ts, f"<@{self.slack.bot_user_id}> {text}", user=user, thread_ts=thread_ts)
        event = {"type": "app_mention", "user": user, "text": f"<@{self.slack.bot_user_id}> {text}", "ts": ts,
                 "channel": channel, "event_ts": ts}
        if thread_ts:
            event["thread_ts"] = thread_ts
        await self.send_event(event, event_id=event_id)
        return ts

    async def dm(self, user: str, text: str, *, ts: str | None = None) -> str:
        ts = ts or self.slack.next_ts()
        channel = "D" + user
        self.slack.add_message(channel, ts, text, user=user)
        await self.send_event({"type": "message", "channel_type": "im", "user": user, "text": text, "ts": ts,
                               "channel": channel, "event_ts": ts})
        return ts

    async def dm_reply(self, user: str, text: str, thread_ts: str, *, ts: str | None = None) -> str:
        """A reply in the thread of the person's own DM message (agent messaging experience)."""
        ts = ts or self.slack.next_ts()
        channel = "D" + user
        self.slack.add_message(channel, ts, text, user=user, thread_ts=thread_ts)
        await self.send_event({"type": "message", "channel_type": "im", "user": user, "text": text, "ts": ts,
                               "thread_ts": thread_ts, "parent_user_id": user, "channel": channel, "event_ts": ts})
        return ts

    async def open_messages_tab(self, user: str) -> None:
        """The person opens the bot's DM (agent_view): ``app_home_opened`` with ``tab: "messages"``."""
        await self.send_event({"type": "app_home_opened", "user": user, "channel": "D" + user, "tab": "messages",
                               "event_ts": self.slack.next_ts()})

    async def view_channel(self, user: str, channel: str | None) -> None:
        """The person looks at ``channel`` (None: at nothing) with the DM open: ``app_context_changed``."""
        entities = [{"type": "slack#/types/channel_id", "value": channel, "team_id": self.slack.team_id}]
        # as Slack's reference prints it: no `user` in the event; the person is the one human authorization
        await self.send_event({"type": "app_context_changed", "event_ts": self.slack.next_ts(),
                               "context": {"entities": entities} if channel else {}},
                              authorizations=[self.person_authorization(user)])
        if channel:  # the event is handled after its ack: wait until it is remembered, as a person would not notice
            from bot.services.conversation.places import viewed_channel

            await eventually(lambda: _is(viewed_channel(self.runtime.db, user), channel))

    def person_authorization(self, user: str) -> dict[str, Any]:
        """An ``authorizations`` entry of a person (``is_bot`` false), as events on the person's behalf carry."""
        return {"enterprise_id": self.slack.enterprise_id, "team_id": self.slack.team_id, "user_id": user,
                "is_bot": False, "is_enterprise_install": False}

    async def command(self, user: str, command: str, text: str, *, channel: str = "C0001",
                      timeout: float = 5.0) -> dict[str, Any]:
        """Run a slash command as Slack would; returns the ephemeral answer posted to its response_url."""
        response_url = self.slack.new_response_url()
        body = command_body(command, text, user, channel, response_url=response_url)
        status, ack_body = await self.post_signed(body)
        assert status == 200, ack_body

        def answered() -> dict[str, Any] | None:
            return next((r["body"] for r in self.slack.responses if r["url"] == response_url), None)

        return await eventually(answered, timeout)

    async def table_snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, to prove a command changed nothing."""
        from bot.store.models import Base

        snapshot: dict[str, list[tuple[Any, ...]]] = {}
        async with self.sessions() as session:
            for table in Base.metadata.sorted_tables:
                if table.name == "processed_events":  # which deliveries were taken (event ids, trigger ids), not state
                    continue
                rows = (await session.execute(table.select())).all()
                snapshot[table.name] = sorted((tuple(r) for r in rows), key=repr)
        return snapshot

    async def records(self) -> list[RequestRecord]:
        async with self.sessions() as session:
            return list(await session.scalars(select(RequestRecord).order_by(RequestRecord.id)))

    async def audit(self) -> list[AuditEntry]:
        async with self.sessions() as session:
            return list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))

    async def settled_records(self, count: int, timeout: float = 5.0) -> list[RequestRecord]:
        """Wait for ``count`` records, none of them still in flight."""

        async def ready() -> list[RequestRecord] | None:
            rows = await self.records()
            return rows if len(rows) >= count and all(r.outcome != "admitted" for r in rows) else None

        return await eventually(ready, timeout)

    async def grant(self, user: str, role: Role) -> None:
        async with self.sessions.begin() as session:
            await grant_role(session, self.clock, actor_id="test", actor_role=None, target_id=user, role=role)

    def ephemerals_for(self, user: str) -> list[dict[str, Any]]:
        return [call for call in self.slack.calls_to("chat.postEphemeral") if call.get("user") == user]

    async def told(self, user: str, count: int = 1) -> list[dict[str, Any]]:
        """The ephemeral lines ``user`` was shown, once there are ``count`` (a refusal is recorded first)."""
        return await eventually(lambda: len(found := self.ephemerals_for(user)) >= count and found)


@pytest.fixture
async def harness_factory(settings_factory: Callable[..., Settings], fake_slack: FakeSlack,
                          fake_anthropic: FakeAnthropic, clock: ManualClock) -> AsyncIterator[Callable[..., Any]]:
    made: list[tuple[Runtime, web.AppRunner, aiohttp.ClientSession]] = []

    async def make(**overrides: Any) -> Harness:
        runtime = build_app(settings_factory(**overrides), clock=clock)
        await runtime.start()
        runner = web.AppRunner(runtime.web_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        http = aiohttp.ClientSession()
        made.append((runtime, runner, http))
        return Harness(runtime, f"http://127.0.0.1:{port}", http, fake_slack, fake_anthropic, clock)

    yield make
    for runtime, runner, http in made:
        await http.close()
        await runner.cleanup()
        await runtime.close()
        # a connection outliving close() would keep, on PostgreSQL, its locks: the next test's reset would wait
        assert runtime.engine.pool.checkedout() == 0, "a database connection outlived the app"


@pytest.fixture
async def harness(harness_factory: Callable[..., Any]) -> Harness:
    return await harness_factory()


def text_of(answer: dict[str, Any]) -> str:
    """Everything a person sees in an ephemeral answer (fallback text and every block)."""
    return answer.get("text", "") + "\n" + json.dumps(answer.get("blocks", []), ensure_ascii=False)


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)


@pytest.fixture
def aiohttp_get() -> Callable[..., Any]:
    """GET a path of an aiohttp application served on a free 127.0.0.1 port; returns (status, json)."""

    async def get(app: web.Application, path: str) -> tuple[int, Any]:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as response:
                return response.status, await response.json()
        finally:
            await runner.cleanup()

    return get
