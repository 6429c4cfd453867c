"""Where conversations happen, remembered in the shared database so every process knows: the channel a person
is viewing with the bot's DM open (agent messaging experience), the channel threads the bot answered, and the
threads of Slack's assistant panel."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Executable, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from bot.store.clock import Clock
from bot.store.db import Database
from bot.store.models import AnsweredThread, ViewingContext


def _upsert_viewing(dialect: Any) -> Executable:
    statement: Any = dialect.insert(ViewingContext).values(
        slack_user_id=bindparam("user_id"), channel_id=bindparam("channel_id"), team_id=bindparam("team_id"),
        updated_at=bindparam("now", type_=ViewingContext.updated_at.type))
    upsert: Executable = statement.on_conflict_do_update(
        index_elements=["slack_user_id"],
        set_={"channel_id": statement.excluded.channel_id, "team_id": statement.excluded.team_id,
              "updated_at": statement.excluded.updated_at})
    return upsert


def _insert_answered(dialect: Any) -> Executable:
    statement: Executable = dialect.insert(AnsweredThread).values(
        channel_id=bindparam("channel_id"), thread_ts=bindparam("thread_ts"), slack_user_id=bindparam("user_id"),
        answered_at=bindparam("now", type_=AnsweredThread.answered_at.type),
    ).on_conflict_do_update(index_elements=["channel_id", "thread_ts", "slack_user_id"],
                            set_={"answered_at": bindparam("now", type_=AnsweredThread.answered_at.type)})
    return statement


def _insert_panel(dialect: Any) -> Executable:
    now = bindparam("now", type_=AnsweredThread.answered_at.type)
    statement: Executable = dialect.insert(AnsweredThread).values(
        channel_id=bindparam("channel_id"), thread_ts=bindparam("thread_ts"), slack_user_id=bindparam("user_id"),
        answered_at=now, panel=True,
    ).on_conflict_do_update(index_elements=["channel_id", "thread_ts", "slack_user_id"],
                            set_={"panel": True, "answered_at": now})
    return statement


UPSERT_VIEWING = {name: _upsert_viewing(d) for name, d in (("sqlite", sqlite), ("postgresql", postgresql))}
INSERT_ANSWERED = {name: _insert_answered(d) for name, d in (("sqlite", sqlite), ("postgresql", postgresql))}
INSERT_PANEL = {name: _insert_panel(d) for name, d in (("sqlite", sqlite), ("postgresql", postgresql))}
VIEWED_CHANNEL = select(ViewingContext.channel_id).where(ViewingContext.slack_user_id == bindparam("user_id"))
PANEL_THREAD = select(AnsweredThread.panel).where(
    AnsweredThread.channel_id == bindparam("channel_id"), AnsweredThread.thread_ts == bindparam("thread_ts"),
    AnsweredThread.slack_user_id == bindparam("user_id"))
ASKED_HERE = select(AnsweredThread.slack_user_id).where(
    AnsweredThread.channel_id == bindparam("channel_id"), AnsweredThread.thread_ts == bindparam("thread_ts"),
    AnsweredThread.slack_user_id == bindparam("user_id"))


async def remember_viewing(db: Database, clock: Clock, *, user_id: str,
                           channel_id: str | None, team_id: str | None) -> None:
    async with db.engine.begin() as connection:
        await connection.execute(UPSERT_VIEWING[connection.dialect.name],
                                 {"user_id": user_id, "channel_id": channel_id, "team_id": team_id, "now": clock()})


async def viewed_channel(db: Database, user_id: str) -> str | None:
    async with db.engine.connect() as connection:
        return (await connection.execute(VIEWED_CHANNEL, {"user_id": user_id})).scalar_one_or_none()


async def asked_in_thread(db: Database, *, channel_id: str, thread_ts: str,
                          user_id: str) -> bool:
    """Whether ``user_id`` asked the bot in this channel thread: one primary-key lookup."""
    async with db.engine.connect() as connection:
        row = (await connection.execute(ASKED_HERE, {"channel_id": channel_id, "thread_ts": thread_ts,
                                                     "user_id": user_id})).first()
    return row is not None


async def remember_panel_thread(db: Database, clock: Clock, *, channel_id: str,
                                thread_ts: str, user_id: str) -> None:
    """Slack opened an assistant panel thread for ``user_id`` (``assistant_thread_started``); a replay changes
    nothing."""
    async with db.engine.begin() as connection:
        await connection.execute(INSERT_PANEL[connection.dialect.name],
                                 {"channel_id": channel_id, "thread_ts": thread_ts, "user_id": user_id, "now": clock()})


async def is_panel_thread(db: Database, *, channel_id: str, thread_ts: str,
                          user_id: str) -> bool:
    """Whether this thread was opened as ``user_id``'s assistant panel thread: one primary-key lookup. (The thread's
    root is the person's own message in the panel and in an agent DM alike, so nothing in the message tells.)"""
    async with db.engine.connect() as connection:
        panel = (await connection.execute(PANEL_THREAD, {"channel_id": channel_id, "thread_ts": thread_ts,
                                                         "user_id": user_id})).scalar_one_or_none()
    return bool(panel)
