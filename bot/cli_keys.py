"""`claude-gate keys [list|add|revoke|sync]` and `claude-gate remind [--now]`: the key registry from a shell."""

from __future__ import annotations

import argparse
from typing import Any, TypeVar

from bot.config import Settings
from bot.domain.errors import GateError
from bot.terminal import plain, table

S = TypeVar("S")

KEY_OPTIONS = ("workspace", "rotate_days", "anthropic_id")  # the options of `keys add` in bot/domain/commands.py


def add_key_commands(sub: Any) -> None:
    """Add the `keys` and `remind` commands to the `claude-gate` parser."""
    keys = sub.add_parser("keys", help="API keys: list, add, revoke, sync (secrets stay in environment variables)")
    keys.set_defaults(handler=cmd_keys_list)
    actions = keys.add_subparsers(metavar="action")
    actions.add_parser("list", help="label, workspace, hint, age, rotate-by date, status").set_defaults(
        handler=cmd_keys_list)
    add = actions.add_parser("add", help="register a key: keys add <label> env:<VAR> [workspace=<name>] "
                                         "[rotate_days=<n>] [anthropic_id=<id>]")
    add.add_argument("label")
    add.add_argument("env", metavar="env:VAR", help="the environment variable holding the secret")
    add.add_argument("options", nargs="*", metavar="name=value", help=", ".join(KEY_OPTIONS))
    add.set_defaults(handler=cmd_keys_add)
    revoke = actions.add_parser("revoke", help="stop using a key at once (and deactivate it at Anthropic)")
    revoke.add_argument("label")
    revoke.set_defaults(handler=cmd_keys_revoke)
    actions.add_parser("sync", help="import the organisation's keys from the Admin API").set_defaults(
        handler=cmd_keys_sync)

    remind = sub.add_parser("remind", help="rotation reminders: show the schedule, or --now to post them")
    remind.add_argument("--now", action="store_true", help="post the reminders now")
    remind.set_defaults(handler=cmd_remind)


def _run(settings: Settings, work: Any) -> Any:
    from bot.cli import CliError, with_database

    try:
        return with_database(settings, work)
    except GateError as exc:
        raise CliError(exc.message) from None


def _service(kind: type[S], db: Any, settings: Settings, workspace: Any = None) -> S:
    """A key service built as bot/app.py builds it; without Slack unless ``workspace`` is given."""
    from bot.cli_reports import NoSlack
    from bot.store.clock import system_clock

    return kind(db=db, settings=settings, clock=system_clock, workspace=workspace or NoSlack())


def _parsed(*words: str) -> Any:
    """The shell's words through the grammar of `/claude-admin` (one validator for Slack and the shell)."""
    from bot.cli import CliError
    from bot.domain.commands import ADMIN, CommandError, parse_command

    try:
        return parse_command(ADMIN, " ".join(words))
    except CommandError as exc:
        raise CliError(exc.message.replace("`", "")) from None


def cmd_keys_list(settings: Settings, _args: argparse.Namespace) -> int:
    from bot.services.keys.registry import KeyRegistry

    async def work(db: Any) -> Any:
        return await _service(KeyRegistry, db, settings).list_keys()

    listing = _run(settings, work)
    if not listing.keys:
        print("no keys")
        return 0
    print(table([[key.label, key.workspace, key.hint or "-", f"{key.rotation.age_days}d",
                  f"{key.rotation.rotate_by:%Y-%m-%d}", key.rotation.phrase if key.usable else "-",
                  key.status + (" (in use)" if key.in_use else ""), key.env_var or "(not used)"]
                 for key in listing.keys],
                header=["label", "workspace", "hint", "age", "rotate by", "rotation", "status", "variable"]))
    return 0


def cmd_keys_add(settings: Settings, args: argparse.Namespace) -> int:
    from bot.services.access.roles import SHELL_ACTOR
    from bot.services.keys.registry import KeyRegistry

    command = _parsed("keys", "add", args.label, args.env, *args.options)

    async def work(db: Any) -> Any:
        return await _service(KeyRegistry, db, settings).add_key(
            actor_id=SHELL_ACTOR, label=command["label"], env_var=command["env_var"], workspace=command["workspace"],
            rotate_days=command["rotate_days"], anthropic_id=command["anthropic_id"])

    added = _run(settings, work)
    key = added.key
    print(f"key {key.label} registered for workspace {key.workspace} ({key.hint}); rotate by "
          f"{key.rotation.rotate_by:%Y-%m-%d}")
    for note in added.notes:
        print(plain(note))
    return 0


def cmd_keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from bot.services.access.roles import SHELL_ACTOR
    from bot.services.keys.registry import KeyRegistry, StepOutcome

    label = _parsed("keys", "revoke", args.label)["label"]

    async def work(db: Any) -> Any:
        return await _service(KeyRegistry, db, settings).revoke_key(actor_id=SHELL_ACTOR, label=label)

    revoked = _run(settings, work)
    print(f"key {revoked.label} revoked")
    for step in revoked.steps:
        print(plain(f"{step.what}: {step.outcome}: {step.detail}"))
    print(f"workspace {revoked.workspace} now uses {revoked.now_in_use}" if revoked.now_in_use
          else f"workspace {revoked.workspace} has no usable key: its requests are refused")
    return 1 if any(step.outcome == StepOutcome.FAILED for step in revoked.steps) else 0


def cmd_keys_sync(settings: Settings, _args: argparse.Namespace) -> int:
    from bot.services.access.roles import SHELL_ACTOR
    from bot.services.keys.sync import OrgKeys

    async def work(db: Any) -> Any:
        return await _service(OrgKeys, db, settings).sync_keys(actor_id=SHELL_ACTOR)

    synced = _run(settings, work)
    print(f"{synced.seen} organisation keys in {synced.pages} page(s): {len(synced.added)} new, "
          f"{len(synced.updated)} updated")
    for label in synced.retired:
        print(f"no longer used (retired at Anthropic): {label}")
    for label in synced.missing:
        print(f"not listed by Anthropic any more: {label}")
    for note in synced.notes:
        print(plain(note))
    return 0


def cmd_remind(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli import CliError
    from bot.services.access.roles import SHELL_ACTOR
    from bot.services.keys.reminders import Reminders

    if not args.now:
        schedule = _run(settings, lambda db: _service(Reminders, db, settings).reminder_schedule())
        print(f"{schedule.cron} in {schedule.timezone} → {schedule.channel or 'REMINDER_CHANNEL is not set'}")
        for run in schedule.next_runs:
            print(f"next: {run:%a %Y-%m-%d %H:%M %Z}")
        print(f"due now: {', '.join(k.label for k in schedule.due) or 'none'}")
        return 0
    if settings.slack_bot_token is None:
        raise CliError("remind --now posts to Slack: set SLACK_BOT_TOKEN")
    from bot.app import slack_client
    from bot.slack.workspace import SlackWorkspace

    async def work(db: Any) -> Any:
        slack = SlackWorkspace(slack_client(settings))
        return await _service(Reminders, db, settings, slack).run_reminders(actor_id=SHELL_ACTOR)

    run = _run(settings, work)
    if run.reminded:
        print(f"posted {len(run.reminded)} key(s) to {run.channel}: {', '.join(k.label for k in run.reminded)}")
    else:
        print("nothing to post: no key is due that was not reminded today")
    if run.already_reminded:
        print(f"already reminded today: {', '.join(run.already_reminded)}")
    for failure in run.dm_failures:
        print(f"could not DM {failure}")
    return 0
