"""USD and token budgets (docs/spend.md): reservations at admission, what fits is granted, refusals say which budget,
and spend never passes a budget however many requests arrive at once."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.domain.budgets import AmountError, parse_usd, reservation_micros
from bot.domain.estimate import input_tokens_bound
from bot.domain.pricing import (
    Price,
    cost_micros,
    estimated_cost_micros,
    format_usd,
    price_of,
)
from bot.domain.roles import Role
from bot.price_source import list_prices
from bot.store.models import Budget, GroupMember, SpendCounter
from tests.support.fakes.anthropic import count_input_tokens
from tests.support.harness import Harness

ADMIN = "/claude-admin"
LONG_ANSWER = "word " * 9_000  # the fake answers with every token it is granted


def text_of(answer: dict) -> str:
    return answer.get("text", "") + "\n" + json.dumps(answer.get("blocks", []), ensure_ascii=False)


@pytest.fixture
async def org(harness: Harness) -> Harness:
    for user, role in (("UOWNER", Role.OWNER), ("UADMIN", Role.ADMIN), ("UBILL", Role.BILLING),
                       ("U1", Role.POWER), ("U2", Role.POWER), ("U3", Role.USER)):
        harness.slack.add_user(user, name=user.lower())
        await harness.grant(user, role)
    harness.anthropic.reply = LONG_ANSWER
    return harness


async def settled(harness: Harness, count: int) -> list:
    return await harness.settled_records(count, timeout=30)


def reservation(harness: Harness, record) -> int:  # type: ignore[no-untyped-def]
    """What the gate reserved for ``record``'s request: its input bound priced as cache writes, its max_tokens."""
    price = price_of(record.model, harness.runtime.settings.prices)
    assert price is not None
    reserved = reservation_micros(price, record.input_estimate, record.max_tokens)
    assert reserved == record.reserved_micros and reserved > record.cost_micros
    return reserved


# -- prices ---------------------------------------------------------------------------------------------
def test_prices_are_per_model_id_with_family_defaults_in_micro_dollars() -> None:
    table = list_prices()
    old_opus, new_opus = price_of("claude-opus-4-1", table), price_of("claude-opus-4-8", table)
    assert old_opus is not None and new_opus is not None
    assert (old_opus.base, new_opus.base) == (Price.usd(15, 75).base, Price.usd(5, 25).base)  # the older: 3×
    assert price_of("claude-opus-9-9", table) == price_of("claude-opus-5-5", table)  # unlisted: its family's newest
    assert price_of("claude-nothing-5", table) is None  # no family, no price
    # 1,000 input + 100 output + 2,000 cache writes (1.25×) + 10,000 cache reads (0.1×) at $1/$5 per million
    assert estimated_cost_micros("claude-haiku-4-5", 1_000, 100, table, cache_write_tokens=2_000,
                                 cache_read_tokens=10_000) == 1_000 + 500 + 2_500 + 1_000
    assert cost_micros(Price.usd("0.25", "1.25"), input_tokens=1, output_tokens=0) == 1  # rounded up, never down
    assert format_usd(5_000_000) == "$5.00" and format_usd(4_200) == "$0.0042"


@pytest.mark.parametrize("text", ["-5", "NaN", "nan", "1e999", "inf", "$", "", "５", "٥", "5,00", "$-1", "0x10",
                                  "12345678901", "5 dollars"])
def test_bad_amounts_are_refused(text: str) -> None:
    with pytest.raises(AmountError):
        parse_usd(text)


def test_amounts() -> None:
    assert parse_usd("$5") == parse_usd("5") == 5_000_000
    assert parse_usd("0.000001") == 1 and parse_usd("12.5") == 12_500_000 and parse_usd("none") is None


# -- the reservation's input bound ------------------------------------------------------------------------
CODE = """def f(xs):\n    return {k: [v ** 2 for v in xs if v % 3 == 0] for k in range(10)}  # ;;; ->> !=\n""" * 40
CJK = "東京都の天気はどうですか。明日は雨が降るでしょうか？" * 200
LONG = "The quick brown fox jumps over the lazy dog. " * 2_000
EMOJI = "🙂🚀✨ ok " * 500


@pytest.mark.parametrize("text", [LONG, CJK, CODE, EMOJI, "x", "1234567890" * 300], ids=["long", "cjk", "code",
                                                                                      "emoji", "one", "digits"])
def test_input_bound_is_never_below_the_counted_tokens(text: str) -> None:
    system = "You are Claude, answering inside Slack."
    messages = [{"role": "user", "content": text}, {"role": "assistant", "content": text[:500]},
                {"role": "user", "content": text[:100]}]
    counted = count_input_tokens({"system": system, "messages": messages})
    assert input_tokens_bound(system, messages) >= counted
    assert len(text) // 4 < counted or text == "x"  # characters ÷ 4 would have under-reserved these


async def test_cjk_prompt_reserves_at_least_what_it_costs(org: Harness) -> None:
    await org.mention("U1", CJK[:3_000])
    (record,) = await settled(org, 1)
    assert record.outcome == "ok" and record.input_estimate >= record.input_tokens > 3_000 // 4


# -- USD budgets -----------------------------------------------------------------------------------------
async def test_role_budget_is_exact_under_concurrency_and_refusals_name_the_budget(org: Harness) -> None:
    await org.mention("U1", "probe")
    (probe,) = await settled(org, 1)
    budget = 7 * reservation(org, probe) + 10  # room for 7 reservations (the probe does not count: a new day)
    org.clock.advance(86_400)
    answer = await org.command("UADMIN", ADMIN, f"policy set power daily_usd {budget / 1e6:.6f}")
    assert "daily_usd" in answer["text"] and ":white_check_mark:" in answer["text"]
    await asyncio.gather(*(org.mention("U1", f"question {i}") for i in range(30)))
    records = (await settled(org, 31))[1:]
    admitted = [r for r in records if r.admitted]
    assert sum(r.cost_micros for r in admitted) <= budget
    assert len(admitted) >= 7
    refused = [r for r in records if not r.admitted]
    assert refused and {r.refusal_reason for r in refused} == {"budget_exhausted"}
    told = (await org.told("U1"))[-1]["text"]
    assert "your daily budget (role *power*)" in told and "used" in told and "00:00 UTC" in told
    assert len(org.anthropic.message_requests()) == 1 + len(admitted)


async def test_what_fits_is_granted_and_the_cut_names_the_budget(org: Harness) -> None:
    await org.mention("U1", "probe")
    (probe,) = await settled(org, 1)
    full = reservation(org, probe)
    org.clock.advance(86_400)
    price = price_of(probe.model, org.runtime.settings.prices)
    assert price is not None
    room = cost_micros(price, input_tokens=probe.input_estimate, output_tokens=400)
    await org.command("UADMIN", ADMIN, f"budget set <@U1> daily {room / 1e6:.6f}")
    assert room < full
    await org.mention("U1", "probe")
    second = (await settled(org, 2))[-1]
    assert second.outcome == "ok" and 256 <= second.max_tokens <= 400 and second.cost_micros <= room
    posted = org.slack.posted_texts("C0001")[-1]
    assert "your daily budget leaves room for" in posted


async def test_a_model_without_a_price_is_refused_where_a_usd_budget_applies(org: Harness) -> None:
    await org.command("UADMIN", ADMIN, "policy set power models haiku,claude-unlisted-1")
    await org.command("UADMIN", ADMIN, "policy set power monthly_usd 50")
    await org.mention("U1", "--model claude-unlisted-1 hello")
    (record,) = await settled(org, 1)
    assert record.refusal_reason == "model_not_priced"
    assert "MODEL_PRICES" in (await org.told("U1"))[-1]["text"]
    await org.command("UADMIN", ADMIN, "policy set power monthly_usd none")
    await org.mention("U1", "--model claude-unlisted-1 hello")
    assert (await settled(org, 2))[-1].outcome == "ok"  # no USD budget: priced as the dearest model


async def test_pooled_group_budget_counts_every_member(org: Harness) -> None:
    org.slack.add_usergroup("S0DES", "design", ["U1", "U2"])
    await org.mention("U1", "probe")
    (probe,) = await settled(org, 1)
    budget = 4 * reservation(org, probe) + 10
    answer = await org.command("UADMIN", ADMIN, f"budget set <!subteam^S0DES|@design> monthly {budget / 1e6:.6f}")
    assert "@design's pooled monthly budget" in answer["text"]
    async with org.sessions() as session:  # the group's spend so far was counted when it got its budget
        counter = await session.scalar(select(SpendCounter.micros).where(SpendCounter.scope == "group:S0DES",
                                                                         SpendCounter.period == "month"))
        assert counter == probe.cost_micros
    await asyncio.gather(*(org.mention("U1" if i % 2 else "U2", f"q{i}") for i in range(12)))
    records = await settled(org, 13)
    admitted = [r for r in records if r.admitted]
    assert sum(r.cost_micros for r in admitted) <= budget
    assert 3 <= len(admitted) - 1 and {r.slack_user_id for r in admitted[1:]} == {"U1", "U2"}
    refusal = (await org.told("U2"))[-1]["text"] if org.ephemerals_for("U2") else (await org.told("U1"))[-1]["text"]
    assert "the @design group's monthly budget" in refusal
    await org.mention("U3", "not a member")  # the pool does not touch others
    assert (await settled(org, 14))[-1].outcome == "ok"


async def test_a_channel_budget_pools_every_answer_there_and_no_dm(org: Harness) -> None:
    await org.mention("U1", "probe", channel="C0BUD")
    (probe,) = await settled(org, 1)
    budget = 4 * reservation(org, probe) + 10
    answer = await org.command("UADMIN", ADMIN, f"budget set <#C0BUD|budget-room> daily {budget / 1e6:.6f}")
    assert "<#C0BUD>'s pooled daily budget" in answer["text"], answer["text"]
    async with org.sessions() as session:  # the channel's spend so far was counted when it got its budget
        counter = await session.scalar(select(SpendCounter.micros).where(SpendCounter.scope == "channel:C0BUD",
                                                                         SpendCounter.period == "day"))
        assert counter == probe.cost_micros
    await asyncio.gather(*(org.mention("U1" if i % 2 else "U2", f"q{i}", channel="C0BUD") for i in range(12)))
    records = await settled(org, 13)
    admitted = [r for r in records if r.admitted]
    assert sum(r.cost_micros for r in admitted) <= budget
    assert 3 <= len(admitted) - 1 and {r.slack_user_id for r in admitted[1:]} == {"U1", "U2"}
    refused = [r for r in records if not r.admitted]
    assert refused and {r.refusal_reason for r in refused} == {"budget_exhausted"}
    told = [m["text"] for user in ("U1", "U2") for m in org.ephemerals_for(user)]
    assert any("channel's daily budget" in text for text in told), told
    await org.mention("U1", "elsewhere", channel="C0ELSE")  # another channel: not this pool
    await org.dm("U1", "in a DM")  # a DM follows no channel's rules: no channel budget charges it
    tail = await settled(org, 15)
    assert [r.outcome for r in tail[-2:]] == ["ok", "ok"]
    assert all("channel:C0BUD" not in (r.charged_to or []) for r in tail[-2:])
    listing = text_of(await org.command("UBILL", ADMIN, "budget"))
    assert "<#C0BUD> (pooled)" in listing
    usage = text_of(await org.command("UBILL", ADMIN, "usage"))
    assert "Spend by channel: <#C0BUD>" in usage


async def test_org_budget_and_budget_listing(org: Harness) -> None:
    assert "None set" in text_of(await org.command("UBILL", ADMIN, "budget"))
    assert ":white_check_mark:" in (await org.command("UADMIN", ADMIN, "budget set org monthly $500"))["text"]
    await org.command("UADMIN", ADMIN, "budget set power daily 5")
    await org.command("UADMIN", ADMIN, "budget set U2 daily 2")
    await org.mention("U1", "hello")
    await settled(org, 1)
    listing = text_of(await org.command("UBILL", ADMIN, "budget"))  # billing reads budgets
    assert "org (pooled)" in listing and "of $500.00 monthly" in listing and "(0%)" in listing
    assert "role *power*: $5.00 daily per person" in listing and "<@U2> (own budget): $0.00 of $2.00 daily" in listing
    async with org.sessions() as session:
        assert {b.scope for b in await session.scalars(select(Budget))} == {"org", "user:U2"}
    removed = await org.command("UADMIN", ADMIN, "budget set U2 daily none")
    assert "$2.00 → none" in removed["text"]


@pytest.mark.parametrize(("user", "text"), [
    ("UBILL", "budget set org monthly 5"), ("U1", "budget"), ("UADMIN", "budget set admin daily 5"),
    ("UADMIN", "budget set <@UOWNER> daily 5"), ("UADMIN", "budget set owner monthly 1"),
])
async def test_who_may_set_budgets(org: Harness, user: str, text: str) -> None:
    before = await org.table_snapshot()
    answer = await org.command(user, ADMIN, text)
    assert ":no_entry:" in answer["text"]
    after = await org.table_snapshot()
    assert {k: v for k, v in after.items() if k != "audit_log"} == {k: v for k, v in before.items()
                                                                    if k != "audit_log"}


@pytest.mark.parametrize("text", ["budget set org monthly -5", "budget set org monthly NaN",
                                  "budget set org daily 1e999", "budget set org daily $", "budget set org daily ５",
                                  "budget set org weekly 5", "budget set nobody daily 5", "budget set org daily"])
async def test_bad_budget_commands_are_one_line_and_change_nothing(org: Harness, text: str) -> None:
    before = await org.table_snapshot()
    answer = await org.command("UOWNER", ADMIN, text)
    assert ":warning:" in answer["text"] and "budget set" in text_of(answer)
    assert await org.table_snapshot() == before


# -- the daily token budget ------------------------------------------------------------------------------
async def test_daily_token_budget_counts_requests_in_flight(org: Harness) -> None:
    await org.command("UADMIN", ADMIN, "policy set power daily_token_budget 10000")
    org.anthropic.first_token_delay = 0.2  # all of them in flight together
    await asyncio.gather(*(org.mention("U1", f"q{i}") for i in range(10)))
    records = await settled(org, 10)
    admitted = [r for r in records if r.admitted]
    assert sum(r.input_tokens + r.output_tokens for r in admitted) <= 10_000
    assert sum(r.input_estimate + r.max_tokens for r in admitted) <= 10_000
    assert len(admitted) >= 2 and any(r.refusal_reason == "budget_exhausted" for r in records)


async def test_periods_follow_budget_tz(harness_factory) -> None:
    harness: Harness = await harness_factory(budget_tz="Asia/Tokyo")
    harness.clock.now = datetime(2026, 11, 30, 14, 50, tzinfo=UTC)  # 23:50 in Tokyo
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.POWER)
    harness.anthropic.reply = LONG_ANSWER
    await harness.mention("U1", "late")
    (first,) = await settled(harness, 1)
    async with harness.sessions.begin() as session:
        from sqlalchemy import update

        from bot.store.models import RolePolicyRow
        await session.execute(update(RolePolicyRow).where(RolePolicyRow.role == "power")
                              .values(daily_token_budget=first.input_estimate + first.max_tokens + 100))
    await harness.mention("U1", "still today")
    assert (await settled(harness, 2))[-1].refusal_reason == "budget_exhausted"
    assert "00:00 Asia/Tokyo" in (await harness.told("U1"))[-1]["text"]
    harness.clock.advance(15 * 60)  # 00:05 in Tokyo, still 30 Nov in UTC
    await harness.mention("U1", "a new day in Tokyo")
    assert (await settled(harness, 3))[-1].outcome == "ok"


async def test_group_budget_keeps_members_after_unmap(org: Harness) -> None:
    org.slack.add_usergroup("S0OPS", "ops", ["U1"])
    await org.command("UOWNER", ADMIN, "groups map <!subteam^S0OPS|@ops> power")
    await org.command("UADMIN", ADMIN, "budget set @ops daily 10")
    await org.command("UOWNER", ADMIN, "groups unmap <!subteam^S0OPS|@ops>")
    async with org.sessions() as session:
        members = list(await session.scalars(select(GroupMember.slack_user_id)
                                             .where(GroupMember.usergroup_id == "S0OPS")))
    assert members == ["U1"]


# -- alerts ----------------------------------------------------------------------------------------------
def posts_to(harness: Harness, channel: str) -> list[str]:
    return [call.get("text", "") for call in harness.slack.calls_to("chat.postMessage")
            if call.get("channel") == channel]


async def test_own_budget_alerts_dm_the_person_once_per_level(org: Harness) -> None:
    await org.mention("U1", "probe")
    (probe,) = await settled(org, 1)
    budget = 4 * reservation(org, probe)
    org.clock.advance(86_400)
    await org.command("UADMIN", ADMIN, f"policy set power daily_usd {budget / 1e6:.6f}")
    for i in range(7):
        await org.mention("U1", f"q{i}")
        await settled(org, 2 + i)
    dms = await eventually_list(lambda: posts_to(org, "U1"), 2)
    assert len([d for d in dms if "80% used" in d]) == 1 and len([d for d in dms if "used up" in d]) == 1
    assert "Your daily Claude budget" in dms[0] and "resets at 00:00 UTC" in dms[0]
    assert posts_to(org, "CALERTS") == []  # a role's per-person budget is the person's business


async def test_alerts_are_checked_only_for_answers_admitted_at_an_alert_level(org: Harness) -> None:
    """Far below the alert level an answer's end skips the alerts' transaction (its real cost is never above its
    reservation, so it cannot cross a level); the answer whose admission reaches the level is checked and alerts."""
    checked: list[str] = []
    check = org.runtime.chat.observer.spend_changed

    async def counting(user_id: str, exhausted: tuple[str, str] | None = None) -> None:
        checked.append(user_id)
        await check(user_id, exhausted)

    org.runtime.chat.observer.spend_changed = counting  # type: ignore[method-assign]
    await org.mention("U1", "probe")
    (probe,) = await settled(org, 1)
    org.clock.advance(86_400)
    await org.command("UADMIN", ADMIN, f"policy set power daily_usd {20 * reservation(org, probe) / 1e6:.6f}")
    for i in range(3):  # 3 reservations of 20: 15 % at most
        await org.mention("U1", f"q{i}")
    await settled(org, 4)
    assert checked == [] and posts_to(org, "U1") == []
    spent = sum(record.cost_micros for record in (await org.records())[1:])
    # the next reservation fits whole and, with what is spent, reaches 83 % (≥ 80 %) of the budget
    budget = spent + 6 * reservation(org, probe) // 5
    await org.command("UADMIN", ADMIN, f"policy set power daily_usd {budget / 1e6:.6f}")
    await org.mention("U1", "now at the level")
    await settled(org, 5)
    await eventually(lambda: checked == ["U1"])
    assert "80% used" in (await eventually_list(lambda: posts_to(org, "U1"), 1))[0]


async def test_pooled_alerts_go_to_the_admin_channel_once_across_processes(harness_factory) -> None:
    a: Harness = await harness_factory(admin_alert_channel="CALERTS")
    b: Harness = await harness_factory(admin_alert_channel="CALERTS")
    for user, role in (("UOWNER", Role.OWNER), ("U1", Role.POWER), ("U2", Role.POWER)):
        a.slack.add_user(user, name=user.lower())
        await a.grant(user, role)
    a.anthropic.reply = LONG_ANSWER
    await a.mention("U1", "probe")
    (probe,) = await settled(a, 1)
    budget = 3 * reservation(a, probe) + 2 * probe.cost_micros
    await a.command("UOWNER", ADMIN, f"budget set org daily {budget / 1e6:.6f}")
    for i in range(6):
        await (a if i % 2 else b).mention("U2" if i % 2 else "U1", f"q{i}")
        await settled(a, 2 + i)
    alerts = await eventually_list(lambda: posts_to(a, "CALERTS"), 2)
    assert len(alerts) == 2 and "80% used" in alerts[0] and "used up" in alerts[1]
    assert alerts[0].startswith(":money_with_wings: The organisation's daily budget for Claude is 80% used")
    assert posts_to(a, "U1") == posts_to(a, "U2") == []


async def test_without_an_alert_channel_owners_get_pooled_alerts(org: Harness) -> None:
    await org.mention("U1", "probe")
    (probe,) = await settled(org, 1)
    await org.command("UOWNER", ADMIN, f"budget set <@U1> daily {probe.cost_micros * 1.01 / 1e6:.6f}")
    await org.mention("U1", "again")
    await settled(org, 2)
    owner_dms = await eventually_list(lambda: posts_to(org, "UOWNER"), 1)
    assert "<@U1>'s own daily budget for Claude is used up" in owner_dms[0]
    assert any("Your daily Claude budget is used up" in dm for dm in posts_to(org, "U1"))


async def eventually_list(get, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    await eventually(lambda: len(get()) >= count, timeout=10)
    await asyncio.sleep(0.2)  # a duplicate would have arrived by now
    return get()


async def test_status_and_usage_show_spend_per_budget(org: Harness) -> None:
    org.slack.add_usergroup("S0DES", "design", ["U1"])
    await org.command("UADMIN", ADMIN, "budget set power daily 5")
    await org.command("UADMIN", ADMIN, "budget set @design monthly 100")
    await org.mention("U1", "hello")
    (record,) = await settled(org, 1)
    status = text_of(await org.command("U1", "/claude", "status"))
    assert "USD left" in status and "of $5.00 today (you)" in status and "of $100.00 this month (@design (pooled))" \
        in status
    usage = text_of(await org.command("U1", "/claude", "usage"))
    assert f"{format_usd(record.cost_micros)} of $5.00 daily (0%)" in usage
    admin_view = text_of(await org.command("UBILL", ADMIN, "usage"))
    assert "Budgets this period" in admin_view and "@design (pooled)" in admin_view


def test_budget_from_the_shell(tmp_path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    from tests.app.test_cli import run_cli

    env = {"DATABASE_URL": database_url}
    assert "none → $5.00" in run_cli("budget", "set", "org", "monthly", "$5", env=env, cwd=tmp_path).stdout
    assert "none → $2.50" in run_cli("budget", "set", "U0ANA", "daily", "2.50", env=env, cwd=tmp_path).stdout
    assert "power daily budget per person: none → $1.00" in run_cli(
        "budget", "set", "power", "daily", "1", env=env, cwd=tmp_path).stdout
    bad = run_cli("budget", "set", "org", "daily", "1e999", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "is not an amount in US dollars" in bad.stderr and "Traceback" not in bad.stderr
    listing = run_cli("budget", env=env, cwd=tmp_path).stdout
    assert "org (pooled): $0.00 of $5.00 monthly (0%)" in listing and "U0ANA (own budget)" in listing


async def test_app_home_shows_budget_bars_to_admins_and_billing(org: Harness) -> None:
    await org.mention("U1", "hello")
    (record,) = await settled(org, 1)
    limit = record.cost_micros * 2  # half used
    await org.command("UADMIN", ADMIN, f"budget set org daily {limit / 1e6:.6f}")
    await org.command("UADMIN", ADMIN, "budget set power monthly 9")
    for user in ("UADMIN", "UBILL", "U1"):
        org.slack.home_views.pop(user, None)
        await org.send_event({"type": "app_home_opened", "user": user, "channel": f"D{user}", "tab": "home"})
        await eventually(lambda u=user: u in org.slack.home_views)
    for user in ("UADMIN", "UBILL"):
        view = json.dumps(org.slack.home_views[user], ensure_ascii=False)
        assert "`▓▓▓▓▓░░░░░` org (pooled)" in view and "(50%)" in view
        assert "role *power*: $9.00 monthly per person" in view
        assert f"1 request · 0 refused · {format_usd(record.cost_micros)} estimated" in view  # today's cost
    assert "Keys due for rotation" not in json.dumps(org.slack.home_views["UBILL"])  # not the admin overview
    assert "Budgets" not in json.dumps(org.slack.home_views["U1"], ensure_ascii=False).replace("USD", "")


async def eventually(predicate, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    from tests.support.harness import eventually as wait

    return await wait(predicate, timeout)


async def test_metrics_show_pooled_and_role_budgets_never_a_persons(org: Harness) -> None:
    from tests.app.test_metrics import samples, scrape, value

    await org.command("UADMIN", ADMIN, "budget set org monthly $500")
    await org.command("UADMIN", ADMIN, "budget set power daily 5")
    await org.command("UADMIN", ADMIN, "budget set U2 daily 2")
    await org.mention("U1", "hello")
    records = await settled(org, 1)
    status, _, text = await scrape(org)
    parsed = samples(text)
    assert status == 200
    spent = value(parsed, "claude_gate_budget_spent_usd", scope="org", name="org", period="month")
    assert spent == pytest.approx(records[0].cost_micros / 1e6) and spent > 0
    assert value(parsed, "claude_gate_budget_limit_usd", scope="org", name="org", period="month") == 500.0
    assert value(parsed, "claude_gate_budget_limit_usd", scope="role", name="power", period="day") == 5.0
    assert "U2" not in text and 'scope="user"' not in text  # a person's own budget is never a label
