"""The admins' daily digest: at 08:00 in BUDGET_TZ, yesterday in one message — who used up a budget, refusals by
reason, the top spenders and models, the drift against Anthropic's bill — to ADMIN_ALERT_CHANNEL or each owner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.commands import ADMIN
from bot.domain.roles import Role
from bot.services.spend.digest import Digest
from tests.support.harness import Harness


async def busy_day(harness: Harness) -> Harness:
    harness.clock.now = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)  # Europe/Berlin: 15:00 on the 6th
    for user, role in (("UOWNER", Role.OWNER), ("UADMIN", Role.ADMIN), ("U1", Role.USER), ("U2", Role.USER)):
        harness.slack.add_user(user)
        await harness.grant(user, role)
    await harness.mention("U1", "first")
    (probe,) = await harness.settled_records(1)
    await harness.command("UADMIN", ADMIN, f"budget set <@U1> daily {probe.cost_micros * 1.5 / 1e6:.6f}")
    for text in ("second", "third"):
        await harness.mention("U1", text)
    await harness.mention("U2", "hello")
    await harness.mention("U2", "--model nonsense hello")
    rows = await harness.settled_records(5)
    assert [r.refusal_reason for r in rows].count("budget_exhausted") >= 1
    return harness


def digests(harness: Harness, channel: str) -> list[str]:
    return [text for text in harness.slack.posted_texts(channel) if "Claude Gate yesterday" in text]


async def test_the_digest_names_who_ran_out_refusals_spenders_and_models(harness_factory) -> None:
    harness = await busy_day(await harness_factory(budget_tz="Europe/Berlin", admin_alert_channel="C0ADMINS"))
    digest = harness.service(Digest)
    harness.clock.now = datetime(2026, 12, 7, 6, 30, tzinfo=UTC)  # 07:30 in Berlin: not yet
    assert await digest.run_due() is None and not digests(harness, "C0ADMINS")
    harness.clock.now += timedelta(hours=1)  # 08:30
    assert await digest.run_due() is not None
    (posted,) = digests(harness, "C0ADMINS")
    assert "yesterday, Sun 6 Dec (Europe/Berlin)" in posted
    assert "Used up a budget: <@U1>" in posted and "<@U2>" not in posted.split("Used up a budget")[1].split("\n")[0]
    assert "budget_exhausted" in posted and "unknown_model 1" in posted
    spenders = next(line for line in posted.splitlines() if line.startswith("Top spenders: "))
    assert "<@U1> $" in spenders and "<@U2> $" in spenders and "Top models: haiku" in posted
    assert "not checked (ANTHROPIC_ADMIN_KEY is not set)" in posted
    assert await digest.run_due() is None  # once a day
    harness.clock.now += timedelta(days=1)
    assert await digest.run_due() is not None  # the next morning, for the (quiet) day before
    assert "0 answers" in digests(harness, "C0ADMINS")[-1]


async def test_without_an_alert_channel_each_owner_gets_it(harness_factory) -> None:
    harness = await busy_day(await harness_factory(budget_tz="UTC"))
    harness.clock.now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    assert await harness.service(Digest).run_due() is not None
    assert digests(harness, "DUOWNER") and not digests(harness, "DUADMIN")
