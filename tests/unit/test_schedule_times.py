"""Scheduled prompts' `"<when>" <prompt>` grammar (bot/domain/schedules.py): pure, no I/O."""

from __future__ import annotations

import pytest

from bot.domain.commands import SELF, CommandError, parse_command
from bot.domain.schedules import ScheduleError, parse_schedule, parse_when


@pytest.mark.parametrize(("text", "cron"), [
    ("every day 09:00", "0 9 * * *"),
    ("every weekday 17:30", "30 17 * * 1-5"),
    ("Every Mon,Wed,fri 8:05", "5 8 * * mon,wed,fri"),
    ("every monday, thursday 23:59", "59 23 * * mon,thu"),
    ("0 9 * * 1-5", "0 9 * * 1-5"),
    ("15 */2 1,15 jan-jun SUN", "15 */2 1,15 jan-jun sun"),
])
def test_times_people_write_become_crontab(text: str, cron: str) -> None:
    assert parse_when(text).cron == cron


@pytest.mark.parametrize(("text", "says"), [
    ("", "Say when"),
    ("every day 24:00", "not a time of day"),
    ("every day 9", "not a time I know"),
    ("every funday 09:00", "is not a day"),
    ("*/5 9 * * *", "one number from 0 to 59"),
    ("0 9 * *", "five crontab fields"),
    ("0 25 * * *", "not a valid hour field"),
    ("0 9 32 * *", "not a valid day of month field"),
    ("0 9 * 13 *", "not a valid month field"),
    ("0 9 * * 8", "not a weekday field"),
])
def test_bad_times_are_one_line(text: str, says: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_when(text)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_the_prompt_follows_the_quoted_time_as_typed() -> None:
    parsed = parse_schedule('\u201cevery weekday 09:00\u201d  Summarise yesterday\'s #incidents\n- briefly')
    assert (parsed.when.cron, parsed.when.text) == ("0 9 * * 1-5", "every weekday 09:00")
    assert parsed.prompt == "Summarise yesterday's #incidents\n- briefly"


@pytest.mark.parametrize("text", ['every day 09:00 hello', '"every day 09:00"', '"every day 09:00" ',
                                  '"every day 09:00 hello'])
def test_a_schedule_needs_a_quoted_time_and_a_prompt(text: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(text)


def test_the_grammar_takes_the_rest_of_the_text_and_reports_usage() -> None:
    parsed = parse_command(SELF, 'schedule "0 9 * * *" a=b  keeps   spacing')
    assert parsed.name == "schedule" and parsed["schedule"].prompt == "a=b  keeps   spacing"
    assert parse_command(SELF, "schedules").name == "schedules"
    assert parse_command(SELF, "unschedule 4")["id"] == 4
    with pytest.raises(CommandError) as caught:
        parse_command(SELF, 'schedule "*/1 * * * *" spam')
    assert "at most once an hour" in caught.value.message and "/claude schedule" in caught.value.usage
    with pytest.raises(CommandError):
        parse_command(SELF, "unschedule four")
