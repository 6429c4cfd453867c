"""Slack's assistant panel: a greeting and prompts fitting the role, status while thinking, a title from the first
question, a streamed answer; the same gate; each message answered once, and plain DMs still by the DM path."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.roles import Role
from tests.support.fakes import FakeSlack
from tests.support.harness import Harness, eventually


async def open_panel(harness: Harness, user: str, *, event_id: str | None = None, root: str | None = None,
                     greeted: bool = True) -> str:
    """The user opens the assistant panel: Slack creates the thread and sends assistant_thread_started.

    As Slack does, the thread's root is the person's own message (subtype ``assistant_app_thread``, no bot_id), so
    every reply in it has ``parent_user_id`` = the person, exactly as in an agent DM thread.
    With ``greeted`` it returns once the greeting is posted, as a person would wait to see it.
    """
    channel = "D" + user
    posted = len(harness.slack.posted_texts(channel))
    if root is None:
        root = harness.slack.next_ts()
        harness.slack.add_message(channel, root, "New chat", user=user, subtype="assistant_app_thread",
                                  assistant_app_thread={"title": "", "title_blocks": [], "artifacts": []})
    await harness.send_event({
        "type": "assistant_thread_started",
        "assistant_thread": {"user_id": user, "channel_id": channel, "thread_ts": root,
                             "context": {"channel_id": "C0001", "team_id": "T0001", "enterprise_id": None}},
        "event_ts": root,
    }, event_id=event_id)
    if greeted:
        await eventually(lambda: len(harness.slack.posted_texts(channel)) > posted)
    return root


async def say_in_panel(harness: Harness, user: str, text: str, root: str, *, event_id: str | None = None,
                       ts: str | None = None) -> str:
    channel = "D" + user
    if ts is None:
        ts = harness.slack.next_ts()
        harness.slack.add_message(channel, ts, text, user=user, thread_ts=root)
    # the shape of Slack's message.im in a panel thread (bolt-python's assistant scenario tests hold real ones)
    await harness.send_event({"type": "message", "channel_type": "im", "channel": channel, "user": user,
                              "text": text, "ts": ts, "thread_ts": root, "parent_user_id": user,
                              "team": harness.slack.team_id, "user_team": harness.slack.team_id,
                              "source_team": harness.slack.team_id, "event_ts": ts}, event_id=event_id)
    return ts


@pytest.fixture(autouse=True)
def assistant_panel_app(fake_slack: FakeSlack) -> None:
    """These tests are of an app created before the agent experience, still on the assistant panel."""
    fake_slack.view = "assistant"


def prompts_for(harness: Harness, user: str, root: str) -> dict[str, Any] | None:
    return harness.slack.suggested_prompts.get(("D" + user, root))


async def test_greeting_and_prompts_fit_a_power_user(harness: Harness) -> None:
    harness.slack.add_user("U1", name="ana")
    await harness.grant("U1", Role.POWER)
    root = await open_panel(harness, "U1")
    suggested = await eventually(lambda: prompts_for(harness, "U1", root))
    (greeting,) = harness.slack.posted_texts("DU1")
    assert greeting.startswith("Hi ana!") and "*power*" in greeting and "`opus`" in greeting
    assert "4,096 tokens" in greeting and "--model" in greeting
    messages = [prompt["message"] for prompt in suggested["prompts"]]
    assert len(messages) == 4 and messages[0].startswith("--model opus ")
    (post,) = harness.slack.calls_to("chat.postMessage")
    assert post["thread_ts"] == root and post["metadata"]["event_type"] == "assistant_thread_context"


async def test_greeting_of_a_user_offers_only_what_the_role_allows(harness: Harness) -> None:
    harness.slack.add_user("U1", name="ana")
    await harness.grant("U1", Role.USER)
    root = await open_panel(harness, "U1")
    suggested = await eventually(lambda: prompts_for(harness, "U1", root))
    assert not any("--model" in prompt["message"] for prompt in suggested["prompts"])
    (greeting,) = harness.slack.posted_texts("DU1")
    assert "`haiku`" in greeting and "`opus`" not in greeting and "--model" not in greeting


async def test_viewer_is_told_how_to_get_access_and_gets_no_prompts(harness: Harness) -> None:
    harness.slack.add_user("U1", name="ana")
    harness.slack.add_user("UADMIN")
    await harness.grant("UADMIN", Role.ADMIN)
    await open_panel(harness, "U1")
    (greeting,) = await eventually(lambda: harness.slack.posted_texts("DU1"))
    assert "*viewer* cannot ask Claude" in greeting and "<@UADMIN>" in greeting
    assert harness.slack.suggested_prompts == {}


async def test_thread_started_retry_greets_once(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    root = await open_panel(harness, "U1", event_id="EvPANEL0001")
    await open_panel(harness, "U1", event_id="EvPANEL0001", root=root, greeted=False)
    await eventually(lambda: prompts_for(harness, "U1", root))
    assert len(harness.slack.posted_texts("DU1")) == 1


async def test_question_gets_status_title_and_streamed_answer(harness: Harness) -> None:
    harness.slack.add_user("U1", name="ana")
    await harness.grant("U1", Role.USER)
    root = await open_panel(harness, "U1")
    await eventually(lambda: prompts_for(harness, "U1", root))
    await say_in_panel(harness, "U1", "What is a *gate*, in two lines?", root)
    (record,) = await harness.settled_records(1)
    assert record.surface == "assistant" and record.outcome == "ok" and record.thread_ts == root
    names = harness.slack.call_names()
    assert names.index("assistant.threads.setStatus") < names.index("chat.startStream")
    (status,) = harness.slack.assistant_status_history
    assert (status["channel_id"], status["thread_ts"], status["status"]) == ("DU1", root, "is thinking…")
    assert status["loading_messages"]
    (stream,) = harness.slack.streams.values()
    assert stream["thread_ts"] == root and stream["recipient_user_id"] == "U1"
    assert stream["blocks"][0]["elements"][0]["positive_button"]["value"] == f"up:{record.id}"
    assert harness.slack.posted_texts("DU1")[1:] == ["Echo: What is a *gate*, in two lines?"]
    title = await eventually(lambda: harness.slack.thread_titles.get(("DU1", root)))
    assert title == "What is a gate, in two lines?"
    body = harness.anthropic.last_body()
    assert body["messages"] == [{"role": "user", "content": "What is a *gate*, in two lines?"}]  # greeting dropped
    # the asker's name is not in the system prompt: it stays the same for everyone in a thread (prompt caching)
    assert "assistant panel" in body["system"] and "ana" not in body["system"]


async def test_follow_up_sees_the_thread_and_keeps_the_title(harness: Harness) -> None:
    harness.slack.add_user("U1", name="ana")
    await harness.grant("U1", Role.USER)
    root = await open_panel(harness, "U1")
    await eventually(lambda: prompts_for(harness, "U1", root))
    await say_in_panel(harness, "U1", "first question", root)
    await harness.settled_records(1)
    await eventually(lambda: harness.slack.thread_titles.get(("DU1", root)))
    await say_in_panel(harness, "U1", "second question", root)
    await harness.settled_records(2)
    assert harness.anthropic.last_body()["messages"] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "Echo: first question"},
        {"role": "user", "content": "second question"},
    ]
    assert len(harness.slack.calls_to("assistant.threads.setTitle")) == 1
    assert harness.slack.thread_titles[("DU1", root)] == "first question"


async def test_a_panel_message_is_answered_once_even_when_slack_retries(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    harness.anthropic.first_token_delay = 0.3
    root = await open_panel(harness, "U1")
    ts = await say_in_panel(harness, "U1", "only once", root, event_id="EvPANELMSG01")
    for _ in range(2):
        await say_in_panel(harness, "U1", "only once", root, event_id="EvPANELMSG01", ts=ts)
    (record,) = await harness.settled_records(1)
    assert record.surface == "assistant"
    assert len(harness.anthropic.message_requests()) == 1
    assert harness.slack.posted_texts("DU1")[1:] == ["Echo: only once"]


async def test_top_level_dm_still_goes_through_the_dm_path(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    await harness.dm("U1", "plain direct message")
    (record,) = await harness.settled_records(1)
    assert record.surface == "dm"
    assert harness.slack.posted_texts("DU1") == ["Echo: plain direct message"]
    assert harness.slack.calls_to("assistant.threads.setTitle") == []  # not a panel thread


async def test_a_dm_thread_not_opened_as_a_panel_thread_is_answered_as_a_dm(harness: Harness) -> None:
    """The same message shape (a reply under the person's own root) in a thread no assistant_thread_started
    opened: the DM path, not the panel's (no title, no panel status)."""
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    root = await harness.dm("U1", "a plain DM")
    await harness.settled_records(1)
    await say_in_panel(harness, "U1", "and a reply to it", root)
    records = await harness.settled_records(2)
    assert [r.surface for r in records] == ["dm", "dm"]
    assert harness.slack.calls_to("assistant.threads.setTitle") == []
    assert "a direct message" in harness.anthropic.last_body()["system"]


async def test_a_panel_thread_is_known_to_every_process(harness_factory) -> None:
    """Opened through one process, answered through another: the panel thread is recorded in the database."""
    first, second = await harness_factory(), await harness_factory()
    first.slack.view = "assistant"
    first.slack.add_user("U1")
    await first.grant("U1", Role.USER)
    root = await open_panel(first, "U1")
    await say_in_panel(second, "U1", "asked through the other process", root)
    (record,) = await second.settled_records(1)
    assert record.surface == "assistant"
    assert await eventually(lambda: second.slack.thread_titles.get(("DU1", root))) == "asked through the other process"


async def test_the_bots_own_messages_in_a_panel_thread_are_ignored(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    root = await open_panel(harness, "U1")
    ts = harness.slack.next_ts()
    await harness.send_event({"type": "message", "channel_type": "im", "channel": "DU1", "user": "UBOT",
                              "bot_id": "B0001", "text": "an answer", "ts": ts, "thread_ts": root, "event_ts": ts})
    await say_in_panel(harness, "U1", "after the bot", root)
    (record,) = await harness.settled_records(1)
    assert record.surface == "assistant"


async def test_refusal_in_the_panel_is_a_reply_in_the_thread(harness: Harness) -> None:
    harness.slack.add_user("U1")
    root = await open_panel(harness, "U1")
    await say_in_panel(harness, "U1", "may I?", root)
    (record,) = await harness.settled_records(1)
    assert record.outcome == "refused" and record.refusal_reason == "role_cannot_chat"
    refusal = await eventually(lambda: harness.slack.posted_texts("DU1")[1:])
    assert "cannot ask Claude" in refusal[0]
    assert harness.ephemerals_for("U1") == [] and harness.anthropic.message_requests() == []
    assert harness.slack.assistant_status_history == []


async def test_model_flag_in_the_panel_allowed_and_refused(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    root = await open_panel(harness, "U1")
    await say_in_panel(harness, "U1", "--model opus think hard", root)
    await harness.settled_records(1)
    # the greeting and the refusal are posted by two tasks: find the refusal by what it says
    refusal = await eventually(lambda: [t for t in harness.slack.posted_texts("DU1") if "may not use" in t])
    assert "may not use `opus`" in refusal[0] and "`haiku`" in refusal[0]
    await say_in_panel(harness, "U1", "--model haiku quick one", root)
    records = await harness.settled_records(2)
    assert [r.outcome for r in records] == ["refused", "ok"]
    assert harness.anthropic.last_body()["model"] == harness.runtime.settings.model_haiku
    assert harness.slack.posted_texts("DU1")[-1] == "Echo: quick one"


async def test_a_failing_status_does_not_stop_the_answer(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    harness.slack.fail_next("assistant.threads.setStatus", "not_allowed")
    root = await open_panel(harness, "U1")
    await say_in_panel(harness, "U1", "still answered?", root)
    (record,) = await harness.settled_records(1)
    assert record.outcome == "ok"
    assert harness.slack.posted_texts("DU1")[-1] == "Echo: still answered?"


async def test_context_change_keeps_the_greeting_and_asks_nothing(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    root = await open_panel(harness, "U1")
    await eventually(lambda: prompts_for(harness, "U1", root))
    (greeting,) = harness.slack.posted_texts("DU1")
    await harness.send_event({
        "type": "assistant_thread_context_changed",
        "assistant_thread": {"user_id": "U1", "channel_id": "DU1", "thread_ts": root,
                             "context": {"channel_id": "C0002", "team_id": "T0001", "enterprise_id": None}},
        "event_ts": harness.slack.next_ts(),
    })
    (update,) = await eventually(lambda: harness.slack.calls_to("chat.update"))
    assert update["metadata"]["event_payload"]["channel_id"] == "C0002"  # Bolt's store keeps the viewed channel
    assert harness.slack.posted_texts("DU1") == [greeting]
    assert await harness.records() == []


async def test_each_panel_answer_renews_the_thread_for_retention(harness: Harness) -> None:
    from datetime import timedelta

    from sqlalchemy import select

    from bot.store.models import AnsweredThread

    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    root = await open_panel(harness, "U1")
    opened = harness.clock()
    harness.clock.advance(timedelta(days=30).total_seconds())
    await say_in_panel(harness, "U1", "a month later", root)
    (record,) = await harness.settled_records(1)
    assert record.surface == "assistant"
    async with harness.sessions() as session:
        (row,) = (await session.scalars(select(AnsweredThread))).all()
    assert (row.channel_id, row.thread_ts, row.slack_user_id, row.panel) == ("DU1", root, "U1", True)
    assert row.answered_at == opened + timedelta(days=30)


GITHUB = "gh" + "p_" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa98"  # assembled: no whole token in the source


async def test_a_blocked_message_never_names_the_thread(harness: Harness) -> None:
    harness.slack.add_user("U1", name="ana")
    await harness.grant("U1", Role.USER)
    root = await open_panel(harness, "U1")
    await say_in_panel(harness, "U1", f"why is {GITHUB} refused?", root)
    (record,) = await harness.settled_records(1)
    assert record.refusal_reason == "secret"
    await eventually(lambda: len(harness.slack.posted_texts("DU1")) >= 2)  # told, in the thread
    assert harness.slack.calls_to("assistant.threads.setTitle") == [] and harness.anthropic.requests == []
    # a follow-up is answered (with the blocked message redacted from its history) and names nothing either:
    # the thread's first question was the blocked one
    await say_in_panel(harness, "U1", "what is a fine-grained token?", root)
    (_, second) = await harness.settled_records(2)
    assert second.outcome == "ok" and GITHUB not in str(harness.anthropic.requests)
    await eventually(lambda: len(harness.slack.posted_texts("DU1")) >= 3)
    assert harness.slack.calls_to("assistant.threads.setTitle") == []


async def test_a_redacted_message_names_the_thread_by_its_redacted_text(harness_factory) -> None:
    harness = await harness_factory(secret_policy="redact")
    harness.slack.view = "assistant"
    harness.slack.add_user("U1", name="ana")
    await harness.grant("U1", Role.USER)
    root = await open_panel(harness, "U1")
    await say_in_panel(harness, "U1", f"is {GITHUB} classic?", root)
    (record,) = await harness.settled_records(1)
    assert record.outcome == "ok"
    title = await eventually(lambda: harness.slack.thread_titles.get(("DU1", root)))
    assert title == "is [redacted: GitHub token] classic?"
