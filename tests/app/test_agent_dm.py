"""The agent messaging experience (agent_view): the DM is the conversation. Prompts fitting the role when it opens,
each DM message a thread whose replies continue it, a thinking status, and the channel in view read only when the
person asks about it and both they and the bot are members of it."""

from __future__ import annotations

import logging

import pytest

from bot.domain.roles import Role
from bot.services.conversation.places import viewed_channel
from tests.support.harness import Harness, eventually


async def test_opening_the_dm_sets_prompts_fitting_the_role_without_a_thread(harness: Harness) -> None:
    harness.slack.add_user("U1", name="ana")
    await harness.grant("U1", Role.POWER)
    await harness.open_messages_tab("U1")
    (call,) = await eventually(lambda: harness.slack.calls_to("assistant.threads.setSuggestedPrompts"))
    assert "thread_ts" not in call and call["channel_id"] == "DU1"
    prompts = harness.slack.suggested_prompts[("DU1", None)]["prompts"]
    assert prompts[0]["message"].startswith("--model opus ") and len(prompts) == 4
    assert prompts[-1]["title"] == "Summarise this channel"
    assert harness.slack.calls_to("views.publish") == [] and await harness.records() == []


async def test_a_viewer_opening_the_dm_gets_no_prompts(harness: Harness) -> None:
    harness.slack.add_user("U1", name="ana")
    harness.slack.add_user("U2", name="ben")
    await harness.grant("U2", Role.USER)
    await harness.open_messages_tab("U1")
    await harness.open_messages_tab("U2")
    (call,) = await eventually(lambda: harness.slack.calls_to("assistant.threads.setSuggestedPrompts"))
    assert call["channel_id"] == "DU2" and not any("--model" in p["message"] for p in call["prompts"])


async def test_a_dm_is_a_thread_with_an_agent_session_and_its_replies_continue_it(harness: Harness) -> None:
    harness.slack.add_user("U1", name="ana")
    await harness.grant("U1", Role.USER)
    root = await harness.dm("U1", "What is a gate?")
    (first,) = await harness.settled_records(1)
    status = harness.slack.calls_to("agents.sessions.setStatus")[0]
    assert (status["channel_id"], status["thread_ts"], status["status"]) == ("DU1", root, "processing")
    names = harness.slack.call_names()
    assert names.index("agents.sessions.setStatus") < names.index("chat.startStream")
    await harness.dm_reply("U1", "And a second one?", root)
    _, second = await harness.settled_records(2)
    assert (first.surface, second.surface) == ("dm", "dm") and second.thread_ts == root
    assert harness.anthropic.last_body()["messages"] == [
        {"role": "user", "content": "What is a gate?"},
        {"role": "assistant", "content": "Echo: What is a gate?"},
        {"role": "user", "content": "And a second one?"}]
    assert harness.slack.calls_to("assistant.threads.setTitle") == []  # no panel thread to title
    assert [s["thread_ts"] for s in harness.slack.streams.values()] == [root, root]


async def test_a_mention_is_an_agent_session_in_the_channel_thread(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    ts = await harness.mention("U1", "hello")
    await harness.settled_records(1)
    (status,) = harness.slack.calls_to("agents.sessions.setStatus")
    assert (status["channel_id"], status["thread_ts"], status["status"]) == ("C0001", ts, "processing")
    assert harness.slack.assistant_status_history == []


async def test_summarise_this_channel_reads_the_channel_in_view_under_its_rules(harness: Harness) -> None:
    harness.slack.add_user("U1", name="ana")
    harness.slack.add_user("U2", name="ben")
    await harness.grant("U1", Role.USER)
    harness.slack.members["C0042"] = ["U1", "U2", "UBOT"]
    harness.slack.add_message("C0042", harness.slack.next_ts(), "The release moves to Friday.", user="U2")
    await harness.view_channel("U1", "C0042")
    await harness.view_channel("U1", "C0007")  # the latest context wins
    await harness.view_channel("U1", "C0042")
    await harness.dm("U1", "Summarise this channel, please")
    (record,) = await harness.settled_records(1)
    assert record.surface == "dm" and record.channel_id == "C0042"  # that channel's rules apply
    (content,) = [m["content"] for m in harness.anthropic.last_body()["messages"]]
    assert "ben: The release moves to Friday." in content and content.endswith("Summarise this channel, please")
    assert "about channel <#C0042>" in harness.anthropic.last_body()["system"]


async def test_a_channel_without_the_bot_or_without_the_person_is_not_read(harness: Harness) -> None:
    harness.slack.add_user("U1", name="ana")
    await harness.grant("U1", Role.USER)
    harness.slack.members["C0042"] = ["U1"]  # the bot is not there
    harness.slack.members["C0043"] = ["UBOT"]  # the person is not there
    await harness.view_channel("U1", "C0042")
    await harness.dm("U1", "summarise this channel")
    first = await eventually(lambda: harness.slack.calls_to("chat.postMessage"))
    assert "only when you and I are both members of it" in first[0]["text"] and "<#C0042>" in first[0]["text"]
    await harness.view_channel("U1", "C0043")
    await harness.dm("U1", "what is this channel about?")
    second = await eventually(lambda: len(harness.slack.calls_to("chat.postMessage")) == 2
                              and harness.slack.calls_to("chat.postMessage"))
    assert "<#C0043>" in second[1]["text"]
    assert harness.slack.calls_to("conversations.history") == []
    assert harness.anthropic.requests == [] and await harness.records() == []


async def test_without_a_channel_in_view_the_dm_says_so_and_other_questions_never_read_one(harness: Harness) -> None:
    harness.slack.add_user("U1", name="ana")
    await harness.grant("U1", Role.USER)
    await harness.dm("U1", "summarise this channel")
    (post,) = await eventually(lambda: harness.slack.calls_to("chat.postMessage"))
    assert post["text"].startswith("I do not know which channel you mean")
    await harness.view_channel("U1", "C0042")
    await harness.dm("U1", "What is a channel in Slack?")
    (record,) = await harness.settled_records(1)
    assert record.channel_id == "DU1" and harness.slack.calls_to("conversations.history") == []


async def test_a_viewer_asking_about_the_channel_is_refused_before_any_channel_is_looked_at(harness: Harness) -> None:
    harness.slack.add_user("U1", name="ana")
    await harness.view_channel("U1", "C0042")
    await harness.dm("U1", "summarise this channel")
    (record,) = await harness.settled_records(1)
    assert record.refusal_reason == "role_cannot_chat"
    assert not {"conversations.info", "conversations.members", "conversations.history"} & set(
        harness.slack.call_names())


async def test_app_context_changed_names_its_user_or_its_one_human_authorization(harness: Harness) -> None:
    """Slack's reference prints the event without `user` (the person is in `authorizations`); older payloads and
    Socket Mode clients may carry `event.user`: both are remembered."""
    context = {"entities": [{"type": "slack#/types/channel_id", "value": "C0042", "team_id": "T0001"}]}
    await harness.send_event({"type": "app_context_changed", "context": context},
                             authorizations=[harness.person_authorization("U1")])
    await eventually(lambda: _is_viewing(harness, "U1", "C0042"))
    await harness.send_event({"type": "app_context_changed", "user": "U2", "context": context})
    await eventually(lambda: _is_viewing(harness, "U2", "C0042"))


@pytest.mark.parametrize("authorizations", [
    [],  # nobody
    [{"team_id": "T0001", "user_id": "UBOT", "is_bot": True}],  # only the bot
    [{"team_id": "T0001", "user_id": "U1", "is_bot": False}, {"team_id": "T0001", "user_id": "U2", "is_bot": False}],
])
async def test_app_context_changed_that_names_nobody_is_dropped_with_a_debug_line(harness: Harness, caplog,
                                                                                 authorizations: list) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    before = await harness.table_snapshot()
    context = {"entities": [{"type": "slack#/types/channel_id", "value": "C0042", "team_id": "T0001"}]}
    await harness.send_event({"type": "app_context_changed", "context": context}, authorizations=authorizations)
    line = await eventually(lambda: [r for r in caplog.records if "app_context_changed names nobody" in r.getMessage()])
    assert line[0].levelno == logging.DEBUG
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("bot")]
    assert await harness.table_snapshot() == before


async def _is_viewing(harness: Harness, user: str, channel: str) -> bool:
    return await viewed_channel(harness.runtime.db, user) == channel
