"""Every Answer as (fallback text, Block Kit): command results, reminders, alerts. The one entry point from a value
a service returns (or hands the Workspace port) to what Slack shows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.domain.replies import Answer, Reply
from bot.services.keys.alerts import KeyFailureAlert, KeyRecoveredAlert, NoKeyAlert
from bot.services.keys.offboarding import Offboarded
from bot.services.keys.registry import KeyAdded, KeyListing, KeyRevoked
from bot.services.keys.reminders import ReminderDM, ReminderMessage, ReminderRun, ReminderSchedule
from bot.services.keys.sync import KeySync
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
    ReminderMessage: lambda m: render_keys.reminder_message(m.keys, today=m.today,
                                                            remind_before_days=m.remind_before_days),
    ReminderDM: lambda m: render_keys.reminder_dm(m.keys, today=m.today),
    KeyFailureAlert: lambda a: render_keys.key_failure_alert(label=a.label, workspace=a.workspace, status=a.status,
                                                             error_type=a.error_type),
    KeyRecoveredAlert: lambda a: render_keys.key_recovered_alert(label=a.label),
    NoKeyAlert: lambda a: render_keys.no_key_alert(workspace=a.workspace, role=a.role, keys=a.keys),
}


def answer_blocks(answer: Answer) -> tuple[str, list[Block]]:
    for kind in type(answer).__mro__:
        render = RENDERERS.get(kind)
        if render is not None:
            return render(answer)
    raise TypeError(f"no renderer for {type(answer).__name__}")
