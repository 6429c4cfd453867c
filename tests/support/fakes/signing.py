"""Build Slack-signed HTTP requests, for testing the Bolt HTTP endpoint.

Signing follows https://docs.slack.dev/authentication/verifying-requests-from-slack:
``v0=`` + hex HMAC-SHA256 of ``"v0:{timestamp}:{raw body}"`` keyed by the signing secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

VERIFICATION_TOKEN = "fake-verification-token"
DEFAULT_RESPONSE_URL = "http://127.0.0.1:9/response/0"  # port 9 (discard): nothing listens


def sign(body: str | bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack would send with ``body``. Content-Type is guessed from the body."""
    raw = body.decode() if isinstance(body, bytes) else body
    ts = int(time.time()) if timestamp is None else int(timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{raw}".encode(), hashlib.sha256).hexdigest()
    content_type = "application/json" if raw.lstrip().startswith("{") else "application/x-www-form-urlencoded"
    return {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": content_type,
    }


def new_event_id() -> str:
    return "Ev" + uuid.uuid4().hex[:10].upper()


def new_trigger_id() -> str:
    return f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:32]}"


def event_body(
    event: dict[str, Any],
    *,
    team_id: str = "T0001",
    event_id: str | None = None,
    api_app_id: str = "A0001",
    bot_user_id: str = "UBOT",
    enterprise_id: str | None = None,
    event_time: int | None = None,
) -> dict[str, Any]:
    """An ``event_callback`` body as Slack POSTs it (and wraps it in Socket Mode envelopes)."""
    now = int(time.time())
    ev = dict(event)
    if "event_ts" not in ev:
        ev["event_ts"] = ev.get("ts") or f"{now}.000100"
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": enterprise_id,
        "api_app_id": api_app_id,
        "event": ev,
        "type": "event_callback",
        "event_id": event_id or new_event_id(),
        "event_time": now if event_time is None else event_time,
        "authorizations": [
            {
                "enterprise_id": enterprise_id,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + uuid.uuid4().hex,
    }


def command_payload(
    command: str,
    text: str,
    user_id: str,
    channel_id: str = "C0001",
    team_id: str = "T0001",
    *,
    response_url: str | None = None,
    trigger_id: str | None = None,
    user_name: str | None = None,
    channel_name: str = "general",
    team_domain: str = "fake",
    api_app_id: str = "A0001",
    enterprise_id: str | None = None,
) -> dict[str, str]:
    """Fields of a slash command invocation (all values are strings, as on the wire)."""
    payload = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command if command.startswith("/") else "/" + command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url or DEFAULT_RESPONSE_URL,
        "trigger_id": trigger_id or new_trigger_id(),
    }
    if enterprise_id:
        payload["enterprise_id"] = enterprise_id
    return payload


def command_body(
    command: str,
    text: str,
    user_id: str,
    channel_id: str = "C0001",
    team_id: str = "T0001",
    **kwargs: Any,
) -> str:
    """Form-encoded slash command body. Pass ``response_url=fake_slack.new_response_url()``
    to have ``respond()`` calls recorded in ``FakeSlack.responses``."""
    return urlencode(command_payload(command, text, user_id, channel_id, team_id, **kwargs))


def json_body(body: dict[str, Any]) -> str:
    """Compact JSON as Slack sends it (sign exactly the string you POST)."""
    return json.dumps(body, separators=(",", ":"))


def block_actions_payload(
    user_id: str,
    actions: list[dict[str, Any]],
    *,
    trigger_id: str,
    channel_id: str | None = None,
    message: dict[str, Any] | None = None,
    is_ephemeral: bool = False,
    team_id: str = "T0001",
    api_app_id: str = "A0001",
    response_url: str = DEFAULT_RESPONSE_URL,
) -> dict[str, Any]:
    """A ``block_actions`` interaction on a message (Slack POSTs it form-encoded as ``payload=<json>``)."""
    now = f"{time.time():.6f}"
    message_ts = (message or {}).get("ts") or now
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": team_id},
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel_id,
                      "is_ephemeral": is_ephemeral},
        "trigger_id": trigger_id,
        "team": {"id": team_id, "domain": "fake"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": "directmessage" if (channel_id or "").startswith("D") else "general"},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [dict(action, action_ts=now) for action in actions],
    }
    if not is_ephemeral and message is not None:
        payload["message"] = message
    return payload


def view_submission_payload(
    user_id: str,
    view: dict[str, Any],
    values: dict[str, dict[str, dict[str, Any]]],
    *,
    trigger_id: str,
    team_id: str = "T0001",
    api_app_id: str = "A0001",
) -> dict[str, Any]:
    """A ``view_submission``: the opened view as Slack holds it, with the user's input in ``state.values``."""
    submitted = dict(view, state={"values": values})
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": "fake"},
        "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": team_id},
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "view": submitted,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def message_shortcut_payload(
    user_id: str,
    callback_id: str,
    message: dict[str, Any],
    *,
    channel_id: str,
    trigger_id: str,
    channel_name: str = "general",
    team_id: str = "T0001",
    api_app_id: str = "A0001",
    response_url: str = DEFAULT_RESPONSE_URL,
) -> dict[str, Any]:
    """A message shortcut (``message_action``) used on ``message`` (as Slack holds it: ts, text, user, thread_ts…)
    in ``channel_id``; Slack POSTs it form-encoded as ``payload=<json>``, like every interaction."""
    return {
        "type": "message_action",
        "token": VERIFICATION_TOKEN,
        "action_ts": f"{time.time():.6f}",
        "team": {"id": team_id, "domain": "fake"},
        "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": team_id},
        "api_app_id": api_app_id,
        "channel": {"id": channel_id, "name": channel_name},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id,
        "message_ts": message["ts"],
        "message": {"type": "message", **message},
        "response_url": response_url,
    }


def interactive_body(payload: dict[str, Any]) -> str:
    """Form-encoded ``payload=<json>``, as Slack sends interactions to the request URL."""
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))})
