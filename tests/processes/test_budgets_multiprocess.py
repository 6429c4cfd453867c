"""Budgets are exact across `serve` processes on one PostgreSQL database (docs/spend.md): 50 requests at once against a
budget that fits 7 reservations, the fake answering with every token granted, never pass it — for a person's USD
budget, a user group's pooled budget with members spread over the processes, and the daily token budget."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bot.domain.pricing import cost_micros, price_of
from bot.domain.roles import Role
from bot.price_source import list_prices
from tests.processes.test_multiprocess import grant, mention, records
from tests.support.fakes.signing import command_body, event_body
from tests.support.harness import ON_POSTGRES, eventually
from tests.support.processes import Cluster, post_signed

pytestmark = pytest.mark.skipif(
    not ON_POSTGRES, reason="multi-process guarantees are proven on PostgreSQL: set TEST_DATABASE_URL (.ci/run does)")

REQUESTS = 50
FITS = 7


async def test_budgets_hold_across_three_processes(cluster: Cluster, database_url: str) -> None:
    slack, claude = cluster.slack, cluster.anthropic
    claude.reply = "word " * 9_000  # every answer uses its whole max_tokens
    claude.first_token_delay = 0.3  # many in flight at once
    people = {"UOWNER": Role.OWNER, "UP": Role.POWER, "UPROBE": Role.POWER, "UA": Role.USER, "UB": Role.USER,
              "UC": Role.USER, "UQ": Role.USER, "UT": Role.ADMIN, "UTPROBE": Role.ADMIN}
    for user, role in people.items():
        slack.add_user(user, name="same-length")  # the same system prompt: the same reservation
        await grant(database_url, user, role)
    slack.add_usergroup("S0POOL", "pool", ["UA", "UB", "UC"])
    servers = await asyncio.to_thread(cluster.start, 3)

    async with aiohttp.ClientSession() as http:
        async def ask(server: int, user: str, text: str) -> int:
            return await post_signed(http, servers[server % 3].url, event_body(mention(slack, user, text)))

        async def command(text: str) -> str:
            url = slack.new_response_url()
            await post_signed(http, servers[0].url, command_body("/claude-admin", text, "UOWNER", response_url=url))
            return await eventually(lambda: next((r["body"]["text"] for r in slack.responses if r["url"] == url),
                                                 None), timeout=30)

        # one probe per role measures a reservation (same text length, same name: the same estimate)
        for user in ("UPROBE", "UQ", "UTPROBE"):
            await ask(0, user, "question 00")
        probes = {r.slack_user_id: r for r in await eventually(lambda: _settled(database_url, 3), timeout=60)}
        usd = {user: cost_micros(price_of(r.model, list_prices()), input_tokens=r.input_estimate,
                                 output_tokens=r.max_tokens) for user, r in probes.items()}
        person_budget = FITS * usd["UPROBE"] + 10
        pool_budget = FITS * usd["UQ"] + 10
        token_budget = FITS * (probes["UTPROBE"].input_estimate + probes["UTPROBE"].max_tokens) + 10
        assert ":white_check_mark:" in await command(f"budget set <@UP> daily {person_budget / 1e6:.6f}")
        assert ":white_check_mark:" in await command(
            f"budget set <!subteam^S0POOL|@pool> monthly {pool_budget / 1e6:.6f}")
        assert ":white_check_mark:" in await command(f"policy set admin daily_token_budget {token_budget}")

        members = ["UA", "UB", "UC"]
        statuses = await asyncio.gather(*(
            task for i in range(REQUESTS) for task in (
                ask(i, "UP", f"question {i:02d}"),
                ask(i + 1, members[i % 3], f"question {i:02d}"),
                ask(i + 2, "UT", f"question {i:02d}"),
            )))
    assert set(statuses) == {200}
    rows = await eventually(lambda: _settled(database_url, 3 + 3 * REQUESTS), timeout=240, interval=1)

    def of(users: set[str]) -> tuple[list, list]:
        mine = [r for r in rows if r.slack_user_id in users]
        return [r for r in mine if r.admitted], [r for r in mine if not r.admitted]

    for users, limit, unit in (({"UP"}, person_budget, "usd"), (set(members), pool_budget, "usd"),
                               ({"UT"}, token_budget, "tokens")):
        admitted, refused = of(users)
        spent = sum(r.cost_micros if unit == "usd" else r.input_tokens + r.output_tokens for r in admitted)
        assert spent <= limit, (users, spent, limit)
        assert len(admitted) >= FITS - 1, (users, len(admitted))
        assert len(admitted) + len(refused) == REQUESTS
        assert refused and {r.refusal_reason for r in refused} == {"budget_exhausted"}
        assert all(r.outcome == "ok" for r in admitted)
    pooled, refused_pool = of(set(members))
    # members on every process drew from the one pool: whoever came first, the others were refused by it
    assert {r.slack_user_id for r in pooled + refused_pool} == set(members)
    admitted_total = sum(r.admitted for r in rows)
    assert len(claude.message_requests()) == admitted_total  # no refused request reached Anthropic


async def _settled(database_url: str, count: int) -> list | None:
    rows = await records(database_url)
    return rows if len(rows) >= count and all(r.outcome != "admitted" for r in rows) else None


CHANNEL_REQUESTS = 30


def in_channel(slack, user: str, text: str, channel: str) -> dict:  # type: ignore[no-untyped-def]
    ts = slack.next_ts()
    slack.add_message(channel, ts, f"<@UBOT> {text}", user=user)
    return {"type": "app_mention", "user": user, "text": f"<@UBOT> {text}", "ts": ts, "channel": channel}


async def test_a_channel_budget_holds_across_two_processes(cluster: Cluster, database_url: str) -> None:
    """30 requests at once in one channel, from three people, over two processes, against a channel budget that
    fits 7 reservations: the pool is never passed, and the same people elsewhere are not charged to it."""
    slack, claude = cluster.slack, cluster.anthropic
    claude.reply = "word " * 9_000
    claude.first_token_delay = 0.3
    people = ("UX", "UY", "UZ")
    for user, role in (("UOWNER", Role.OWNER), *((p, Role.POWER) for p in people)):
        slack.add_user(user, name="same-length")
        await grant(database_url, user, role)
    servers = await asyncio.to_thread(cluster.start, 2)

    async with aiohttp.ClientSession() as http:
        async def ask(server: int, user: str, text: str, channel: str = "C0BUD") -> int:
            return await post_signed(http, servers[server % 2].url,
                                     event_body(in_channel(slack, user, text, channel)))

        async def command(text: str) -> str:
            url = slack.new_response_url()
            await post_signed(http, servers[0].url, command_body("/claude-admin", text, "UOWNER", response_url=url))
            return await eventually(lambda: next((r["body"]["text"] for r in slack.responses if r["url"] == url),
                                                 None), timeout=30)

        await ask(0, "UX", "question 00")
        (probe,) = await eventually(lambda: _settled(database_url, 1), timeout=60)
        fits = cost_micros(price_of(probe.model, list_prices()), input_tokens=0,
                           cache_write_tokens=probe.input_estimate, output_tokens=probe.max_tokens)
        budget = FITS * fits + 10
        assert ":white_check_mark:" in await command(f"budget set <#C0BUD|bud> daily {budget / 1e6:.6f}")
        statuses = await asyncio.gather(*(ask(i, people[i % 3], f"question {i:02d}")
                                          for i in range(CHANNEL_REQUESTS)),
                                        ask(1, "UX", "question elsewhere", channel="C0ELSE"))
    assert set(statuses) == {200}
    rows = await eventually(lambda: _settled(database_url, 2 + CHANNEL_REQUESTS), timeout=240, interval=1)
    there = [r for r in rows[1:] if r.channel_id == "C0BUD"]
    admitted = [r for r in there if r.admitted]
    assert probe.cost_micros + sum(r.cost_micros for r in admitted) <= budget
    assert len(admitted) >= FITS - 2 and len(there) == CHANNEL_REQUESTS
    assert {r.refusal_reason for r in there if not r.admitted} == {"budget_exhausted"}
    assert {r.slack_user_id for r in there} == set(people)
    (elsewhere,) = [r for r in rows if r.channel_id == "C0ELSE"]
    assert elsewhere.outcome == "ok" and "channel:C0BUD" not in (elsewhere.charged_to or [])
