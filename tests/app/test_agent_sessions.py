"""Each answer is a Slack agent session (processing → active, never left processing), with Slack's stop button
(``agent_session_stopped``: the asker or an admin stops the answer, anyone else is told they cannot), and the steps
the person waits on shown as tasks of the stream. The fake Slack follows docs.slack.dev: agents.sessions.setStatus,
chat.stopStream's session_status, the event's payload, and Slack stopping the app's streams itself on a click."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from bot.domain.roles import Role
from bot.listeners.sessions import NOT_YOURS
from bot.store.models import SpendCounter
from tests.support.harness import Harness, eventually


def statuses(harness: Harness, channel: str, thread_ts: str) -> list[tuple[str, str]]:
    return [(h["status"], h["via"]) for h in harness.slack.session_history
            if h["channel"] == channel and h["thread_ts"] == thread_ts]


def task_chunks(harness: Harness) -> list[dict[str, Any]]:
    return [chunk for stream in harness.slack.streams.values() for chunk in stream["chunks"]
            if chunk.get("type") == "task_update"]


async def asker(harness: Harness, role: Role = Role.POWER, user: str = "U1") -> None:
    harness.slack.add_user(user)
    await harness.grant(user, role)


async def test_an_answer_is_a_session_processing_then_active_titled_after_the_question(harness: Harness) -> None:
    await asker(harness)
    ts = await harness.mention("U1", "what is a monad?")
    await harness.settled_records(1)
    await eventually(lambda: harness.slack.session_status("C0001", ts) == "active")
    assert statuses(harness, "C0001", ts) == [("processing", "setStatus"), ("active", "stopStream")]
    session = harness.slack.agent_sessions[("C0001", ts)]
    assert (session["title"], session["initiator_user_id"]) == ("what is a monad?", "U1")
    assert harness.slack.calls_to("assistant.threads.setStatus") == []  # the session's status replaces it
    assert task_chunks(harness) == []  # nothing was read: no step, no plan
    (start,) = harness.slack.calls_to("chat.startStream")
    assert "task_display_mode" not in start


async def test_a_redacted_question_titles_its_session_redacted(harness_factory: Callable[..., Any]) -> None:
    harness = await harness_factory(secret_policy="redact")
    await asker(harness)
    key = "sk-ant-api03-" + "Q" * 80
    ts = await harness.mention("U1", f"why does {key} fail")
    await harness.settled_records(1)
    title = harness.slack.agent_sessions[("C0001", ts)]["title"]
    assert key not in title and title.startswith("why does")


async def test_the_thread_and_its_files_read_show_as_one_completed_task(harness: Harness) -> None:
    await asker(harness)
    root = harness.slack.next_ts()
    harness.slack.add_message("C0001", root, "here is the log", user="U1")
    log = harness.slack.add_file("F1", "log.txt", "text/plain", b"error at line 3\n")
    harness.slack.add_message("C0001", harness.slack.next_ts(), "and the file", user="U1", thread_ts=root,
                              files=[log])
    await harness.mention("U1", "what went wrong?", thread_ts=root)
    await harness.settled_records(1)
    (task,) = task_chunks(harness)
    assert task == {"type": "task_update", "id": "context", "title": "Reading the thread and 1 file",
                    "status": "complete"}
    (start,) = harness.slack.calls_to("chat.startStream")
    assert start["task_display_mode"] == "timeline"


async def test_the_asker_stops_the_answer_charged_what_was_generated_and_the_rest_released(
        harness: Harness) -> None:
    harness.slack.add_user("UOWNER")
    await harness.grant("UOWNER", Role.OWNER)
    await harness.command("UOWNER", "/claude-admin", "budget set org monthly 50")
    await asker(harness)
    harness.anthropic.reply = "word " * 400
    harness.anthropic.chunk_delay = 0.05
    ts = await harness.mention("U1", "a long answer please")
    await eventually(lambda: harness.anthropic.in_flight and any(
        s["text"] for s in harness.slack.streams.values()), timeout=10)
    await harness.send_event(harness.slack.press_stop("C0001", ts, "U1"))
    (record,) = await harness.settled_records(1, timeout=10)
    assert record.outcome == "stopped" and record.stop_requested_by == "U1" and record.error_type is None
    assert 0 < record.output_tokens < 400 and record.cost_micros < record.reserved_micros
    async with harness.sessions() as session:
        counted = await session.scalar(select(SpendCounter.micros))
    assert counted == record.cost_micros  # the unused part of the reservation released with the finish
    await eventually(lambda: harness.slack.session_status("C0001", ts) == "active")
    texts = harness.slack.posted_texts("C0001")
    assert "Stopped at your request" in texts[-1] and texts[-1].startswith("word")
    assert harness.anthropic.in_flight == 0  # the Anthropic stream was closed
    usage = await harness.command("UOWNER", "/claude-admin", "usage all")
    assert "1 stopped" in usage["text"].replace("*", "")


async def test_an_admin_may_stop_anyones_answer_and_anyone_else_is_told_they_cannot(harness: Harness) -> None:
    await asker(harness)
    await asker(harness, Role.USER, "U2")
    await asker(harness, Role.ADMIN, "UADMIN")
    harness.anthropic.reply = "word " * 200
    harness.anthropic.chunk_delay = 0.05
    ts = await harness.mention("U1", "a long answer please")
    await eventually(lambda: harness.anthropic.in_flight, timeout=10)
    await harness.send_event({"type": "agent_session_stopped", "channel": "C0001", "thread_ts": ts, "user": "U2",
                              "streaming_message_ts": [], "event_ts": harness.slack.next_ts()})
    await eventually(lambda: harness.ephemerals_for("U2"))
    assert [e["text"] for e in harness.ephemerals_for("U2")] == [NOT_YOURS]
    assert (await harness.records())[0].stop_requested_by is None
    await harness.send_event(harness.slack.press_stop("C0001", ts, "UADMIN"))
    (record,) = await harness.settled_records(1, timeout=10)
    assert (record.outcome, record.stop_requested_by) == ("stopped", "UADMIN")
    assert "Stopped by an admin" in harness.slack.posted_texts("C0001")[-1]
    await eventually(lambda: harness.slack.session_status("C0001", ts) == "active")


async def test_a_stop_with_no_answer_under_way_ends_the_session_there(harness: Harness) -> None:
    await asker(harness)
    ts = await harness.mention("U1", "hello")
    await harness.settled_records(1)
    harness.slack.agent_sessions[("C0001", ts)]["status"] = "processing"  # as if a process died before ending it
    await harness.send_event(harness.slack.press_stop("C0001", ts, "U1"))
    await eventually(lambda: harness.slack.session_status("C0001", ts) == "active")
    assert (await harness.records())[0].outcome == "ok"


async def test_a_failed_answer_posted_without_a_stream_still_ends_its_session(harness: Harness) -> None:
    """No chat.stopStream to carry session_status (streaming refused here): one more setStatus ends it."""
    await asker(harness)
    harness.slack.streaming_supported = False
    harness.anthropic.fail_next("auth")
    ts = await harness.mention("U1", "hello")
    (record,) = await harness.settled_records(1, timeout=10)
    assert record.outcome == "error"
    await eventually(lambda: harness.slack.session_status("C0001", ts) == "active")
    assert statuses(harness, "C0001", ts)[-1] == ("active", "setStatus")


async def test_an_app_that_may_not_open_sessions_shows_the_thinking_status_instead(harness: Harness) -> None:
    harness.slack.agent_sessions_error = "not_allowed"
    await asker(harness)
    first = await harness.mention("U1", "hello")
    await harness.settled_records(1)
    second = await harness.mention("U1", "hello again")
    await harness.settled_records(2)
    assert len(harness.slack.calls_to("agents.sessions.setStatus")) == 1  # refused once, then remembered
    assert {s["thread_ts"] for s in harness.slack.assistant_status_history} == {first, second}
    assert harness.slack.agent_sessions == {}
