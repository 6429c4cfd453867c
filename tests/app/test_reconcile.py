"""Reconciliation with Anthropic's own numbers: our recorded cost beside the cost report of the Admin API (the
fake serves its documented shape, paged, and bills its own usage log at list prices written here, never with the
product's price code)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from bot.domain.commands import ADMIN
from bot.domain.roles import Role
from bot.services.spend.digest import Digest
from bot.services.spend.reconcile import Reconciler
from bot.store.models import ApiKey
from tests.support.fakes.anthropic import DEFAULT_ADMIN_KEY
from tests.support.harness import API_KEY, Harness, text_of

# Anthropic's list prices, USD per million tokens: input, output, 5-minute cache write, cache read
SONNET_5_5 = (2.0, 10.0, 2.5, 0.10)
DEFAULT_KEY_ID = "apikey_01gatedefault"


async def traffic(harness_factory, **settings) -> Harness:  # type: ignore[no-untyped-def]
    harness = await harness_factory(anthropic_admin_key=DEFAULT_ADMIN_KEY, admin_alert_channel="C0ALERTS",
                                    **settings)
    harness.clock.now = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)
    harness.anthropic.now = harness.clock
    harness.anthropic.list_prices = {harness.runtime.settings.model_sonnet: SONNET_5_5}
    harness.anthropic.key_ids = {API_KEY: DEFAULT_KEY_ID}
    for user in ("UADMIN", "U1"):
        harness.slack.add_user(user)
    await harness.grant("UADMIN", Role.ADMIN)
    await harness.grant("U1", Role.POWER)
    await harness.command("UADMIN", ADMIN, "policy set power models sonnet")
    async with harness.sessions.begin() as session:  # what keys sync learns
        await session.execute(update(ApiKey).where(ApiKey.label == "default").values(anthropic_key_id=DEFAULT_KEY_ID))
    for question in ("one", "two", "three"):
        await harness.mention("U1", f"question {question}")
    records = await harness.settled_records(3)
    assert all(r.outcome == "ok" and r.model == harness.runtime.settings.model_sonnet for r in records)
    harness.clock.now = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # the next day, after Anthropic's report settled
    return harness


async def test_honest_traffic_shows_zero_drift_across_pages(harness_factory) -> None:
    harness = await traffic(harness_factory)
    harness.anthropic.cost_page_cap = 1  # every row its own page: the SDK's paginator follows next_page
    records = await harness.settled_records(3)
    ours = sum(r.cost_micros for r in records)
    report = text_of(await harness.command("UADMIN", ADMIN, "usage reconcile"))
    assert "2026-12-06 (UTC days)" in report
    assert f"2026-12-06: ours ${ours / 1e6:.6f}".rstrip("0") in report and "drift $0.00 (0.0 %)" in report
    calls = [r for r in harness.anthropic.admin_requests if r["path"] == "/v1/organizations/analytics/cost"]
    assert calls and calls[0]["query"]["starting_at"].startswith("2026-12-06T00:00:00")
    assert calls[0]["query"]["time_bucket_width"] == "1d"


async def test_a_billing_difference_is_shown_and_alerted_once_a_day(harness_factory) -> None:
    harness = await traffic(harness_factory, reconcile_drift_percent=5)
    model = harness.runtime.settings.model_sonnet
    harness.anthropic.extra_costs = [("2026-12-06", DEFAULT_KEY_ID, model, 0.01),  # Anthropic billed a cent more
                                     ("2026-12-06", "apikey_01elsewhere", model, 0.5)]  # a key the gate never used
    report = text_of(await harness.command("UADMIN", ADMIN, "usage reconcile days=2"))
    assert "2026-12-05 to 2026-12-06" in report
    assert "drift -$0.01" in report and "past 5 %" in report
    assert "outside the gate: $0.50 on `apikey_01elsewhere`" in report
    digest = await harness.service(Digest).yesterday(harness.clock())  # the admins' digest says it too
    assert any(line.startswith("Drift against Anthropic's bill (2026-12-06 UTC): -$0.01") for line in digest.lines)
    reconciler = harness.service(Reconciler)
    assert (await reconciler.daily()) is not None
    (alert,) = harness.slack.posted_texts("C0ALERTS")
    assert "2026-12-06" in alert and "RECONCILE_DRIFT_PERCENT=5" in alert
    assert (await reconciler.daily()) is None  # once a day
    harness.clock.now += timedelta(days=1)
    await reconciler.daily()  # the next day: 2026-12-07 had no traffic, nothing to alert
    assert len(harness.slack.posted_texts("C0ALERTS")) == 1


async def test_a_key_without_an_anthropic_id_is_unmatched(harness_factory) -> None:
    harness = await traffic(harness_factory)
    async with harness.sessions.begin() as session:
        await session.execute(update(ApiKey).where(ApiKey.label == "default").values(anthropic_key_id=None))
    report = text_of(await harness.command("UADMIN", ADMIN, "usage reconcile"))
    assert "key `default`" in report and "not matched to an Anthropic key" in report
    assert f"`{DEFAULT_KEY_ID}`, a key the gate does not know" in report  # its spend: outside the gate


async def test_without_an_admin_key_it_is_one_line_and_billing_may_read_it(harness_factory) -> None:
    harness = await harness_factory()
    harness.slack.add_user("UBILL")
    await harness.grant("UBILL", Role.BILLING)
    answer = await harness.command("UBILL", ADMIN, "usage reconcile")
    assert "ANTHROPIC_ADMIN_KEY" in answer["text"] and "\n" not in answer["text"].strip()
    assert (await harness.service(Reconciler).daily()) is None
    bad = text_of(await harness.command("UBILL", ADMIN, "usage reconcile days=40"))
    assert "40" in bad and "31" in bad
