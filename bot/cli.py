"""The `claude-gate` command line: serve, db upgrade, grant, revoke, users, keys, remind, manifest, chat."""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import json
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings, SettingsProblems, load_settings, serving_gaps, sqlite_file
from bot.domain.errors import CliError as CliError
from bot.domain.errors import GateError, StartupRefused
from bot.domain.roles import Role
from bot.logging_setup import configure_logging
from bot.terminal import plain, table

log = logging.getLogger("bot")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
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


def quiet_closed_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush at exit does not raise a second BrokenPipeError."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="claude-gate", description="Claude in Slack, gated by roles.")
    sub = parser.add_subparsers(metavar="command")

    serve = sub.add_parser("serve", help="migrate the database, then serve Slack (HTTP, or Socket Mode)")
    serve.add_argument("--port", type=int, help="HTTP port (default: PORT, 3000)")
    serve.set_defaults(handler=cmd_serve, serving=True)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(metavar="action")
    upgrade = db_sub.add_parser("upgrade", help="apply the Alembic migrations")
    upgrade.set_defaults(handler=cmd_db_upgrade)

    grant = sub.add_parser("grant", help="give a Slack user a role (e.g. the first owner)")
    grant.add_argument("user", help="Slack user ID, e.g. U012ABCDEF")
    grant.add_argument("role", choices=[r.value for r in Role])
    grant.add_argument("duration", nargs="?", metavar="for=<n>d|<n>h",
                       help="time-bound, 1h to 365d (never for owner); the person then returns to their permanent role")
    grant.set_defaults(handler=cmd_grant)

    revoke = sub.add_parser("revoke", help="remove a Slack user's explicit role")
    revoke.add_argument("user")
    revoke.set_defaults(handler=cmd_revoke)

    users = sub.add_parser("users", help="users with explicit roles")
    users.add_argument("role", nargs="?", choices=[r.value for r in Role])
    users.set_defaults(handler=cmd_users)

    manifest = sub.add_parser("manifest", help="print the Slack app manifest (JSON)")
    manifest.add_argument("--socket", action="store_true", help="Socket Mode (no public URL needed)")
    manifest.add_argument("--url", help="public base URL of this server, for HTTP mode")
    manifest.add_argument("--name", default="Claude Gate")
    manifest.add_argument("--assistant-view", action="store_true",
                          help="the assistant panel (assistant_view) of apps created before the agent experience")
    manifest.add_argument("--org", action="store_true", help="allow an Enterprise Grid org-wide install")
    manifest.set_defaults(handler=cmd_manifest)

    chat = sub.add_parser("chat", help="ask Claude as a Slack user, through the same gate")
    chat.add_argument("--as", dest="user", required=True, help="Slack user ID to act as")
    chat.add_argument("--model", help="alias or model ID for this message")
    chat.add_argument("text", nargs="+")
    chat.set_defaults(handler=cmd_chat)

    from bot.cli_data import add_data_commands
    from bot.cli_keys import add_key_commands
    from bot.cli_reports import add_report_commands

    add_key_commands(sub)
    add_report_commands(sub)
    add_data_commands(sub)
    from bot.cli_admin import add_admin_commands

    add_admin_commands(sub, sub.choices)  # last: every other /claude-admin subcommand, through the one dispatcher
    return parser


def _user_id(text: str) -> str:
    from bot.domain.commands import parse_user

    user = parse_user(text)
    if user is None:
        raise CliError(f"{text!r} is not a Slack user ID (like U012ABCDEF)")
    return user


def require_database(settings: Settings) -> None:
    """Shell commands work on the database `serve` or `db upgrade` made: a SQLite file that is not there is named
    (absolute) and not created, so a command run from another directory does not report on an empty database."""
    path = sqlite_file(settings.database_url)
    if path is not None and not path.exists():
        raise CliError(f"no database at {path}: run `claude-gate db upgrade` (or `serve`) to create it, or set "
                       "DATABASE_URL (a relative SQLite path is read against the directory holding .env, else the "
                       "current one)")


def with_database(settings: Settings, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run ``work`` with the database object services are built with (bot.store.db.Database), on an upgraded
    database; the engine is disposed of after."""
    from bot.store.db import Database, create_engine
    from bot.store.migrate import upgrade_database

    require_database(settings)
    upgrade_database(settings.database_url)

    async def run() -> Any:
        db = Database.of(create_engine(settings.database_url))
        try:
            return await work(db)
        finally:
            await db.engine.dispose()

    return asyncio.run(run())


def cmd_db_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    from bot.store.migrate import upgrade_database

    upgrade_database(settings.database_url)
    print("database is up to date")
    return 0


def _duration(text: str | None) -> Any:
    """``for=7d`` → timedelta (the same words as `/claude-admin grant … for=`); None when not given."""
    if text is None:
        return None
    from bot.domain.grants import DurationError, parse_duration

    key, sep, value = text.partition("=")
    if not sep or key.lower() != "for":
        raise CliError(f"unexpected {text[:40]!r}: a time-bound grant is written for=<n>d or for=<n>h")
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise CliError(str(exc).replace("`", "")) from None


def cmd_grant(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli_reports import NoSlack
    from bot.domain.grants import may_be_time_bound
    from bot.services.access.role_changes import RoleChanges
    from bot.services.access.roles import SHELL_ACTOR, RoleChangeDenied
    from bot.store.clock import system_clock

    user, role, duration = _user_id(args.user), Role(args.role), _duration(args.duration)
    if duration is not None and not may_be_time_bound(role):
        raise CliError("a grant of owner cannot be time-bound: owners are permanent")

    async def work(db: Any) -> Any:
        changes = RoleChanges(db=db, settings=settings, clock=system_clock, workspace=NoSlack())
        return await changes.give_role(actor_id=SHELL_ACTOR, actor_role=None, target_id=user, role=role,
                                       duration=duration)

    try:
        given = with_database(settings, work)
    except RoleChangeDenied as exc:
        raise CliError(str(exc).replace("*", "")) from None
    if given.expires_at is None:
        print(f"{user} is now {role}")
    else:
        then = f"; then {given.then.role} again" if given.then is not None else ""
        print(f"{user} is {role} {given.how_long}{then}")
    return 0


def cmd_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from bot.services.access.roles import SHELL_ACTOR, RoleChangeDenied, revoke_role
    from bot.store.clock import system_clock

    user = _user_id(args.user)

    async def work(db: Any) -> Role | None:
        async with db.sessions.begin() as session:
            return await revoke_role(session, system_clock, actor_id=SHELL_ACTOR, actor_role=None, target_id=user)

    try:
        old = with_database(settings, work)
    except RoleChangeDenied as exc:
        raise CliError(str(exc)) from None
    print(f"{user} had no explicit role" if old is None else f"{user} is no longer {old}")
    return 0


def cmd_users(settings: Settings, args: argparse.Namespace) -> int:
    from bot.domain.grants import until_text
    from bot.services.access.roles import list_grants, list_timed_grants
    from bot.store.clock import system_clock

    role = Role(args.role) if args.role else None

    async def work(db: Any) -> tuple[list[Any], list[Any]]:
        async with db.sessions() as session:
            return await list_grants(session, role), await list_timed_grants(session, system_clock(), role)

    grants, timed = with_database(settings, work)
    if not grants and not timed:
        print("no explicit grants")
    else:
        rows = [(grant.slack_user_id, grant.role, f"until {until_text(grant.expires_at)}",
                 f"granted by {grant.granted_by} on {grant.granted_at:%Y-%m-%d}") for grant in timed]
        rows += [(grant.slack_user_id, grant.role, "", f"granted by {grant.granted_by} on {grant.granted_at:%Y-%m-%d}")
                 for grant in grants]
        print(table(rows))
    return 0


def cmd_manifest(_settings: Settings, args: argparse.Namespace) -> int:
    from bot.slack.manifest import build_manifest

    manifest = build_manifest(name=args.name, request_url=args.url, socket_mode=args.socket,
                              view="assistant" if args.assistant_view else "agent", org=args.org)
    print(json.dumps(manifest, indent=2))
    return 0


def cmd_chat(settings: Settings, args: argparse.Namespace) -> int:
    if settings.anthropic_api_key is None:
        raise CliError("Missing setting ANTHROPIC_API_KEY: an API key from console.anthropic.com → API keys.")
    settings.require_workspace_key()
    from bot.store.migrate import upgrade_database

    require_database(settings)
    upgrade_database(settings.database_url)
    return asyncio.run(_chat(settings, _user_id(args.user), " ".join(args.text), args.model))


class TerminalAnswer:
    """An AnswerSink that prints to the terminal as the answer streams."""

    async def append(self, text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    async def finish(self) -> None:
        sys.stdout.write("\n")

    async def fail(self, note: str) -> None:
        sys.stdout.write(f"\n{note}\n")


async def _chat(settings: Settings, user: str, text: str, model: str | None) -> int:
    from bot.app import build_app
    from bot.domain.decisions import Refusal
    from bot.domain.requests import ChatRequest, Requester

    runtime = build_app(settings)
    try:
        await runtime.start()
        await runtime.hold_lease()  # its record carries this process: if it dies mid-answer, others close it
        if settings.slack_bot_token is not None:
            requester = await runtime.directory.requester(user)
        else:
            print("(SLACK_BOT_TOKEN unset: guest and Slack Connect checks skipped)", file=sys.stderr)
            requester = Requester(user_id=user, name=user)
        request = ChatRequest(requester=requester, text=text, model=model, surface="cli", channel_name="a terminal")

        async def no_history() -> list[Any]:
            return []

        result = await runtime.chat.answer(request, no_history, TerminalAnswer())
        if isinstance(result.decision, Refusal):
            print(plain(f"refused: {result.decision.message} {result.decision.hint}"), file=sys.stderr)
            return 3
        return 1 if result.failure else 0
    finally:
        await runtime.close()


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    gc.disable()  # until serve listens: see bot/__main__.py (`claude-gate serve` comes here without it)
    from bot.store.migrate import upgrade_database

    upgrade_database(settings.database_url)  # first, so even a first `make run` without credentials migrates
    settings.require_serving()
    settings.require_workspace_key()
    asyncio.run(serve(settings, port=args.port or settings.port))
    return 0


# Young-generation collections every 50,000 allocations instead of 700, and a full pass every 10 of those: hundreds
# of answers in flight allocate fast, and each pass walks every live object (measured: 0.5 s of GC per 500 answers).
GC_THRESHOLDS = (50_000, 20, 10)


async def serve(settings: Settings, *, port: int, host: str = "0.0.0.0") -> None:
    """Serve until SIGINT/SIGTERM: HTTP events + /healthz, or Socket Mode (+ /healthz).

    A signal ends it at any moment, start-up included: start-up runs as a task the signal cancels, and Socket Mode's
    connection (which slack_sdk retries for ever) is a task of its own. The tokens are checked with Slack first: a
    refused one raises StartupRefused (one line, exit 1, nothing started); an unreachable Slack is a warning, checked
    again in the background, and /healthz says so."""
    from aiohttp import web

    from bot.app import build_app
    from bot.slack.connection import SlackUnreachable, check_tokens, check_until_reachable

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runtime = build_app(settings)
    app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else None
    runner: web.AppRunner | None = None
    socket_handler: Any = None
    tasks: set[asyncio.Task[Any]] = set()
    refused: list[StartupRefused] = []  # a token Slack refused once it was reachable again: stop, exit 1

    def watch(coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        tasks.add(task)

        def done(task: asyncio.Task[Any]) -> None:
            if not task.cancelled() and isinstance(task.exception(), StartupRefused):
                refused.append(task.exception())  # type: ignore[arg-type]
                stop.set()
            elif not task.cancelled() and task.exception() is not None:
                log.error("%s failed", name, exc_info=task.exception())
        task.add_done_callback(done)

    async def connect_socket(reachable: bool) -> None:
        """Socket Mode: once Slack answers, connect (slack_sdk retries a failed connect every 10 s by itself)."""
        if not reachable:
            await check_until_reachable(runtime.client, app_token)
        runtime.slack.state = "connecting"
        await socket_handler.connect_async()
        runtime.slack.state = "ok"
        log.info("Claude Gate is serving on port %d (Socket Mode)", port)

    async def when_reachable() -> None:
        await check_until_reachable(runtime.client, None)
        runtime.slack.state = "ok"

    async def start_up() -> None:
        nonlocal runner, socket_handler
        try:
            await check_tokens(runtime.client, app_token)  # first: a refused token starts nothing
            reachable = True
        except SlackUnreachable as exc:
            reachable = False
            runtime.slack.state = "unreachable"
            log.warning("Slack is unreachable (%s): serving /healthz meanwhile and checking again in the "
                        "background", exc)
        await runtime.start()
        await runtime.hold_lease()  # before any request: every admitted record carries this process's lease
        # In Socket Mode there is no event endpoint to sign-check: serve the health check (and /metrics) alone.
        # The port is taken before anything else starts, so a port in use stops start-up with one line.
        runner = web.AppRunner(runtime.web_app(events=not settings.socket_mode), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CliError(f"port {port} is already in use (another claude-gate serve?): stop that process, "
                               "or choose another port with PORT or --port") from None
            raise CliError(f"cannot listen on port {port}: {exc.strerror or exc}") from None
        # The Anthropic SDK, most of the start-up's import time, loads in a thread from here on while /healthz and
        # acknowledgements are served; an answer that comes first waits for it. Once loaded, it is frozen too.
        listening = time.monotonic()

        def sdk_loaded(loading: asyncio.Future[object]) -> None:
            if loading.cancelled():
                return
            if loading.exception() is not None:
                log.error("the Anthropic SDK could not be imported: no question can be answered (%r)",
                          loading.exception())
                return
            log.info("Anthropic SDK loaded %.1f s after listening", time.monotonic() - listening)
            gc.freeze()

        runtime.claude.preload().add_done_callback(sdk_loaded)
        await runtime.start_jobs()  # rotation reminders and housekeeping (APScheduler on this loop), after the handlers
        # Everything built so far (modules, SDK clients, SQLAlchemy's compiled statements) lives as long as the
        # process: keep it out of the garbage collector's full passes, which otherwise stop the loop for 0.1-0.4 s
        # under load.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        gc.enable()  # disabled through start-up's imports (bot/__main__.py)
        if settings.socket_mode:
            from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

            from bot.slack.connection import SOCKET_LOGGER

            socket_handler = AsyncSocketModeHandler(runtime.bolt, app_token, logger=SOCKET_LOGGER,
                                                    web_client=runtime.client)
            runtime.slack.socket = socket_handler.client
            log.info("connecting to Slack (Socket Mode); /healthz is served on port %d", port)
            watch(connect_socket(reachable), "socket-mode-connect")
        else:
            if reachable:
                runtime.slack.state = "ok"
            else:
                watch(when_reachable(), "slack-check")
            log.info("Claude Gate is serving on port %d (HTTP)", port)

    starting = asyncio.create_task(start_up(), name="start-up")
    stopping = asyncio.create_task(stop.wait(), name="stop")
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():  # a signal during start-up
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            log.info("stopped during start-up")
        else:
            starting.result()  # StartupRefused, a port in use…: raised, after the clean-up below
            await stopping
            if refused:
                raise refused[0]
            log.info("shutting down")
    finally:
        for task in (*tasks, stopping):
            task.cancel()
        await asyncio.gather(*tasks, stopping, return_exceptions=True)
        if socket_handler is not None:
            await socket_handler.close_async()
        if runner is not None:
            await runner.cleanup()
        await runtime.close()
