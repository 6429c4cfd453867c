"""The floor: the same mention handler on Bolt's AsyncApp, served by aiohttp like Claude Gate, with the same clients
(AsyncAnthropic on the SDK's aiohttp transport, one shared aiohttp session for slack_sdk) but no gate, no database
and no streaming relay: Claude's answer is posted once. What the SDKs alone cost per conversation on this machine;
it runs as its own process (`python -m bench.async_baseline`), configured like bench/sync_baseline.py.
"""

from __future__ import annotations

import logging
import os

import aiohttp
import anthropic
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient


async def make_app() -> web.Application:
    claude = anthropic.AsyncAnthropic(api_key=os.environ["ANTHROPIC_API_KEY"],
                                      base_url=os.environ["ANTHROPIC_BASE_URL"],
                                      http_client=anthropic.DefaultAioHttpClient())
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
    client = AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"],
                            session=session)
    bolt = AsyncApp(client=client, signing_secret=os.environ["SLACK_SIGNING_SECRET"])

    @bolt.event("app_mention")
    async def answer(event: dict) -> None:
        stream = await claude.messages.create(model="claude-haiku-4-5", max_tokens=1024, stream=True,
                                              messages=[{"role": "user", "content": event["text"]}])
        parts = []
        async with stream:
            async for chunk in stream:
                if chunk.type == "content_block_delta" and chunk.delta.type == "text_delta":
                    parts.append(chunk.delta.text)
        await client.chat_postMessage(channel=event["channel"], thread_ts=event["ts"], text="".join(parts))

    async def slack_events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    async def close(_app: web.Application) -> None:
        await claude.close()
        await session.close()

    app = web.Application()
    app.router.add_post("/slack/events", slack_events)
    app.on_cleanup.append(close)
    return app


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    web.run_app(make_app(), host="127.0.0.1", port=int(os.environ["PORT"]), print=None, access_log=None)


if __name__ == "__main__":
    main()
