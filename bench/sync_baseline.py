"""The baseline bot: the same mention handler on Bolt's synchronous App with its default thread pool.

No gate, no database: a mention calls Claude and posts the answer in the thread. This is how most Slack
bots are written; it runs as its own process (`python -m bench.sync_baseline`), configured like ours.
"""

from __future__ import annotations

import logging
import os

import anthropic
from slack_bolt import App
from slack_sdk import WebClient


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    claude = anthropic.Anthropic(api_key=os.environ["ANTHROPIC_API_KEY"], base_url=os.environ["ANTHROPIC_BASE_URL"])
    client = WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"])
    app = App(client=client, signing_secret=os.environ["SLACK_SIGNING_SECRET"])

    @app.event("app_mention")
    def answer(event: dict) -> None:
        with claude.messages.stream(model="claude-haiku-4-5", max_tokens=1024,
                                    messages=[{"role": "user", "content": event["text"]}]) as stream:
            text = stream.get_final_text()
        client.chat_postMessage(channel=event["channel"], thread_ts=event["ts"], text=text)

    app.start(port=int(os.environ["PORT"]))


if __name__ == "__main__":
    main()
