"""The last owner cannot disappear when two owners revoke or demote each other at the same moment through two
`claude-gate serve` processes (docs/admin.md): on PostgreSQL (TEST_DATABASE_URL) and on SQLite (two
processes sharing one database file)."""

from __future__ import annotations

import asyncio

import aiohttp
from sqlalchemy import delete, select

from bot.domain.roles import Role
from bot.services.access.roles import grant_role
from bot.store.clock import system_clock
from bot.store.db import create_engine, session_factory
from bot.store.models import RoleGrant
from tests.support.fakes.signing import command_body
from tests.support.harness import eventually
from tests.support.processes import Cluster, post_signed

ROUNDS = 50
# what each owner does to the other in a round: a revoke, or a demotion by a new permanent grant
MOVES = ("revoke <@{other}>", "grant <@{other}> admin", "offboard <@{other}>", "grant <@{other}> user")


async def test_two_owners_removing_each_other_at_once_leave_one_owner(cluster: Cluster, database_url: str) -> None:
    for user in ("UOWNA", "UOWNB"):
        cluster.slack.add_user(user)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    first, second = await asyncio.to_thread(cluster.start, 2)

    async def command(http: aiohttp.ClientSession, url: str, user: str, text: str) -> str:
        response_url = cluster.slack.new_response_url()
        assert await post_signed(http, url, command_body("/claude-admin", text, user,
                                                         response_url=response_url)) == 200
        return await eventually(lambda: next((r["body"]["text"] for r in cluster.slack.responses
                                              if r["url"] == response_url), None), timeout=30)

    survivors: list[list[str]] = []
    try:
        async with aiohttp.ClientSession() as http:
            for round_number in range(ROUNDS):
                async with sessions.begin() as session:  # both are owners again
                    await session.execute(delete(RoleGrant))
                    for user in ("UOWNA", "UOWNB"):
                        await grant_role(session, system_clock, actor_id="test", actor_role=None, target_id=user,
                                         role=Role.OWNER)
                move = MOVES[round_number % len(MOVES)]
                answers = await asyncio.gather(command(http, first.url, "UOWNA", move.format(other="UOWNB")),
                                               command(http, second.url, "UOWNB", move.format(other="UOWNA")))
                async with sessions() as session:
                    owners = list(await session.scalars(select(RoleGrant.slack_user_id)
                                                        .where(RoleGrant.role == Role.OWNER.value)))
                survivors.append(owners)
                assert len(owners) == 1, (round_number, move, answers)
                refused = [a for a in answers if a.startswith(":no_entry:")]
                assert len(refused) == 1, (round_number, move, answers)
    finally:
        await engine.dispose()
    assert len(survivors) == ROUNDS
    for proc in (first, second):
        assert "Traceback" not in proc.log(), proc.log()
