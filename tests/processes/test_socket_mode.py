"""Socket Mode: the real slack_sdk client connects to the fake's websocket, acks the envelope, answers."""

from __future__ import annotations

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

from bot.app import build_app
from bot.domain.roles import Role
from bot.services.access.roles import grant_role
from tests.support.harness import eventually


async def test_socket_mode_mention_is_acked_and_answered(settings_factory, fake_slack, fake_anthropic, clock) -> None:
    settings = settings_factory(slack_app_token="xapp-1-test-app-token", slack_signing_secret=None)
    runtime = build_app(settings, clock=clock)
    await runtime.start()
    async with runtime.sessions.begin() as session:
        await grant_role(session, clock, actor_id="t", actor_role=None, target_id="U1", role=Role.USER)
    fake_slack.add_user("U1")
    handler = AsyncSocketModeHandler(runtime.bolt, "xapp-1-test-app-token", web_client=runtime.client)
    await handler.connect_async()
    try:
        assert await fake_slack.await_connected(5)
        ts = fake_slack.next_ts()
        fake_slack.add_message("C0001", ts, "<@UBOT> over the socket", user="U1")
        event = {"type": "app_mention", "user": "U1", "text": "<@UBOT> over the socket", "ts": ts,
                 "channel": "C0001"}
        envelope_id = fake_slack.push_event(event, event_id="EvSOCKET1")
        await eventually(lambda: fake_slack.acks_for(envelope_id))
        await eventually(lambda: fake_slack.posted_texts("C0001") == ["Echo: over the socket"])

        # Socket Mode redelivers with retry_attempt; the event id dedupe covers it (bolt-python #1484)
        again = fake_slack.push_event(event, event_id="EvSOCKET1", retry_attempt=1)
        await eventually(lambda: fake_slack.acks_for(again))

        # a `disconnect` message makes the client reconnect with a fresh URL and keep serving
        fake_slack.disconnect_clients()
        await eventually(lambda: fake_slack.socket_connections >= 2 and fake_slack.connected_clients >= 1, 10)
        ts2 = fake_slack.next_ts()
        fake_slack.add_message("C0001", ts2, "<@UBOT> after reconnect", user="U1")
        fake_slack.push_event(dict(event, ts=ts2, text="<@UBOT> after reconnect"), event_id="EvSOCKET2")
        await eventually(lambda: fake_slack.posted_texts("C0001")[1:] == ["Echo: after reconnect"], 10)
        assert len(fake_anthropic.message_requests()) == 2
    finally:
        await handler.close_async()
        await runtime.close()
