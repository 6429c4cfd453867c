"""The harness floor: an aiohttp server that acknowledges every Slack request and does nothing else.

How long this benchmark's own client takes to have N signed events acknowledged, on this machine, by a server
with no Bolt, no gate and no model: no app answering N mentions can finish before that plus the model's 2 s.
It runs as its own process (`python -m bench.null_server`), on PORT.
"""

from __future__ import annotations

import os

from aiohttp import web


async def acknowledge(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="")


def main() -> None:
    app = web.Application()
    app.router.add_post("/slack/events", acknowledge)
    web.run_app(app, host="127.0.0.1", port=int(os.environ["PORT"]), print=None, access_log=None)


if __name__ == "__main__":
    main()
