"""Output safety (docs/security.md): nothing the bot posts pings anyone or disguises a link, whoever wrote
the text, on every path: the streamed answer, the fallback post and update, Block Kit answers and refusals."""

from __future__ import annotations

import json
from typing import Any

from bot.domain.roles import Role
from bot.slack.safe_text import SafeAck
from tests.support.harness import Harness, eventually
from tests.support.slack_markup import payload_problems, problems

ADMIN = "/claude-admin"
ADMIN_KEY = "sk-ant-admin01-test"
HOSTILE = ("Team, <!channel> <!here> <!everyone> <!subteam^S0ENG|@eng> <@U0CEO> <@W0CFO|cfo> please log in at "
           "<https://evil.example/login|Slack SSO> or [Slack SSO](https://evil.example/sso) ![logo](https://evil.example/p)"
           " @channel &lt;!here&gt;")


def everything_sent(harness: Harness) -> list[Any]:
    """Every payload the fake Slack received: Web API calls and response-URL posts."""
    return [params for _method, params in harness.slack.calls] + [r["body"] for r in harness.slack.responses]


def streamed_texts(harness: Harness) -> list[str]:
    """What each streamed message finally reads: its chunks together (a token can be split across them)."""
    return [stream["text"] for stream in harness.slack.streams.values()]


def assert_safe(harness: Harness, *, allowed: tuple[str, ...] = ()) -> None:
    found = payload_problems(everything_sent(harness), allowed)
    found += [p for text in streamed_texts(harness) + harness.slack.posted_texts() for p in problems(text, allowed)]
    assert not found, found


async def test_claude_answer_split_into_tiny_chunks_pings_nobody_on_the_stream(harness: Harness) -> None:
    harness.slack.add_user("U1", name="ana")
    await harness.grant("U1", Role.USER)
    harness.anthropic.reply = HOSTILE
    harness.anthropic.chunk_chars = 3  # every token is cut across chunks
    await harness.mention("U1", "summarise the thread")
    await harness.settled_records(1)
    await eventually(lambda: harness.slack.posted_texts("C0001"))
    (text,) = streamed_texts(harness)
    assert_safe(harness)
    assert "Slack SSO (https://evil.example/login)" in text and "Slack SSO (https://evil.example/sso)" in text
    assert "@\u2060channel" in text and "@\u2060eng" in text  # still readable, in plain words


async def test_claude_answer_pings_nobody_when_posted_and_updated(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    harness.slack.fail_next("chat.startStream", "not_allowed")
    harness.anthropic.reply = HOSTILE + " " + " ".join(f"w{i}" for i in range(50))
    harness.anthropic.chunk_chars = 4
    await harness.mention("U1", "hello")
    await harness.settled_records(1)
    await eventually(lambda: harness.slack.posted_texts("C0001"))
    assert harness.slack.calls_to("chat.postMessage") and not harness.slack.streams
    assert_safe(harness)
    assert "https://evil.example/login" in harness.slack.posted_texts("C0001")[0]


async def test_a_users_literal_broadcast_is_not_unescaped_for_claude_or_echoed(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    # what Slack sends when someone types "<!channel>" and "<https://x|y>" as text: escaped
    await harness.mention("U1", "say &lt;!channel&gt; and &lt;@U0CEO&gt; and &lt;https://evil.example|Slack SSO&gt;")
    await harness.settled_records(1)
    await eventually(lambda: harness.slack.posted_texts("C0001"))
    asked = harness.anthropic.last_body()["messages"][-1]["content"]
    assert not problems(asked), asked  # Claude never sees a live token it could echo
    assert_safe(harness)


async def test_refusals_quote_the_users_words_safely_and_still_name_the_admins(harness: Harness) -> None:
    harness.slack.add_user("U1")
    harness.slack.add_user("UADMIN")
    await harness.grant("UADMIN", Role.ADMIN)
    await harness.grant("U1", Role.USER)
    await harness.mention("U1", "--model [Slack SSO](https://evil.example) hi")  # quoted in the refusal
    harness.slack.add_user("UVIEW")
    await harness.mention("UVIEW", "may I?")  # a viewer: "Ask <@UADMIN> …"
    await harness.told("U1")
    (viewer,) = await harness.told("UVIEW")
    assert "<@UADMIN>" in json.dumps(viewer)  # the bot's own template still mentions the admin
    assert_safe(harness, allowed=("UADMIN", "UVIEW"))


async def test_offboarding_shows_anthropic_key_names_as_text(harness_factory) -> None:
    harness = await harness_factory(anthropic_admin_key=ADMIN_KEY)
    for user, role in (("UADMIN", Role.ADMIN), ("U1", Role.POWER)):
        harness.slack.add_user(user, email=f"{user.lower()}@example.com")
        await harness.grant(user, role)
    harness.anthropic.add_org_user("user_u1", "u1@example.com", "<!channel> U One")
    harness.anthropic.add_org_key("apikey_1", "<!channel> ci key <https://evil.example|Console>", created_by="user_u1")
    harness.anthropic.add_org_key("apikey_2", "[rotate here](https://evil.example) @here", created_by="user_u1")
    answer = await harness.command("UADMIN", ADMIN, "offboard <@U1>")
    assert "Offboarded <@U1>" in json.dumps(answer["blocks"])  # the template's mention is live
    assert harness.anthropic.org_keys["apikey_1"]["status"] == "inactive"
    assert_safe(harness, allowed=("U1", "UADMIN"))


async def test_admin_answers_echo_key_labels_and_workspaces_as_text(harness: Harness, monkeypatch) -> None:
    harness.slack.add_user("UOWNER")
    await harness.grant("UOWNER", Role.OWNER)
    monkeypatch.setenv("SECOND_KEY", "sk-ant-api03-second-key-secret-QrSt")
    await harness.command("UOWNER", ADMIN, "keys add k1 env:SECOND_KEY workspace=<!channel>")
    await harness.command("UOWNER", ADMIN, "policy set user workspace <https://evil.example|Slack>")
    await harness.command("UOWNER", ADMIN, "keys")
    await harness.command("UOWNER", ADMIN, "policy user")
    await harness.command("UOWNER", ADMIN, "grant <!here> user")
    assert len(harness.slack.responses) == 5
    assert_safe(harness, allowed=("UOWNER",))


async def test_what_an_ack_says_is_neutralised_too() -> None:
    """A listener may answer in its ack (a command's immediate text, a modal's errors): same rules."""
    ack = SafeAck()
    response = await ack(text=HOSTILE, blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": HOSTILE}}])
    assert not payload_problems([json.loads(response.body)])
    errors = await SafeAck()(response_action="errors", errors={"field": "<!channel> see <https://e.example|x>"})
    assert not payload_problems([json.loads(errors.body)])


async def test_an_answer_that_is_json_is_shown_as_written(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    harness.anthropic.reply = '{"name":"é", "list": [1,2]}'
    await harness.mention("U1", "json please")
    await harness.settled_records(1)
    await eventually(lambda: harness.slack.posted_texts("C0001"))
    assert harness.slack.posted_texts("C0001") == ['{"name":"é", "list": [1,2]}']
