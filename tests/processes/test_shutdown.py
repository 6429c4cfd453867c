"""Shutdown: listeners under way (Bolt runs each in a task it does not keep) finish before the database closes;
one that outlasts the grace is cancelled and its record is still finished."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import aiohttp
from sqlalchemy import func, select

from bot.domain.roles import Role
from bot.store.models import ProcessLease
from tests.processes.test_multiprocess import grant, mention
from tests.support.fakes.signing import event_body
from tests.support.harness import Harness, eventually
from tests.support.processes import Cluster, post_signed


async def under_way(harness: Harness) -> None:
    """Ask, and wait until the answer's listener is running and its request is admitted (recorded, not finished)."""
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    await harness.mention("U1", "hello")
    await eventually(lambda: harness.runtime.listeners.tasks)

    async def admitted() -> bool:
        return any(r.outcome == "admitted" for r in await harness.records())

    await eventually(admitted)


async def test_an_answer_under_way_at_shutdown_finishes_and_is_recorded(harness: Harness) -> None:
    harness.anthropic.reply = "an answer that takes a second to stream " * 10  # 20 chunks, 50 ms apart
    harness.anthropic.chunk_delay = 0.05
    await under_way(harness)
    await harness.runtime.close()
    assert harness.runtime.listeners.tasks == set()
    assert harness.runtime.engine.pool.checkedout() == 0  # nothing kept a connection (or, on PostgreSQL, its locks)
    (record,) = await harness.records()
    assert record.outcome == "ok" and record.output_tokens > 0
    (text,) = harness.slack.posted_texts("C0001")
    assert text and not text.startswith(":warning:")


async def test_a_listener_past_the_grace_is_cancelled_and_its_record_finished(harness: Harness) -> None:
    harness.anthropic.first_token_delay = 30
    await under_way(harness)
    assert await harness.runtime.listeners.drain(0.2) == 1
    assert harness.runtime.listeners.tasks == set()
    (record,) = await harness.settled_records(1)
    assert (record.outcome, record.error_type) == ("error", "cancelled")
    (text,) = harness.slack.posted_texts("C0001")  # the user is told, before the clients close
    assert text.startswith(":warning:") and "restarted" in text


async def test_an_admin_view_under_way_at_shutdown_keeps_no_connection(harness: Harness) -> None:
    harness.slack.add_user("UADMIN")
    await harness.grant("UADMIN", Role.ADMIN)
    harness.slack.delay("views.publish", 0.5)
    await harness.send_event({"type": "app_home_opened", "user": "UADMIN", "channel": "DUADMIN", "tab": "home"})
    await eventually(lambda: harness.runtime.listeners.tasks)
    await harness.runtime.close()
    assert harness.slack.calls_to("views.publish"), "the App Home was published before the clients closed"
    assert harness.runtime.engine.pool.checkedout() == 0


async def test_a_second_signal_ends_serve_at_once_with_every_threads_stack(cluster: Cluster,
                                                                           database_url: str) -> None:
    """The first SIGTERM lets an answer under way finish (up to 20 s, the whole shutdown bounded at 27 s); a second
    one ends serve at once, exit 1, naming why and printing where each thread was."""
    cluster.slack.add_user("U1")
    await grant(database_url, "U1", Role.USER)
    cluster.anthropic.first_token_delay = 60
    (server,) = await asyncio.to_thread(cluster.start, 1)
    async with aiohttp.ClientSession() as http:
        assert await post_signed(http, server.url, event_body(mention(cluster.slack, "U1", "a slow one"))) == 200
    await eventually(lambda: cluster.anthropic.in_flight, timeout=60)
    server.process.send_signal(signal.SIGTERM)
    await eventually(lambda: "waiting up to 20 s for 1 running listener" in server.log(), timeout=10)
    server.process.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(server.process.wait, 10)
    log = server.log()
    assert code == 1, log
    assert "a second signal during shutdown: exiting now" in log and "(most recent call first)" in log, log
    assert "Task 'start-up'" not in log and "Task '" in log, log  # the loop's tasks too: where the shutdown waits


async def test_a_step_of_shutdown_that_hangs_is_named_and_the_rest_still_closes(harness: Harness, monkeypatch,
                                                                              caplog) -> None:
    """A background task that swallows its cancellation and an Anthropic client whose close never returns each get
    a few seconds, are named in the log, and the record writer, this process's lease and the database still close."""
    monkeypatch.setattr("bot.runtime.CLOSING_STEP_SECONDS", 0.2)
    await harness.runtime.hold_lease()

    async def stubborn() -> None:
        for _ in range(2):  # swallows the first cancellation, as a badly behaved library does; not the test's own
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)

    async def never_closes() -> None:
        await asyncio.Event().wait()

    work = harness.runtime.spawn(stubborn(), name="stubborn work")
    monkeypatch.setattr(harness.runtime.claude, "close", never_closes)
    await asyncio.sleep(0)
    await harness.runtime.close()
    assert "the background task 'stubborn work' did not end when cancelled" in caplog.text
    assert "stubborn" in caplog.text.split("did not end when cancelled", 1)[1]  # with where it waits
    assert "shutdown: Anthropic's clients did not finish within 0.2 s; going on without it" in caplog.text
    assert harness.runtime.engine.pool.checkedout() == 0
    async with harness.sessions() as session:  # dropped after the records were written
        assert await session.scalar(select(func.count()).select_from(ProcessLease)) == 0
    work.cancel()
    await asyncio.gather(work, return_exceptions=True)
