"""The Workspace port (bot/services/ports.py) as services use it, implemented by bot/slack/slack_port.py against
the fake Slack Web API through the real slack_sdk client."""

from __future__ import annotations

import json

import pytest

from bot.domain.replies import Reply
from bot.services.ports import SlackCallFailed
from tests.support.harness import Harness


async def test_deliver_renders_an_answer_and_returns_its_ts(harness: Harness) -> None:
    slack = harness.runtime.slack
    ts = await slack.deliver("C0ALERTS", Reply("Keys to rotate", lines=["`old` overdue"]))
    posted = harness.slack.calls_to("chat.postMessage")[-1]
    assert ts and posted["channel"] == "C0ALERTS" and posted["text"].startswith("Keys to rotate")
    assert "`old` overdue" in json.dumps(posted["blocks"])
    await slack.deliver("C0ALERTS", "plain words", thread_ts=ts)
    assert harness.slack.calls_to("chat.postMessage")[-1]["thread_ts"] == ts


async def test_a_refused_delivery_is_one_slack_error_and_best_effort_calls_never_raise(harness: Harness) -> None:
    slack = harness.runtime.slack
    harness.slack.fail_next("chat.postMessage", "not_in_channel")
    with pytest.raises(SlackCallFailed) as refused:
        await slack.deliver("C0NOTIN", "hello")
    assert refused.value.reason == "not_in_channel" and refused.value.code == "slack"
    harness.slack.fail_next("chat.postMessage", "channel_not_found", times=2)
    await slack.post("C0GONE", "an alert")
    await slack.send_dm("U0GONE", "a notice")


async def test_emails_both_ways(harness: Harness) -> None:
    slack = harness.runtime.slack
    harness.slack.add_user("U0MAIL", email="ada@example.com")
    harness.slack.add_user("U0NOMAIL")
    assert await slack.email_of("U0MAIL") == "ada@example.com"
    assert await slack.user_by_email("ADA@example.com") == "U0MAIL"
    with pytest.raises(SlackCallFailed, match="users_not_found"):
        await slack.user_by_email("nobody@example.com")
    harness.slack.fail_next("users.info", "user_not_found")
    with pytest.raises(SlackCallFailed, match="user_not_found"):
        await slack.email_of("U0GONE")


async def test_upload_file_shares_the_bytes_in_the_thread(harness: Harness) -> None:
    content = b"day,requests\n2026-11-30,42\n"
    where = await harness.runtime.slack.upload_file("C0REPORTS", filename="usage.csv", content=content,
                                                     title="Usage", comment="Last 7 days",
                                                     thread_ts="1700000000.000100")
    assert where == "<#C0REPORTS> as `usage.csv`"
    [upload] = harness.slack.uploads
    assert upload["content"] == content and upload["filename"] == "usage.csv" and upload["title"] == "Usage"
    assert upload["channel"] == "C0REPORTS" and upload["thread_ts"] == "1700000000.000100"
    assert upload["initial_comment"] == "Last 7 days"
    harness.slack.fail_next("files.getUploadURLExternal", "not_allowed")
    with pytest.raises(SlackCallFailed, match="not_allowed"):
        await harness.runtime.slack.upload_file("C0REPORTS", filename="x.csv", content=b"x")
