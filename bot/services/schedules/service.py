"""Scheduled prompts (docs/using.md): `/claude schedule "<when>" <prompt>`, `/claude schedules`, `/claude unschedule
<id>`, and the leader's check that runs each due occurrence once, through the whole gate, as the person who made it.

- The role policy's ``schedules`` bounds how many a person keeps; a person whose role no longer allows theirs (no
  role, or a role with fewer) has the newest ones paused and is told once; they resume, and are told, when the
  role allows them again. A person Slack no longer knows (deactivated) has theirs paused until it does again.
- Times are in the creator's Slack time zone (users.info ``tz``; UTC when Slack gives none).
- The prompt is secret-scanned when the schedule is made (SECRET_POLICY: ``block`` refuses it, ``redact`` stores it
  redacted); it is kept while the schedule lives, outside RETENTION_DAYS, and goes with unschedule, forget, offboard.
- A run is a ChatRequest of surface ``schedule`` answered by the injected ScheduleRunner (bot/slack/scheduled_runs.py
  posts a root line in the channel and streams the answer into its thread). A refused run is told by DM once, until
  a run is admitted again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from bot.config import Settings
from bot.cron import cron_trigger, next_fire_after
from bot.domain.channels import is_channel
from bot.domain.commands import ParsedCommand
from bot.domain.decisions import Admission, Refusal, RefusalReason
from bot.domain.marks import Icon, code, emphasis, icon, strong
from bot.domain.mentions import channel_link, mention
from bot.domain.replies import Reply
from bot.domain.requests import ChatRequest, Requester
from bot.domain.roles import PRIVILEGED_ROLES
from bot.domain.schedules import ScheduleText
from bot.domain.secrets import SecretPolicy, blocked_message, screen
from bot.domain.words import counted
from bot.services.base import Service
from bot.services.conversation.access import access_snapshot
from bot.services.conversation.chat import ChatResult
from bot.services.conversation.gate import Gate
from bot.services.data.audit import add_audit
from bot.services.ports import SlackPort
from bot.services.schedules.store import (
    ACTIVE,
    PAUSED,
    PAUSED_FOR_ROLE,
    PAUSED_LEFT,
    claim_occurrence,
    claim_refusal_notice,
    count_of,
    due,
    lock_schedules_of,
    pause,
    resume,
    schedules_of,
    set_outcome,
)
from bot.store.clock import Clock
from bot.store.db import Database
from bot.store.models import ScheduledPrompt

log = logging.getLogger(__name__)

SURFACE = "schedule"
SCHEDULE_COMMANDS = frozenset({"schedule", "schedules", "unschedule"})
CHECK_SECONDS = 60  # the leader looks for due occurrences this often
CONCURRENT_RUNS = 4  # due schedules answered at once
PROMPT_SHOWN = 80  # characters of a prompt shown in `schedules`
EXAMPLE = '/claude schedule "every weekday 09:00" <prompt>'


class ScheduleRunner(Protocol):
    """Answers one scheduled run where its schedule posts (bot/slack/scheduled_runs.py): ``heading`` is the root
    line of the thread the answer streams into, posted only if the gate admits the request."""

    async def run(self, request: ChatRequest, heading: str) -> ChatResult: ...


@dataclass(frozen=True)
class Ran:
    """What one due schedule came to in a check: ``outcome`` ok / error / refused:<reason> / not_posted / taken."""

    schedule_id: int
    outcome: str


def trigger_of(schedule: ScheduledPrompt) -> CronTrigger:
    return cron_trigger(schedule.cron, _zone(schedule.timezone))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _local(moment: datetime, zone: str) -> str:
    local = moment.astimezone(_zone(zone))
    utc = moment.astimezone(UTC)
    shown = f"{local:%a %d %b %Y %H:%M} ({zone})"
    return shown if zone == "UTC" else f"{shown}, {utc:%H:%M} UTC"


def _describe(schedule: ScheduledPrompt) -> str:
    return f"#{schedule.id} {emphasis(schedule.when_text)}"


class ScheduledPrompts(Service):
    def __init__(self, *, db: Database, settings: Settings, clock: Clock, slack: SlackPort,
                 runner: ScheduleRunner | None = None, gate: Gate | None = None) -> None:
        super().__init__(db=db, settings=settings, clock=clock, slack=slack)
        self.runner = runner  # None: schedules can be made and listed, never run (the shell)
        self.gate = gate  # the first phase is asked when a schedule is made: who may ask what in that channel

    # ------------------------------------------------------------------ the commands

    async def run(self, requester: Requester, command: ParsedCommand, *, channel_id: str | None) -> Reply:
        match command.name:
            case "schedule":
                return await self.create(requester, command["schedule"], channel_id=channel_id)
            case "schedules":
                return await self.listing(requester)
            case _:
                return await self.remove(requester, command["id"])

    async def create(self, requester: Requester, text: ScheduleText, *, channel_id: str | None) -> Reply:
        usage = code('/claude schedule "<when>" <prompt>')
        if not is_channel(channel_id):
            return Reply.error("Schedules post in a channel: run this in the channel where the answers should go.",
                               usage)
        assert channel_id is not None
        zone = requester.tz or "UTC"
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = "UTC"
        try:
            trigger = cron_trigger(text.when.cron, ZoneInfo(zone))
        except ValueError as exc:
            return Reply.error(f"{code(text.when.text[:40])} is not a time I can schedule ({exc}).", usage)
        now = self.clock()
        following = next_fire_after(trigger, now)
        if following is None:
            return Reply.error(f"{code(text.when.text[:40])} never comes round again.", usage)
        if self.gate is not None:  # account, role, channel: a schedule its first run would be refused is not made
            refusal = await self.gate.first_phase_refusal(ChatRequest(requester=requester, text=text.prompt,
                                                                      surface=SURFACE, channel_id=channel_id))
            if refusal is not None:
                return Reply(f"{icon(Icon.WARNING)} {refusal.message} Nothing was scheduled.",
                             lines=[refusal.hint] if refusal.hint else [], ok=False)
        prompt, note = text.prompt, None
        if self.settings.secret_policy is not SecretPolicy.OFF:
            screened = screen(prompt)
            if screened.kinds and self.settings.secret_policy is SecretPolicy.BLOCK:
                why, what = blocked_message(screened.kinds, in_channel=False)
                return Reply.error(f"{why.replace('Your message', 'Your prompt')} Nothing was scheduled. {what}")
            if screened.kinds:
                prompt, note = screened.text, "Credentials in the prompt were redacted before it was stored."
        async with self.sessions.begin() as session:
            await lock_schedules_of(session, requester.user_id)
            snapshot = await access_snapshot(session, requester.user_id, self.settings.default_role, now)
            limit, role = snapshot.policy.schedules, snapshot.role.role
            if limit <= 0:
                return Reply.error(f"Your role {strong(role)} cannot schedule prompts.",
                                   "Ask an admin for a role with schedules (user, power).")
            kept = await count_of(session, requester.user_id)
            if kept >= limit:
                return Reply.error(f"Your role {strong(role)} keeps at most {counted(limit, 'schedule')}, and you "
                                   f"have {kept}: remove one with {code('/claude unschedule <id>')} first.")
            row = ScheduledPrompt(slack_user_id=requester.user_id, team_id=requester.team_id, channel_id=channel_id,
                                  when_text=text.when.text, cron=text.when.cron, timezone=zone, prompt=prompt,
                                  state=ACTIVE, next_run_at=following, created_at=now, refusal_told=False)
            session.add(row)
            await session.flush()
            add_audit(session, at=now, actor=requester.user_id, action="schedule.add", target=requester.user_id,
                      schedule=row.id, channel=channel_id, when=text.when.text, cron=text.when.cron, timezone=zone)
            schedule_id = row.id
        lines = [f"Next run: {_local(following, zone)}. Each run asks Claude as you, within your role's limits, and "
                 f"posts the answer in {channel_link(channel_id)}.",
                 f"{code('/claude schedules')} lists yours; {code(f'/claude unschedule {schedule_id}')} removes it."]
        if note:
            lines.append(note)
        return Reply(f"{icon(Icon.DONE)} Scheduled #{schedule_id}: {emphasis(text.when.text)} in "
                     f"{channel_link(channel_id)}.", lines=lines)

    async def listing(self, requester: Requester) -> Reply:
        now = self.clock()
        async with self.reads() as session:
            role = (await access_snapshot(session, requester.user_id, self.settings.default_role, now)).role.role
            everyone = role in PRIVILEGED_ROLES
            rows = await schedules_of(session, None if everyone else requester.user_id)
        lines = []
        for row in rows:
            state = "active" if row.state == ACTIVE else (
                "paused: the owner's role keeps fewer schedules" if row.paused_reason == PAUSED_FOR_ROLE
                else "paused: Slack no longer knows the owner")
            owner = f" · {mention(row.slack_user_id)}" if everyone else ""
            nxt = f" · next {_local(row.next_run_at, row.timezone)}" if row.state == ACTIVE else ""
            last = f" · last run {row.last_outcome}" if row.last_outcome else ""
            prompt = row.prompt if len(row.prompt) <= PROMPT_SHOWN else row.prompt[:PROMPT_SHOWN] + "…"
            lines.append(f"{strong('#' + str(row.id))} {emphasis(row.when_text)} ({row.timezone}) in "
                         f"{channel_link(row.channel_id)}{owner} · {strong(state)}{nxt}{last}\n{code(prompt)}")
        title = (f"Scheduled prompts: {counted(len(rows), 'schedule')}" if everyone
                 else f"Your scheduled prompts: {len(rows)} of {counted(await self._limit(requester), 'schedule')}")
        return Reply(title, lines=lines or [f"None yet: {code(EXAMPLE)} in a channel makes one."])

    async def _limit(self, requester: Requester) -> int:
        async with self.reads() as session:
            return (await access_snapshot(session, requester.user_id, self.settings.default_role,
                                          self.clock())).policy.schedules

    async def remove(self, requester: Requester, schedule_id: int) -> Reply:
        now = self.clock()
        async with self.sessions.begin() as session:
            row = await session.get(ScheduledPrompt, schedule_id, with_for_update=True)
            role = (await access_snapshot(session, requester.user_id, self.settings.default_role, now)).role.role
            if row is None:
                return Reply.error(f"There is no schedule #{schedule_id}.",
                                   f"{code('/claude schedules')} lists yours.")
            if row.slack_user_id != requester.user_id and role not in PRIVILEGED_ROLES:
                return Reply.denied(f"Schedule #{schedule_id} is someone else's: only they or an admin can remove it.")
            owner, described = row.slack_user_id, _describe(row)
            await session.delete(row)
            add_audit(session, at=now, actor=requester.user_id, action="schedule.remove", target=owner,
                      schedule=schedule_id, channel=row.channel_id, when=row.when_text)
        whose = "" if owner == requester.user_id else f" of {mention(owner)}"
        if owner != requester.user_id:
            await self.slack.send_dm(owner, f"{icon(Icon.WARNING)} An admin ({mention(requester.user_id)}) removed "
                                            f"your scheduled prompt {described}.")
        return Reply(f"{icon(Icon.DONE)} Removed schedule {described}{whose}; its prompt is deleted.")

    # ------------------------------------------------------------------ the leader's check

    async def run_due(self) -> list[Ran]:
        """Pause or resume schedules as their owners' roles allow, then run each due occurrence once (a missed
        occurrence, or several, runs once now; the schedule then waits for its next fire after now)."""
        await self.follow_roles()
        now = self.clock()
        async with self.reads() as session:
            rows = await due(session, now)
        if not rows or self.runner is None:
            return []
        gate = asyncio.Semaphore(CONCURRENT_RUNS)

        async def one(row: ScheduledPrompt) -> Ran:
            async with gate:
                try:
                    return await self.run_one(row, now)
                except Exception:
                    log.exception("scheduled prompt %s failed", row.id)
                    return Ran(row.id, "error")

        return list(await asyncio.gather(*(one(row) for row in rows)))

    async def follow_roles(self) -> None:
        """Each owner keeps as many active schedules as their role allows (the oldest); the rest are paused, and
        resumed when the role allows them again. A change is told to the owner once (the conditional write wins
        once). Schedules paused because Slack did not know the owner resume when it does again."""
        now = self.clock()
        async with self.reads() as session:
            rows = [row for row in await schedules_of(session, None)]
            limits = {}
            for user_id in {row.slack_user_id for row in rows}:
                snapshot = await access_snapshot(session, user_id, self.settings.default_role, now)
                limits[user_id] = (snapshot.policy.schedules, snapshot.role.role)
        by_owner: dict[str, list[ScheduledPrompt]] = {}
        for row in rows:
            by_owner.setdefault(row.slack_user_id, []).append(row)
        for user_id, theirs in by_owner.items():
            limit, role = limits[user_id]
            counted_rows = [row for row in theirs if row.paused_reason != PAUSED_LEFT]
            for index, row in enumerate(counted_rows):
                if index >= limit and row.state == ACTIVE:
                    await self._pause(row, PAUSED_FOR_ROLE,
                                      f"your role {strong(role)} keeps {counted(limit, 'schedule')}" if limit
                                      else f"your role {strong(role)} keeps no schedules")
                elif index < limit and row.state == PAUSED and row.paused_reason == PAUSED_FOR_ROLE:
                    await self._resume(row, PAUSED_FOR_ROLE, now)
            for row in theirs:
                if row.paused_reason == PAUSED_LEFT and (await self.slack.profile(user_id)).known:
                    await self._resume(row, PAUSED_LEFT, now)

    async def _pause(self, row: ScheduledPrompt, reason: str, why: str) -> None:
        async with self.sessions.begin() as session:
            changed = await pause(session, row.id, reason)
            if changed:
                add_audit(session, at=self.clock(), actor="scheduler", action="schedule.pause",
                          target=row.slack_user_id, schedule=row.id, reason=reason)
        if changed:
            log.info("scheduled prompt %s paused (%s)", row.id, reason)
            await self.slack.send_dm(row.slack_user_id, (
                f"{icon(Icon.WARNING)} Your scheduled prompt {_describe(row)} in {channel_link(row.channel_id)} is "
                f"paused: {why}. It resumes when your role allows it; {code(f'/claude unschedule {row.id}')} "
                "removes it."))

    async def _resume(self, row: ScheduledPrompt, reason: str, now: datetime) -> None:
        following = next_fire_after(trigger_of(row), now)
        if following is None:
            return
        async with self.sessions.begin() as session:
            changed = await resume(session, row.id, reason, following)
            if changed:
                add_audit(session, at=now, actor="scheduler", action="schedule.resume", target=row.slack_user_id,
                          schedule=row.id)
        if changed:
            await self.slack.send_dm(row.slack_user_id, (
                f"{icon(Icon.DONE)} Your scheduled prompt {_describe(row)} in {channel_link(row.channel_id)} runs "
                f"again: next {_local(following, row.timezone)}."))

    async def run_one(self, row: ScheduledPrompt, now: datetime) -> Ran:
        """Claim the occurrence ``row`` waits for, then ask the gate and Claude as its owner."""
        assert self.runner is not None
        occurrence = row.next_run_at
        following = next_fire_after(trigger_of(row), max(now, occurrence))
        if following is None:  # pragma: no cover - five crontab fields always come round again
            return Ran(row.id, "never")
        async with self.sessions.begin() as session:
            if not await claim_occurrence(session, row.id, occurrence, following):
                return Ran(row.id, "taken")  # another process ran it, or it was paused or removed meanwhile
        requester = await self.slack.profile(row.slack_user_id)
        request = ChatRequest(requester=requester, text=row.prompt, surface=SURFACE, channel_id=row.channel_id,
                              event_id=f"schedule:{row.id}:{int(occurrence.timestamp())}")
        heading = (f"Scheduled prompt {_describe(row)}, set by {mention(row.slack_user_id)}: "
                   f"{emphasis(row.prompt if len(row.prompt) <= PROMPT_SHOWN else row.prompt[:PROMPT_SHOWN] + '…')}")
        result = await self.runner.run(request, heading)
        decision = result.decision
        if isinstance(decision, Refusal):
            outcome = f"refused:{decision.reason.value}"
            if decision.reason is RefusalReason.UNKNOWN_USER and not requester.known:
                await self._pause(row, PAUSED_LEFT, "Slack does not know your account")
            else:
                await self._tell_refused(row, outcome, f"{decision.message} {decision.hint or ''}".strip())
        elif isinstance(decision, Admission):
            outcome = "ok"
            if result.failure is not None:
                outcome = "not_posted" if result.failure.kind == "delivery" else "error"
            if outcome == "not_posted":
                await self._tell_refused(row, outcome, (
                    f"I could not post in {channel_link(row.channel_id)}: invite me there ({code('/invite')}) or "
                    f"remove the schedule ({code(f'/claude unschedule {row.id}')})."))
        else:
            outcome = "taken"
        if outcome not in ("taken", "not_posted") and not outcome.startswith("refused"):
            async with self.sessions.begin() as session:
                await set_outcome(session, row.id, outcome)
        return Ran(row.id, outcome)

    async def _tell_refused(self, row: ScheduledPrompt, outcome: str, why: str) -> None:
        async with self.sessions.begin() as session:
            await set_outcome(session, row.id, outcome)
            first = await claim_refusal_notice(session, row.id)
        if first:
            await self.slack.send_dm(row.slack_user_id, (
                f"{icon(Icon.WARNING)} Your scheduled prompt {_describe(row)} in {channel_link(row.channel_id)} did "
                f"not run: {why}\nI will not tell you again until it runs; "
                f"{code(f'/claude unschedule {row.id}')} removes it."))
