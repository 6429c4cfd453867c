"""Block Kit for API keys, rotation reminders, offboarding and key alerts: each builder returns
(fallback text, blocks). Never a secret: keys are shown by label and hint.

Slack limits respected here: 50 blocks per message, 3,000 characters per section text.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from bot.domain.commands import parse_user
from bot.domain.keys import USABLE, KeyStatus
from bot.domain.mentions import channel_link, mention
from bot.domain.words import counted
from bot.slack.render import capped, context, section, sections

if TYPE_CHECKING:
    from bot.services.keys.offboarding import Offboarded
    from bot.services.keys.registry import KeyAdded, KeyListing, KeyRevoked, KeyView, Step
    from bot.services.keys.reminders import DueKey, ReminderRun, ReminderSchedule
    from bot.services.keys.sync import KeySync

Block = dict[str, Any]
Rendered = tuple[str, list[Block]]

MAX_FALLBACK_KEYS = 60  # the notification text, not the message: keep it short
STATUS_ICON: dict[str, str] = {KeyStatus.ACTIVE: ":large_green_circle:", KeyStatus.FAILING: ":warning:",
               KeyStatus.REVOKED: ":no_entry_sign:"}
USABLE_STATUSES = tuple(status.value for status in USABLE)
STEP_ICON = {"done": ":white_check_mark:", "skipped": ":heavy_minus_sign:", "failed": ":x:"}


def escape(text: str) -> str:
    """Text from outside (Anthropic key names, emails) shown literally in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150], "emoji": True}}


def _rotation_text(days_left: int, rotate_by: date, remind_before_days: int) -> str:
    if days_left < 0:
        return f":red_circle: overdue by {-days_left} d (rotate by {rotate_by:%Y-%m-%d})"
    if days_left <= remind_before_days:
        return f":large_orange_circle: due {'today' if days_left == 0 else f'in {days_left} d'} ({rotate_by:%Y-%m-%d})"
    return f"rotate by {rotate_by:%Y-%m-%d}"


def _key_line(key: KeyView, remind_before_days: int) -> str:
    icon = STATUS_ICON.get(key.status, ":white_circle:")
    parts = [f"{icon} *{key.label}*", f"workspace `{key.workspace}`", f"`{escape(key.hint)}`" if key.hint else
             "no hint", f"{key.rotation.age_days} d old"]
    if key.status in USABLE_STATUSES:
        parts.append(_rotation_text(key.rotation.days_left, key.rotation.rotate_by, remind_before_days))
    parts.append(key.status + (" · *in use*" if key.in_use else ""))
    if key.registered and not key.env_var_set and key.status in USABLE_STATUSES:
        parts.append(f":warning: `{key.env_var}` unset here")
    if key.creator:
        parts.append(f"by {escape(key.creator)}")
    if key.status == KeyStatus.REVOKED and key.revoked_at:
        parts.append(f"revoked {key.revoked_at:%Y-%m-%d} by {_who(key.revoked_by)}")
    return " · ".join(parts)


def _who(actor: str | None) -> str:
    user = parse_user(actor) if actor else None
    return mention(user) if user else (actor or "?")


def key_list(listing: KeyListing) -> Rendered:
    """`keys`: label, workspace, hint, age, rotate-by date, status (never the secret)."""
    used = [k for k in listing.keys if k.registered and k.status in USABLE_STATUSES]
    org = [k for k in listing.keys if not k.registered and k.status in USABLE_STATUSES]
    retired = [k for k in listing.keys if k.status not in USABLE_STATUSES]
    due = sum(1 for k in used + org if k.rotation.due_within(listing.remind_before_days))
    blocks: list[Block] = [_header("API keys")]
    summary = f"{len(used)} used by Claude Gate · {len(org)} other organisation keys · {len(retired)} revoked or " \
              f"retired · {due} due for rotation within {counted(listing.remind_before_days, 'day')}"
    blocks.append(context(summary))
    if used:
        blocks.extend(sections(_key_line(k, listing.remind_before_days) for k in used))
    else:
        blocks.append(section(":warning: No usable key: every request is refused. "
                               "`/claude-admin keys add <label> env:<VAR>` registers one."))
    if org:
        blocks.append(context("*Organisation keys Claude Gate does not use* (from `keys sync`)"))
        blocks.extend(sections(_key_line(k, listing.remind_before_days) for k in org))
    if retired:
        blocks.append(context("*Revoked and retired*"))
        blocks.extend(sections(_key_line(k, listing.remind_before_days) for k in retired))
    if listing.admin_api:
        synced = f"last `keys sync` {listing.last_synced_at:%Y-%m-%d %H:%M} UTC" if listing.last_synced_at \
            else "never synced: `keys sync` imports the organisation's keys"
    else:
        synced = "ANTHROPIC_ADMIN_KEY is not set: no Admin API sync or deactivation"
    blocks.append(context(f"Rotate: `keys add <new-label> env:<VAR>`, then `keys revoke <old-label>` · {synced}"))
    shown = [f"{k.label} ({k.workspace}, {k.status})" for k in listing.keys[:MAX_FALLBACK_KEYS]]
    more = len(listing.keys) - len(shown)
    text = f"API keys: {summary}.\n" + "\n".join(shown) + (f"\n…and {more} more" if more > 0 else "")
    return text, capped(blocks)


def key_added(result: KeyAdded) -> Rendered:
    key = result.key
    title = f":white_check_mark: Key *{key.label}* registered for workspace `{key.workspace}`"
    detail = (f"Hint `{escape(key.hint or '?')}` · secret in `{key.env_var}` · rotate by "
              f"{key.rotation.rotate_by:%Y-%m-%d} ({counted(key.rotate_days, 'day')})"
              + (f" · Anthropic id `{key.anthropic_id}`" if key.anthropic_id else ""))
    blocks = [section(f"{title}\n{detail}"), *(context(note) for note in result.notes)]
    return f"Key {key.label} registered for workspace {key.workspace}.", blocks


def _steps(steps: list[Step]) -> list[str]:
    return [f"{STEP_ICON.get(step.outcome, '•')} *{step.what}*: {step.detail}" for step in steps]


def key_revoked(result: KeyRevoked) -> Rendered:
    if result.now_in_use:
        after = f"Workspace `{result.workspace}` now uses `{result.now_in_use}`."
    else:
        after = (f":warning: Workspace `{result.workspace}` has no usable key now: its requests are refused until one "
                 f"is added (`keys add <label> env:<VAR> workspace={result.workspace}`).")
    lines = [f":no_entry_sign: Key *{result.label}* revoked.", *_steps(result.steps)]
    return "\n".join([f"Key {result.label} revoked.", *(f"{s.what}: {s.outcome}: {s.detail}" for s in result.steps),
                      after]), [*sections(lines), context(after)]


def key_sync(result: KeySync) -> Rendered:
    lines = [f":arrows_counterclockwise: Read *{result.seen}* organisation keys ({counted(result.pages, 'page')}):"
             f" {len(result.added)} new, {len(result.updated)} updated."]
    if result.added:
        lines.append("New: " + ", ".join(f"`{label}`" for label in result.added[:40])
                     + (f" and {len(result.added) - 40} more" if len(result.added) > 40 else ""))
    if result.retired:
        lines.append(":warning: No longer used (Anthropic reports them inactive/archived/expired): "
                     + ", ".join(f"`{label}`" for label in result.retired))
    if result.missing:
        lines.append("Not listed by Anthropic any more: " + ", ".join(f"`{label}`" for label in result.missing))
    lines.extend(f":warning: {note}" for note in result.notes)
    return "\n".join(lines), capped(sections(lines))


def offboarded(result: Offboarded) -> Rendered:
    lines = [f":wave: Offboarded {mention(result.user_id)}", *_steps(result.steps)]
    if result.failed:
        lines.extend(f"  :x: {escape(failure)}" for failure in result.failed)
    if result.group_roles:
        lines.append(":warning: Still has " + ", ".join(result.group_roles)
                     + ": remove them from those Slack user groups (or `groups unmap`).")
    if result.registered_keys:
        lines.append("Keys they registered in Claude Gate stay in use (the secrets live in the environment): "
                     + ", ".join(f"`{label}`" for label in result.registered_keys)
                     + ". Rotate them if they had access to the values.")
    plain = "\n".join([f"Offboarded {result.user_id}.", *(f"{s.what}: {s.outcome}: {s.detail}" for s in result.steps),
                       *result.failed])
    return plain, capped(sections(lines))


def _due_line(key: DueKey, *, with_creator: bool = True) -> str:
    when = f"*overdue by {-key.rotation.days_left} d*" if key.rotation.overdue else key.rotation.phrase
    parts = [f"{':red_circle:' if key.rotation.overdue else ':large_orange_circle:'} *{key.label}*",
             f"workspace `{escape(key.workspace)}`", f"{key.rotation.age_days} d old",
             f"rotate by {key.rotation.rotate_by:%Y-%m-%d} ({when})"]
    if with_creator:
        parts.append(f"creator {escape(key.creator or '?')}")
    if not key.registered:
        parts.append("_not used by Claude Gate_")
    return " · ".join(parts)


def reminder_message(keys: list[DueKey], *, today: date, remind_before_days: int) -> Rendered:
    """The one message of a reminder run in REMINDER_CHANNEL."""
    overdue = sum(1 for key in keys if key.rotation.overdue)
    summary = f"{counted(len(keys), 'API key')} to rotate ({overdue} overdue, the others due " \
              f"within {counted(remind_before_days, 'day')})"
    blocks = [_header(":key: API key rotation"), context(f"{today:%A %Y-%m-%d} · {summary}"),
              *sections(_due_line(key) for key in keys),
              context("Rotate: create a new key in the Anthropic Console, put it in a new environment variable, "
                       "`/claude-admin keys add <new-label> env:<VAR> workspace=<ws>`, then "
                       "`/claude-admin keys revoke <old-label>`.")]
    text = f"API key rotation: {summary}: " + ", ".join(f"{k.label} ({k.rotation.phrase})" for k in keys)
    return text, capped(blocks)


def reminder_dm(keys: list[DueKey], *, today: date) -> Rendered:
    """A DM to a key's creator about their keys."""
    lines = [f":key: {'These API keys you created are' if len(keys) > 1 else 'An API key you created is'} due for "
             f"rotation ({today:%Y-%m-%d}):", *(_due_line(key, with_creator=False) for key in keys)]
    return "\n".join([lines[0], *(f"{k.label}: {k.rotation.phrase}" for k in keys)]), capped(sections(lines))


def reminder_schedule(schedule: ReminderSchedule) -> Rendered:
    """`reminders`: the schedule and the next run."""
    nexts = ", ".join(f"{run:%a %Y-%m-%d %H:%M %Z}" for run in schedule.next_runs) or "never"
    channel = (channel_link(schedule.channel) if schedule.channel
               else ":warning: REMINDER_CHANNEL is not set (no reminders)")
    last = f"{schedule.last_run_at:%Y-%m-%d %H:%M} UTC" if schedule.last_run_at else "never"
    leader = f"`{escape(schedule.leader)}`" if schedule.leader else \
        ":warning: no process is running the scheduler (start `claude-gate serve`)"
    lines = [f"*Schedule*: `{schedule.cron}` in {schedule.timezone} → {channel}",
             f"*Next runs*: {nexts}",
             f"*Last run*: {last} · *scheduler*: {leader}",
             f"Keys are reminded {counted(schedule.remind_before_days, 'day')} before their rotate-by date (default "
             f"{counted(schedule.rotation_days, 'day')} after creation) and when overdue, at most once a day."]
    if schedule.due:
        lines.append(f"*Due now* ({len(schedule.due)}):")
        lines.extend(_due_line(key) for key in schedule.due)
    else:
        lines.append("No key is due now.")
    blocks = [_header("Rotation reminders"), *sections(lines), context("`reminders run` posts them now.")]
    text = f"Rotation reminders: {schedule.cron} ({schedule.timezone}); next {nexts}; {len(schedule.due)} due now."
    return text, capped(blocks)


def reminder_run(run: ReminderRun) -> Rendered:
    """The answer to `reminders run`."""
    if run.reminded:
        lines = [f":white_check_mark: Posted {counted(len(run.reminded), 'key')} to "
                 f"{channel_link(run.channel)}: " + ", ".join(f"`{k.label}`" for k in run.reminded)]
    else:
        lines = ["Nothing to post: no key is due that was not reminded today."]
    if run.already_reminded:
        lines.append("Already reminded today: " + ", ".join(f"`{label}`" for label in run.already_reminded))
    if run.direct_messages:
        lines.append("Creators told by DM: " + ", ".join(mention(user) for user in run.direct_messages))
    if run.dm_failures:
        lines.append(":warning: Could not DM: " + ", ".join(escape(f) for f in run.dm_failures))
    return "\n".join(lines), sections(lines)


def key_failure_alert(*, label: str, workspace: str, status: int | None, error_type: str) -> Rendered:
    why = f"HTTP {status} {error_type}".strip() if status else (error_type or "refused")
    text = (f":rotating_light: Anthropic refused API key `{label}` (workspace `{workspace}`): {why}. It is marked "
            "failing; requests move to another active key of the workspace if there is one.")
    fix = (f"Fix: put a valid key in a new variable, `/claude-admin keys add <label> env:<VAR> workspace={workspace}`, "
           f"then `/claude-admin keys revoke {label}`.")
    return f"{text} {fix}", [section(text), context(fix)]


def key_recovered_alert(*, label: str) -> Rendered:
    text = (f":white_check_mark: API key `{label}` works again: Anthropic accepted a request made with it, so it "
            "is marked active.")
    return text, [section(text)]


def no_key_alert(*, workspace: str, role: str, keys: list[tuple[str, str, bool, str]]) -> Rendered:
    """``keys``: (label, status, variable set in this process, variable) of the workspace's registered keys."""
    text = f":rotating_light: No usable API key for workspace `{workspace}`: requests of role *{role}* are refused."
    if keys:
        known = "; ".join(f"`{label}` {status}" + ("" if is_set or status not in USABLE_STATUSES
                                                   else f" but `{env}` holds no API key in this process")
                          for label, status, is_set, env in keys)
    else:
        known = "no key is registered for it"
    fix = f"Register one: `/claude-admin keys add <label> env:<VAR> workspace={workspace}`."
    return f"{text} Keys: {known}. {fix}", [section(text), context(f"Keys: {known}"), context(fix)]


def key_error(message: str, usage: str | None = None) -> Rendered:
    """A KeyCommandError as an ephemeral answer."""
    blocks = [section(f":warning: {message}")]
    if usage:
        blocks.append(context(f"Usage: {usage}"))
    return f":warning: {message}" + (f" Usage: {usage}" if usage else ""), blocks
