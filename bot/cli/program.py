"""`main`: the words parsed (every command of the package, bot/cli/), the settings loaded, one command run, and
every error the operator can fix said in one line on stderr."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from bot.cli.base import quiet_closed_stdout
from bot.config import SettingsProblems, load_settings, serving_gaps
from bot.domain.errors import CliError as CliError
from bot.domain.errors import GateError, StartupRefused
from bot.logging_setup import configure_logging
from bot.terminal import plain

log = logging.getLogger("bot")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parse(parser, argv)
    if not getattr(args, "serving", False):  # (`serve` enables it once it listens: bot/__main__.py)
        gc.enable()
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        try:
            settings = load_settings()
        except SettingsProblems as exc:
            if getattr(args, "serving", False):  # `serve` names the missing credentials too, not only the invalid
                raise with_serving_gaps(exc) from None
            raise
        configure_logging(settings.log_level_number, settings.secret_values(), log_prompts=settings.log_prompts,
                          log_format=settings.log_format)
        status = args.handler(settings, args) or 0
        sys.stdout.flush()  # a closed pipe shows here, where it is caught, not in the interpreter's exit
        return status
    except SettingsProblems as exc:
        print(config_message(exc), file=sys.stderr)
        return 2
    except StartupRefused as exc:  # a credential its service refused: the process cannot do its work
        print(plain(f"claude-gate: {exc}"), file=sys.stderr)
        return 1
    except GateError as exc:  # CliError and every other error with a line for the operator
        print(plain(f"claude-gate: {exc}"), file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"claude-gate: the database is not reachable ({reason}). Check DATABASE_URL.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `claude-gate manifest | head`: the reader has gone, so end quietly, as `cat` does
        quiet_closed_stdout()
        return 128 + signal.SIGPIPE
    except OSError as exc:  # a file the command was told to write (--out) or read
        where = f" {exc.filename}" if exc.filename else ""
        print(f"claude-gate: cannot use{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2


def with_serving_gaps(exc: SettingsProblems) -> SettingsProblems:
    """The invalid settings, plus the credentials `serve` needs that are unset or blank in the environment."""
    named = {problem.name for problem in exc.problems}
    gaps = serving_gaps(bot_token=os.environ.get("SLACK_BOT_TOKEN"),
                        signing_secret=os.environ.get("SLACK_SIGNING_SECRET"),
                        app_token=os.environ.get("SLACK_APP_TOKEN"), api_key=os.environ.get("ANTHROPIC_API_KEY"))
    return SettingsProblems(exc.problems + [gap for gap in gaps if gap.name not in named])


def command_as_typed() -> str:
    """How to run `claude-gate` from the current directory: on the PATH, else the script's path (.venv/bin/…)."""
    script = Path(sys.argv[0])
    if script.name == "claude-gate":
        on_path = shutil.which("claude-gate")
        if on_path and Path(on_path).resolve() == script.resolve():
            return "claude-gate"
        try:
            return str(script.resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return str(script)
    if shutil.which("claude-gate"):
        return "claude-gate"
    local = Path(".venv/bin/claude-gate")
    if local.exists():
        return str(local)
    beside = Path(sys.executable).parent / "claude-gate"  # `python -m bot` from another directory
    return str(beside) if beside.exists() else f"{sys.executable} -m bot"


def config_message(exc: SettingsProblems) -> str:
    """The start-up error: one line per problem and, when credentials are missing, how to create the Slack app."""
    text = f"claude-gate: {exc.text()}"
    if not any(problem.missing for problem in exc.problems):
        return text
    command = f"{command_as_typed()} manifest --url https://<your-host>"
    if Path("Makefile").is_file():
        print_it = (f" `make manifest URL=https://<your-host>` (Socket Mode: `make manifest SOCKET=1`),\n"
                    f"or `{command}`")
    else:
        print_it = f"\n`{command}` (Socket Mode: --socket)"
    return "\n".join([
        text,
        f"No Slack app yet? Print its manifest with{print_it}; paste it at",
        "api.slack.com/apps → Create New App → From a manifest, install the app, then copy the values into .env",
        "(start from .env.example).",
    ])


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("claude-gate")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def _parser() -> argparse.ArgumentParser:
    from bot.cli.admin import add_admin_commands
    from bot.cli.chat import add_chat_command
    from bot.cli.db import add_db_commands
    from bot.cli.exports import add_export_flags
    from bot.cli.manifest import add_manifest_command
    from bot.cli.models import add_models_command
    from bot.cli.purge import add_purge_command
    from bot.cli.serve import add_serve_command

    parser = argparse.ArgumentParser(prog="claude-gate", description="Claude in Slack, gated by roles. "
                                     "`claude-gate help` lists every command.")
    parser.add_argument("--version", action="version", version=f"claude-gate {_version()}")
    sub = parser.add_subparsers(metavar="command")
    add_serve_command(sub)
    add_db_commands(sub)
    add_manifest_command(sub)
    add_chat_command(sub)
    add_models_command(sub)
    add_purge_command(sub)
    add_admin_commands(sub)  # every /claude-admin subcommand, through the one dispatcher
    add_export_flags(sub.choices)
    return parser


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """The words after the options go to an admin verb as typed (`usage U… --days 3 more`)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        if getattr(args, "admin_word", None) and not any(word.startswith("-") for word in extra):
            args.words = [*args.words, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args
