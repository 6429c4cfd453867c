"""`claude-gate policy …`, `budget …`, `usage …` and `audit …`: the same admin subcommands as Slack, run as the shell.

They go through the `/claude-admin` grammar and AdminService, so rules, validation and audit are the same;
the shell acts with owner rights (whoever can run `claude-gate` already holds the database).
"""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import timedelta
from typing import Any

from bot.config import Settings
from bot.domain.commands import ADMIN, DEFAULT_CHART_DAYS, CommandError, GroupRef, parse_command
from bot.domain.errors import CliError
from bot.domain.replies import Reply
from bot.domain.requests import Requester
from bot.domain.roles import Role
from bot.services.access.roles import SHELL_ACTOR
from bot.services.base import Caller
from bot.services.conversation.access import EffectiveRole
from bot.services.spend.commands import DEFAULT_USAGE_DAYS
from bot.services.spend.usage import usage_by_user
from bot.store.clock import system_clock
from bot.terminal import render_reply

SHELL = Caller(Requester(user_id=SHELL_ACTOR, name="shell"), EffectiveRole(Role.OWNER, "explicit"))


class NoSlack:
    """The shell has no Slack connection: subcommands that need one are for Slack only."""

    async def send_dm(self, user_id: str, text: str) -> None:
        return None

    async def post(self, channel: str, text: str, thread_ts: str | None = None) -> None:
        return None

    async def user_group(self, ref: GroupRef) -> tuple[str, str | None, list[str]]:
        raise CommandError("User groups are managed from Slack: /claude-admin groups map …", "")

    async def profile(self, user_id: str) -> Requester:
        return Requester(user_id=user_id, known=False)

    async def channel_name(self, channel_id: str) -> str | None:
        return None  # not checked: the shell gives channel IDs it copied from Slack


def add_report_commands(sub: Any) -> None:
    policy = sub.add_parser("policy", help="show role policies, or `policy set <role> <field> <value>`")
    policy.add_argument("words", nargs="*", help="[role] | set <role> <field> <value>")
    policy.set_defaults(handler=cmd_policy)
    budget = sub.add_parser("budget", help="USD budgets with spend this period, or `budget set <target> "
                            "daily|monthly <usd>|none`")
    budget.add_argument("words", nargs="*", help="set <role|U…|org> daily|monthly <usd>|none")
    budget.set_defaults(handler=cmd_budget)
    usage = sub.add_parser("usage", help="requests, refusals, tokens, estimated cost; `usage chart [--days n] "
                           "[--out FILE]`: a PNG of daily cost by role and model")
    usage.add_argument("subject", nargs="?", default="all", help="a Slack user ID, a role, all, or chart")
    usage.add_argument("--days", type=int, help=f"the last n days (default {DEFAULT_USAGE_DAYS}; a chart's "
                       f"{DEFAULT_CHART_DAYS})")
    usage.add_argument("--csv", action="store_true", help="one CSV row per user instead of the summary")
    add_export_flags(usage, "every request record (numbers and outcomes, no prompt text)")
    usage.set_defaults(handler=cmd_usage)
    audit = sub.add_parser("audit", help="the last admin actions")
    audit.add_argument("n", nargs="?", type=int, default=20)
    add_export_flags(audit, "every audit entry")
    audit.set_defaults(handler=cmd_audit)
    requests = sub.add_parser("requests", help="pending access requests; `requests approve <id> [for=<n>d]`, "
                                               "`requests deny <id>`")
    requests.add_argument("words", nargs="*", help="[approve <id> [for=<n>d|<n>h] | deny <id>]")
    requests.set_defaults(handler=cmd_requests)


def _run(settings: Settings, text: str, *, slack: bool = False) -> int:
    """Run ``text`` as the shell; with ``slack`` (and SLACK_BOT_TOKEN) access requests are shown in Slack."""
    from bot.cli import with_database
    from bot.cli_admin import shell_admin

    async def work(db: Any) -> Reply:
        client = None
        if slack and settings.slack_bot_token is not None:
            from bot.slack.safe_text import SafeWebClient

            client = SafeWebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url)
        service = shell_admin(db, settings, NoSlack(), client)
        try:
            answer = await service.run(SHELL, parse_command(ADMIN, text))
        except CommandError as exc:
            return Reply.error(exc.message, exc.usage)
        assert isinstance(answer, Reply)
        return answer

    reply = with_database(settings, work)
    print(render_reply(reply), file=sys.stdout if reply.ok else sys.stderr)
    return 0 if reply.ok else 2


def cmd_budget(settings: Settings, args: argparse.Namespace) -> int:
    return _run(settings, " ".join(["budget", *args.words]))


def cmd_policy(settings: Settings, args: argparse.Namespace) -> int:
    return _run(settings, " ".join(["policy", *args.words]))


def add_export_flags(command: argparse.ArgumentParser, what: str) -> None:
    command.add_argument("--since", metavar="DATE", help=f"export {what} since DATE (YYYY-MM-DD or ISO 8601)")
    command.add_argument("--format", choices=("jsonl", "csv"), help="export format (default jsonl)")
    command.add_argument("--out", metavar="FILE", help="write the export to FILE instead of standard output")


def exporting(args: argparse.Namespace) -> bool:
    return bool(args.since or args.format or args.out)


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    if exporting(args):
        from bot.cli_export import export
        from bot.services.data.export import audit_columns, audit_rows

        return export(settings, audit_rows, audit_columns(), since=args.since, fmt=args.format, out=args.out)
    return _run(settings, f"audit {args.n}")


def cmd_usage(settings: Settings, args: argparse.Namespace) -> int:
    if args.subject.lower() == "chart":  # the PNG goes to --out FILE, else to its own name here
        if args.since or args.format or args.csv:
            raise CliError("usage chart takes --days and --out only")
        from bot.cli_admin import run_admin

        days = f" days={args.days}" if args.days is not None else ""
        return run_admin(settings, f"usage chart{days}", out=args.out)
    if exporting(args):
        from bot.cli_export import export
        from bot.services.data.export import record_columns, record_rows

        return export(settings, record_rows, record_columns(), since=args.since, fmt=args.format, out=args.out)
    days = DEFAULT_USAGE_DAYS if args.days is None else args.days
    if not args.csv:
        return _run(settings, f"usage {args.subject} days={days}")
    from bot.cli import with_database
    from bot.services.data.export import csv_cell

    if days < 1:
        raise CliError("--days must be at least 1")

    async def work(db: Any) -> list[tuple[Any, ...]]:
        async with db.reads() as session:  # serve keeps writing meanwhile (SQLite)
            return await usage_by_user(session, since=system_clock() - timedelta(days=days))

    writer = csv.writer(sys.stdout)
    writer.writerow(["slack_user_id", "requests", "refused", "errors", "input_tokens", "output_tokens",
                     "estimated_cost_usd", "thumbs_up", "thumbs_down", "cache_write_tokens", "cache_read_tokens"])
    writer.writerows([csv_cell(value) for value in row] for row in with_database(settings, work))
    return 0


def cmd_requests(settings: Settings, args: argparse.Namespace) -> int:
    """The same words as `/claude-admin requests …`; with SLACK_BOT_TOKEN the request's messages and the
    requester are told, as when deciding from Slack."""
    return _run(settings, " ".join(["requests", *args.words]), slack=True)
