""""Today" is computed one way (bot/domain/days.py): the budget window, whois/App Home counts and the reset time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.domain.days import day_start, next_day_start


def test_today_runs_from_midnight_to_midnight_in_the_moments_zone() -> None:
    moment = datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC)
    assert day_start(moment) == datetime(2026, 11, 30, tzinfo=UTC)
    assert next_day_start(moment) == datetime(2026, 12, 1, tzinfo=UTC)
    assert day_start(datetime(2026, 12, 1, tzinfo=UTC)) == next_day_start(moment)
    paris = datetime(2026, 3, 29, 12, 0, tzinfo=ZoneInfo("Europe/Paris"))  # the day clocks go forward
    assert day_start(paris).utcoffset() != paris.utcoffset() and day_start(paris).hour == 0
