"""Every command's Answer as (fallback text, Block Kit): one entry point for the one admin dispatcher's result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.domain.replies import Answer, Reply
from bot.services.key_sync import KeySync
from bot.services.keys import KeyAdded, KeyListing, KeyRevoked
from bot.services.offboarding import Offboarded
from bot.services.reminders import ReminderRun, ReminderSchedule
from bot.slack import render_keys
from bot.slack.render import Block, reply_blocks

RENDERERS: dict[type[Any], Callable[[Any], tuple[str, list[Block]]]] = {
    Reply: reply_blocks,
    KeyListing: render_keys.key_list,
    KeyAdded: render_keys.key_added,
    KeyRevoked: render_keys.key_revoked,
    KeySync: render_keys.key_sync,
    ReminderSchedule: render_keys.reminder_schedule,
    ReminderRun: render_keys.reminder_run,
    Offboarded: render_keys.offboarded,
}


def answer_blocks(answer: Answer) -> tuple[str, list[Block]]:
    for kind in type(answer).__mro__:
        render = RENDERERS.get(kind)
        if render is not None:
            return render(answer)
    raise TypeError(f"no renderer for {type(answer).__name__}")
