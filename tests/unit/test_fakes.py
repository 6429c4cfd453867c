"""Prove the fakes against the real slack_sdk / anthropic clients."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import anthropic
import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.context.say.async_say import AsyncSay
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.support.fakes import FakeAnthropic, FakeSlack
from tests.support.fakes.signing import command_body, event_body, json_body, sign

MODEL = "claude-test-1"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def claude() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


def web_client(slack: FakeSlack, **kwargs: object) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=slack.api_url, **kwargs)  # type: ignore[arg-type]


ClaudeFactory = Callable[..., anthropic.AsyncAnthropic]


@pytest.fixture
async def claude_client(claude: FakeAnthropic) -> AsyncIterator[ClaudeFactory]:
    """Factory of AsyncAnthropic clients bound to the fake; closed on the test's loop at teardown."""
    made: list[anthropic.AsyncAnthropic] = []

    def make(api_key: str = "sk-ant-test", **kwargs: Any) -> anthropic.AsyncAnthropic:
        options: dict[str, Any] = {"max_retries": 0, **kwargs}
        client = anthropic.AsyncAnthropic(base_url=claude.base_url, api_key=api_key, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


# ------------------------------------------------------------------------- slack


async def test_auth_test_and_users_info(slack: FakeSlack) -> None:
    slack.add_user("U1", name="alice", is_restricted=True)
    client = web_client(slack)

    auth = await client.auth_test()
    assert (auth["user_id"], auth["team_id"], auth["bot_id"]) == ("UBOT", "T0001", "B0001")

    info = await client.users_info(user="U1")
    assert info["user"]["profile"]["email"] == "alice@example.com"
    assert info["user"]["is_restricted"] is True

    by_email = await client.users_lookupByEmail(email="ALICE@example.com")
    assert by_email["user"]["id"] == "U1"

    with pytest.raises(SlackApiError) as err:
        await client.users_info(user="U404")
    assert err.value.response["error"] == "user_not_found"

    assert slack.calls_to("users.info") == [{"user": "U1"}, {"user": "U404"}]
    assert set(slack.tokens_seen) == {"xoxb-test"}


async def test_missing_token_is_not_authed(slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as err:
        await AsyncWebClient(base_url=slack.api_url).auth_test()
    assert err.value.response["error"] == "not_authed"


async def test_conversations_replies_paginates_and_sees_bot_posts(slack: FakeSlack) -> None:
    slack.add_message("C1", "1700000000.000100", "root", user="U1")
    slack.add_message("C1", "1700000000.000200", "reply 1", user="U2", thread_ts="1700000000.000100")
    client = web_client(slack)

    posted = await client.chat_postMessage(channel="C1", thread_ts="1700000000.000100", text="bot reply")
    assert float(posted["ts"]) > 1700000000.0002
    assert posted["message"]["bot_id"] == "B0001"

    texts: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await client.conversations_replies(channel="C1", ts="1700000000.000100", limit=2, cursor=cursor)
        pages += 1
        texts += [m["text"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert pages == 2
    assert texts == ["root", "reply 1", "bot reply"]

    only_root = await client.conversations_replies(channel="C1", ts="1700000000.000100", limit=1)
    assert only_root["messages"][0]["reply_count"] == 2

    with pytest.raises(SlackApiError) as err:
        await client.conversations_replies(channel="C1", ts="1.2")
    assert err.value.response["error"] == "thread_not_found"


async def test_post_update_delete_and_posted_texts(slack: FakeSlack) -> None:
    client = web_client(slack)
    first = await client.chat_postMessage(channel="C1", text="thinking…")
    await client.chat_postMessage(channel="C1", text="second")
    await client.chat_update(channel="C1", ts=first["ts"], text="final answer")
    assert slack.posted_texts("C1") == ["final answer", "second"]
    await client.chat_delete(channel="C1", ts=first["ts"])
    assert slack.posted_texts() == ["second"]

    dm = await client.chat_postMessage(channel="U7", text="hi")
    assert dm["channel"] == "DU7"
    opened = await client.conversations_open(users="U7")
    assert opened["channel"]["id"] == "DU7"


async def test_form_posts_decode_json_values(slack: FakeSlack) -> None:
    client = web_client(slack)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    await client.api_call("chat.postMessage", data={"channel": "C1", "blocks": json.dumps(blocks)})
    await client.api_call("chat.postEphemeral", params={"channel": "C1", "user": "U1", "text": "psst"})
    assert slack.calls_to("chat.postMessage")[0]["blocks"] == blocks
    assert slack.posted_texts() == ["*hi*"]
    assert slack.ephemerals[0]["text"] == "psst"


async def test_chat_stream_accumulates_text(slack: FakeSlack) -> None:
    client = web_client(slack)
    streamer = await client.chat_stream(
        channel="C1",
        thread_ts="1700000000.000100",
        recipient_team_id="T0001",
        recipient_user_id="U1",
        buffer_size=8,
    )
    for piece in ["Hello ", "wonderful ", "streaming ", "world"]:
        await streamer.append(markdown_text=piece)
    feedback = [{"type": "context_actions", "elements": []}]
    await streamer.stop(markdown_text="!", blocks=feedback)

    ts = streamer.ts
    assert ts is not None
    stream = slack.streams[ts]
    assert stream["text"] == "Hello wonderful streaming world!"
    assert stream["stopped"] is True
    assert stream["blocks"] == feedback
    assert (stream["recipient_user_id"], stream["recipient_team_id"]) == ("U1", "T0001")
    assert len(slack.calls_to("chat.startStream")) == 1
    assert len(slack.calls_to("chat.appendStream")) >= 1
    assert slack.posted_texts() == ["Hello wonderful streaming world!"]
    replies = await client.conversations_replies(channel="C1", ts="1700000000.000100")
    assert replies["messages"][-1]["text"] == "Hello wonderful streaming world!"

    with pytest.raises(SlackApiError) as err:
        await client.chat_appendStream(channel="C1", ts=ts, markdown_text="late")
    assert err.value.response["error"] == "message_not_in_streaming_state"


async def test_streaming_unsupported(slack: FakeSlack) -> None:
    slack.streaming_supported = False
    with pytest.raises(SlackApiError) as err:
        await web_client(slack).chat_startStream(channel="C1", thread_ts="1.1", markdown_text="x")
    assert err.value.response["error"] == "not_allowed"


async def test_rate_limit_is_retried_by_sdk_handler(slack: FakeSlack) -> None:
    slack.fail_next("chat.postMessage", retry_after=0)
    client = web_client(slack, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    response = await client.chat_postMessage(channel="C1", text="eventually")
    assert response["ok"] is True
    assert len(slack.calls_to("chat.postMessage")) == 2
    assert slack.posted_texts() == ["eventually"]

    slack.fail_next("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as err:
        await web_client(slack).chat_postMessage(channel="C1", text="no retry")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"

    slack.fail_next("users.info", "user_not_visible")
    with pytest.raises(SlackApiError) as err:
        await web_client(slack).users_info(user="U1")
    assert (err.value.response.status_code, err.value.response["error"]) == (200, "user_not_visible")


async def test_usergroups_and_assistant(slack: FakeSlack) -> None:
    slack.add_usergroup("S1", "admins", ["U1", "U2"])
    client = web_client(slack)
    groups = await client.usergroups_list(include_users=True)
    assert groups["usergroups"][0]["users"] == ["U1", "U2"]
    members = await client.usergroups_users_list(usergroup="S1")
    assert members["users"] == ["U1", "U2"]
    with pytest.raises(SlackApiError) as err:
        await client.usergroups_users_list(usergroup="S404")
    assert err.value.response["error"] == "no_such_subteam"

    await client.assistant_threads_setStatus(channel_id="D1", thread_ts="1.1", status="is thinking…")
    await client.assistant_threads_setTitle(channel_id="D1", thread_ts="1.1", title="Question")
    assert slack.assistant_status[("D1", "1.1")] == "is thinking…"
    assert slack.thread_titles[("D1", "1.1")] == "Question"


async def test_response_url_is_recorded(slack: FakeSlack) -> None:
    url = slack.new_response_url()
    result = await AsyncWebhookClient(url).send(text="done", response_type="ephemeral")
    assert result.status_code == 200
    assert slack.responses[0]["body"] == {"text": "done", "response_type": "ephemeral"}


def test_wait_for_from_a_test_thread(slack: FakeSlack) -> None:
    async def post_later() -> None:
        await asyncio.sleep(0.05)
        await web_client(slack).chat_postMessage(channel="C1", text="later")

    async def main() -> bool:
        task = asyncio.create_task(post_later())
        ok = await slack.awaitfor(lambda s: s.posted_texts() == ["later"], timeout=5)
        await task
        return ok

    assert asyncio.run(main())
    assert slack.wait_for(lambda s: len(s.calls_to("chat.postMessage")) == 1, timeout=1)
    assert not slack.wait_for(lambda s: len(s.calls) > 5, timeout=0.05)


async def test_socket_mode_roundtrip(slack: FakeSlack) -> None:
    received: list[SocketModeRequest] = []

    async def listener(client: SocketModeClient, request: SocketModeRequest) -> None:
        received.append(request)
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))

    client = SocketModeClient(app_token="xapp-1-test", web_client=web_client(slack))
    client.socket_mode_request_listeners.append(listener)
    try:
        await client.connect()
        assert await slack.await_connected(timeout=5)
        event = {"type": "app_mention", "user": "U1", "text": "<@UBOT> hi", "ts": "1.1", "channel": "C1"}
        envelope_id = slack.push_event(event)
        assert await slack.awaitfor(lambda s: bool(s.acks_for(envelope_id)), timeout=5)
        assert received[0].type == "events_api"
        assert received[0].payload["event"]["text"] == "<@UBOT> hi"
        assert received[0].payload["authorizations"][0]["user_id"] == "UBOT"
        assert received[0].retry_attempt == 0

        command_id = slack.push_slash_command("/claude", "status", "U1")
        assert await slack.awaitfor(lambda s: bool(s.acks_for(command_id)), timeout=5)
        assert received[1].payload["command"] == "/claude"
        assert received[1].payload["response_url"].startswith(slack.base_url + "/response/")

        slack.disconnect_clients()
        assert await slack.awaitfor(lambda s: s.socket_connections == 2 and s.connected_clients == 1, timeout=5)
    finally:
        await client.close()
    assert slack.tickets_issued == 2


async def test_apps_connections_open_needs_app_token(slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as err:
        await web_client(slack).apps_connections_open(app_token="xoxb-test")
    assert err.value.response["error"] == "invalid_auth"


def test_signing_matches_slack_sdk_verifier() -> None:
    body = json_body(event_body({"type": "app_mention", "text": "hi", "user": "U1", "channel": "C1", "ts": "1.1"}))
    headers = sign(body, "shh")
    assert headers["Content-Type"] == "application/json"
    assert SignatureVerifier("shh").is_valid_request(body, headers)
    assert not SignatureVerifier("other").is_valid_request(body, headers)

    form = command_body("/claude", "help me", "U1", response_url="http://127.0.0.1:1/response/1")
    fields = {k: v[0] for k, v in parse_qs(form).items()}
    assert (fields["command"], fields["text"], fields["user_id"]) == ("/claude", "help me", "U1")
    assert sign(form, "shh", int(time.time()))["Content-Type"] == "application/x-www-form-urlencoded"


# -------------------------------------------------------------------------- bolt


def bolt_app(slack: FakeSlack, **kwargs: Any) -> AsyncApp:
    return AsyncApp(client=web_client(slack), signing_secret="shh", **kwargs)


async def test_bolt_over_socket_mode(slack: FakeSlack) -> None:
    app = bolt_app(slack)

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: AsyncSay) -> None:
        await say(text=f"you said {event['text']}", thread_ts=event["ts"])

    handler = AsyncSocketModeHandler(app, "xapp-1-test")
    await handler.connect_async()
    try:
        envelope_id = slack.push_event(
            {"type": "app_mention", "user": "U1", "text": "<@UBOT> ping", "ts": "1700000000.000100", "channel": "C1"}
        )
        assert await slack.awaitfor(lambda s: s.posted_texts() == ["you said <@UBOT> ping"], timeout=5)
        assert await slack.awaitfor(lambda s: bool(s.acks_for(envelope_id)), timeout=5)
    finally:
        await handler.close_async()
    assert slack.call_names()[:2] == ["apps.connections.open", "auth.test"]


async def test_bolt_http_signed_command_and_response_url(slack: FakeSlack) -> None:
    app = bolt_app(slack)

    @app.command("/claude")
    async def on_command(ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        await ack()
        await respond(f"status for {command['user_id']}")

    body = command_body("/claude", "status", "U1", response_url=slack.new_response_url())
    response = await app.async_dispatch(AsyncBoltRequest(body=body, headers=sign(body, "shh")))
    assert response.status == 200
    assert await slack.awaitfor(lambda s: len(s.responses) == 1, timeout=5)
    assert slack.responses[0]["body"]["text"] == "status for U1"

    bad = await app.async_dispatch(AsyncBoltRequest(body=body, headers=sign(body, "wrong")))
    assert bad.status == 401


# --------------------------------------------------------------------- anthropic


async def test_messages_stream_text_and_usage(claude: FakeAnthropic, claude_client: ClaudeFactory) -> None:
    claude.chunk_chars = 5
    client = claude_client()
    body = {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "What is up with the weather"}]}
    pieces: list[str] = []
    async with client.messages.stream(**body) as stream:  # type: ignore[arg-type]
        async for text in stream.text_stream:
            pieces.append(text)
        final = await stream.get_final_message()
    expected = "Echo: What is up with the weather"
    assert "".join(pieces) == expected
    assert len(pieces) == len(expected) // 5 + 1
    assert final.usage.input_tokens == claude.input_tokens_for(body)
    assert final.usage.output_tokens == claude.output_tokens_for(expected) == 7
    assert final.stop_reason == "end_turn"
    assert claude.requests[0]["api_key"] == "sk-ant-test"
    assert claude.requests[0]["body"]["stream"] is True
    # the server thread counts the request out just after the client has read its last byte
    assert await claude.awaitfor(lambda fake: fake.in_flight == 0)
    assert claude.max_in_flight == 1


async def test_messages_create_and_max_tokens(claude: FakeAnthropic, claude_client: ClaudeFactory) -> None:
    claude.reply = "one two three four five"
    client = claude_client()
    message = await client.messages.create(
        model=MODEL, max_tokens=3, system="be brief", messages=[{"role": "user", "content": "count"}]
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "one two three"
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 3
    assert message.usage.input_tokens == 3 + 3 + 2  # "be" "brie" "f" · framing · "coun" "t"

    tokens = await client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "x" * 40}])
    assert tokens.input_tokens == 3 + 10
    cjk = await client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "東京都 🙂"}])
    assert cjk.input_tokens == 3 + 3 + 2  # framing · three CJK characters · an emoji


async def test_mid_stream_error(claude: FakeAnthropic, claude_client: ClaudeFactory) -> None:
    claude.chunk_chars = 3
    claude.fail_next("mid_stream_error", deltas=2)
    client = claude_client()
    pieces: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as err:
        async with client.messages.stream(
            model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hello there"}]
        ) as stream:
            async for text in stream.text_stream:
                pieces.append(text)
    assert "".join(pieces) == "Echo: "
    assert err.value.type == "overloaded_error"


async def test_error_kinds(claude: FakeAnthropic, claude_client: ClaudeFactory) -> None:
    claude.revoked_keys.add("sk-ant-revoked")
    args = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(anthropic.AuthenticationError) as auth_err:
        await claude_client("sk-ant-revoked").messages.create(**args)  # type: ignore[arg-type]
    assert auth_err.value.request_id and auth_err.value.request_id.startswith("req_")

    client = claude_client()
    claude.fail_next("rate_limit", retry_after="3")
    with pytest.raises(anthropic.RateLimitError) as rl:
        await client.messages.create(**args)  # type: ignore[arg-type]
    assert rl.value.response.headers["retry-after"] == "3"

    claude.fail_next("overloaded")
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        await client.messages.create(**args)  # type: ignore[arg-type]
    assert overloaded.value.status_code == 529

    claude.fail_next("drop")
    with pytest.raises(anthropic.APIConnectionError):
        await client.messages.create(**args)  # type: ignore[arg-type]

    with pytest.raises(anthropic.BadRequestError):
        await client.messages.create(model=MODEL, max_tokens=10, messages=[])

    # the SDK retries 5xx by itself unless told not to
    claude.fail_next("server", times=1)
    retrying = claude_client(max_retries=1)
    ok = await retrying.messages.create(**args)  # type: ignore[arg-type]
    assert ok.content[0].text == "Echo: hi"  # type: ignore[union-attr]
    claude.fail_next("server", should_retry=False)
    with pytest.raises(anthropic.InternalServerError):
        await retrying.messages.create(**args)  # type: ignore[arg-type]


async def test_timeout_kind(claude: FakeAnthropic, claude_client: ClaudeFactory) -> None:
    claude.fail_next("timeout", seconds=5)
    client = claude_client(timeout=0.3)
    with pytest.raises(anthropic.APITimeoutError):
        await client.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert await claude.awaitfor(lambda c: c.in_flight == 0, timeout=3)


async def test_admin_api_keys_paging(claude: FakeAnthropic, claude_client: ClaudeFactory) -> None:
    for i in range(7):
        claude.add_org_key(f"apikey_{i:02d}", f"key {i}", workspace_id="wrkspc_1" if i % 2 else None)
    claude.add_org_user("user_1", "alice@example.com", "Alice", role="admin")
    client = claude_client(api_key=claude.admin_key)
    assert hasattr(client, "organization")

    ids = [key.id async for key in client.organization.api_keys.list(limit=3)]
    assert ids == [f"apikey_{i:02d}" for i in range(7)]
    assert len(claude.admin_requests) == 3

    first = await client.organization.api_keys.list(limit=3)
    assert first.has_more is True and first.last_id == "apikey_02"
    assert first.data[0].scope.type == "workspace"

    updated = await client.organization.api_keys.update("apikey_01", status="inactive")
    assert updated.status == "inactive"
    fetched = await client.organization.api_keys.retrieve("apikey_01")
    assert fetched.status == "inactive" and fetched.created_by is not None

    users = await client.organization.users.list(email="alice@example.com")
    assert [u.role for u in users.data] == ["admin"]

    claude.fail_next("admin_server")
    with pytest.raises(anthropic.InternalServerError):
        await client.organization.api_keys.retrieve("apikey_01")

    with pytest.raises(anthropic.AuthenticationError):
        await claude_client(api_key="sk-ant-not-admin").organization.api_keys.retrieve("apikey_01")
