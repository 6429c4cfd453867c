"""The grammar of `/claude-admin` and `/claude`: one table, one parser, pure.

Arguments accept Slack's escaped forms (`<@U123|name>`, `<!subteam^S123|@handle>`) and plain IDs;
options are `key=value` in any order. A bad text raises CommandError with a one-line message and the
usage of the subcommand it was closest to; nothing is executed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.domain.channels import ChannelChangeError, parse_channel, parse_channel_change
from bot.domain.errors import CommandError as CommandError
from bot.domain.grants import DurationError, parse_duration
from bot.domain.keys import ANTHROPIC_ID, ENV_VAR, LABEL, MAX_ROTATE_DAYS, WORKSPACE
from bot.domain.marks import code
from bot.domain.roles import Right, Role
from bot.domain.schedules import ScheduleError, parse_schedule

_USER = re.compile(r"^(?:<@(?P<mention>[UW][A-Z0-9]{1,20})(?:\|[^>]*)?>|(?P<plain>[UW][A-Z0-9]{1,20}))$")
_GROUP = re.compile(r"^(?:<!subteam\^(?P<mention>S[A-Z0-9]{2,20})(?:\|(?P<handle>@?[^>]*))?>|(?P<plain>S[A-Z0-9]{2,20})"
                    r"|@(?P<bare>[a-z0-9][a-z0-9._-]{0,79}))$")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_WHOLE_NUMBER = re.compile(r"[0-9]{1,12}")

MAX_INT = 10_000_000
MAX_REPORT_DAYS = 3660  # reports reach back ten years at most
DEFAULT_CHART_DAYS = 30
MAX_CHART_DAYS = 366  # a bar a day: a year is the most a chart shows legibly
MAX_RECONCILE_DAYS = 31  # the longest range of Anthropic's cost report


def whole_number(text: str, minimum: int, maximum: int) -> int | None:
    """``text`` as a whole number within [minimum, maximum], else None.

    ASCII digits only: ``str.isdigit`` also accepts ``²`` or ``٣``, which ``int`` then refuses, and a number of
    thousands of digits makes ``int`` raise. Both are a bad value here, never an exception.
    """
    if not _WHOLE_NUMBER.fullmatch(text):
        return None
    value = int(text)
    return value if minimum <= value <= maximum else None


def parse_user(text: str) -> str | None:
    """``<@U123|name>``, ``<@U123>`` or ``U123`` → ``U123``; anything else → None."""
    match = _USER.fullmatch(text.strip())
    if not match:
        return None
    return match.group("mention") or match.group("plain")


@dataclass(frozen=True)
class GroupRef:
    """A Slack user group, by ID (`S…`) and/or handle (`@team`)."""

    id: str | None
    handle: str | None

    def __str__(self) -> str:
        return f"@{self.handle}" if self.handle else str(self.id)


def parse_group(text: str) -> GroupRef | None:
    match = _GROUP.fullmatch(text.strip())
    if not match:
        return None
    if match.group("mention"):
        handle = (match.group("handle") or "").lstrip("@") or None
        return GroupRef(match.group("mention"), handle)
    if match.group("plain"):
        return GroupRef(match.group("plain"), None)
    return GroupRef(None, match.group("bare"))


class Kind(StrEnum):
    USER = "user"
    ROLE = "role"
    GROUP = "group"
    LABEL = "label"
    ENV_VAR = "env_var"
    WORKSPACE = "workspace"
    ANTHROPIC_ID = "anthropic_id"
    INT = "int"
    WORD = "word"
    FIELD = "field"
    SUBJECT = "subject"  # a user, a role, or "all"
    REST = "rest"  # the rest of the text (e.g. a comma list with spaces)
    DURATION = "duration"  # <n>d or <n>h, 1 h..365 d
    CHANNEL = "channel"  # <#C123|name>, <#C123> or C123
    CHANNEL_CHANGE = "channel_change"  # the rest of the text, as typed: on|off · model … · prompt … · roles …
    TARGET = "target"  # a budget's target: a role, a user, a user group, or "org"
    PERIOD = "period"  # daily / monthly
    SCHEDULE = "schedule"  # the rest of the text, as typed: "<when>" <prompt> (bot/domain/schedules.py)


POLICY_FIELDS = ("models", "max_tokens", "rpm_limit", "daily_token_budget", "daily_usd", "monthly_usd", "workspace",
                 "attachments", "schedules")


@dataclass(frozen=True)
class Param:
    name: str
    kind: Kind
    optional: bool = False
    minimum: int = 0
    maximum: int = MAX_INT


@dataclass(frozen=True)
class Subcommand:
    command: str  # "/claude-admin" or "/claude"
    words: tuple[str, ...]  # ("groups", "map")
    params: tuple[Param, ...] = ()
    options: dict[str, Param] = field(default_factory=dict)
    summary: str = ""
    right: Right | None = None  # None: anyone may run it

    @property
    def name(self) -> str:
        return " ".join(self.words)

    @property
    def usage(self) -> str:
        parts = [self.command, *self.words]
        for param in self.params:
            label = _PLACEHOLDER.get(param.kind, f"<{param.name}>")
            parts.append(f"[{label}]" if param.optional else label)
        parts.extend(f"[{name}={_PLACEHOLDER.get(p.kind, '<' + name + '>')}]" for name, p in self.options.items())
        return code(" ".join(parts))


_PLACEHOLDER = {
    Kind.USER: "@user",  # not `<@user>`: what the bot posts is neutralised, and this reads the same
    Kind.ROLE: "<role>",
    Kind.GROUP: "@group",
    Kind.LABEL: "<label>",
    Kind.ENV_VAR: "env:<VAR>",
    Kind.WORKSPACE: "<workspace>",
    Kind.ANTHROPIC_ID: "<id>",
    Kind.INT: "<n>",
    Kind.FIELD: "<field>",
    Kind.SUBJECT: "@user|role|all",
    Kind.REST: "<value>",
    Kind.WORD: "<name>",
    Kind.DURATION: "<n>d|<n>h",
    Kind.CHANNEL: "#channel",
    Kind.CHANNEL_CHANGE: "on|off | model <alias>|none | prompt <text>|none | roles <role,…>|all",
    Kind.TARGET: "<target>",
    Kind.PERIOD: "daily|monthly",
    Kind.SCHEDULE: '"<when>" <prompt>',
}

_TRAILING = (Kind.REST, Kind.CHANNEL_CHANGE, Kind.SCHEDULE)  # a last parameter that takes the rest of the text

ADMIN = "/claude-admin"
SELF = "/claude"

SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand(ADMIN, ("help",), summary="the commands you may use"),
    Subcommand(ADMIN, ("grant",), (Param("user", Kind.USER), Param("role", Kind.ROLE)),
               {"for": Param("for", Kind.DURATION)},
               summary="give someone a role, optionally for a time (they get a DM)", right=Right.MANAGE_ROLES),
    Subcommand(ADMIN, ("requests",), summary="pending access requests (approve or deny from their message)",
               right=Right.MANAGE_ROLES),
    Subcommand(ADMIN, ("requests", "approve"), (Param("id", Kind.INT, minimum=1),),
               {"for": Param("for", Kind.DURATION)},
               summary="approve an access request, permanently or for a time", right=Right.MANAGE_ROLES),
    Subcommand(ADMIN, ("requests", "deny"), (Param("id", Kind.INT, minimum=1),),
               summary="deny an access request", right=Right.MANAGE_ROLES),
    Subcommand(ADMIN, ("revoke",), (Param("user", Kind.USER),),
               summary="remove someone's explicit role", right=Right.MANAGE_ROLES),
    Subcommand(ADMIN, ("whois",), (Param("user", Kind.USER),),
               summary="effective role, its source, limits, usage today", right=Right.MANAGE_ROLES),
    Subcommand(ADMIN, ("users",), (Param("role", Kind.ROLE, optional=True),),
               summary="users with explicit roles", right=Right.MANAGE_ROLES),
    Subcommand(ADMIN, ("groups",), summary="user groups mapped to roles", right=Right.MANAGE_ROLES),
    Subcommand(ADMIN, ("groups", "map"), (Param("group", Kind.GROUP), Param("role", Kind.ROLE)),
               summary="give a Slack user group's members a role", right=Right.MANAGE_ROLES),
    Subcommand(ADMIN, ("groups", "unmap"), (Param("group", Kind.GROUP),),
               summary="remove a group mapping", right=Right.MANAGE_ROLES),
    Subcommand(ADMIN, ("keys",), summary="API keys: label, workspace, hint, age, rotate-by, status",
               right=Right.MANAGE_KEYS),
    Subcommand(ADMIN, ("keys", "add"), (Param("label", Kind.LABEL), Param("env_var", Kind.ENV_VAR)),
               {"workspace": Param("workspace", Kind.WORKSPACE),
                "rotate_days": Param("rotate_days", Kind.INT, minimum=1, maximum=MAX_ROTATE_DAYS),
                "anthropic_id": Param("anthropic_id", Kind.ANTHROPIC_ID)},
               summary="register a key whose secret is in an environment variable", right=Right.MANAGE_KEYS),
    Subcommand(ADMIN, ("keys", "revoke"), (Param("label", Kind.LABEL),),
               summary="stop using a key at once (and deactivate it at Anthropic)", right=Right.MANAGE_KEYS),
    Subcommand(ADMIN, ("keys", "sync"), summary="import the organisation's keys from the Admin API",
               right=Right.MANAGE_KEYS),
    Subcommand(ADMIN, ("policy",), (Param("role", Kind.ROLE, optional=True),),
               summary="models and limits of each role", right=Right.EDIT_POLICY),
    Subcommand(ADMIN, ("policy", "set"), (Param("role", Kind.ROLE), Param("field", Kind.FIELD),
                                          Param("value", Kind.REST)),
               summary="edit a role's models, max_tokens, rpm_limit, daily_token_budget, daily_usd, monthly_usd, "
               "workspace, attachments or schedules",
               right=Right.EDIT_POLICY),
    Subcommand(ADMIN, ("budget",), summary="USD budgets, with spend this period and % used", right=Right.VIEW_USAGE),
    Subcommand(ADMIN, ("budget", "set"), (Param("target", Kind.TARGET), Param("period", Kind.PERIOD),
                                          Param("amount", Kind.REST)),
               summary=f"a daily or monthly USD budget ({code('none')} removes it); <target>: a role (per person), "
               f"a user, a user group or a channel (pooled) or {code('org')}", right=Right.EDIT_POLICY),
    Subcommand(ADMIN, ("usage",), (Param("subject", Kind.SUBJECT, optional=True),),
               {"days": Param("days", Kind.INT, minimum=1, maximum=MAX_REPORT_DAYS)},
               summary="requests, tokens, estimated cost, refusals", right=Right.VIEW_USAGE),
    Subcommand(ADMIN, ("usage", "chart"), options={"days": Param("days", Kind.INT, minimum=1,
                                                                 maximum=MAX_CHART_DAYS)},
               summary=f"a PNG chart of daily cost by role and model, in your DM (default: the last "
               f"{DEFAULT_CHART_DAYS} days)", right=Right.VIEW_USAGE),
    Subcommand(ADMIN, ("usage", "reconcile"), options={"days": Param("days", Kind.INT, minimum=1,
                                                                     maximum=MAX_RECONCILE_DAYS)},
               summary="our recorded cost beside Anthropic's cost report, per key, model and UTC day (default: "
               "yesterday; needs ANTHROPIC_ADMIN_KEY)", right=Right.VIEW_USAGE),
    Subcommand(ADMIN, ("audit",), (Param("n", Kind.INT, optional=True, minimum=1),),
               summary="the last n admin actions", right=Right.VIEW_AUDIT),
    Subcommand(ADMIN, ("audit", "export"), options={"days": Param("days", Kind.INT, minimum=1,
                                                                  maximum=MAX_REPORT_DAYS)},
               summary="the audit log as a JSON Lines file in your DM (default: the last 30 days)",
               right=Right.VIEW_AUDIT),
    Subcommand(ADMIN, ("reminders",), summary="the key-rotation reminder schedule", right=Right.MANAGE_KEYS),
    Subcommand(ADMIN, ("reminders", "run"), summary="run the reminders now", right=Right.MANAGE_KEYS),
    Subcommand(ADMIN, ("offboard",), (Param("user", Kind.USER),),
               summary="revoke someone's role and deactivate the Anthropic keys they created",
               right=Right.MANAGE_ROLES),
    Subcommand(ADMIN, ("forget",), (Param("user", Kind.USER),),
               summary="erase a person's stored prompt text, request reasons and preferences; numbers stay",
               right=Right.MANAGE_ROLES),
    Subcommand(ADMIN, ("channels",), summary="channels with their own settings", right=Right.MANAGE_CHANNELS),
    Subcommand(ADMIN, ("channel",),
               (Param("channel", Kind.CHANNEL), Param("change", Kind.CHANNEL_CHANGE, optional=True)),
               summary="what applies in a channel, or change it: on/off, model, prompt, roles",
               right=Right.MANAGE_CHANNELS),
    Subcommand(SELF, ("help",), summary="what you can do"),
    Subcommand(SELF, ("status",), summary="your role, limits, requests left, model"),
    Subcommand(SELF, ("model",), (Param("model", Kind.WORD),), summary="set your default model"),
    Subcommand(SELF, ("usage",), summary="your usage in the last 7 and 30 days"),
    Subcommand(SELF, ("schedule",), (Param("schedule", Kind.SCHEDULE),),
               summary="in a channel: ask Claude this on a schedule and post the answer there (when: five crontab "
               "fields, or every day|weekday|mon,wed,… HH:MM, in your Slack time zone)"),
    Subcommand(SELF, ("schedules",), summary="your scheduled prompts (admins: everyone's)"),
    Subcommand(SELF, ("unschedule",), (Param("id", Kind.INT, minimum=1),), summary="remove a scheduled prompt"),
)


def subcommands_of(command: str) -> list[Subcommand]:
    return [s for s in SUBCOMMANDS if s.command == command]


@dataclass(frozen=True)
class ParsedCommand:
    subcommand: Subcommand
    args: dict[str, Any]

    @property
    def name(self) -> str:
        return self.subcommand.name

    def __getitem__(self, key: str) -> Any:
        return self.args.get(key)


def parse_command(command: str, text: str) -> ParsedCommand:
    """Parse the text of ``command``; an empty text is `help`."""
    tokens = text.split()
    if not tokens:
        tokens = ["help"]
    table = subcommands_of(command)
    # longest matching word path wins: "groups map" before "groups"
    candidates = sorted((s for s in table if [t.lower() for t in tokens[: len(s.words)]] == list(s.words)),
                        key=lambda s: len(s.words), reverse=True)
    if not candidates:
        known = ", ".join(sorted({s.words[0] for s in table}))
        raise CommandError(f"Unknown subcommand {code(_shown(tokens[0]))}. Known: {known}.",
                           f"{code(command + ' help')} lists what you may run.")
    sub = candidates[0]
    return ParsedCommand(sub, _bind(sub, tokens[len(sub.words):], lambda index: _after(text, len(sub.words) + index)))


def _after(text: str, count: int) -> str:
    """The text after its first ``count`` words, as typed (line breaks and spacing kept)."""
    parts = text.strip().split(maxsplit=count)
    return parts[count].strip() if len(parts) > count else ""


def _bind(sub: Subcommand, tokens: list[str], typed_rest: Any = None) -> dict[str, Any]:
    args: dict[str, Any] = {}
    positional: list[str] = []
    for index, token in enumerate(tokens):
        key, sep, value = token.partition("=")
        if sep and key.lower() in sub.options:
            name = key.lower()
            if name in args:
                raise CommandError(f"{code(name + '=')} is given twice.", sub.usage)
            args[name] = _convert(sub.options[name], value, sub)
        elif sub.params and sub.params[-1].kind in _TRAILING and len(positional) == len(sub.params) - 1:
            trailing = sub.params[-1].kind in (Kind.CHANNEL_CHANGE, Kind.SCHEDULE) and typed_rest is not None
            positional.append(typed_rest(index) if trailing else " ".join(tokens[index:]))
            break
        elif sep and not token.startswith("<"):
            raise CommandError(f"Unknown option {code(_shown(key) + '=')}.", sub.usage)
        else:
            positional.append(token)
    required = [p for p in sub.params if not p.optional]
    if len(positional) < len(required):
        missing = sub.params[len(positional)].name
        raise CommandError(f"Missing {missing}.", sub.usage)
    if len(positional) > len(sub.params):
        raise CommandError(f"Unexpected {code(_shown(positional[len(sub.params)]))}.", sub.usage)
    for param, token in zip(sub.params, positional, strict=False):
        args[param.name] = _convert(param, token, sub)
    return args


def _shown(token: str) -> str:
    """What of a bad token may be echoed back: never something that looks like a secret."""
    if token.lower().startswith(("sk-ant", "xox", "xapp")):
        return "that value"
    return token[:40].replace("`", "'")


def role_or_user(token: str) -> Role | str | None:
    """A role name, else a user (mention or ID), else None."""
    return Role.parse(token) or parse_user(token)


def _convert(param: Param, token: str, sub: Subcommand) -> Any:
    shown = _shown(token)
    match param.kind:
        case Kind.USER:
            user = parse_user(token)
            if user is None:
                raise CommandError(f"{code(shown)} is not a Slack user: mention them (@name) or give their ID.",
                                   sub.usage)
            return user
        case Kind.ROLE:
            role = Role.parse(token)
            if role is None:
                raise CommandError(f"{code(shown)} is not a role. Roles: {', '.join(Role)}.", sub.usage)
            return role
        case Kind.GROUP:
            group = parse_group(token)
            if group is None:
                raise CommandError(f"{code(shown)} is not a user group: mention it (@handle) or give its S… ID.",
                                   sub.usage)
            return group
        case Kind.LABEL:
            if not LABEL.fullmatch(token):
                raise CommandError(f"{code(shown)} is not a key label (1-64 letters, digits, . _ -, starting with a "
                                   "letter or digit).", sub.usage)
            return token
        case Kind.ENV_VAR:
            name = token[4:] if token.startswith("env:") else None
            if name is None or not ENV_VAR.fullmatch(name):
                raise CommandError(f"{code(shown)} must be env:<VARIABLE>: a secret is never typed, only the name of "
                                   "the environment variable that holds it.", sub.usage)
            return name
        case Kind.WORKSPACE:
            if not WORKSPACE.fullmatch(token):
                raise CommandError(f"{code(shown)} is not a workspace name (1-64 letters, digits, . _ -).", sub.usage)
            return token
        case Kind.ANTHROPIC_ID:
            if not ANTHROPIC_ID.fullmatch(token):
                raise CommandError(f"{code(shown)} is not an Anthropic key id (like {code('apikey_01…')}).", sub.usage)
            return token
        case Kind.INT:
            number = whole_number(token, param.minimum, param.maximum)
            if number is None:
                raise CommandError(f"{code(shown)} is not a whole number from {param.minimum} to {param.maximum:,} for "
                                   f"{param.name}.", sub.usage)
            return number
        case Kind.FIELD:
            if token.lower() not in POLICY_FIELDS:
                raise CommandError(f"{code(shown)} is not a policy field. Fields: {', '.join(POLICY_FIELDS)}.",
                                   sub.usage)
            return token.lower()
        case Kind.SUBJECT:
            subject = "all" if token.lower() == "all" else role_or_user(token)
            if subject is None:
                raise CommandError(f"{code(shown)} is not a user, a role or {code('all')}.", sub.usage)
            return subject
        case Kind.WORD:
            if not _WORD.fullmatch(token):
                raise CommandError(f"{code(shown)} is not a valid {param.name}.", sub.usage)
            return token
        case Kind.REST:
            return token.strip()
        case Kind.DURATION:
            try:
                return parse_duration(token)
            except DurationError as exc:
                raise CommandError(str(exc), sub.usage) from None
        case Kind.CHANNEL:
            channel = parse_channel(token)
            if channel is None:
                raise CommandError(f"{code(shown)} is not a channel: mention it (#name) or give its C… ID.", sub.usage)
            return channel
        case Kind.CHANNEL_CHANGE:
            try:
                return parse_channel_change(token)
            except ChannelChangeError as exc:
                raise CommandError(str(exc), sub.usage) from None
        case Kind.TARGET:
            target = ("org" if token.lower() == "org"
                      else role_or_user(token) or parse_group(token) or parse_channel(token))
            if target is None:
                raise CommandError(f"{code(shown)} is not a role, a user, a user group, a channel or {code('org')}.",
                                   sub.usage)
            return target
        case Kind.PERIOD:
            if token.lower() not in ("daily", "monthly"):
                raise CommandError(f"{code(shown)} is not a period: {code('daily')} or {code('monthly')}.", sub.usage)
            return token.lower()
        case Kind.SCHEDULE:
            try:
                return parse_schedule(token)
            except ScheduleError as exc:
                raise CommandError(str(exc), sub.usage) from None
    raise AssertionError(param.kind)  # pragma: no cover
