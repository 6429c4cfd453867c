"""A fake Slack: Web API under ``/api/<method>``, Socket Mode websocket at ``/link``.

Point clients at it with ``AsyncWebClient(token="xoxb-…", base_url=fake.api_url)``.
Everything the bot sends is recorded; everything the bot should see is plain state
(``users``, ``threads``, ``usergroups``) that tests fill in directly or via helpers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import WSMsgType, web

from .server import ThreadedServer
from .signing import command_payload, event_body, new_trigger_id

Params = dict[str, Any]
Reply = dict[str, Any]
Handler = Callable[[Params, str], Reply]

_TS_STEP = 100  # microseconds between generated ts values


class SlackError(Exception):
    """Raised by a method handler to answer ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass
class _Failure:
    error: str
    status: int
    retry_after: int


def ts_to_micros(ts: str) -> int:
    """``"1700000000.000100"`` → ``1700000000000100`` (for ordering ts strings)."""
    try:
        sec, _, frac = str(ts).partition(".")
        return int(sec) * 1_000_000 + int((frac or "0").ljust(6, "0")[:6])
    except ValueError:
        return 0


def micros_to_ts(value: int) -> str:
    return f"{value // 1_000_000}.{value % 1_000_000:06d}"


def _maybe_json(value: Any) -> Any:
    """Form/query values such as ``blocks`` arrive as JSON strings: decode lists/dicts."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        if isinstance(decoded, list | dict):
            return decoded
    return value


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


def blocks_text(blocks: Any) -> str:
    """Best-effort visible text of Block Kit blocks (section/header/context/markdown/rich_text)."""
    if not isinstance(blocks, list):
        return ""
    parts: list[str] = []

    def text_of(obj: Any) -> str:
        if isinstance(obj, dict):
            if isinstance(obj.get("text"), str):
                return obj["text"]
            if isinstance(obj.get("text"), dict):
                return text_of(obj["text"])
            if isinstance(obj.get("elements"), list):
                return "".join(text_of(e) for e in obj["elements"])
        return ""

    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind in ("section", "header", "markdown"):
            text = text_of(block)
            if text:
                parts.append(text)
            for field in block.get("fields") or []:
                parts.append(text_of(field))
        elif kind in ("context", "rich_text"):
            text = " ".join(t for t in (text_of(e) for e in block.get("elements") or []) if t)
            if text:
                parts.append(text)
    return "\n".join(parts)


class FakeSlack(ThreadedServer):
    """In-process fake of the Slack Web API and Socket Mode."""

    def __init__(
        self,
        *,
        team_id: str = "T0001",
        bot_user_id: str = "UBOT",
        bot_id: str = "B0001",
        api_app_id: str = "A0001",
    ) -> None:
        super().__init__()
        # identity
        self.team_id = team_id
        self.team_name = "Fake Team"
        self.team_domain = "fake"
        self.enterprise_id: str | None = None
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.api_app_id = api_app_id
        self.bot_name = "claude-gate"
        #: tokens answered with ``invalid_auth`` (e.g. to simulate an uninstall)
        self.invalid_tokens: set[str] = set()
        #: when False, chat.startStream answers ``not_allowed`` (the bot must fall back)
        self.streaming_supported = True
        #: "agent" (agent_view, what new apps get) or "assistant" (the assistant panel of older apps). Under
        #: agent_view a setSuggestedPrompts call with a thread_ts silently does nothing, as Slack documents.
        self.view = "agent"
        self.ts_base = 1_700_000_000_000_000  # microseconds; generated ts start after this

        # world state the bot reads
        self.users: dict[str, dict[str, Any]] = {}
        self.threads: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.usergroups: dict[str, dict[str, Any]] = {}
        #: optional overrides for conversations.info; None: the channel does not exist (or the app cannot see it)
        self.channels: dict[str, dict[str, Any] | None] = {}
        #: channel → member ids (the bot's own id among them when it is a member); a channel not listed here has
        #: every user and the bot as members
        self.members: dict[str, list[str]] = {}
        #: hosted files served at their ``url_private`` (see :meth:`add_file`)
        self.files: dict[str, dict[str, Any]] = {}
        self.file_downloads: list[dict[str, Any]] = []  # every GET of a url_private: file id, token, status

        # what the bot did
        self.calls: list[tuple[str, Params]] = []
        self.call_times: list[float] = []  # time.monotonic() when each call arrived
        self.tokens_seen: list[str] = []
        self.streams: dict[str, dict[str, Any]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.reactions: list[dict[str, Any]] = []
        self.home_views: dict[str, dict[str, Any]] = {}
        self.views: list[dict[str, Any]] = []
        #: modals opened with views.open (and updated with views.update), by view id
        self.open_views: dict[str, dict[str, Any]] = {}
        #: trigger ids handed to the app in interactions: a views.open must use one within 3 s, once
        self.triggers: dict[str, dict[str, Any]] = {}
        self.assistant_status: dict[tuple[str, str], str] = {}
        #: agent sessions by (channel, thread_ts): status, title, initiator_user_id (agents.sessions.setStatus and
        #: chat.stopStream's session_status); every change in ``session_history``
        self.agent_sessions: dict[tuple[str, str], dict[str, Any]] = {}
        self.session_history: list[dict[str, Any]] = []
        #: an app not declared as an agent: agents.sessions.* answer this error (None: declared)
        self.agent_sessions_error: str | None = None
        #: whether the app subscribes to agent_session_stopped (the manifest's bot event); if not, setStatus
        #: answers ok with the warning Slack documents
        self.stop_event_subscribed = True
        self.assistant_status_history: list[dict[str, Any]] = []
        self.suggested_prompts: dict[tuple[str, str | None], dict[str, Any]] = {}
        self.thread_titles: dict[tuple[str, str], str] = {}
        self.responses: list[dict[str, Any]] = []
        #: files shared with files.getUploadURLExternal → POST of the bytes → files.completeUploadExternal
        self.uploads: list[dict[str, Any]] = []
        self._pending_uploads: dict[str, dict[str, Any]] = {}

        # socket mode
        self.socket_acks: list[dict[str, Any]] = []
        self.socket_sent: list[dict[str, Any]] = []
        self.socket_connections = 0  # total websocket connects so far
        #: the websocket URL apps.connections.open hands out; set it to where nothing listens for a connect that
        #: never succeeds (a token refused by apps.connections.open: put it in ``invalid_tokens``)
        self.socket_url: str | None = None
        self.tickets_issued = 0

        self._bot_messages: list[dict[str, Any]] = []
        self._failures: dict[str, list[_Failure]] = {}
        self._delays: dict[str, float] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._lock = threading.RLock()
        self._last_ts = 0
        self._response_counter = itertools.count(1)
        self._view_counter = itertools.count(1)
        self._methods: dict[str, Handler] = {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "conversations.open": self._conversations_open,
            "conversations.info": self._conversations_info,
            "conversations.list": self._conversations_list,
            "conversations.members": self._conversations_members,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "chat.startStream": self._chat_start_stream,
            "chat.appendStream": self._chat_append_stream,
            "chat.stopStream": self._chat_stop_stream,
            "assistant.threads.setStatus": self._assistant_set_status,
            "agents.sessions.setStatus": self._agents_sessions_set_status,
            "agents.sessions.rename": self._agents_sessions_rename,
            "assistant.threads.setSuggestedPrompts": self._assistant_set_suggested_prompts,
            "assistant.threads.setTitle": self._assistant_set_title,
            "views.publish": self._views_publish,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "apps.connections.open": self._apps_connections_open,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
        }

    # ================================================================ setup API

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/"

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_get("/link", self._handle_link)
        app.router.add_get("/link/", self._handle_link)
        app.router.add_post("/response/{n}", self._handle_response_url)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
        app.router.add_get("/files-pri/{team_file}/{name}", self._handle_file)
        return app

    def add_user(
        self,
        user_id: str,
        *,
        team_id: str | None = None,
        name: str | None = None,
        email: str | None = None,
        is_restricted: bool = False,
        is_ultra_restricted: bool = False,
        is_bot: bool = False,
        enterprise_id: str | None = None,
        real_name: str | None = None,
        is_admin: bool = False,
        deleted: bool = False,
        tz: str = "Europe/London",
    ) -> dict[str, Any]:
        """Register a user for users.info / users.lookupByEmail and return its object."""
        name = name or user_id.lower()
        real_name = real_name or name.replace(".", " ").replace("_", " ").title()
        team = team_id or self.team_id
        profile: dict[str, Any] = {
            "display_name": name,
            "display_name_normalized": name,
            "real_name": real_name,
            "real_name_normalized": real_name,
            "team": team,
        }
        if email is not None or not is_bot:
            profile["email"] = email or f"{name}@example.com"
        if is_bot:
            profile["bot_id"] = "B" + user_id.lstrip("UW")
        user: dict[str, Any] = {
            "id": user_id,
            "team_id": team,
            "name": name,
            "deleted": deleted,
            "real_name": real_name,
            # as users.info gives them: the IANA zone, its name now ("EST") and its offset from UTC now, in seconds
            "tz": tz,
            "tz_label": datetime.now(UTC).astimezone(ZoneInfo(tz)).tzname(),
            "tz_offset": int(datetime.now(UTC).astimezone(ZoneInfo(tz)).utcoffset().total_seconds()),  # type: ignore[union-attr]
            "profile": profile,
            "is_admin": is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": is_restricted,
            "is_ultra_restricted": is_ultra_restricted,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": int(time.time()),
        }
        if enterprise_id:
            user["enterprise_user"] = {
                "id": user_id,
                "enterprise_id": enterprise_id,
                "enterprise_name": "Fake Enterprise",
                "is_admin": is_admin,
                "is_owner": False,
                "is_primary_owner": False,
                "teams": [team],
            }
        self.users[user_id] = user
        return user

    def add_message(
        self,
        channel: str,
        ts: str,
        text: str,
        *,
        user: str | None = None,
        bot_id: str | None = None,
        thread_ts: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Add a message to the thread keyed ``(channel, thread_ts or ts)``; returns it."""
        msg: dict[str, Any] = {"type": "message", "ts": ts, "text": text}
        if user:
            msg["user"] = user
        if bot_id:
            msg["bot_id"] = bot_id
        if thread_ts:
            msg["thread_ts"] = thread_ts
        msg.update(extra)
        with self._lock:
            self._last_ts = max(self._last_ts, ts_to_micros(ts))
            self.threads.setdefault((channel, thread_ts or ts), []).append(msg)
        return msg

    def add_file(self, file_id: str, name: str, mimetype: str, content: bytes, *, filetype: str | None = None,
                 readable: bool = True, size: int | None = None, user: str = "U0",
                 redirect_to: str | None = None) -> dict[str, Any]:
        """A hosted file whose object (as in a message's ``files``) is returned. Its ``url_private`` serves the
        bytes to a request bearing a valid bot token, like Slack: without one Slack answers 200 with an HTML
        login page; a file the bot may not read (``readable=False``: shared where it is not, or by another
        organisation) gets that page even with a token. ``size`` overrides what the object claims;
        ``redirect_to`` makes its ``url_private`` answer ``302`` to that address instead."""
        url = f"{self.base_url}/files-pri/{self.team_id}-{file_id}/{name}"
        obj = {
            "id": file_id, "created": int(time.time()), "timestamp": int(time.time()), "name": name, "title": name,
            "mimetype": mimetype, "filetype": filetype or name.rsplit(".", 1)[-1].lower(), "pretty_type": mimetype,
            "user": user, "user_team": self.team_id, "editable": False, "size": len(content) if size is None else size,
            "mode": "hosted", "is_external": False, "external_type": "", "is_public": True,
            "public_url_shared": False, "display_as_bot": False, "username": "", "url_private": url,
            "url_private_download": url + "?download=1", "permalink": f"https://{self.team_domain}.slack.com/files/"
            f"{user}/{file_id}/{name}", "is_starred": False, "has_rich_preview": False, "file_access": "visible",
        }
        self.files[file_id] = {"object": obj, "content": content, "readable": readable, "redirect_to": redirect_to}
        return dict(obj)

    def add_usergroup(
        self, usergroup_id: str, handle: str, users: list[str], *, name: str | None = None
    ) -> dict[str, Any]:
        group = {"id": usergroup_id, "handle": handle, "name": name or handle, "users": list(users)}
        self.usergroups[usergroup_id] = group
        return group

    def next_ts(self) -> str:
        """A fresh ts, strictly greater than every ts generated or added so far."""
        with self._lock:
            self._last_ts = max(self._last_ts + _TS_STEP, self.ts_base + _TS_STEP)
            return micros_to_ts(self._last_ts)

    def issue_trigger(self, user_id: str) -> str:
        """A trigger id for an interaction by ``user_id`` (valid for one views.open within 3 s, like Slack's)."""
        trigger_id = new_trigger_id()
        with self._lock:
            self.triggers[trigger_id] = {"user": user_id, "issued": time.monotonic(), "used": False}
        return trigger_id

    def views_opened_for(self, user_id: str) -> list[dict[str, Any]]:
        """The modals opened for ``user_id``, oldest first (each as Slack holds it, with ``id``)."""
        return [entry["view"] for entry in list(self.open_views.values()) if entry["user"] == user_id]

    def new_response_url(self) -> str:
        """A ``response_url`` pointing at this fake; POSTs to it land in ``responses``."""
        return f"{self.base_url}/response/{next(self._response_counter)}"

    # ---------------------------------------------------------- failure control

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        *,
        status: int | None = None,
        retry_after: int = 1,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail (429 + Retry-After for ``ratelimited``)."""
        if status is None:
            status = 429 if error == "ratelimited" else 200
        with self._lock:
            queue = self._failures.setdefault(method, [])
            queue.extend(_Failure(error, status, retry_after) for _ in range(times))

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def delay(self, method: str, seconds: float) -> None:
        """Make ``method`` answer after ``seconds`` (0 removes the delay)."""
        if seconds > 0:
            self._delays[method] = seconds
        else:
            self._delays.pop(method, None)

    def expire_stream(self, ts: str) -> None:
        """Simulate Slack ending a stream server-side: further appends get ``message_not_in_streaming_state``."""
        with self._lock:
            stream = self.streams[ts]
            if not stream["stopped"]:
                self._finish_stream(stream)

    # ================================================================ readers

    def calls_to(self, method: str) -> list[Params]:
        return [params for name, params in list(self.calls) if name == method]

    def call_names(self) -> list[str]:
        return [name for name, _ in list(self.calls)]

    def reset_calls(self) -> None:
        self.calls.clear()
        self.call_times.clear()
        self.tokens_seen.clear()

    def bot_messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Copies of the bot's visible messages (postMessage and streams), in order, not deleted."""
        with self._lock:
            return [
                dict(entry["message"], channel=entry["channel"], kind=entry["kind"])
                for entry in self._bot_messages
                if not entry["deleted"] and (channel is None or entry["channel"] == channel)
            ]

    def posted_texts(self, channel: str | None = None) -> list[str]:
        """Final visible text of each bot message, in posting order (what users see)."""
        return [self._visible_text(m) for m in self.bot_messages(channel)]

    def thread_messages(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        with self._lock:
            return sorted((dict(m) for m in self.threads.get((channel, thread_ts), [])), key=self._order)

    @staticmethod
    def _visible_text(message: dict[str, Any]) -> str:
        text = message.get("text") or message.get("markdown_text") or ""
        return text or blocks_text(message.get("blocks"))

    # ============================================================ socket mode

    @property
    def connected_clients(self) -> int:
        return sum(1 for ws in list(self._sockets) if not ws.closed)

    def wait_connected(self, timeout: float = 5.0, count: int = 1) -> bool:
        return self.wait_for(lambda s: s.connected_clients >= count, timeout)

    async def await_connected(self, timeout: float = 5.0, count: int = 1) -> bool:
        return await self.awaitfor(lambda s: s.connected_clients >= count, timeout)

    def push_event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str | None = None,
        broadcast: bool = False,
    ) -> str:
        """Send an ``events_api`` envelope to the newest connected client; returns the envelope_id."""
        payload = event_body(
            event,
            team_id=self.team_id,
            event_id=event_id,
            api_app_id=self.api_app_id,
            bot_user_id=self.bot_user_id,
            enterprise_id=self.enterprise_id,
        )
        if retry_reason is None:
            retry_reason = "" if retry_attempt == 0 else "timeout"
        return self.push_envelope(
            "events_api",
            payload,
            accepts_response_payload=False,
            extra={"retry_attempt": retry_attempt, "retry_reason": retry_reason},
            broadcast=broadcast,
        )

    def push_slash_command(
        self,
        command: str,
        text: str,
        user_id: str,
        channel_id: str = "C0001",
        **kwargs: Any,
    ) -> str:
        """Send a ``slash_commands`` envelope; its response_url points at :meth:`new_response_url`."""
        kwargs.setdefault("response_url", self.new_response_url())
        kwargs.setdefault("api_app_id", self.api_app_id)
        kwargs.setdefault("team_domain", self.team_domain)
        if self.enterprise_id:
            kwargs.setdefault("enterprise_id", self.enterprise_id)
        payload = command_payload(command, text, user_id, channel_id, self.team_id, **kwargs)
        return self.push_envelope("slash_commands", payload, accepts_response_payload=True)

    def push_envelope(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool = False,
        extra: dict[str, Any] | None = None,
        broadcast: bool = False,
    ) -> str:
        """Send any Socket Mode envelope (``interactive``, ``slash_commands``, ``events_api`` …)."""
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": envelope_type,
            "accepts_response_payload": accepts_response_payload,
            **(extra or {}),
        }
        self.call_soon(self._send_envelope(envelope, broadcast))
        return envelope_id

    def acks_for(self, envelope_id: str) -> list[dict[str, Any]]:
        return [a for a in list(self.socket_acks) if a.get("envelope_id") == envelope_id]

    def disconnect_clients(self, reason: str = "refresh_requested") -> None:
        """Ask clients to reconnect, like Slack does before rotating a connection."""
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake-1"}}
        self.call_soon(self._broadcast(message))

    def close_clients(self) -> None:
        """Drop all websocket connections from the server side."""
        self.call_soon(self._close_sockets())

    async def _send_envelope(self, envelope: dict[str, Any], broadcast: bool) -> None:
        open_sockets = [ws for ws in self._sockets if not ws.closed]
        if not open_sockets:
            raise RuntimeError("no Socket Mode client is connected")
        targets = open_sockets if broadcast else open_sockets[-1:]
        data = json.dumps(envelope)
        for ws in targets:
            await ws.send_str(data)
        self.socket_sent.append(envelope)

    async def _broadcast(self, message: dict[str, Any]) -> None:
        data = json.dumps(message)
        for ws in [ws for ws in self._sockets if not ws.closed]:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(data)

    async def _close_sockets(self) -> None:
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 1.0)

    async def on_stopping(self) -> None:
        await self._close_sockets()

    async def _handle_link(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, timeout=1.0)
        await ws.prepare(request)
        self._sockets.append(ws)
        self.socket_connections += 1
        hello = {
            "type": "hello",
            "num_connections": self.connected_clients,
            "debug_info": {
                "host": "applink-fake-1",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.api_app_id},
        }
        try:
            await ws.send_str(json.dumps(hello))
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        data = json.loads(msg.data)
                    except ValueError:
                        data = {"raw": msg.data}
                    self.socket_acks.append(data if isinstance(data, dict) else {"raw": data})
        finally:
            with contextlib.suppress(ValueError):
                self._sockets.remove(ws)
        return ws

    # ================================================================ HTTP

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        raw = await request.text()
        body: Any
        try:
            body = json.loads(raw)
        except ValueError:
            body = {k: _maybe_json(v) for k, v in (await request.post()).items()} if raw else {}
        self.responses.append({"n": int(request.match_info["n"]), "body": body, "url": str(request.url),
                               "at": time.monotonic()})
        return web.Response(text="ok", content_type="text/html")

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["team_file"].split("-", 1)[-1]
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        stored = self.files.get(file_id)
        authorised = bool(token) and token.startswith("xoxb-") and token not in self.invalid_tokens
        record = {"file": file_id, "token": token, "status": 200}
        self.file_downloads.append(record)
        if stored is None:
            record["status"] = 404
            return web.Response(status=404, text="file not found")
        if stored["redirect_to"]:
            record["status"] = 302
            raise web.HTTPFound(stored["redirect_to"])
        if not authorised or not stored["readable"]:
            record["login_page"] = True  # what Slack does: 200 and a sign-in page, not an error
            return web.Response(text="<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to "
                                "continue</body></html>", content_type="text/html")
        return web.Response(body=stored["content"], content_type=stored["object"]["mimetype"])

    async def _read_params(self, request: web.Request) -> Params:
        params: Params = {k: _maybe_json(v) for k, v in request.query.items()}
        if not request.can_read_body:
            return params
        ctype = request.content_type
        if ctype == "application/json":
            try:
                body = await request.json()
            except ValueError as e:
                raise SlackError("invalid_json") from e
            if isinstance(body, dict):
                params.update(body)
        elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                params[key] = _maybe_json(value) if isinstance(value, str) else getattr(value, "filename", "")
        else:
            raw = await request.text()
            try:
                body = json.loads(raw) if raw else {}
                if isinstance(body, dict):
                    params.update(body)
            except ValueError:
                pass
        return params

    @staticmethod
    def _envelope(body: Reply, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response(body, status=status, headers=headers)

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            params = await self._read_params(request)
        except SlackError as e:
            return self._envelope({"ok": False, "error": e.error})
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        body_token = params.pop("token", None)
        token = token or (body_token if isinstance(body_token, str) else "")
        self.call_times.append(time.monotonic())  # before the call itself: index i is the time of calls[i]
        self.calls.append((method, params))
        if token:
            self.tokens_seen.append(token)

        delay = self._delays.get(method)
        if delay:
            await asyncio.sleep(delay)

        if not token:
            return self._envelope({"ok": False, "error": "not_authed"})
        if token in self.invalid_tokens:
            return self._envelope({"ok": False, "error": "invalid_auth"})
        if method == "apps.connections.open":
            if not token.startswith("xapp-"):
                return self._envelope({"ok": False, "error": "invalid_auth"})
        elif token.startswith("xapp-") and method not in ("auth.test", "api.test"):
            return self._envelope({"ok": False, "error": "not_allowed_token_type"})

        with self._lock:
            queue = self._failures.get(method)
            failure = queue.pop(0) if queue else None
        if failure is not None:
            headers = {"Retry-After": str(failure.retry_after)} if failure.status == 429 else None
            return self._envelope({"ok": False, "error": failure.error}, failure.status, headers)

        handler = self._methods.get(method)
        if handler is None:
            return self._envelope({"ok": False, "error": "unknown_method"})
        try:
            with self._lock:
                reply = handler(params, token)
        except SlackError as e:
            return self._envelope({"ok": False, "error": e.error, **e.extra})
        return self._envelope({"ok": True, **reply})

    # ======================================================= method handlers

    @staticmethod
    def _require(params: Params, *names: str) -> None:
        for name in names:
            if params.get(name) in (None, ""):
                raise SlackError(
                    "invalid_arguments", response_metadata={"messages": [f"[ERROR] missing required field: {name}"]}
                )

    def _api_test(self, params: Params, token: str) -> Reply:
        return {"args": params}

    def _auth_test(self, params: Params, token: str) -> Reply:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "enterprise_id": self.enterprise_id,
            "is_enterprise_install": False,
        }

    def _users_info(self, params: Params, token: str) -> Reply:
        user = self.users.get(str(params.get("user", "")))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user}

    def _users_lookup_by_email(self, params: Params, token: str) -> Reply:
        email = str(params.get("email", "")).lower()
        for user in self.users.values():
            if str(user.get("profile", {}).get("email", "")).lower() == email and email:
                return {"user": user}
        raise SlackError("users_not_found")

    # ------------------------------------------------------------ conversations

    @staticmethod
    def _order(message: dict[str, Any]) -> int:
        return ts_to_micros(message.get("ts", "0"))

    def _render_thread(self, root_ts: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ordered = sorted(messages, key=self._order)
        replies = [m for m in ordered if m.get("ts") != root_ts]
        root = next((m for m in ordered if m.get("ts") == root_ts), None)
        out: list[dict[str, Any]] = []
        for m in ordered:
            item = dict(m)
            if m is root and replies:
                item["thread_ts"] = root_ts
                item["reply_count"] = len(replies)
                item["reply_users"] = sorted({r.get("user") or r.get("bot_id", "") for r in replies})
                item["reply_users_count"] = len(item["reply_users"])
                item["latest_reply"] = replies[-1]["ts"]
            elif m is not root:
                item["thread_ts"] = root_ts
                if root is not None and root.get("user"):
                    item["parent_user_id"] = root["user"]
            out.append(item)
        return out

    @staticmethod
    def _time_filter(messages: list[dict[str, Any]], params: Params) -> list[dict[str, Any]]:
        inclusive = _truthy(params.get("inclusive", False))
        oldest, latest = params.get("oldest"), params.get("latest")
        result = messages
        if oldest not in (None, "", "0"):
            lo = ts_to_micros(str(oldest))
            result = [m for m in result if (ts_to_micros(m["ts"]) >= lo if inclusive else ts_to_micros(m["ts"]) > lo)]
        if latest not in (None, ""):
            hi = ts_to_micros(str(latest))
            result = [m for m in result if (ts_to_micros(m["ts"]) <= hi if inclusive else ts_to_micros(m["ts"]) < hi)]
        return result

    @staticmethod
    def _paginate(items: list[dict[str, Any]], params: Params, default_limit: int) -> tuple[list[Any], Reply]:
        try:
            limit = int(params.get("limit") or default_limit)
        except (TypeError, ValueError):
            limit = default_limit
        limit = max(1, min(limit, 1000))
        cursor = params.get("cursor")
        offset = 0
        if cursor:
            try:
                decoded = base64.b64decode(str(cursor)).decode()
                offset = int(decoded.split(":", 1)[1])
            except (ValueError, IndexError, binascii.Error) as e:
                raise SlackError("invalid_cursor") from e
        page = items[offset : offset + limit]
        has_more = offset + limit < len(items)
        next_cursor = base64.b64encode(f"next_ts:{offset + limit}".encode()).decode() if has_more else ""
        return page, {"has_more": has_more, "response_metadata": {"next_cursor": next_cursor}}

    def _find_message(self, channel: str, ts: str) -> tuple[tuple[str, str], dict[str, Any]] | None:
        for key, messages in self.threads.items():
            if key[0] != channel:
                continue
            for m in messages:
                if m.get("ts") == ts:
                    return key, m
        return None

    def _conversations_replies(self, params: Params, token: str) -> Reply:
        self._require(params, "channel", "ts")
        channel, ts = str(params["channel"]), str(params["ts"])
        key = (channel, ts)
        if key not in self.threads:
            found = self._find_message(channel, ts)
            if found is None:
                raise SlackError("thread_not_found")
            key = found[0]
        messages = self._time_filter(self._render_thread(key[1], self.threads[key]), params)
        page, meta = self._paginate(messages, params, 1000)
        return {"messages": page, **meta}

    def _conversations_history(self, params: Params, token: str) -> Reply:
        self._require(params, "channel")
        channel = str(params["channel"])
        tops: list[dict[str, Any]] = []
        for (ch, root_ts), messages in self.threads.items():
            if ch != channel:
                continue
            rendered = self._render_thread(root_ts, messages)
            tops.extend(m for m in rendered if m["ts"] == root_ts)
        tops = self._time_filter(tops, params)
        tops.sort(key=self._order, reverse=True)  # newest first, like Slack
        page, meta = self._paginate(tops, params, 100)
        return {"messages": page, "pin_count": 0, **meta}

    def _dm_channel(self, user_or_channel: str) -> str:
        if user_or_channel[:1] in ("U", "W"):
            return "D" + user_or_channel
        return user_or_channel

    def _conversations_open(self, params: Params, token: str) -> Reply:
        users = params.get("users")
        if params.get("channel"):
            return {"channel": {"id": str(params["channel"])}}
        if not users:
            raise SlackError("users_list_not_supplied")
        ids = [u.strip() for u in (users if isinstance(users, list) else str(users).split(",")) if u.strip()]
        channel_id = "D" + ids[0] if len(ids) == 1 else "G" + "".join(ids)
        reply: Reply = {"channel": {"id": channel_id}}
        if _truthy(params.get("return_im", False)):
            reply["channel"].update({"is_im": len(ids) == 1, "user": ids[0]})
        return reply

    def _conversations_info(self, params: Params, token: str) -> Reply:
        self._require(params, "channel")
        channel = str(params["channel"])
        if channel in self.channels:
            known = self.channels[channel]
            if known is None:
                raise SlackError("channel_not_found")
            return {"channel": known}
        info: dict[str, Any] = {
            "id": channel,
            "name": channel.lower(),
            "is_channel": channel.startswith("C"),
            "is_group": channel.startswith("G"),
            "is_im": channel.startswith("D"),
            "is_mpim": False,
            "is_private": channel[:1] in ("G", "D"),
            "is_member": channel not in self.members or self.bot_user_id in self.members[channel],
            "is_archived": False,
            "is_ext_shared": False,
            "context_team_id": self.team_id,
        }
        if channel.startswith("D"):
            info["user"] = channel[1:]
        return {"channel": info}

    def _conversations_list(self, params: Params, token: str) -> Reply:
        """The channels set in :attr:`channels`, of the ``types`` asked for (default public_channel), archived ones
        only without ``exclude_archived``; paginated by ``limit`` (1000 at most) and ``cursor``, as Slack does."""
        types = set(str(params.get("types") or "public_channel").split(","))
        unknown = types - {"public_channel", "private_channel", "mpim", "im"}
        if unknown:
            raise SlackError("invalid_types")
        exclude_archived = str(params.get("exclude_archived", "false")).lower() in ("1", "true")
        listed = []
        for channel in self.channels.values():
            if channel is None or (exclude_archived and channel.get("is_archived")):
                continue
            kind = "private_channel" if channel.get("is_private") else "public_channel"
            if kind in types:
                listed.append(channel)
        page, meta = self._paginate(listed, params, 100)
        return {"channels": page, **meta}

    def _conversations_members(self, params: Params, token: str) -> Reply:
        self._require(params, "channel")
        channel = str(params["channel"])
        members = self.members.get(channel, [*self.users, self.bot_user_id])
        if channel in self.members and self.bot_user_id not in members:
            raise SlackError("not_in_channel")
        page, meta = self._paginate([{"id": m} for m in members], params, 100)
        return {"members": [m["id"] for m in page], **meta}

    # --------------------------------------------------------------------- chat

    def _bot_message(self, channel: str, ts: str, params: Params) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.api_app_id,
            "text": str(params.get("text") or params.get("markdown_text") or ""),
            "ts": ts,
            "team": self.team_id,
        }
        for key in ("blocks", "attachments", "metadata"):
            if params.get(key) is not None:
                msg[key] = params[key]
        if params.get("thread_ts"):
            msg["thread_ts"] = str(params["thread_ts"])
        return msg

    def _files_get_upload_url_external(self, params: Params, token: str) -> Reply:
        """Step 1 of Slack's upload: a one-time URL for ``length`` bytes of ``filename``."""
        self._require(params, "filename", "length")
        try:
            length = int(params["length"])
        except (TypeError, ValueError):
            raise SlackError("invalid_arguments") from None
        file_id = f"F{next(self._view_counter):08d}"
        self._pending_uploads[file_id] = {"filename": str(params["filename"]), "length": length, "content": None}
        return {"upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    async def _handle_upload(self, request: web.Request) -> web.Response:
        """Step 2: the bytes, POSTed to the upload URL (Slack answers 200 with ``OK - <length>``)."""
        file_id = request.match_info["file_id"]
        content = await request.read()
        with self._lock:
            pending = self._pending_uploads.get(file_id)
            if pending is None:
                return web.Response(status=404, text="upload URL not found")
            pending["content"] = content
        return web.Response(text=f"OK - {len(content)}")

    def _files_complete_upload_external(self, params: Params, token: str) -> Reply:
        """Step 3: share the uploaded files in ``channel_id`` (and ``thread_ts``), with ``initial_comment``."""
        self._require(params, "files")
        files = params["files"]
        if isinstance(files, str):
            files = json.loads(files)
        done = []
        for item in files:
            pending = self._pending_uploads.pop(str(item.get("id")), None)
            if pending is None or pending["content"] is None:
                raise SlackError("file_not_found")
            if len(pending["content"]) != pending["length"]:
                raise SlackError("file_upload_size_mismatch")
            record = {"id": item["id"], "title": item.get("title") or pending["filename"],
                      "filename": pending["filename"], "content": pending["content"],
                      "channel": params.get("channel_id"), "thread_ts": params.get("thread_ts"),
                      "initial_comment": params.get("initial_comment")}
            self.uploads.append(record)
            done.append({"id": item["id"], "title": record["title"], "name": pending["filename"]})
        return {"files": done}

    def _chat_post_message(self, params: Params, token: str) -> Reply:
        if not params.get("channel"):
            raise SlackError("channel_not_found")
        if not any(params.get(k) for k in ("text", "blocks", "attachments", "markdown_text")):
            raise SlackError("no_text")
        channel = self._dm_channel(str(params["channel"]))
        ts = self.next_ts()
        msg = self._bot_message(channel, ts, params)
        thread_ts = msg.get("thread_ts")
        self.threads.setdefault((channel, thread_ts or ts), []).append(msg)
        self._bot_messages.append({"channel": channel, "ts": ts, "message": msg, "kind": "message", "deleted": False})
        return {"channel": channel, "ts": ts, "message": dict(msg)}

    def _chat_post_ephemeral(self, params: Params, token: str) -> Reply:
        self._require(params, "channel", "user")
        if not any(params.get(k) for k in ("text", "blocks", "attachments", "markdown_text")):
            raise SlackError("no_text")
        channel = str(params["channel"])
        if channel in self.members:  # Slack shows an ephemeral only where the bot and its recipient both are
            if self.bot_user_id not in self.members[channel]:
                raise SlackError("not_in_channel")
            if str(params["user"]) not in self.members[channel]:
                raise SlackError("user_not_in_channel")
        ts = self.next_ts()
        record = {
            "channel": str(params["channel"]),
            "user": str(params["user"]),
            "text": str(params.get("text") or params.get("markdown_text") or ""),
            "blocks": params.get("blocks"),
            "thread_ts": params.get("thread_ts"),
            "ts": ts,
        }
        self.ephemerals.append(record)
        return {"message_ts": ts}

    def _own_bot_entry(self, channel: str, ts: str, not_owned_error: str) -> dict[str, Any]:
        for entry in self._bot_messages:
            if entry["channel"] == channel and entry["ts"] == ts and not entry["deleted"]:
                return entry
        if self._find_message(channel, ts) is not None:
            raise SlackError(not_owned_error)
        raise SlackError("message_not_found")

    def _chat_update(self, params: Params, token: str) -> Reply:
        self._require(params, "channel", "ts")
        channel, ts = self._dm_channel(str(params["channel"])), str(params["ts"])
        entry = self._own_bot_entry(channel, ts, "cant_update_message")
        msg = entry["message"]
        if params.get("text") is not None or params.get("markdown_text") is not None:
            msg["text"] = str(params.get("text") or params.get("markdown_text") or "")
        for key in ("blocks", "attachments", "metadata"):
            if params.get(key) is not None:
                msg[key] = params[key]
        msg["edited"] = {"user": self.bot_user_id, "ts": self.next_ts()}
        return {"channel": channel, "ts": ts, "text": msg["text"], "message": dict(msg)}

    def _chat_delete(self, params: Params, token: str) -> Reply:
        self._require(params, "channel", "ts")
        channel, ts = self._dm_channel(str(params["channel"])), str(params["ts"])
        entry = self._own_bot_entry(channel, ts, "cant_delete_message")
        entry["deleted"] = True
        for messages in self.threads.values():
            if entry["message"] in messages:
                messages.remove(entry["message"])
        return {"channel": channel, "ts": ts}

    def _chat_get_permalink(self, params: Params, token: str) -> Reply:
        self._require(params, "channel", "message_ts")
        channel, ts = str(params["channel"]), str(params["message_ts"])
        return {
            "channel": channel,
            "permalink": f"https://{self.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}",
        }

    # ------------------------------------------------------------------ streams

    @staticmethod
    def _stream_text(params: Params) -> tuple[str, list[dict[str, Any]]]:
        text = str(params.get("markdown_text") or "")
        chunks = params.get("chunks") or []
        if not isinstance(chunks, list):
            raise SlackError("invalid_chunks")
        for chunk in chunks:
            if isinstance(chunk, dict) and chunk.get("type") == "markdown_text":
                text += str(chunk.get("text") or "")
        return text, [c for c in chunks if isinstance(c, dict)]

    def _live_stream(self, params: Params) -> dict[str, Any]:
        self._require(params, "channel", "ts")
        stream = self.streams.get(str(params["ts"]))
        if stream is None or stream["stopped"]:
            raise SlackError("message_not_in_streaming_state")
        return stream

    def _chat_start_stream(self, params: Params, token: str) -> Reply:
        self._require(params, "channel", "thread_ts")
        if not self.streaming_supported:
            raise SlackError("not_allowed")
        text, chunks = self._stream_text(params)
        channel = self._dm_channel(str(params["channel"]))
        ts = self.next_ts()
        msg = self._bot_message(channel, ts, {"text": text, "thread_ts": params["thread_ts"]})
        self.streams[ts] = {
            "ts": ts,
            "channel": channel,
            "thread_ts": str(params["thread_ts"]),
            "recipient_user_id": params.get("recipient_user_id"),
            "recipient_team_id": params.get("recipient_team_id"),
            "text": text,
            "chunks": chunks,
            "stopped": False,
            "blocks": None,
            "metadata": None,
            "appends": 0,
            "message": msg,
        }
        self._bot_messages.append({"channel": channel, "ts": ts, "message": msg, "kind": "stream", "deleted": False})
        return {"channel": channel, "ts": ts}

    def _chat_append_stream(self, params: Params, token: str) -> Reply:
        stream = self._live_stream(params)
        text, chunks = self._stream_text(params)
        if not text and not chunks:
            raise SlackError("no_text")
        stream["text"] += text
        stream["chunks"].extend(chunks)
        stream["appends"] += 1
        stream["message"]["text"] = stream["text"]
        return {"channel": stream["channel"], "ts": stream["ts"]}

    def _chat_stop_stream(self, params: Params, token: str) -> Reply:
        stream = self._live_stream(params)
        text, chunks = self._stream_text(params)
        stream["text"] += text
        stream["chunks"].extend(chunks)
        if params.get("blocks") is not None:
            stream["blocks"] = params["blocks"]
            stream["message"]["blocks"] = params["blocks"]
        if params.get("metadata") is not None:
            stream["metadata"] = params["metadata"]
            stream["message"]["metadata"] = params["metadata"]
        if params.get("session_status") is not None:
            self._set_session(stream["channel"], stream["thread_ts"], str(params["session_status"]), via="stopStream")
        self._finish_stream(stream)
        return {"channel": stream["channel"], "ts": stream["ts"], "message": dict(stream["message"])}

    def _finish_stream(self, stream: dict[str, Any]) -> None:
        stream["stopped"] = True
        msg = stream["message"]
        msg["text"] = stream["text"]
        self.threads.setdefault((stream["channel"], stream["thread_ts"]), []).append(msg)

    # ---------------------------------------------------------------- assistant

    def _assistant_set_status(self, params: Params, token: str) -> Reply:
        self._require(params, "channel_id", "thread_ts")
        key = (str(params["channel_id"]), str(params["thread_ts"]))
        status = str(params.get("status") or "")
        self.assistant_status[key] = status
        self.assistant_status_history.append(dict(params))
        return {}

    SESSION_STATUSES = ("active", "processing", "suspended", "closed")

    def _set_session(self, channel: str, thread_ts: str, status: str, *, via: str, title: Any = None,
                     initiator: Any = None) -> dict[str, Any]:
        if self.agent_sessions_error is not None:
            raise SlackError(self.agent_sessions_error)
        if self.view == "assistant":  # only apps declared as agents have sessions (the error code is ours: the
            raise SlackError("not_allowed")  # method's reference lists none for this)
        if status not in self.SESSION_STATUSES:
            raise SlackError("invalid_arguments",
                             response_metadata={"messages": [f"[ERROR] invalid status: {status}"]})
        if isinstance(title, str) and len(title) > 200:
            raise SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] title too long"]})
        key = (self._dm_channel(channel), thread_ts)
        session = self.agent_sessions.get(key)
        if session is None:  # title and initiator count only when the session is created
            session = self.agent_sessions[key] = {"title": title, "initiator_user_id": initiator}
        session["status"] = status
        self.session_history.append({"channel": key[0], "thread_ts": thread_ts, "status": status, "via": via})
        return session

    def _agents_sessions_set_status(self, params: Params, token: str) -> Reply:
        self._require(params, "status", "channel_id", "thread_ts")
        session = self._set_session(str(params["channel_id"]), str(params["thread_ts"]), str(params["status"]),
                                    via="setStatus", title=params.get("title"),
                                    initiator=params.get("initiator_user_id"))
        reply: Reply = {"status": session["status"], "title": session["title"]}
        if not self.stop_event_subscribed and session["status"] == "processing":
            reply["warning"] = "missing_agent_session_stopped_event_subscription"
        return reply

    def _agents_sessions_rename(self, params: Params, token: str) -> Reply:
        self._require(params, "title", "channel_id", "thread_ts")
        if self.agent_sessions_error is not None:
            raise SlackError(self.agent_sessions_error)
        session = self.agent_sessions.get((self._dm_channel(str(params["channel_id"])), str(params["thread_ts"])))
        if session is None:
            raise SlackError("session_not_found")
        session["title"] = params["title"]
        return {"title": session["title"]}

    def press_stop(self, channel: str, thread_ts: str, user: str) -> dict[str, Any]:
        """A person clicks the session's stop button: Slack stops the app's streams in the thread at once and
        sends ``agent_session_stopped`` (the event returned, as docs.slack.dev prints it); the session stays in
        its status until the app moves it."""
        channel = self._dm_channel(channel)
        with self._lock:
            stopped = [ts for ts, stream in self.streams.items()
                       if stream["channel"] == channel and stream["thread_ts"] == thread_ts and not stream["stopped"]]
            for ts in stopped:
                self._finish_stream(self.streams[ts])
        return {"type": "agent_session_stopped", "channel": channel, "thread_ts": thread_ts, "user": user,
                "streaming_message_ts": stopped, "event_ts": self.next_ts()}

    def session_status(self, channel: str, thread_ts: str) -> str | None:
        session = self.agent_sessions.get((self._dm_channel(channel), thread_ts))
        return None if session is None else str(session["status"])

    def _assistant_set_suggested_prompts(self, params: Params, token: str) -> Reply:
        self._require(params, "channel_id", "prompts")
        if self.view == "agent" and params.get("thread_ts"):
            return {}  # "Including it in a call for an agent app will cause the call to silently fail."
        key = (str(params["channel_id"]), params.get("thread_ts"))
        self.suggested_prompts[key] = {"title": params.get("title"), "prompts": params["prompts"]}
        return {}

    def _assistant_set_title(self, params: Params, token: str) -> Reply:
        self._require(params, "channel_id", "thread_ts", "title")
        self.thread_titles[(str(params["channel_id"]), str(params["thread_ts"]))] = str(params["title"])
        return {}

    # -------------------------------------------------------------------- views

    def _view_reply(self, view: Any, **extra: Any) -> Reply:
        if not isinstance(view, dict):
            raise SlackError("invalid_arguments")
        view_id = extra.pop("view_id", None) or f"V{next(self._view_counter):010d}"
        stored = {"id": view_id, "team_id": self.team_id, "app_id": self.api_app_id, "bot_id": self.bot_id,
                  "private_metadata": "", "callback_id": "", "external_id": "", "state": {"values": {}},
                  "hash": uuid.uuid4().hex[:20], "root_view_id": view_id, "previous_view_id": None, **view, **extra}
        return {"view": stored}

    def _views_publish(self, params: Params, token: str) -> Reply:
        self._require(params, "user_id", "view")
        reply = self._view_reply(params["view"])
        self.home_views[str(params["user_id"])] = params["view"]
        self.views.append({"method": "views.publish", **params})
        return reply

    def _views_open(self, params: Params, token: str) -> Reply:
        self._require(params, "view")
        trigger_id = params.get("trigger_id") or params.get("interactivity_pointer")
        if not trigger_id:
            raise SlackError("invalid_arguments")
        trigger = self.triggers.get(str(trigger_id))
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if trigger["used"] or time.monotonic() - trigger["issued"] > 3.0:
            raise SlackError("expired_trigger_id")
        view = params["view"]
        if not isinstance(view, dict) or view.get("type") != "modal" or not view.get("title"):
            raise SlackError("invalid_arguments")
        # Slack's view reference: a title, submit and close of at most 24 characters, private_metadata of 3,000
        if any(len(str((view.get(key) or {}).get("text", ""))) > 24 for key in ("title", "submit", "close")) \
                or len(str(view.get("private_metadata") or "")) > 3000:
            raise SlackError("invalid_arguments")
        trigger["used"] = True
        self.views.append({"method": "views.open", **params})
        reply = self._view_reply(view)
        self.open_views[reply["view"]["id"]] = {"view": reply["view"], "user": trigger["user"]}
        return reply

    def _views_update(self, params: Params, token: str) -> Reply:
        self._require(params, "view")
        self.views.append({"method": "views.update", **params})
        view_id = str(params.get("view_id") or "")
        if view_id and view_id not in self.open_views:
            raise SlackError("not_found")
        reply = self._view_reply(params["view"], **({"view_id": view_id} if view_id else {}))
        if view_id:
            self.open_views[view_id]["view"] = reply["view"]
        return reply

    # --------------------------------------------------------------- usergroups

    def _usergroup_object(self, group: dict[str, Any], include_users: bool) -> dict[str, Any]:
        obj = {
            "id": group["id"],
            "team_id": self.team_id,
            "is_usergroup": True,
            "name": group.get("name", group["handle"]),
            "description": group.get("description", ""),
            "handle": group["handle"],
            "is_external": False,
            "date_delete": 0,
            "user_count": len(group.get("users", [])),
        }
        if include_users:
            obj["users"] = list(group.get("users", []))
        return obj

    def _usergroups_list(self, params: Params, token: str) -> Reply:
        include_users = _truthy(params.get("include_users", False))
        return {"usergroups": [self._usergroup_object(g, include_users) for g in self.usergroups.values()]}

    def _usergroups_users_list(self, params: Params, token: str) -> Reply:
        group = self.usergroups.get(str(params.get("usergroup", "")))
        if group is None:
            raise SlackError("no_such_subteam")
        return {"users": list(group.get("users", []))}

    # ---------------------------------------------------------------- reactions

    def _reactions_add(self, params: Params, token: str) -> Reply:
        self._require(params, "channel", "name", "timestamp")
        record = {"channel": str(params["channel"]), "name": str(params["name"]), "timestamp": str(params["timestamp"])}
        if record in self.reactions:
            raise SlackError("already_reacted")
        self.reactions.append(record)
        return {}

    def _reactions_remove(self, params: Params, token: str) -> Reply:
        self._require(params, "name")
        record = {
            "channel": str(params.get("channel", "")),
            "name": str(params["name"]),
            "timestamp": str(params.get("timestamp", "")),
        }
        if record not in self.reactions:
            raise SlackError("no_reaction")
        self.reactions.remove(record)
        return {}

    # -------------------------------------------------------------- socket mode

    def _apps_connections_open(self, params: Params, token: str) -> Reply:
        self.tickets_issued += 1
        if self.socket_url is not None:
            return {"url": self.socket_url}
        return {"url": f"ws://{self.host}:{self.port}/link?ticket={self.tickets_issued}&app_id={self.api_app_id}"}
