"""A tiny base class running an aiohttp application on a background thread.

The fakes in this package subclass :class:`ThreadedServer`. Each instance owns a
daemon thread with its own asyncio loop, so the fake keeps serving while a test
blocks (sync tests) or while the test's own loop is busy (async tests).

Thread-safety convention: state is mutated on the server thread; recorded call
lists are plain lists that only ever grow by ``append`` there. Readers in test
threads should copy (``list(fake.calls)``) before iterating; the helpers on the
subclasses already do.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

from aiohttp import web

T = TypeVar("T")


class ThreadedServer:
    """Runs ``self.build_app()`` on 127.0.0.1 (free port) in a daemon thread."""

    host = "127.0.0.1"
    #: seconds aiohttp waits for in-flight handlers on stop before cancelling them
    shutdown_timeout = 0.5

    def __init__(self) -> None:
        self.port: int = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    # ------------------------------------------------------------------ hooks

    def build_app(self) -> web.Application:
        """Return the application to serve; subclasses add their routes."""
        raise NotImplementedError

    async def on_stopping(self) -> None:
        """Called on the server loop before the runner is cleaned up."""

    # -------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._ready.is_set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._loop

    def start(self, timeout: float = 10.0) -> Self:
        """Start serving; blocks until the socket is listening."""
        if self._thread is not None:
            raise RuntimeError("already started")
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name=f"{type(self).__name__}-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"{type(self).__name__} did not start within {timeout}s")
        if self._startup_error is not None:
            raise RuntimeError(f"{type(self).__name__} failed to start") from self._startup_error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and join the thread. Idempotent."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            with contextlib.suppress(Exception):
                future.result(timeout)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Off-loop so that clients living on the caller's loop can answer close handshakes.
        await asyncio.to_thread(self.stop)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as e:  # report to start()
            self._startup_error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        app = self.build_app()
        runner = web.AppRunner(
            app,
            access_log=None,
            shutdown_timeout=self.shutdown_timeout,
            handler_cancellation=True,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def _shutdown(self) -> None:
        with contextlib.suppress(Exception):
            await self.on_stopping()
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner.cleanup()
            self._runner = None

    # ---------------------------------------------------------------- helpers

    def call_soon(self, coro: Coroutine[Any, Any, T], timeout: float | None = 10.0) -> T:
        """Run ``coro`` on the server loop from any other thread and return its result."""
        loop = self.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise RuntimeError("call_soon() must not be called from the server loop itself")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def wait_for(self, predicate: Callable[[Self], object], timeout: float = 5.0, interval: float = 0.01) -> bool:
        """Poll ``predicate(self)`` from a test thread until truthy; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    async def awaitfor(
        self,
        predicate: Callable[[Self], object],
        timeout: float = 5.0,
        interval: float = 0.01,
    ) -> bool:
        """Like :meth:`wait_for` but yields to the caller's event loop while polling."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate(self)
            if isinstance(result, Awaitable):
                result = await result
            if result:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(interval)
