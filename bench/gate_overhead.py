"""Gate overhead: signed event arriving at the app → request reaching the (fake) Anthropic API, with the gate,
minus the same path with the gate disabled in-process (role lookup, policy, rpm, budget, key, record). Both
paths claim the Slack event once (retries are answered once either way).

Trials alternate between the two variants so drift and noise hit both alike; p50 and p99 are reported for
SQLite and, with BENCH_DATABASE_URL, PostgreSQL. The gate runs with this round's features on (bench/harness.py):
every admission reserves against a USD budget, the channel has a prompt and a default model, SECRET_POLICY=block
(BENCH_FEATURES=0: all off).
"""

from __future__ import annotations

import asyncio
import os
import time

import aiohttp

from bench.harness import (
    CHANNEL,
    FEATURES_NAME,
    Row,
    app_in_process,
    bench_settings,
    fakes,
    features_env,
    median,
    percentile,
    post_event,
    prepare_database,
    print_table,
    sqlite_file,
)
from bot.domain.decisions import Admission, AlreadyTaken
from bot.domain.policy import DEFAULT_POLICIES
from bot.domain.requests import ChatRequest
from bot.domain.roles import Role
from bot.runtime import Runtime
from bot.services.conversation.access import AccessSnapshot, EffectiveRole
from bot.services.conversation.claims import claim_event
from bot.services.conversation.gate import Screened

TRIALS = int(os.environ.get("BENCH_TRIALS", "400"))
USERS = 50
TARGETS = {"SQLite": (3, 10), "PostgreSQL": (5, 15)}  # p50, p99 in ms


class GateDisabled:
    """Admits everything: the path minus the gate. A retried Slack event is still answered once (the gate claims
    events in its own transaction; without it, the claim is a transaction of its own, as it was before)."""

    def __init__(self, model: str, app: Runtime) -> None:
        self.model = model
        self.app = app

    async def screen(self, request: ChatRequest) -> Screened | AlreadyTaken:
        if request.event_id and not await claim_event(self.app.db, self.app.clock, request.event_id):
            return AlreadyTaken(request.event_id)
        access = AccessSnapshot(EffectiveRole(Role.ADMIN, "default"), DEFAULT_POLICIES[Role.ADMIN], None, None)
        return Screened(access, self.model)

    async def admit(self, request: ChatRequest, screened: Screened, *, input_estimate: int | None = None
                    ) -> Admission:
        return Admission(record_id=0, user_id=request.requester.user_id, role=Role.ADMIN, model=self.model,
                         max_tokens=1024, key_label="default", key_env_var="ANTHROPIC_API_KEY", workspace="default")


async def measure(database_url: str) -> dict[str, list[float]]:
    prepare_database(database_url, "admin")
    samples: dict[str, list[float]] = {"gate": [], "no gate": []}
    with fakes() as (slack, anthropic):
        anthropic.reply = "ok"
        settings = bench_settings(slack, anthropic, database_url, default_role="admin",
                                  secret_policy=features_env()["SECRET_POLICY"])
        async with app_in_process(settings) as (app, url):
            real_gate, no_gate = app.chat.gate, GateDisabled(settings.model_haiku, app)
            for i in range(USERS):
                slack.add_user(f"UG{i:04d}")
            try:
                async with aiohttp.ClientSession() as http:
                    for trial in range(TRIALS + 20):  # the first 20 warm caches and pools, and are not counted
                        for variant, gate in (("gate", real_gate), ("no gate", no_gate)):
                            app.chat.gate = gate  # type: ignore[assignment]
                            before = len(anthropic.requests)
                            user = f"UG{trial % USERS:04d}"
                            ts = slack.next_ts()
                            event = {"type": "app_mention", "user": user, "text": "<@UBOT> hi", "ts": ts,
                                     "channel": CHANNEL}
                            sent = time.monotonic()
                            await post_event(http, url, event)
                            while len(anthropic.requests) == before:
                                await asyncio.sleep(0.0005)
                            arrived = anthropic.requests[before]["at"]
                            while len(slack.calls_to("chat.stopStream")) + len(slack.calls_to("chat.postMessage")) \
                                    < 2 * (trial + 1) - (variant == "gate"):
                                await asyncio.sleep(0.001)  # let the answer finish: trials never overlap
                            if trial >= 20:
                                samples[variant].append((arrived - sent) * 1000)
            finally:
                app.chat.gate = real_gate
    return samples


def main() -> None:
    targets = [("SQLite", sqlite_file())]
    if pg := os.environ.get("BENCH_DATABASE_URL"):
        targets.append(("PostgreSQL", pg))
    rows = []
    for name, url in targets:
        samples = asyncio.run(measure(url))
        gate, bare = samples["gate"], samples["no gate"]
        p50 = median(gate) - median(bare)
        p99 = percentile(gate, 0.99) - percentile(bare, 0.99)
        p50_target, p99_target = TARGETS[name]
        rows.append(Row(f"gate overhead, {name}, {FEATURES_NAME}: p50 / p99 (event → Anthropic, minus gate disabled)",
                        f"{p50:.2f} / {p99:.2f} ms", f"p50 ≤ {p50_target} / p99 ≤ {p99_target} ms",
                        p50 <= p50_target and p99 <= p99_target))
        rows.append(Row(f"  path with the gate disabled, {name}: p50 / p99", f"{median(bare):.2f} / "
                        f"{percentile(bare, 0.99):.2f} ms", "—", None))
    print_table(f"Gate overhead ({TRIALS} trials per variant, alternating)", rows)


if __name__ == "__main__":
    main()
