"""Two approvers click at the same moment on two `claude-gate serve` processes sharing PostgreSQL: one grant, the
other is told who decided."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.domain.roles import Role
from bot.store.db import create_engine, session_factory
from bot.store.models import AccessRequest, AuditEntry, TimedGrant
from tests.processes.test_multiprocess import grant
from tests.support.access_flow import (
    click_decision,
    click_request_access,
    ephemeral_texts,
    refusal_of,
    request_messages,
    submit_form,
)
from tests.support.fakes import FakeSlack
from tests.support.fakes.signing import event_body, json_body, sign
from tests.support.harness import ON_POSTGRES, SIGNING_SECRET, eventually
from tests.support.processes import Cluster

pytestmark = pytest.mark.skipif(
    not ON_POSTGRES, reason="multi-process guarantees are proven on PostgreSQL: set TEST_DATABASE_URL (.ci/run does)")



@dataclass
class Remote:
    """What tests/access_flow needs of a harness, for a `serve` process."""

    slack: FakeSlack
    http: aiohttp.ClientSession
    url: str

    async def post_signed(self, body: str) -> tuple[int, str]:
        async with self.http.post(f"{self.url}/slack/events", data=body.encode(),
                                  headers=sign(body, SIGNING_SECRET)) as response:
            return response.status, await response.text()

    async def mention(self, user: str, text: str) -> str:
        ts = self.slack.next_ts()
        self.slack.add_message("C0001", ts, f"<@UBOT> {text}", user=user)
        event = {"type": "app_mention", "user": user, "text": f"<@UBOT> {text}", "ts": ts, "channel": "C0001"}
        status, _ = await self.post_signed(json_body(event_body(event)))
        assert status == 200
        return ts

    def ephemerals_for(self, user: str) -> list[dict[str, Any]]:
        return [call for call in self.slack.calls_to("chat.postEphemeral") if call.get("user") == user]

    async def told(self, user: str, count: int = 1) -> list[dict[str, Any]]:
        return await eventually(lambda: len(found := self.ephemerals_for(user)) >= count and found, timeout=20)


async def rows(database_url: str, model: Any) -> list[Any]:
    engine = create_engine(database_url)
    async with session_factory(engine)() as session:
        found = list(await session.scalars(select(model)))
    await engine.dispose()
    return found


async def test_two_approvers_at_once_through_two_processes(cluster: Cluster, database_url: str) -> None:
    for user in ("UOWNER", "UADMIN", "UVIEW"):
        cluster.slack.add_user(user)
    await grant(database_url, "UOWNER", Role.OWNER)
    await grant(database_url, "UADMIN", Role.ADMIN)
    first, second = await asyncio.to_thread(cluster.start, 2)
    async with aiohttp.ClientSession() as http:
        a, b = Remote(cluster.slack, http, first.url), Remote(cluster.slack, http, second.url)
        refusal = await refusal_of(a, "UVIEW", "hello")  # type: ignore[arg-type]
        view = await click_request_access(b, "UVIEW", refusal)  # type: ignore[arg-type]
        answer = await submit_form(a, "UVIEW", view, "power", "Reviewing long contracts")  # type: ignore[arg-type]
        assert answer["response_action"] == "update"
        copies = await eventually(lambda: len(found := request_messages(a)) == 2 and found,  # type: ignore[arg-type]
                                  timeout=20)
        admin_copy = next(m for m in copies if m["channel"] == "DUADMIN")
        owner_copy = next(m for m in copies if m["channel"] == "DUOWNER")
        await asyncio.gather(
            click_decision(a, "UADMIN", admin_copy, "access_request_approve_7d"),  # type: ignore[arg-type]
            click_decision(b, "UOWNER", owner_copy, "access_request_approve_permanent"))  # type: ignore[arg-type]
        told = await eventually(lambda: (admin := ephemeral_texts(a, "UADMIN")) and (  # type: ignore[arg-type]
            owner := ephemeral_texts(a, "UOWNER")) and admin + owner, timeout=20)  # type: ignore[arg-type]
    winners = [t for t in told if "already decided" not in t]
    losers = [t for t in told if "already decided" in t]
    assert len(winners) == 1 and len(losers) == 1, told
    approvals = [e for e in await rows(database_url, AuditEntry) if e.action == "access.approve"]
    assert len(approvals) == 1
    winner = approvals[0].actor
    assert f"<@{winner}>" in losers[0]
    (request,) = await rows(database_url, AccessRequest)
    assert (request.status, request.decided_by) == ("approved", winner)
    timed = await rows(database_url, TimedGrant)
    assert [(t.slack_user_id, t.role) for t in timed] == ([("UVIEW", "power")] if winner == "UADMIN" else [])
    grants = [e for e in await rows(database_url, AuditEntry) if e.action == "grant" and e.target == "UVIEW"]
    assert len(grants) == 1
