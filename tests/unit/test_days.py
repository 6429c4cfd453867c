""""Today" is computed one way (bot/domain/days.py), on the budget calendar (BUDGET_TZ): the budget window, the
daily token budget, whois, `/claude status`, the App Home counts and the reset time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.domain.budgets import Period, period_end, period_start
from bot.domain.days import day_start, local_day, midnight, next_day_start
from bot.domain.pricing import format_usd
from bot.domain.roles import Role
from bot.domain.words import counted
from tests.support.harness import Harness, eventually

KIRITIMATI = ZoneInfo("Pacific/Kiritimati")  # UTC+14: its day starts at 10:00 UTC the day before
LOS_ANGELES = ZoneInfo("America/Los_Angeles")  # UTC−8 in winter: its day starts at 08:00 UTC


def test_today_runs_from_midnight_to_midnight_in_the_zone_given() -> None:
    moment = datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC)
    assert day_start(moment, UTC) == datetime(2026, 11, 30, tzinfo=UTC)
    assert next_day_start(moment, UTC) == datetime(2026, 12, 1, tzinfo=UTC)
    assert day_start(datetime(2026, 12, 1, tzinfo=UTC), UTC) == next_day_start(moment, UTC)
    paris = ZoneInfo("Europe/Paris")
    spring = datetime(2026, 3, 29, 10, 0, tzinfo=UTC)  # the day clocks go forward in Paris
    assert day_start(spring, paris).hour == 0 and day_start(spring, paris).utcoffset() != spring.astimezone(
        paris).utcoffset()


@pytest.mark.parametrize(("moment", "zone", "local", "starts_utc"), [
    # 10:30 UTC on 30 Nov is already 00:30 on 1 Dec in Kiritimati
    (datetime(2026, 11, 30, 10, 30, tzinfo=UTC), KIRITIMATI, "2026-12-01", datetime(2026, 11, 30, 10, 0, tzinfo=UTC)),
    # 07:30 UTC on 1 Dec is still 23:30 on 30 Nov in Los Angeles
    (datetime(2026, 12, 1, 7, 30, tzinfo=UTC), LOS_ANGELES, "2026-11-30", datetime(2026, 11, 30, 8, 0, tzinfo=UTC)),
])
def test_a_day_far_from_utc(moment: datetime, zone: ZoneInfo, local: str, starts_utc: datetime) -> None:
    assert local_day(moment, zone).isoformat() == local
    assert day_start(moment, zone) == starts_utc
    assert next_day_start(moment, zone) - day_start(moment, zone) == next_day_start(moment, UTC) - day_start(
        moment, UTC)  # no DST change on these days: 24 h
    assert period_start(moment, Period.DAY, zone) == local_day(moment, zone)
    assert period_end(period_start(moment, Period.DAY, zone), Period.DAY, zone) == next_day_start(moment, zone)
    assert period_start(moment, Period.MONTH, zone).day == 1
    assert midnight(local_day(moment, zone), zone) == day_start(moment, zone)


async def _today_everywhere(harness: Harness) -> tuple[str, str, str, str]:
    """What whois, `/claude status`, an admin's and billing's App Home say about today."""
    whois = await harness.command("UADMIN", "/claude-admin", "whois U1")
    status = await harness.command("U1", "/claude", "status")
    views = []
    for user in ("UADMIN", "UBILL"):
        harness.slack.home_views.pop(user, None)
        await harness.send_event({"type": "app_home_opened", "user": user, "channel": f"D{user}", "tab": "home"})
        await eventually(lambda u=user: u in harness.slack.home_views)
        views.append(json.dumps(harness.slack.home_views[user], ensure_ascii=False))
    texts = [json.dumps(answer, ensure_ascii=False) for answer in (whois, status)]
    return texts[0], texts[1], views[0], views[1]


@pytest.mark.parametrize(("zone", "first_at", "still_today"), [
    # 23:50 in Kiritimati; 20 minutes later a new day there, while UTC's day goes on
    ("Pacific/Kiritimati", datetime(2026, 11, 30, 9, 50, tzinfo=UTC), False),
    # 15:50 in Los Angeles; 20 minutes later a new day in UTC, while Los Angeles' day goes on
    ("America/Los_Angeles", datetime(2026, 11, 30, 23, 50, tzinfo=UTC), True),
])
async def test_today_in_reports_follows_budget_tz(harness_factory, zone: str, first_at: datetime,
                                                  still_today: bool) -> None:
    harness: Harness = await harness_factory(budget_tz=zone)
    harness.clock.now = first_at
    for user, role in (("UADMIN", Role.ADMIN), ("UBILL", Role.BILLING), ("U1", Role.POWER)):
        harness.slack.add_user(user, name=user.lower())
        await harness.grant(user, role)
    await harness.command("UADMIN", "/claude-admin", "policy set power daily_token_budget 100000")
    await harness.command("UADMIN", "/claude-admin", "budget set U1 daily 5")
    await harness.mention("U1", "ten minutes before midnight")
    (record,) = await harness.settled_records(1, timeout=30)
    tokens = record.input_tokens + record.output_tokens
    assert tokens > 0 and record.cost_micros > 0

    def expect(whois: str, status: str, admin_home: str, billing_home: str, requests: int, used: int) -> None:
        assert f"{counted(requests, 'request')} · {used:,} tokens" in whois, whois
        assert f"{100_000 - used:,} of 100,000" in status, status
        spent = record.cost_micros if requests else 0
        assert f"{format_usd(5_000_000 - spent)} of $5.00 today (you)" in status, status
        for view in (admin_home, billing_home):
            assert f"{counted(requests, 'request')} · 0 refused" in view, view

    expect(*await _today_everywhere(harness), requests=1, used=tokens)
    harness.clock.advance(20 * 60)
    assert (harness.clock.now.date() == first_at.date()) is not still_today  # the two calendars disagree
    expect(*await _today_everywhere(harness), requests=int(still_today), used=tokens if still_today else 0)
