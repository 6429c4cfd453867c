"""Who is asking: Slack profiles from users.info (cached), compared with the installing workspace."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.requests import Requester

log = logging.getLogger(__name__)

MISS_TTL_SECONDS = 60.0
MAX_CACHED_USERS = 10_000


@dataclass(frozen=True)
class Installation:
    team_id: str | None
    enterprise_id: str | None
    bot_user_id: str | None
    bot_id: str | None


def is_member(user: dict[str, Any], home: Installation) -> bool:
    """Whether a users.info profile belongs to the installing organisation.

    A person is a member when their workspace (``team_id``) is the installation's, or when their enterprise is the
    installation's: ``enterprise_user.enterprise_id``, else the top-level ``enterprise_id``, else a ``team_id`` that
    is the enterprise itself (an org-level user). Slack leaves ``enterprise_user`` out of some Grid profiles, so its
    absence says nothing; an enterprise that is named and differs says another organisation, whatever the team.
    Slack Connect users (``is_stranger``) and profiles that name no organisation are not members.
    """
    if user.get("is_stranger"):
        return False
    team = user.get("team_id") if isinstance(user.get("team_id"), str) else None
    enterprise_user: dict[str, Any] = user["enterprise_user"] if isinstance(user.get("enterprise_user"), dict) else {}
    enterprise = enterprise_user.get("enterprise_id") or user.get("enterprise_id")
    if home.enterprise_id and enterprise:
        return enterprise == home.enterprise_id
    if home.enterprise_id and team == home.enterprise_id:
        return True
    return bool(home.team_id) and team == home.team_id


def requester_from_profile(user: dict[str, Any], home: Installation) -> Requester:
    """Slack Connect users (another organisation) are external, even with both guest flags false (see is_member:
    on Enterprise Grid, people of every workspace of the installing organisation are members)."""
    user_team = user.get("team_id")
    profile = user.get("profile") or {}
    name = profile.get("display_name") or user.get("real_name") or profile.get("real_name") or user.get("name") or ""
    return Requester(
        user_id=user["id"],
        team_id=user_team,
        name=name,
        known=not user.get("deleted", False),
        is_external=not is_member(user, home),
        is_guest=bool(user.get("is_restricted") or user.get("is_ultra_restricted")),
        # bots, workflow bots and Slackbot: never a person, so never chat and never admin rights
        is_bot=bool(user.get("is_bot") or user.get("is_workflow_bot") or user.get("id") == "USLACKBOT"),
        email=profile.get("email"),
        tz=user.get("tz") if isinstance(user.get("tz"), str) else None,
    )


class LazyRequester:
    """Who is asking, looked up the first time a listener needs it (``context["requester"]``).

    The requester middleware puts one in every request a person made; building it costs nothing, so an event that
    cannot be for the bot (most channel messages once ``message.channels`` is subscribed) makes no Slack or database
    call. The lookup fails closed (an unknown requester) like UserDirectory.requester.
    """

    def __init__(self, directory: UserDirectory, user_id: str) -> None:
        self.directory = directory
        self.user_id = user_id
        self._resolved: Requester | None = None

    async def resolve(self) -> Requester:
        if self._resolved is None:
            self._resolved = await self.directory.requester(self.user_id)
        return self._resolved


class UserDirectory:
    def __init__(self, client: AsyncWebClient, *, ttl_seconds: float = 300.0) -> None:
        self.client = client
        self.ttl = ttl_seconds
        self._cache: dict[str, tuple[float, Requester]] = {}
        self._installation: Installation | None = None
        self._lock = asyncio.Lock()

    async def installation(self) -> Installation:
        if self._installation is None:
            async with self._lock:
                if self._installation is None:
                    auth = await self.client.auth_test()
                    self._installation = Installation(auth.get("team_id"), auth.get("enterprise_id"),
                                                      auth.get("user_id"), auth.get("bot_id"))
        return self._installation

    async def requester(self, user_id: str) -> Requester:
        """The asker's profile; on any failure an unknown (and therefore refused) requester: fail closed."""
        cached = self._cache.get(user_id)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            home = await self.installation()
            response = await self.client.users_info(user=user_id)
            user = response.get("user")
            if not isinstance(user, dict) or "id" not in user:
                raise ValueError("users.info returned no profile")
            requester = requester_from_profile(user, home)
        except (TimeoutError, SlackApiError, ValueError, KeyError, OSError) as exc:
            log.warning("users.info failed for %s: %s", user_id, type(exc).__name__)
            unknown = Requester(user_id=user_id, known=False, is_external=True)
            # a miss is remembered too (for a minute): unknown IDs are not asked about again and again
            self._remember(user_id, unknown, min(self.ttl, MISS_TTL_SECONDS))
            return unknown
        self._remember(user_id, requester, self.ttl)
        return requester

    def _remember(self, user_id: str, requester: Requester, ttl: float) -> None:
        now = time.monotonic()
        if len(self._cache) >= MAX_CACHED_USERS:  # bounded, whatever IDs people mention
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            while len(self._cache) >= MAX_CACHED_USERS:
                del self._cache[next(iter(self._cache))]  # the oldest entry
        self._cache[user_id] = (now + ttl, requester)

    def lazy(self, user_id: str) -> LazyRequester:
        return LazyRequester(self, user_id)

    async def display_name(self, user_id: str) -> str:
        requester = await self.requester(user_id)
        return requester.name or user_id
