"""`claude-gate serve`: migrate, check the tokens with Slack, then serve HTTP events (or Socket Mode) and /healthz
until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import errno
import faulthandler
import gc
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from bot.config import Settings
from bot.domain.errors import CliError, StartupRefused

log = logging.getLogger("bot")


def add_serve_command(sub: Any) -> None:
    serve = sub.add_parser("serve", help="migrate the database, then serve Slack (HTTP, or Socket Mode)")
    serve.add_argument("--port", type=int, help="HTTP port (default: PORT, 3000)")
    serve.set_defaults(handler=cmd_serve, serving=True)


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

# From the first SIGTERM/SIGINT, the clean shutdown (answers under way get SHUTDOWN_GRACE_SECONDS, then the jobs,
# records and database close) is bounded: past this, the process prints its threads' stacks and exits 1, before
# Heroku's SIGKILL at 30 s, so a stuck step is named instead of leaving a process that never ends.
SHUTDOWN_BOUND_SECONDS = 27.0


def _on_signal(stop: asyncio.Event) -> None:
    """The first signal starts the clean shutdown, bounded by the watchdog; a second one ends the process at once."""
    loop = asyncio.get_running_loop()
    if stop.is_set():
        _hard_exit("a second signal during shutdown", loop)
    stop.set()
    watchdog = threading.Timer(SHUTDOWN_BOUND_SECONDS, _hard_exit,
                               args=(f"shutdown still running after {SHUTDOWN_BOUND_SECONDS:.0f} s", loop))
    watchdog.daemon = True  # a clean exit does not wait for it
    watchdog.start()


def _hard_exit(why: str, loop: asyncio.AbstractEventLoop) -> None:
    """End the process now, after printing where every thread and every task of the loop is (what held the shutdown
    up: the main thread of a stuck shutdown is only waiting in the loop's select)."""
    log.error("%s: exiting now; the threads' and the tasks' stacks follow on stderr", why)
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    try:  # from this thread, while the loop may still run: best effort, it is the last thing this process does
        for task in list(asyncio.all_tasks(loop)):
            print(f"\nTask {task.get_name()!r}:", file=sys.stderr)
            task.print_stack(limit=12, file=sys.stderr)
    except Exception as exc:
        print(f"(the tasks could not be listed: {exc!r})", file=sys.stderr)
    logging.shutdown()
    os._exit(1)


async def serve(settings: Settings, *, port: int, host: str = "0.0.0.0") -> None:
    """Serve until SIGINT/SIGTERM: HTTP events + /healthz, or Socket Mode (+ /healthz).

    A signal ends it at any moment, start-up included: start-up runs as a task the signal cancels, and Socket Mode's
    connection (which slack_sdk retries for ever) is a task of its own. The tokens are checked with Slack first: a
    refused one raises StartupRefused (one line, exit 1, nothing started); an unreachable Slack is a warning, checked
    again in the background, and /healthz says so."""
    from aiohttp import web

    from bot.app import build_app
    from bot.runtime import bounded
    from bot.slack.connection import SlackUnreachable, check_tokens, check_until_reachable

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _on_signal, stop)
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
        runtime.slack_link.state = "connecting"
        await socket_handler.connect_async()
        runtime.slack_link.state = "ok"
        log.info("Claude Gate is serving on port %d (Socket Mode)", port)

    async def when_reachable() -> None:
        await check_until_reachable(runtime.client, None)
        runtime.slack_link.state = "ok"

    async def start_up() -> None:
        nonlocal runner, socket_handler
        try:
            await check_tokens(runtime.client, app_token)  # first: a refused token starts nothing
            reachable = True
        except SlackUnreachable as exc:
            reachable = False
            runtime.slack_link.state = "unreachable"
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

        def sdk_loaded(loading: asyncio.Future[Any]) -> None:
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
            runtime.slack_link.socket = socket_handler.client
            log.info("connecting to Slack (Socket Mode); /healthz is served on port %d", port)
            watch(connect_socket(reachable), "socket-mode-connect")
        else:
            if reachable:
                runtime.slack_link.state = "ok"
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
            await bounded("the Socket Mode connection", socket_handler.close_async())
        if runner is not None:  # aiohttp waits for requests under way (acknowledgements: milliseconds)
            await bounded("the HTTP server", runner.cleanup())
        await runtime.close()
