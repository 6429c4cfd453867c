"""Block Kit for access requests (the refusal's button, the form, the approvers' message) and the Slack side of the
RequestBoard port (bot/services/ports.py)."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.access_requests import (
    APPROVAL_CHOICES,
    REASON_LIMIT,
    REQUEST_LIFETIME,
    AccessRequestView,
    RequestStatus,
)
from bot.domain.commands import whole_number
from bot.domain.mentions import mention
from bot.domain.roles import Role

log = logging.getLogger(__name__)

OPEN_ACTION = "access_request_open"
FORM_CALLBACK = "access_request"
DECISION_ACTION = re.compile(r"^access_request_(approve_(?:1d|7d|30d|permanent)|deny)$")
ROLE_BLOCK, ROLE_ELEMENT = "role", "role_choice"
REASON_BLOCK, REASON_ELEMENT = "reason", "reason_text"
_LABELS = {"1d": "Approve 1 day", "7d": "Approve 7 days", "30d": "Approve 30 days", "permanent": "Approve permanently"}

Block = dict[str, Any]


def escape(text: str) -> str:
    """Slack's three escapes (as render_keys does; importing it here would be circular through render.py)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def request_button(role: Role) -> Block:
    """The actions block under a refusal: "Request access", preset to the lowest role that would have passed."""
    return {"type": "actions", "block_id": "access_request", "elements": [
        {"type": "button", "action_id": OPEN_ACTION, "value": role.value, "style": "primary",
         "text": {"type": "plain_text", "text": "Request access"}}]}


def request_form(roles: tuple[Role, ...], preset: Role) -> dict[str, Any]:
    """The modal: what for (≤ 500 characters) and which role (user or power, preset)."""
    options = [{"text": {"type": "plain_text", "text": role.value}, "value": role.value} for role in roles]
    return {
        "type": "modal", "callback_id": FORM_CALLBACK,
        "title": {"type": "plain_text", "text": "Request access"},
        "submit": {"type": "plain_text", "text": "Send request"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "input", "block_id": ROLE_BLOCK, "label": {"type": "plain_text", "text": "Role"},
             "element": {"type": "static_select", "action_id": ROLE_ELEMENT, "options": options,
                         "initial_option": next(o for o in options if o["value"] == preset.value)}},
            {"type": "input", "block_id": REASON_BLOCK, "label": {"type": "plain_text", "text": "What for?"},
             "element": {"type": "plain_text_input", "action_id": REASON_ELEMENT, "multiline": True,
                         "max_length": REASON_LIMIT,
                         "placeholder": {"type": "plain_text", "text": "What you would use Claude for"}}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "Admins and owners decide; you get a DM. "
                                              "Your question is not kept: ask again once approved."}]},
        ],
    }


def notice_view(title: str, text: str) -> dict[str, Any]:
    """A modal that only says something (the request was sent, is pending, or cannot be made)."""
    return {"type": "modal", "title": {"type": "plain_text", "text": title[:24]},
            "close": {"type": "plain_text", "text": "Close"},
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def form_values(view: dict[str, Any]) -> tuple[str | None, str | None]:
    """(role, reason) from a view_submission's state."""
    values = (view.get("state") or {}).get("values") or {}
    role = ((values.get(ROLE_BLOCK) or {}).get(ROLE_ELEMENT) or {}).get("selected_option") or {}
    reason = ((values.get(REASON_BLOCK) or {}).get(REASON_ELEMENT) or {}).get("value")
    return role.get("value"), reason


def request_blocks(request: AccessRequestView) -> tuple[str, list[Block]]:
    """(fallback, blocks) of the approvers' message: who asks for what and why, and the buttons while pending."""
    reason = escape(request.reason)  # the requester's words: never a mention or a disguised link
    head = f":raising_hand: {mention(request.user_id)} asks for the Claude Gate role *{request.role}*"
    blocks: list[Block] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{head}\n>{reason.replace(chr(10), chr(10) + '>')}"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"Request #{request.id} · {request.created_at:%Y-%m-%d %H:%M} UTC · expires after "
            f"{REQUEST_LIFETIME.days} days without a decision")}]},
    ]
    if request.status is RequestStatus.PENDING:
        value = str(request.id)
        buttons = [{"type": "button", "action_id": f"access_request_approve_{choice}", "value": value,
                    "text": {"type": "plain_text", "text": _LABELS[choice]}} for choice in APPROVAL_CHOICES]
        buttons[0]["style"] = "primary"
        buttons.append({"type": "button", "action_id": "access_request_deny", "value": value, "style": "danger",
                        "text": {"type": "plain_text", "text": "Deny"}})
        blocks.append({"type": "actions", "block_id": f"access_request_{request.id}", "elements": buttons})
        return f"{head}: {reason}", blocks
    icon = {RequestStatus.APPROVED: ":white_check_mark:", RequestStatus.DENIED: ":no_entry:",
            RequestStatus.EXPIRED: ":hourglass:"}[request.status]
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} {request.decision_text}"}})
    return f"{head}: {reason}\n{request.decision_text}", blocks


def decision_from(action_id: str) -> tuple[bool, str | None] | None:
    """``access_request_approve_7d`` → (True, "7d"); ``access_request_deny`` → (False, None); else None."""
    match = DECISION_ACTION.match(action_id or "")
    if not match:
        return None
    kind = match.group(1)
    return (False, None) if kind == "deny" else (True, kind.removeprefix("approve_"))


def request_id_from(value: Any) -> int | None:
    text = str(value or "")
    return whole_number(text, 1, 2**63 - 1)  # ASCII digits only: "²".isdigit() is true, int("²") raises


class SlackRequestBoard:
    """Posts and updates the approvers' copies of a request, and DMs people."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def post_request(self, destination: str, request: AccessRequestView) -> tuple[str, str] | None:
        text, blocks = request_blocks(request)
        try:
            response = await self.client.chat_postMessage(channel=destination, text=text, blocks=blocks,
                                                          unfurl_links=False, unfurl_media=False)
        except Exception as exc:
            log.warning("could not post access request %s to %s: %s", request.id, destination, _error(exc))
            return None
        return str(response["channel"]), str(response["ts"])

    async def show_request(self, channel: str, ts: str, request: AccessRequestView) -> None:
        text, blocks = request_blocks(request)
        try:
            await self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
        except Exception as exc:
            log.warning("could not update access request %s in %s: %s", request.id, channel, _error(exc))

    async def send_dm(self, user_id: str, text: str) -> None:
        try:
            await self.client.chat_postMessage(channel=user_id, text=text)
        except Exception as exc:
            log.warning("could not DM %s: %s", user_id, _error(exc))


def _error(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("error")) if response is not None else type(exc).__name__

