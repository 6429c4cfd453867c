"""Message shortcuts, driven like Slack drives them: *Ask Claude about this message* (a modal, then its submission)
and *Summarise this thread*, answered in the asker's DM under the rules of the message's channel."""

from __future__ import annotations

import json
from typing import Any

from bot.domain.roles import Role
from bot.slack.render_shortcuts import (
    ASK_CALLBACK,
    QUESTION_ACTION,
    QUESTION_BLOCK,
    SUMMARISE_CALLBACK,
)
from bot.slack.safe_text import JOINER
from tests.support.fakes.anthropic import content_text
from tests.support.fakes.signing import interactive_body, message_shortcut_payload, view_submission_payload
from tests.support.harness import Harness, eventually

CHANNEL = "C0042"


async def use_shortcut(h: Harness, user: str, callback_id: str, message: dict[str, Any],
                       channel: str = CHANNEL) -> str:
    """The person uses a message shortcut on ``message``; returns the trigger_id Slack handed the app."""
    trigger_id = h.slack.issue_trigger(user)
    payload = message_shortcut_payload(user, callback_id, message, channel_id=channel, trigger_id=trigger_id)
    status, body = await h.post_signed(interactive_body(payload))
    assert status == 200, body
    return trigger_id


async def submit_question(h: Harness, user: str, view: dict[str, Any], question: str) -> dict[str, Any]:
    """The person submits the question modal; returns the app's acknowledgement ({} when it just closes)."""
    values = {QUESTION_BLOCK: {QUESTION_ACTION: {"type": "plain_text_input", "value": question}}}
    payload = view_submission_payload(user, view, values, trigger_id=h.slack.issue_trigger(user))
    status, body = await h.post_signed(interactive_body(payload))
    assert status == 200, body
    return json.loads(body) if body else {}


def channel_message(h: Harness, text: str, *, user: str = "U2", thread_ts: str | None = None) -> dict[str, Any]:
    ts = h.slack.next_ts()
    return dict(h.slack.add_message(CHANNEL, ts, text, user=user, thread_ts=thread_ts))


async def people(h: Harness) -> None:
    h.slack.add_user("U1", name="ana")
    h.slack.add_user("U2", name="ben")
    await h.grant("U1", Role.USER)
    h.slack.members[CHANNEL] = ["U1", "U2", "UBOT"]


def last_user_content(h: Harness) -> str:
    return content_text(h.anthropic.last_body()["messages"][-1]["content"])


async def test_ask_opens_a_modal_and_answers_in_the_dm_thread_under_the_channels_rules(harness: Harness) -> None:
    await people(harness)
    message = channel_message(harness, "The release moves to Friday, says <@U1>.")
    trigger = await use_shortcut(harness, "U1", ASK_CALLBACK, message)
    (view,) = await eventually(lambda: harness.slack.views_opened_for("U1"))
    (opened,) = harness.slack.calls_to("views.open")
    assert opened["trigger_id"] == trigger
    assert "The release moves to Friday, says @ana." in json.dumps(view["blocks"])
    assert harness.anthropic.message_requests() == []  # nothing is asked before the question

    assert await submit_question(harness, "U1", view, "Which day was it before?") == {}
    (record,) = await harness.settled_records(1)
    assert (record.surface, record.channel_id, record.outcome) == ("shortcut", CHANNEL, "ok")
    content = last_user_content(harness)
    assert "> The release moves to Friday, says @ana." in content and content.endswith("Which day was it before?")
    assert f"about a message in channel <#{CHANNEL}>" in harness.anthropic.last_body()["system"]

    root = harness.slack.bot_messages("DU1")[0]
    assert "thread_ts" not in root and "Which day was it before?" in json.dumps(root["blocks"])
    assert "The release moves to Friday" in json.dumps(root["blocks"])
    answer = harness.slack.thread_messages("DU1", root["ts"])[-1]
    assert answer["thread_ts"] == root["ts"] and "Echo: " in (answer.get("text") or json.dumps(answer))
    assert {s["channel"] for s in harness.slack.streams.values()} == {"DU1"}
    assert harness.slack.session_status("DU1", root["ts"]) not in (None, "processing")  # its agent session ended
    assert harness.slack.calls_to("conversations.open")[0]["users"] == "U1"
    assert harness.slack.bot_messages(CHANNEL) == []  # nothing posted where the message is


async def test_an_empty_question_is_sent_back_to_the_modal(harness: Harness) -> None:
    await people(harness)
    await use_shortcut(harness, "U1", ASK_CALLBACK, channel_message(harness, "hello"))
    (view,) = await eventually(lambda: harness.slack.views_opened_for("U1"))
    ack = await submit_question(harness, "U1", view, "   ")
    assert ack["response_action"] == "errors" and ack["errors"][QUESTION_BLOCK]
    assert harness.anthropic.message_requests() == [] and await harness.records() == []


async def test_summarise_sends_the_whole_thread_to_claude_and_answers_in_the_dm(harness: Harness) -> None:
    await people(harness)
    root = channel_message(harness, "Shall we move the release?", user="U2")
    channel_message(harness, "Friday works for me.", user="U1", thread_ts=root["ts"])
    reply = channel_message(harness, "Friday it is.", user="U2", thread_ts=root["ts"])
    await use_shortcut(harness, "U1", SUMMARISE_CALLBACK, reply)  # used on a reply: its whole thread is read
    (record,) = await harness.settled_records(1)
    assert (record.surface, record.channel_id) == ("shortcut", CHANNEL)
    content = last_user_content(harness)
    lines = ["ben: Shall we move the release?", "ana: Friday works for me.", "ben: Friday it is."]
    assert all(line in content for line in lines)
    assert content.index(lines[0]) < content.index(lines[1]) < content.index(lines[2])
    assert harness.slack.calls_to("views.open") == []
    dm_root, *_ = harness.slack.bot_messages("DU1")
    assert "summary" in dm_root["text"].lower()
    assert harness.slack.thread_messages("DU1", dm_root["ts"])[-1]["thread_ts"] == dm_root["ts"]


async def test_a_channel_the_person_is_not_in_is_refused_in_one_line(harness: Harness) -> None:
    await people(harness)
    harness.slack.members[CHANNEL] = ["U2", "UBOT"]  # ana is not a member
    await use_shortcut(harness, "U1", SUMMARISE_CALLBACK, channel_message(harness, "secret plans"))
    await use_shortcut(harness, "U1", ASK_CALLBACK, channel_message(harness, "more plans"))
    lines = await eventually(lambda: len(found := harness.slack.calls_to("chat.postMessage")) == 2 and found)
    # Slack shows no ephemeral to a non-member there: the line is in the DM
    assert {line["channel"] for line in lines} == {"DU1"}
    assert all("only when you and I are both members of it" in line["text"] for line in lines)
    assert harness.slack.views_opened_for("U1") == [] and harness.slack.calls_to("conversations.replies") == []
    assert harness.anthropic.message_requests() == []
    assert not [r for r in await harness.records() if r.admitted]


async def test_a_channel_without_the_bot_is_refused_before_anything_is_read(harness: Harness) -> None:
    await people(harness)
    harness.slack.members[CHANNEL] = ["U1", "U2"]
    await use_shortcut(harness, "U1", SUMMARISE_CALLBACK, channel_message(harness, "hello"))
    (line,) = await eventually(lambda: harness.slack.calls_to("chat.postMessage"))
    assert line["channel"] == "DU1" and f"<#{CHANNEL}>" in line["text"]
    assert harness.anthropic.message_requests() == [] and await harness.records() == []


async def test_a_channel_switched_off_refuses_both_shortcuts_like_a_conversation(harness: Harness) -> None:
    await people(harness)
    harness.slack.add_user("UADMIN", name="ada")
    await harness.grant("UADMIN", Role.ADMIN)
    await harness.command("UADMIN", "/claude-admin", f"channel <#{CHANNEL}> off")
    harness.slack.reset_calls()
    await use_shortcut(harness, "U1", ASK_CALLBACK, channel_message(harness, "hello"))
    await use_shortcut(harness, "U1", SUMMARISE_CALLBACK, channel_message(harness, "hello again"))
    first, second = await harness.told("U1", 2)
    for told in (first, second):
        assert told["channel"] == CHANNEL and "switched off" in told["text"] and told["blocks"]
        assert told["text"].startswith(":no_entry:")
    records = await harness.settled_records(2)
    assert [(r.surface, r.channel_id, r.refusal_reason) for r in records] == [
        ("shortcut", CHANNEL, "channel_off")] * 2
    assert harness.slack.views_opened_for("U1") == [] and harness.anthropic.message_requests() == []
    assert not {"conversations.members", "conversations.replies"} & set(harness.slack.call_names())


async def test_a_viewer_is_refused_by_role_with_a_request_button(harness: Harness) -> None:
    await people(harness)
    harness.slack.add_user("U3", name="cy")
    harness.slack.members[CHANNEL].append("U3")
    await use_shortcut(harness, "U3", SUMMARISE_CALLBACK, channel_message(harness, "hello"))
    (told,) = await harness.told("U3")
    assert "cannot ask Claude" in told["text"] and "access_request_open" in json.dumps(told["blocks"])
    (record,) = await harness.settled_records(1)
    assert record.refusal_reason == "role_cannot_chat" and harness.anthropic.message_requests() == []


async def test_a_quoted_broadcast_pings_nobody(harness: Harness) -> None:
    await people(harness)
    message = channel_message(harness, "<!channel> deploy at <https://evil.example|docs.example.com> <!here>")
    await use_shortcut(harness, "U1", ASK_CALLBACK, message)
    (view,) = await eventually(lambda: harness.slack.views_opened_for("U1"))
    await submit_question(harness, "U1", view, "Is this urgent? <!everyone>")
    await harness.settled_records(1)
    shown = json.dumps([harness.slack.calls_to("views.open"), harness.slack.bot_messages("DU1")],
                       ensure_ascii=False)
    assert "<!channel>" not in shown and "<!here>" not in shown and "<!everyone>" not in shown
    assert f"@{JOINER}channel" in shown and "docs.example.com (https://evil.example)" in shown
    assert "<https://evil.example|" not in shown
    assert "<!channel>" not in last_user_content(harness)


async def test_a_replayed_shortcut_runs_once(harness: Harness) -> None:
    await people(harness)
    message = channel_message(harness, "hello")
    payload = message_shortcut_payload("U1", SUMMARISE_CALLBACK, message, channel_id=CHANNEL,
                                       trigger_id=harness.slack.issue_trigger("U1"))
    for _ in range(2):
        status, _ = await harness.post_signed(interactive_body(payload))
        assert status == 200
    await harness.settled_records(1)
    assert len(harness.anthropic.message_requests()) == 1 and len(await harness.records()) == 1


async def test_a_credential_in_the_message_is_redacted_everywhere_it_is_copied(harness: Harness) -> None:
    await people(harness)
    token = "gh" + "p_" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa98"  # assembled: no whole token in the source
    await use_shortcut(harness, "U1", ASK_CALLBACK, channel_message(harness, f"use {token} for the deploy"))
    (view,) = await eventually(lambda: harness.slack.views_opened_for("U1"))
    await submit_question(harness, "U1", view, "Is this token still valid?")
    (record,) = await harness.settled_records(1)
    assert record.outcome == "ok"  # someone else's secret is not held against the asker
    copies = json.dumps([view, harness.slack.bot_messages("DU1"), harness.anthropic.last_body()["messages"]])
    assert token not in copies and copies.count("[redacted: GitHub token]") >= 3


async def test_the_channels_budget_is_charged_and_can_refuse(harness: Harness) -> None:
    await people(harness)
    harness.slack.add_user("UADMIN", name="ada")
    await harness.grant("UADMIN", Role.ADMIN)
    await harness.command("UADMIN", "/claude-admin", f"budget set <#{CHANNEL}> daily 100")
    await use_shortcut(harness, "U1", SUMMARISE_CALLBACK, channel_message(harness, "hello"))
    (admitted,) = await harness.settled_records(1)
    assert f"channel:{CHANNEL}" in (admitted.charged_to or [])
    await harness.command("UADMIN", "/claude-admin", f"budget set <#{CHANNEL}> daily 0.000001")
    await use_shortcut(harness, "U1", SUMMARISE_CALLBACK, channel_message(harness, "hello again"))
    _, refused = await harness.settled_records(2)
    assert (refused.surface, refused.refusal_reason) == ("shortcut", "budget_exhausted")
    (told,) = await harness.told("U1")
    assert told["channel"] == CHANNEL and "channel's daily budget" in told["text"]
    assert len(harness.anthropic.message_requests()) == 1
