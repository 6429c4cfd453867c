"""`claude-gate <any /claude-admin subcommand>`: the same words, through the same grammar and the one dispatcher.

Every first word of the `/claude-admin` grammar (bot/domain/commands.py) is a command here, built from the grammar
when the parser is: `claude-gate grant U… owner`, `claude-gate whois U…`, `claude-gate groups map @eng power`, and
whatever subcommand is added to the grammar later. Each runs as the shell (bot/cli/context.py); the answer is the
one the dispatcher gives Slack, in the shell's words (bot/terminal.py), or as JSON with `--json`; `--out FILE`
writes it to a file instead (a chart or an export: the file itself). A grammar option is `name=value` as in Slack,
or `--name value`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from bot.cli.base import with_database
from bot.cli.context import SHELL, ShellSlackPort, for_the_shell, shell_service
from bot.config import Settings
from bot.domain.commands import ADMIN, DEFAULT_CHART_DAYS, CommandError, Param, parse_command, subcommands_of
from bot.domain.errors import CliError, GateError
from bot.domain.replies import Answer, Reply
from bot.terminal import plain, render_answer

# Subcommands that cannot do their work without Slack, and what they need it for.
NEEDS_SLACK = {
    "groups map": "it reads the group's members from Slack",
    "offboard": "it looks the person's email up in Slack to find their Anthropic keys",
    "reminders run": "it posts the reminders to Slack",
}
# Subcommands whose answer is a file (in Slack, in the caller's DM): here --out FILE, else its own name here.
FILE_VERBS = frozenset({"usage chart", "audit export"})
SHELL_SUMMARIES = {
    "help": "the commands the shell runs",
    "grant": "give someone a role, optionally for a time (they get a DM when SLACK_BOT_TOKEN is set)",
    "requests": "pending access requests (decide with requests approve or deny)",
    "usage chart": f"a PNG chart of daily cost by role and model, to --out FILE or its own name here (default: "
                   f"the last {DEFAULT_CHART_DAYS} days)",
    "audit export": "the audit log as a JSON Lines file, to --out FILE or its own name here (default: the last "
                    "30 days)",
}
# The shell's own commands, for `claude-gate help` (each is a module of this package)
SHELL_COMMANDS = (
    ("serve [--port <n>]", "migrate the database, then serve Slack (HTTP, or Socket Mode)"),
    ("db upgrade", "apply the database migrations"),
    ("chat --as <user> [--model <alias>] <text>", "ask Claude as a Slack user, through the same gate"),
    ("manifest [--url <base>] [--socket] [--assistant-view] [--org]", "print the Slack app manifest (JSON)"),
    ("usage --csv [--days <n>]", "one CSV row per user instead of the summary"),
    ("usage|audit --since <date> [--format jsonl|csv] [--out FILE]", "every request record or audit entry since "
                                                                     "then, for SIEM and finance"),
    ("purge [--now]", "retention: what is purged when; --now purges at once"),
    ("remind [--now]", "the rotation reminder schedule; --now posts the reminders (as reminders run)"),
    ("models [--json]", "the models ANTHROPIC_API_KEY can use, with price, context window and lifecycle"),
    ("reconcile [--days <n>]", "our recorded cost beside Anthropic's cost report (as usage reconcile)"),
)


def options_of(word: str) -> dict[str, Param]:
    """The `name=` options of the subcommands under one first word (`usage`: days)."""
    found: dict[str, Param] = {}
    for subcommand in subcommands_of(ADMIN):
        if subcommand.words[0] == word:
            found.update(subcommand.options)
    return found


def usage_line(usage: str) -> str:
    return for_the_shell(plain(usage))


def admin_words() -> dict[str, str]:
    """Each first word of the `/claude-admin` grammar, with a one-line help made from its subcommands."""
    words: dict[str, list[str]] = {}
    for subcommand in subcommands_of(ADMIN):
        words.setdefault(subcommand.words[0], []).append(usage_line(subcommand.usage).removeprefix("claude-gate "))
    return {word: " · ".join(usages) for word, usages in words.items()}


def add_admin_commands(sub: Any) -> None:
    """A `claude-gate` command for every first word of the grammar, and `remind` (as `reminders`)."""
    for word, usages in admin_words().items():
        command = sub.add_parser(word, help=usages, description=f"claude-gate {usages}")
        command.add_argument("words", nargs="*", help=f"the same words as after /claude-admin {word}")
        for name, param in options_of(word).items():
            command.add_argument(f"--{name.replace('_', '-')}", dest=f"option_{name}", metavar=param.kind.upper(),
                                 help=f"the same as {name}=")
        add_output_flags(command)
        command.set_defaults(handler=cmd_help if word == "help" else cmd_admin, admin_word=word)
    remind = sub.add_parser("remind", help="rotation reminders: the schedule, or --now to post them")
    remind.add_argument("--now", action="store_true", help="post the reminders now (reminders run)")
    add_output_flags(remind)
    remind.set_defaults(handler=cmd_remind)
    reconcile = sub.add_parser("reconcile", help="our recorded cost beside Anthropic's cost report (usage reconcile)")
    reconcile.add_argument("--days", type=int, help="the last N complete UTC days (default: yesterday)")
    add_output_flags(reconcile)
    reconcile.set_defaults(handler=cmd_reconcile)


def add_output_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument("--json", action="store_true", help="print the answer as JSON")
    command.add_argument("--out", metavar="FILE", help="write the answer (a chart, an export) to FILE")


def admin_text(args: argparse.Namespace) -> str:
    """The words after `claude-gate`, as `/claude-admin` reads them: `--days 7` is `days=7`."""
    options = [f"{name}={value}" for name in options_of(args.admin_word)
               if (value := getattr(args, f"option_{name}", None)) is not None]
    return " ".join([args.admin_word, *args.words, *options])


def cmd_admin(settings: Settings, args: argparse.Namespace) -> int:
    return run_admin(settings, admin_text(args), as_json=args.json, out=args.out)


def cmd_remind(settings: Settings, args: argparse.Namespace) -> int:
    return run_admin(settings, "reminders run" if args.now else "reminders", as_json=args.json, out=args.out)


def cmd_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    days = f" days={args.days}" if args.days is not None else ""
    return run_admin(settings, f"usage reconcile{days}", as_json=args.json, out=args.out)


def cmd_help(_settings: Settings, args: argparse.Namespace) -> int:
    """What the shell runs: every `/claude-admin` subcommand, as typed here, and the shell's own commands."""
    lines = [f"claude-gate {usage_line(sub.usage).removeprefix('claude-gate ')} — "
             f"{plain(SHELL_SUMMARIES.get(sub.name, sub.summary))}" for sub in subcommands_of(ADMIN)]
    lines += [f"claude-gate {words} — {summary}" for words, summary in SHELL_COMMANDS]
    reply = Reply("Claude Gate commands (the shell acts as an owner, audited as cli)", lines=lines,
                  footer="Reports take --json; a user is a Slack user ID (U…), a channel its name (no #) or ID (C…).")
    return emit(reply, ShellSlackPort(None, None), as_json=args.json, out=args.out)


CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,20}|<#[CG][A-Z0-9]{2,20}(\|[^>]*)?>")
CHANNEL_NAME = re.compile(r"#?([a-z0-9][a-z0-9._-]{0,79})")  # as Slack spells names: lower case, no spaces


def with_channel_id(settings: Settings, text: str) -> str:
    """`channel general …` as `channel C… …`: a channel's name is looked up among the channels with settings, then
    in Slack (SLACK_BOT_TOKEN); an ID is kept. Bash reads `#general` as a comment, so the name goes without the #."""
    words = text.split(maxsplit=2)
    if words[:1] != ["channel"] or len(words) < 2 or CHANNEL_ID.fullmatch(words[1]):
        return text
    named = CHANNEL_NAME.fullmatch(words[1])
    if named is None:
        raise CliError(f"{words[1][:40]!r} is not a channel: give its name (general, without the #) or its ID "
                       "(like C012ABCDEF)")
    name = named.group(1)

    async def look_up(db: Any) -> str:
        from bot.cli.context import slack_api
        from bot.services.channels.channel_settings import channel_id_named

        async with db.sessions() as session:
            found = await channel_id_named(session, name)
        if found is not None:
            return str(found)
        async with slack_api(settings) as (api, _client):
            if api is None:
                raise CliError(f"no channel named {name} has settings here, and without SLACK_BOT_TOKEN the shell "
                               "cannot ask Slack: set it, or give the channel's ID (C…)")
            found = await api.channel_named(name)
        if found is None:
            raise CliError(f"Slack has no channel named {name} that the bot can see: check the name, or give the "
                           "channel's ID (C…)")
        return str(found)

    return " ".join(["channel", with_database(settings, look_up), *words[2:]])


def run_admin(settings: Settings, text: str, *, as_json: bool = False, out: str | None = None) -> int:
    """Parse ``text`` with the `/claude-admin` grammar and run it through the dispatcher as the shell."""
    text = with_channel_id(settings, text)
    try:
        command = parse_command(ADMIN, text)
    except CommandError as exc:
        return emit(Reply.error(exc.message, exc.usage), ShellSlackPort(None, None), as_json=as_json, out=None)
    why = NEEDS_SLACK.get(command.name)
    if why and settings.slack_bot_token is None:
        raise CliError(f"{command.name} needs Slack, as {why}: set SLACK_BOT_TOKEN (and SLACK_API_URL for "
                       "GovSlack) in the environment or .env")
    makes_file = command.name in FILE_VERBS

    async def work(db: Any) -> tuple[Answer, ShellSlackPort]:
        async with shell_service(db, settings, out if makes_file else None) as (service, slack):
            return await service.run(SHELL, command), slack

    try:
        answer, slack = with_database(settings, work)
    except CliError:
        raise
    except GateError as exc:
        return emit(Reply.error(exc.message, exc.usage), ShellSlackPort(None, None), as_json=as_json, out=None)
    if makes_file and not slack.wrote:  # nothing to write (no spend to chart): say so, and write no file
        print(slack.words(render_answer(answer)), file=sys.stderr)
        return 1
    return emit(answer, slack, as_json=as_json, out=None if makes_file else out)


def emit(answer: Answer, port: ShellSlackPort, *, as_json: bool, out: str | None) -> int:
    ok = not (isinstance(answer, Reply) and not answer.ok)
    text = json.dumps(answer_json(answer), indent=2, default=str) if as_json else port.words(render_answer(answer))
    if out:
        Path(out).write_text(text + "\n")
        print(f"wrote {out}", file=sys.stderr)
    else:
        print(text, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 2


def answer_json(answer: Answer) -> Any:
    """An Answer as plain JSON: its fields (dataclasses), text made plain, kind named."""

    def value(item: Any) -> Any:
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            return {f.name: value(getattr(item, f.name)) for f in dataclasses.fields(item)}
        if isinstance(item, dict):
            return {str(k): value(v) for k, v in item.items()}
        if isinstance(item, list | tuple | set | frozenset):
            return [value(v) for v in item]
        if isinstance(item, Enum):
            return item.value
        if isinstance(item, datetime | date):
            return item.isoformat()
        if isinstance(item, str):
            return for_the_shell(plain(item))
        return item

    result = value(answer)
    return {"kind": type(answer).__name__, **result} if isinstance(result, dict) else result
