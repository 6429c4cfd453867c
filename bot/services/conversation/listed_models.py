"""The models Anthropic lists for our key (the Models API, `/v1/models`), read at start-up and daily, per process.

The gate never waits on it: until the first read succeeds nothing is known and nothing is refused. Once read, a
model Anthropic marks ``retired`` (or no longer lists) is refused with a line naming what to do, instead of a
404 from Anthropic; a ``deprecated`` one is still answered, and named in the start-up report with its retirement
date. The report (a log line per retired or deprecated model that an alias, a policy or a channel names, and one
admin alert per retired model, ever) runs after each read.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.config import Settings
from bot.domain.marks import Icon, code, icon, unmarked
from bot.domain.mentions import channel_link
from bot.domain.pricing import undated
from bot.services.access.policies import all_policies
from bot.services.channels.channel_settings import configured_channels
from bot.services.conversation.claude import load_sdk
from bot.services.ports import SlackPort
from bot.store.clock import Clock
from bot.store.db import Database
from bot.store.leases import last_run, mark_run

log = logging.getLogger(__name__)

REFRESH_SECONDS = 24 * 3600
RETRY_SECONDS = 15 * 60  # a failed read is tried again sooner


@dataclass(frozen=True)
class ListedModel:
    id: str
    name: str
    lifecycle: str  # active / deprecated / retired
    retires_at: datetime | None = None
    context_window: int | None = None  # max input tokens, where the API says


def _listed(info: Any) -> ListedModel:
    """An SDK ModelInfo; an SDK older than the lifecycle fields keeps them as plain JSON values."""
    retires = getattr(info, "retires_at", None)
    if isinstance(retires, str):
        retires = datetime.fromisoformat(retires.replace("Z", "+00:00"))
    window = getattr(info, "max_input_tokens", None)
    return ListedModel(info.id, getattr(info, "display_name", None) or info.id,
                       str(getattr(info, "lifecycle", None) or "active"), retires,
                       int(window) if isinstance(window, int | str) and str(window).isdigit() else None)


class ListedModels:
    """This process's copy of Anthropic's model list (None until read)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.models: dict[str, ListedModel] | None = None
        self._entries: dict[str, ListedModel] = {}  # each listed ID, and each dated snapshot's undated alias
        self.read_at: datetime | None = None

    async def read(self) -> dict[str, ListedModel]:
        """Every page of the Models API with ANTHROPIC_API_KEY. Raises the SDK's errors."""
        # In a thread, the one `serve` starts once it listens: an import here would hold the event loop (acks,
        # /healthz, signals) on the module's import lock for the seconds the SDK takes to load.
        anthropic = await load_sdk()

        key = self.settings.anthropic_api_key
        async with anthropic.AsyncAnthropic(api_key=key.get_secret_value() if key else None,
                                            base_url=self.settings.anthropic_base_url, max_retries=2,
                                            timeout=30.0) as client:
            return {info.id: _listed(info) async for info in client.models.list(limit=1000)}

    async def refresh(self, now: datetime) -> bool:
        """Read the list; on failure keep the last one (the gate goes on with what it knew)."""
        if self.settings.anthropic_api_key is None:
            return False
        try:
            models = await self.read()
        except Exception as exc:  # the SDK's connection, status and timeout errors alike: logged, retried
            log.warning("could not read Anthropic's model list (%s); trying again in %d min", type(exc).__name__,
                        RETRY_SECONDS // 60)
            return False
        entries: dict[str, ListedModel] = {}
        for model_id in sorted(models):  # the newest snapshot last: it is the alias's entry
            if (alias := undated(model_id)) != model_id:
                entries[alias] = models[model_id]
        self.models, self._entries, self.read_at = models, entries | models, now
        return True

    def entry(self, model_id: str) -> ListedModel | None:
        """The list's entry for ``model_id``: its own, or for an undated alias (``claude-haiku-4-5``) the newest
        dated snapshot it names (``claude-haiku-4-5-20251001``), as the API accepts both. One dict lookup."""
        return self._entries.get(model_id)

    def retired(self, model_id: str) -> bool:
        """Anthropic has retired the model (or no longer lists it, nor a snapshot of it); False while nothing is
        known."""
        if self.models is None:
            return False
        listed = self.entry(model_id)
        return listed is None or listed.lifecycle == "retired"

    def deprecated(self, model_id: str) -> ListedModel | None:
        listed = self.entry(model_id)
        return listed if listed is not None and listed.lifecycle == "deprecated" else None


async def named_models(db: Database, settings: Settings) -> dict[str, list[str]]:
    """Model ID → where it is named: the aliases (MODEL_HAIKU …), each role's policy, each channel's setting."""
    catalog = settings.models
    named: dict[str, list[str]] = {}
    for alias, model_id in catalog.aliases.items():
        named.setdefault(model_id, []).append(f"{code(alias)} (MODEL_{alias.upper()})")
    async with db.reads() as session:
        policies = await all_policies(session)
        channels = await configured_channels(session)
    for role, policy in policies.items():
        for model_id in catalog.allowed(policy.models):
            named.setdefault(model_id, []).append(f"the {code(role)} policy")
    for channel in channels:
        resolved = catalog.resolve(channel.model) if channel.model else None
        if resolved:
            named.setdefault(resolved, []).append(f"{channel_link(channel.channel_id)}'s model")
    return named


async def report(models: ListedModels, db: Database, settings: Settings, clock: Clock, slack: SlackPort) -> list[str]:
    """One log line per retired or deprecated model something names; one admin alert per retired model, ever
    (the first process to see it posts it). The lines, for tests and `claude-gate models`."""
    if models.models is None:
        return []
    lines = []
    for model_id, where in sorted((await named_models(db, settings)).items()):
        places = ", ".join(where)
        if models.retired(model_id):
            line = (f"{code(model_id)} is retired at Anthropic and is named by {places}: requests for it are "
                    f"refused; point them at a listed model ({code('claude-gate models')} lists them)")
            log.warning("%s", unmarked(line))
            lines.append(line)
            await _alert_once(db, clock, slack, settings, model_id, line)
        elif (listed := models.deprecated(model_id)) is not None:
            when = f" on {listed.retires_at:%Y-%m-%d}" if listed.retires_at else ""
            line = f"{code(model_id)} is deprecated at Anthropic and retires{when}; it is named by {places}"
            log.warning("%s", unmarked(line))
            lines.append(line)
    return lines


async def _alert_once(db: Database, clock: Clock, slack: SlackPort, settings: Settings, model_id: str,
                      line: str) -> None:
    job = f"retired:{model_id}"[:64]
    async with db.sessions.begin() as session:
        if await last_run(session, job) is not None:
            return
        await mark_run(session, job, clock())
    if settings.admin_alert_channel:
        await slack.post(settings.admin_alert_channel, f"{icon(Icon.WARNING)} {line}.")


async def watch(models: ListedModels, db: Database, settings: Settings, clock: Clock, slack: SlackPort) -> None:
    """Read the list at start-up and then daily (sooner after a failure), reporting after each read. `serve`
    runs this in the background."""
    while True:
        ok = await models.refresh(clock())
        if ok:
            try:
                await report(models, db, settings, clock, slack)
            except Exception:
                log.exception("could not report retired models")
        await asyncio.sleep(REFRESH_SECONDS if ok else RETRY_SECONDS)
