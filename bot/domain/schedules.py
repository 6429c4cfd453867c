"""Scheduled prompts as people type them: ``"<when>" <prompt>``, where ``<when>`` is five crontab fields or
``every day|weekday|mon,wed,… HH:MM`` (pure: bot/cron.py builds the trigger, in the creator's Slack time zone).

A schedule runs at most once an hour: the crontab minute field must be one number (``0 9 * * 1-5``, not
``*/5 9 * * *``), so a typo cannot post in a channel every minute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.domain.cron import CRONTAB_DAYS, crontab_day_of_week
from bot.domain.marks import code

MAX_PROMPT_CHARS = 4000
MAX_WHEN_CHARS = 100
# straight quotes, and the curly ones Slack's composer may turn them into
_QUOTED = re.compile(r'^\s*["\u201c\u201d\u201e]([^"\u201c\u201d\u201e]*)["\u201c\u201d\u201e]\s*(.*)$', re.DOTALL)
_EVERY = re.compile(r"^every\s+(?P<days>[a-z,\s-]+?)\s+(?P<hour>\d{1,2}):(?P<minute>\d{2})$", re.IGNORECASE)
_FIELD = re.compile(r"^[0-9a-z*/,\-?]{1,60}$", re.IGNORECASE)
# crontab fields: (name, lowest, highest)
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12))
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
EXAMPLES = f'{code("/claude schedule " + chr(34) + "every weekday 09:00" + chr(34) + " <prompt>")} or ' \
    f'{code("/claude schedule " + chr(34) + "0 9 * * 1-5" + chr(34) + " <prompt>")}'


class ScheduleError(ValueError):
    """A schedule that cannot be made: one line saying why (nothing is changed)."""


@dataclass(frozen=True)
class When:
    """When a schedule runs: the crontab expression it runs on and the words it was given as (shown back)."""

    cron: str
    text: str


@dataclass(frozen=True)
class ScheduleText:
    when: When
    prompt: str


def parse_schedule(text: str) -> ScheduleText:
    """``"<when>" <prompt>`` → the schedule; ScheduleError with one line otherwise."""
    match = _QUOTED.match(text or "")
    if match is None:
        raise ScheduleError(f"Put when in quotes, then the prompt: {EXAMPLES}.")
    when_text, prompt = match.group(1).strip(), match.group(2).strip()
    if not prompt:
        raise ScheduleError("Add the prompt after the quoted time: what should Claude be asked each time?")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ScheduleError(f"The prompt is {len(prompt):,} characters long; a schedule keeps at most "
                            f"{MAX_PROMPT_CHARS:,}.")
    return ScheduleText(parse_when(when_text), prompt)


def parse_when(text: str) -> When:
    """Five crontab fields, or ``every day|weekday|<days> HH:MM``."""
    shown = " ".join(text.split())
    if not shown:
        raise ScheduleError(f"Say when between the quotes: {EXAMPLES}.")
    if len(shown) > MAX_WHEN_CHARS:
        raise ScheduleError(f"{code(shown[:40] + '…')} is too long for a time.")
    if shown.lower().startswith("every"):
        return When(_every(shown), shown)
    return When(_crontab(shown), shown)


def _every(text: str) -> str:
    match = _EVERY.match(text)
    if match is None:
        raise ScheduleError(f"{code(text)} is not a time I know: write {code('every day 09:00')}, "
                            f"{code('every weekday 17:30')} or {code('every mon,wed 08:15')} (24-hour clock).")
    hour, minute = int(match.group("hour")), int(match.group("minute"))
    if hour > 23 or minute > 59:
        raise ScheduleError(f"{code(match.group('hour') + ':' + match.group('minute'))} is not a time of day "
                            "(00:00 to 23:59).")
    days = re.sub(r"\s+", "", match.group("days").lower())
    if days in ("day", "days"):
        field = "*"
    elif days in ("weekday", "weekdays"):
        field = "1-5"
    else:
        names = [day for day in days.split(",") if day]
        bad = [day for day in names if day[:3] not in CRONTAB_DAYS or len(day) < 3 or "-" in day]
        if bad or not names:
            raise ScheduleError(f"{code((bad or [days])[0][:20])} is not a day: use {code('day')}, "
                                f"{code('weekday')} or days like {code('mon,wed,fri')}.")
        field = ",".join(dict.fromkeys(day[:3] for day in names))
    return f"{minute} {hour} * * {field}"


def _crontab(text: str) -> str:
    fields = text.split()
    if len(fields) != 5:
        raise ScheduleError(f"{code(text[:40])} is not a time I know: five crontab fields (minute hour day month "
                            f"weekday, like {code('0 9 * * 1-5')}) or {code('every weekday 09:00')}.")
    if not fields[0].isdigit() or not 0 <= int(fields[0]) <= 59:
        raise ScheduleError(f"The minute field {code(fields[0][:20])} must be one number from 0 to 59: a schedule "
                            "runs at most once an hour.")
    for (name, low, high), field in zip(_FIELDS, fields[:4], strict=False):
        _check_field(field, name, low, high)
    try:
        crontab_day_of_week(fields[4])
    except ValueError:
        raise ScheduleError(f"{code(fields[4][:20])} is not a weekday field (0-7 or sun-sat, lists and ranges)."
                            ) from None
    return " ".join(field.lower() for field in fields)


def _check_field(field: str, name: str, low: int, high: int) -> None:
    bad = ScheduleError(f"{code(field[:20])} is not a valid {name} field ({low}-{high}, {code('*')}, lists, ranges, "
                        "steps).")
    if not _FIELD.fullmatch(field):
        raise bad
    for item in field.lower().split(","):
        base, slash, step = item.partition("/")
        if slash and not (step.isdigit() and int(step) >= 1):
            raise bad
        if base in ("*", "?"):
            continue
        for bound in base.split("-", 1):
            value = _MONTHS.index(bound) + 1 if name == "month" and bound in _MONTHS else (
                int(bound) if bound.isdigit() else None)
            if value is None or not low <= value <= high:
                raise bad
